"""Subcommands of ``ase-cg``: one module each.

Every module here defines ``NAME`` (the subcommand), ``HELP`` (one line) and
``register(parser)``, which adds the arguments to its ``argparse`` sub-parser and sets
``parser.set_defaults(func=...)``; ``func(args)`` calls the one public library function
of the same name and returns an exit code.

``ase-cg`` imports every module here to build its parser, so ``ase-cg --help`` costs what
their top-level imports cost: the standard library, :mod:`ase_cg._args`, :mod:`ase_cg._paths`
and :mod:`ase_cg.errors` (about 0.1 s in all). The library modules a subcommand calls pull in
torch, h5py, ASE or MDAnalysis (seconds), so each ``func`` imports them itself, when it runs;
these are the package's only function-level imports of its own modules besides
``lammps_interface.export``.
"""

from __future__ import annotations

import argparse


def add_trajectory_options(parser: argparse.ArgumentParser, what: str = "the input") -> None:
    """Add ``--topology`` and ``--lammps-units``: how to read a non-H5MD trajectory."""
    parser.add_argument(
        "--topology",
        default=None,
        metavar="FILE",
        help=f"topology of {what} when it is not H5MD, read with MDAnalysis (GROMACS .tpr with "
        ".trr/.xtc, LAMMPS data file with a dump, .gro/.pdb with .dcd): elements, masses, bonds "
        "and molecules come from it, units are converted to Å and eV/Å",
    )
    parser.add_argument(
        "--lammps-units",
        default=None,
        choices=("real", "metal"),
        help="LAMMPS units style of a dump read with --topology (dumps carry no units)",
    )


def trajectory_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`ase_cg.trajectory.open_trajectory` from those options."""
    options = {"topology": args.topology}
    if args.lammps_units is not None:
        options["lammps_units"] = args.lammps_units
    return options
