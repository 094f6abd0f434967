"""``ase-cg info``: summarise an H5MD trajectory."""

from __future__ import annotations

import argparse

NAME = "info"
HELP = "Summarise an H5MD trajectory: frames, atoms, molecules, box, units, time step."


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg info``."""
    parser.add_argument("file", help="H5MD (.h5) trajectory")
    parser.add_argument(
        "--group",
        default=None,
        help="particle group in particles/ (%(default)s = the only one in the file)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print :func:`ase_cg.io.info` of the file."""
    from ase_cg.io import info

    print(info(args.file, group=args.group))
    return 0
