"""``ase-cg map``: map an all-atom H5MD trajectory to a CG H5MD trajectory."""

from __future__ import annotations

import argparse

from ase_cg import _args
from ase_cg._paths import check_output_not_input
from ase_cg.commands import (
    add_force_map_option,
    add_no_progress_option,
    add_trajectory_options,
    trajectory_options,
)

NAME = "map"
HELP = (
    "Map an all-atom trajectory (H5MD, or GROMACS/LAMMPS files with --topology) to CG beads "
    "with a mapping JSON file (chunked)."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg map``."""
    parser.add_argument(
        "--mapping",
        required=True,
        help="mapping JSON file (CGMapping.save; e.g. data/ethane_mapping.json)",
    )
    parser.add_argument(
        "input", help="all-atom trajectory: H5MD (.h5), or .trr/.xtc/dump with --topology"
    )
    parser.add_argument(
        "output",
        type=_args.output_file,
        help="CG H5MD trajectory to write (.h5; replaced atomically)",
    )
    parser.add_argument(
        "--chunk-size",
        type=_args.positive_int,
        default=256,
        help="frames read, mapped and written at a time (bounds memory)",
    )
    add_force_map_option(
        parser, "bead_sum", "force map: bead sum of atomic forces, or the pseudo-inverse (EEᵀ)⁻¹E"
    )
    parser.add_argument(
        "--compression",
        choices=("gzip", "lzf", "none"),
        default="gzip",
        help="HDF5 compression of the CG file (gzip: smallest; lzf, none: faster)",
    )
    parser.add_argument(
        "--split-constraints",
        choices=("warn", "error", "allow"),
        default="warn",
        help="when the mapping splits a constrained bond (constant length over the frames) "
        "between beads: warn, refuse, or allow (forces that include the constraint forces, "
        "e.g. LAMMPS fix shake/rattle)",
    )
    add_trajectory_options(parser)
    add_no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call :func:`ase_cg.mapping.map_trajectory` and print a one-line summary."""
    from ase_cg.mapping import CGMapping, map_trajectory

    check_output_not_input(args.output, [args.input, args.mapping], option="output")
    mapping = CGMapping.load(args.mapping)
    system = map_trajectory(
        args.input,
        args.output,
        mapping,
        chunk_size=args.chunk_size,
        force_map=args.force_map,
        compression=None if args.compression == "none" else args.compression,
        progress=False if args.no_progress else None,
        split_constraints=args.split_constraints,
        **trajectory_options(args),
    )
    print(
        f"mapped {args.input} → {args.output}: {system.n_atoms} atoms in "
        f"{system.n_molecules} molecules → {system.n_beads} beads "
        f"({', '.join(mapping.bead_types)}), force map {args.force_map}"
    )
    return 0
