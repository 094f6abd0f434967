"""``ase-cg lammps``: build the cgtorch plugin, or run an exported deck (MPI with --ranks)."""

from __future__ import annotations

import argparse

from ase_cg import _args
from ase_cg.errors import InputError

NAME = "lammps"
HELP = (
    "LAMMPS tools: 'build-plugin' compiles pair_style cgtorch (cgtorchplugin.so) against the "
    "installed torch and LAMMPS; 'run DIR' runs an exported deck and converts its dump to H5MD."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg lammps``."""
    parser.add_argument("action", choices=["build-plugin", "run"], help="what to do")
    parser.add_argument(
        "directory", nargs="?", default=None, help="run: folder written by export-lammps"
    )
    parser.add_argument("--force", action="store_true", help="build-plugin: rebuild if cached")
    parser.add_argument(
        "--ranks", type=_args.positive_int, default=1, help="run: MPI ranks (mpiexec -n)"
    )
    parser.add_argument(
        "--var",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="run: deck variable, e.g. --var steps 1000 --var temperature 180 (K) --var "
        "timestep 2.0 (fs)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call :func:`~lammps_interface.plugin.build_plugin` or
    :func:`~lammps_interface.run.run_deck`."""
    if args.action == "build-plugin":
        from lammps_interface.plugin import build_plugin

        print(build_plugin(force=args.force))
        return 0
    from lammps_interface.run import run_deck

    if args.directory is None:
        raise InputError("ase-cg lammps run needs the export folder: ase-cg lammps run DIR")
    outputs = run_deck(args.directory, args.ranks, variables=dict(args.var))
    for name, path in outputs.items():
        print(f"{name:>5}: {path}")
    return 0
