"""``ase-cg export-lammps``: a model as a LAMMPS run (data file, tables, plugin model, deck)."""

from __future__ import annotations

import argparse

from ase_cg import _args
from ase_cg._paths import check_output_folder
from ase_cg.commands import add_ensemble_options, add_md_options, add_start_options

NAME = "export-lammps"
HELP = (
    "Export a model for LAMMPS: data file, pair/bond/angle/dihedral tables, the many-body term "
    "for the cgtorch plugin, and an input deck in units real (run it with 'ase-cg lammps run')."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg export-lammps``."""
    parser.add_argument("model", help="model file (ase-cg train output, or data/ethane_*.pt)")
    parser.add_argument(
        "directory",
        type=_args.output_folder,
        help="output folder (created; its files are replaced)",
    )
    add_start_options(parser)
    parser.add_argument(
        "--seed", type=_args.nonnegative_int, default=None, help="random seed of a new box"
    )
    parser.add_argument(
        "--table-points", type=_args.positive_int, default=2000, help="points per table"
    )
    parser.add_argument(
        "--table-inner",
        type=_args.positive_float,
        default=0.5,
        help="inner end of the pair table, Å",
    )
    parser.add_argument(
        "--neural-dtype",
        choices=["float32", "float64"],
        default=None,
        help="precision of the exported many-body term (default: the model's)",
    )
    parser.add_argument(
        "--neural-filter-spacing",
        type=_args.nonnegative_float,
        default=None,
        help="grid spacing (Å) of the tables the plugin reads the SchNet filters from (default "
        "0.002, errors 5e-6 of the largest force); 0: evaluate the filter networks (exact, "
        "slower); PaiNN terms always use exact filters",
    )
    parser.add_argument(
        "--skin", type=_args.nonnegative_float, default=2.0, help="neighbour skin, Å"
    )
    parser.add_argument(
        "--pair-cutoff",
        type=_pair_cutoff,
        default=None,
        help="end of the pair table, Å, or 'auto': where the summed pair force stays below "
        "--pair-force-tolerance (faster; drops the force tail, which moves the pressure); "
        "default: the pair terms' own cutoff",
    )
    parser.add_argument(
        "--pair-force-tolerance",
        type=_args.positive_float,
        default=2.0e-3,
        help="force taken as zero by --pair-cutoff auto, eV/Å",
    )
    parser.add_argument(
        "--pair-table-style",
        choices=["spline", "linear"],
        default="spline",
        help="LAMMPS interpolation of the pair table (linear is cheaper per pair)",
    )
    parser.add_argument(
        "--neighbor-every", type=_args.positive_int, default=1, help="neigh_modify every N steps"
    )
    parser.add_argument(
        "--neighbor-delay", type=_args.nonnegative_int, default=0, help="neigh_modify delay D steps"
    )
    add_md_options(
        parser,
        "deck temperature, K (default: the model's training temperature)",
        time_step_help="deck time step, fs",
        steps_help="deck MD steps",
    )
    parser.add_argument(
        "--dump-every", type=_args.positive_int, default=100, help="steps between dump frames"
    )
    add_ensemble_options(parser, "deck integrator: fix nvt, fix nve or fix npt iso (Nosé–Hoover)")
    parser.set_defaults(func=run)


def _pair_cutoff(text: str) -> float | str:
    """``--pair-cutoff``: ``auto`` or a positive distance in Å."""
    return text if text == "auto" else _args.positive_float(text)


def run(args: argparse.Namespace) -> int:
    """Call :func:`lammps_interface.deck.export_lammps` and list the files written."""
    import torch

    from lammps_interface.deck import (
        DECK_FILE,
        NEURAL_FILE,
        SYSTEM_FILE,
        TABLE_FILES,
        export_lammps,
    )
    from lammps_interface.run import DATA_FILE
    from lammps_interface.torchscript import FILTER_SPACING

    names = [DECK_FILE, NEURAL_FILE, SYSTEM_FILE, DATA_FILE, *TABLE_FILES.values()]
    check_output_folder(args.directory, [args.model, args.start], names, option="directory")
    files = export_lammps(
        args.model,
        args.directory,
        start=args.start,
        frame=args.frame,
        n_molecules=args.n_molecules,
        density=args.density,
        seed=args.seed,
        table_points=args.table_points,
        table_inner=args.table_inner,
        neural_dtype=None if args.neural_dtype is None else getattr(torch, args.neural_dtype),
        neural_filter_spacing=(
            FILTER_SPACING if args.neural_filter_spacing is None else args.neural_filter_spacing
        ),
        skin=args.skin,
        pair_cutoff=args.pair_cutoff,
        pair_force_tolerance=args.pair_force_tolerance,
        pair_table_style=args.pair_table_style,
        neighbor_every=args.neighbor_every,
        neighbor_delay=args.neighbor_delay,
        temperature=args.temperature,
        timestep=args.time_step,
        steps=args.steps,
        dump_every=args.dump_every,
        constrain_bonds=args.constrain_bonds,
        ensemble=args.ensemble,
        pressure=args.pressure,
    )
    for name, path in files.items():
        print(f"{name:>15}: {path}")
    return 0
