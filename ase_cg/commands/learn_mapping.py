"""``ase-cg learn-mapping``: learn a CG mapping with the coarse-graining auto-encoder."""

from __future__ import annotations

import argparse
import sys

from ase_cg import _args
from ase_cg._paths import check_output_folder
from ase_cg.commands import (
    add_force_map_option,
    add_no_progress_option,
    add_output_folder,
    add_trajectory_options,
    trajectory_options,
)

NAME = "learn-mapping"
HELP = (
    "Learn a CG mapping (Gumbel-softmax auto-encoder + force matching) from an all-atom "
    "trajectory (H5MD, or GROMACS/LAMMPS files with --topology)."
)


def _parse_beads(text: str):
    """``"2"`` → 2; ``"ethane=2,propane=3"`` → {"ethane": 2, "propane": 3}."""
    text = text.strip()
    if "=" not in text:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--beads {text!r}: give a number (e.g. 2) or TYPE=N pairs (ethane=2,propane=3)"
            ) from None
    beads = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            beads[name.strip()] = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--beads: {part!r} is not TYPE=N with an integer N (e.g. ethane=2)"
            ) from None
    return beads


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg learn-mapping``."""
    parser.add_argument(
        "trajectory",
        help="all-atom trajectory with forces: H5MD (.h5), or .trr/dump with --topology",
    )
    add_trajectory_options(parser)
    parser.add_argument(
        "--beads",
        required=True,
        type=_parse_beads,
        help="beads per molecule: N for every molecule type, or TYPE=N,... per type, keyed by "
        "Hill formula (C2H6=2) or reference molecule name (ethane=2,propane=3)",
    )
    add_output_folder(
        parser, "report folder: mapping.json, report.json, index.md, PNG figures", flag="--output"
    )
    parser.add_argument(
        "--seeds", type=_args.positive_int, default=5, help="restarts with seeds 0..N-1 (default 5)"
    )
    parser.add_argument(
        "--epochs", type=_args.positive_int, default=60, help="epochs per seed (default 60)"
    )
    parser.add_argument(
        "--rho",
        type=_args.nonnegative_float,
        default=None,
        help="weight of the force-matching term (relative to mean atom |f|²; default: "
        "AutoencoderConfig.rho)",
    )
    parser.add_argument(
        "--learning-rate",
        type=_args.positive_float,
        default=None,
        help="Adam step size (default: AutoencoderConfig.learning_rate)",
    )
    parser.add_argument(
        "--bond-weight",
        type=_args.nonnegative_float,
        default=None,
        help="weight of the bond-cut term (expected fraction of covalent bonds between "
        "different beads, dimensionless; 0 switches it off; default: "
        "AutoencoderConfig.bond_weight)",
    )
    parser.add_argument(
        "--balance-weight",
        type=_args.nonnegative_float,
        default=None,
        help="weight of the bead-mass balance term (spread of bead masses around their mean, "
        "dimensionless; 0 switches it off; default: AutoencoderConfig.balance_weight)",
    )
    parser.add_argument(
        "--max-frames",
        type=_args.positive_int,
        default=200,
        help="use at most this many frames, evenly spread (default 200)",
    )
    add_force_map_option(
        parser, "pseudo_inverse", "force map while learning (default: the paper's (EEᵀ)⁻¹E)"
    )
    add_no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call :func:`ase_cg.autoencoder.learn_mapping` and print the learned groups."""
    from ase_cg.autoencoder import AutoencoderConfig, learn_mapping
    from ase_cg.trajectory import opened

    check_output_folder(
        args.output,
        [args.trajectory],
        ["mapping.json", "report.json", "index.md"],
        option="-o",
    )
    settings = {"epochs": args.epochs, "max_frames": args.max_frames, "force_map": args.force_map}
    if args.rho is not None:
        settings["rho"] = args.rho
    for name in ("learning_rate", "bond_weight", "balance_weight"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    with opened(args.trajectory, **trajectory_options(args)) as trajectory:
        result = learn_mapping(
            trajectory,
            args.beads,
            config=AutoencoderConfig(**settings),
            seeds=range(args.seeds),
            output_dir=args.output,
            progress=False if args.no_progress else None,
        )
    report = result.report
    for name, groups in result.mapping.groups.items():
        symbols = report["atom_symbols"][name]
        text = " | ".join(" ".join(f"{symbols[j]}{j}" for j in g) for g in groups)
        print(f"{name}: {text}")
    failed = sum(run["failed"] for run in report["runs"])
    connected = sum(run["connected"] for run in report["runs"])
    print(
        f"best seed {report['best_seed']} of {len(report['runs'])} ({failed} failed, "
        f"{connected} with connected beads) in {report['seconds']:.1f} s; "
        f"report: {args.output}/index.md"
    )
    if not report["best_connected"]:
        print(f"warning: {report['selection']}", file=sys.stderr)
    return 0
