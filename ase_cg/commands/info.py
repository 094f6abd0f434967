"""``ase-cg info``: summarise a trajectory (H5MD, or another engine's with ``--topology``)."""

from __future__ import annotations

import argparse

from ase_cg.commands import add_trajectory_options, trajectory_options

NAME = "info"
HELP = (
    "Summarise a trajectory: frames, atoms, molecules, box, units, time step (H5MD; GROMACS or "
    "LAMMPS files with --topology)."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg info``."""
    parser.add_argument("file", help="trajectory: H5MD (.h5), or .trr/.xtc/dump with --topology")
    parser.add_argument(
        "--group",
        default=None,
        help="particle group in particles/ (%(default)s = the only one in the file)",
    )
    add_trajectory_options(parser, "the file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print :func:`ase_cg.io.info` of an H5MD file, else :func:`ase_cg.trajectory.summary`."""
    if args.topology is None and args.lammps_units is None:
        from ase_cg.io import info

        print(info(args.file, group=args.group))
        return 0
    from ase_cg.trajectory import open_trajectory, summary

    with open_trajectory(args.file, **trajectory_options(args)) as trajectory:
        print(f"file:        {args.file} (topology {args.topology})")
        print(summary(trajectory))
    return 0
