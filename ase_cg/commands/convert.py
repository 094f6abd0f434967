"""``ase-cg convert``: trajectories (extxyz, .traj, LAMMPS dumps; GROMACS TRR/XTC + TPR, LAMMPS
data + dump, DCD through MDAnalysis) → H5MD."""

from __future__ import annotations

import argparse

from ase_cg import _args

NAME = "convert"
HELP = (
    "Convert trajectories into H5MD: with forces from extxyz, ASE .traj, LAMMPS text dumps; "
    "with --topology through MDAnalysis (GROMACS TRR/XTC + TPR, LAMMPS data + dump, DCD)."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg convert``."""
    parser.add_argument(
        "inputs", nargs="+", metavar="IN", help="input trajectories, concatenated in order"
    )
    parser.add_argument(
        "output", metavar="OUT.h5", type=_args.output_file, help="H5MD file to write (atomically)"
    )
    parser.add_argument(
        "--format",
        default=None,
        help="ASE format of the inputs, e.g. extxyz, traj, lammps-dump-text "
        "(%(default)s = guessed from each file)",
    )
    parser.add_argument(
        "--types",
        default=None,
        help="LAMMPS type → element map, e.g. 1=C,2=H (required for LAMMPS dumps; "
        "default %(default)s)",
    )
    parser.add_argument(
        "--lammps-units",
        default=None,
        choices=["real", "metal", "si", "cgs", "electron", "micro", "nano"],
        help="LAMMPS units style the dump was written in (required for LAMMPS dumps; "
        "default %(default)s)",
    )
    parser.add_argument(
        "--time-step",
        type=_args.positive_float,
        default=None,
        help="MD time step, fs; frame time = step × time step (%(default)s = no times "
        "stored unless the input has them; MDAnalysis needs times)",
    )
    parser.add_argument(
        "--atoms-per-molecule",
        type=_args.positive_int,
        default=None,
        help="consecutive blocks of N atoms are molecules (%(default)s = molecule ids from "
        "the input's mol-id array or the dump's 'mol' column, else none)",
    )
    parser.add_argument(
        "--topology",
        default=None,
        metavar="FILE",
        help="topology read with MDAnalysis (GROMACS .tpr, LAMMPS data file, .gro, .pdb); the "
        "inputs are then its trajectories (.trr, .xtc, .dcd, LAMMPS dump): elements, masses, "
        "bonds and molecules come from the topology, units are converted to Å, eV/Å "
        "(%(default)s = read the inputs with ASE)",
    )
    parser.add_argument(
        "--group", default="all", help="name of the particle group written in particles/"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run :func:`ase_cg.io.convert` and report what was written."""
    from ase_cg.io import convert
    from ase_cg.trajectory import MDAnalysisTrajectory, write_trajectory

    if args.topology is not None:
        kwargs = {} if args.lammps_units is None else {"lammps_units": args.lammps_units}
        with MDAnalysisTrajectory(args.topology, args.inputs, **kwargs) as trajectory:
            n_frames = write_trajectory(trajectory, args.output, group=args.group)
        print(f"wrote {n_frames} frames to {args.output}")
        return 0
    n_frames = convert(
        args.inputs,
        args.output,
        format=args.format,
        time_step=args.time_step,
        types=args.types,
        lammps_units=args.lammps_units,
        atoms_per_molecule=args.atoms_per_molecule,
        group=args.group,
    )
    print(f"wrote {n_frames} frames to {args.output}")
    return 0
