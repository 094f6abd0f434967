"""``ase-cg train``: fit or train a CG potential by force matching."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "Fit a classical or train a neural CG potential by force matching on an H5MD trajectory."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        help="H5MD trajectory with forces: CG (from `ase-cg map`) or all-atom (needs --mapping)",
    )
    parser.add_argument("-o", "--output", required=True, help="output folder (model.pt, metrics)")
    parser.add_argument(
        "--kind", choices=("classical", "neural"), default="neural", help="kind of CG potential"
    )
    parser.add_argument("--mapping", help="CGMapping JSON (required for all-atom data)")
    parser.add_argument(
        "--config",
        help="YAML/TOML file with sections 'train', 'neural', 'classical' (see README)",
    )
    parser.add_argument("--temperature", type=float, help="K; default: from mapped velocities")
    parser.add_argument(
        "--pressure-weight",
        type=float,
        help="classical: weight of the pressure-matching rows, (eV/Å)² per bar² "
        "(ClassicalConfig.pressure_weight; e.g. 1e-4); needs a reference pressure",
    )
    parser.add_argument(
        "--pressure",
        type=float,
        help="classical: reference pressure, bar, for data without observables/pressure",
    )
    parser.add_argument("--epochs", type=int, help="neural: passes over the training frames")
    parser.add_argument("--batch-frames", type=int, help="neural: frames per optimiser step")
    parser.add_argument("--learning-rate", type=float, help="neural: initial Adam step")
    parser.add_argument("--frame-stride", type=int, help="use every n-th frame")
    parser.add_argument("--max-frames", type=int, help="use at most this many frames")
    parser.add_argument("--dtype", choices=("float32", "float64"), help="neural training dtype")
    parser.add_argument("--device", help="neural: cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, help="neural: seed of the frame order")
    parser.add_argument("--ranks", type=int, default=1, help="neural: data-parallel processes")
    parser.add_argument(
        "--resume", action="store_true", help="neural: continue from OUTPUT/checkpoint.pt"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ase_cg.pipeline import train_model

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
    )
    print(f"model written to {path}")
    return 0
