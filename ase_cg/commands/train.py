"""``ase-cg train``: fit or train a CG potential by force matching."""

from __future__ import annotations

import argparse
from pathlib import Path

from ase_cg import _args
from ase_cg._paths import check_output_folder
from ase_cg.commands import add_output_folder, add_trajectory_options, trajectory_options
from ase_cg.errors import InputError

NAME = "train"
HELP = "Fit a classical or train a neural CG potential by force matching on an H5MD trajectory."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        help="trajectory with forces: CG H5MD (from `ase-cg map`) or all-atom (needs --mapping; "
        "H5MD, or .trr/dump with --topology)",
    )
    add_trajectory_options(parser)
    add_output_folder(parser, "output folder (model.pt, metrics)", flag="--output")
    parser.add_argument(
        "--kind", choices=("classical", "neural"), default="neural", help="kind of CG potential"
    )
    parser.add_argument("--mapping", help="CGMapping JSON (required for all-atom data)")
    parser.add_argument(
        "--config",
        help="YAML/TOML file with sections 'train', 'neural', 'classical' (see README)",
    )
    parser.add_argument(
        "--temperature", type=_args.positive_float, help="K; default: from mapped velocities"
    )
    parser.add_argument(
        "--pressure-weight",
        type=_args.nonnegative_float,
        help="classical: weight of the pressure-matching rows, (eV/Å)² per bar² "
        "(ClassicalConfig.pressure_weight; e.g. 1e-4); needs a reference pressure",
    )
    parser.add_argument(
        "--pressure",
        type=_args.finite_float,
        help="classical: reference pressure, bar, for data without observables/pressure",
    )
    parser.add_argument(
        "--epochs", type=_args.positive_int, help="neural: passes over the training frames"
    )
    parser.add_argument(
        "--batch-frames", type=_args.positive_int, help="neural: frames per optimiser step"
    )
    parser.add_argument(
        "--learning-rate", type=_args.positive_float, help="neural: initial Adam step"
    )
    parser.add_argument("--frame-stride", type=_args.positive_int, help="use every n-th frame")
    parser.add_argument(
        "--max-frames", type=_args.positive_int, help="use at most this many frames"
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), help="neural training dtype")
    parser.add_argument("--device", type=_args.torch_device, help="neural: cpu, cuda or cuda:N")
    parser.add_argument(
        "--seed", type=_args.nonnegative_int, help="neural: seed of the frame order"
    )
    parser.add_argument(
        "--ranks", type=_args.positive_int, default=1, help="neural: data-parallel processes"
    )
    parser.add_argument(
        "--resume", action="store_true", help="neural: continue from OUTPUT/checkpoint.pt"
    )
    parser.set_defaults(func=run)


#: Options that only neural training uses (a classical fit is refused when one is given).
NEURAL_ONLY = ("epochs", "batch_frames", "learning_rate", "dtype", "device", "seed", "resume")

#: Files ``train`` writes into its output folder.
OUTPUT_NAMES = (
    "model.pt",
    "initial.pt",
    "checkpoint.pt",
    "metrics.csv",
    "loss.png",
    "mapped.h5",
    "potentials.png",
)


def run(args: argparse.Namespace) -> int:
    """Call :func:`ase_cg.pipeline.train_model` and say where the model is."""
    from ase_cg.pipeline import train_model

    if args.kind == "classical":
        given = [
            f"--{n.replace('_', '-')}" for n in NEURAL_ONLY if getattr(args, n) not in (None, False)
        ]
        if args.ranks != 1:
            given.append("--ranks")
        if given:
            raise InputError(
                f"{', '.join(given)}: neural-training options; a classical fit (--kind "
                "classical) does not use them"
            )
    check_output_folder(
        args.output, [args.data, args.mapping, args.config], OUTPUT_NAMES, option="-o"
    )

    overrides = {
        "epochs": args.epochs,
        "batch_frames": args.batch_frames,
        "learning_rate": args.learning_rate,
        "frame_stride": args.frame_stride,
        "max_frames": args.max_frames,
        "dtype": args.dtype,
        "device": args.device,
        "seed": args.seed,
    }
    classical = {
        key: value
        for key, value in (("pressure_weight", args.pressure_weight), ("pressure", args.pressure))
        if value is not None
    }
    if classical and args.kind != "classical":
        raise ValueError("--pressure-weight and --pressure apply to --kind classical")
    path = train_model(
        args.data,
        args.output,
        kind=args.kind,
        mapping_path=args.mapping,
        config_path=args.config,
        train_overrides=overrides,
        temperature=args.temperature,
        classical_overrides=classical,
        ranks=args.ranks,
        resume=args.resume,
        read_options=trajectory_options(args),
    )
    if not Path(path).is_file():
        raise InputError(f"training ended without writing a model to {path}")
    print(f"model written to {path}")
    return 0
