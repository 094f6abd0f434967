"""``ase-cg demo``: the whole pipeline on the shipped ethane reference, into a report folder."""

from __future__ import annotations

import argparse

from ase_cg import _args

NAME = "demo"
HELP = (
    "Run the whole pipeline on liquid ethane (map, fit a classical and train a neural CG "
    "potential, CG MD in ASE and LAMMPS, compare with the all-atom reference) and write a "
    "Markdown + PNG report; about 10 minutes on 2 CPU cores, no network. --system water: "
    "one-site CG water, pair vs pair + three-body vs neural, against SPC/E."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg demo``."""
    parser.add_argument(
        "--system", choices=("ethane", "water"), default="ethane",
        help="ethane: the whole pipeline (mapping, classical and neural models, ASE and LAMMPS "
        "MD, speed); water: one-site CG water where many-body terms matter (pair, pair + "
        "three-body and neural models in LAMMPS, neighbour angles and tetrahedral order)",
    )  # fmt: skip
    parser.add_argument(
        "-o", "--output-dir", default="demo-report", type=_args.output_folder,
        help="report folder: index.md, metrics.json, PNG figures, work/ (created; files replaced)",
    )  # fmt: skip
    parser.add_argument(
        "--reference", default=None,
        help="all-atom H5MD with forces and velocities; default the shipped ethane_aa.h5 "
        "(ase_cg.shipped_data; generated into the report's work/ folder if missing)",
    )  # fmt: skip
    parser.add_argument(
        "--mapping", default=None,
        help="CGMapping JSON; default the shipped ethane_mapping.json (CH3|CH3)",
    )  # fmt: skip
    parser.add_argument(
        "--frames", type=_args.positive_int, default=None,
        help="reference frames to fit and train on, spread over the file (default 200; 10 with "
        "--quick)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=_args.positive_int, default=None,
        help="CG MD steps of 2 fs per run (default 5000; 40 with --quick); the neural LAMMPS run "
        "does a tenth",
    )  # fmt: skip
    parser.add_argument(
        "--device",
        default="cpu",
        type=_args.torch_device,
        help="neural training and ASE MD: cpu, cuda or cuda:N",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="tiny sizes everywhere (a smoke test of the pipeline, about a minute)",
    )  # fmt: skip
    parser.add_argument(
        "--ranks", type=_args.positive_int, default=1, help="MPI ranks of the LAMMPS runs"
    )
    parser.add_argument(
        "--no-lammps", dest="lammps", action="store_false", help="skip the LAMMPS runs"
    )
    parser.add_argument(
        "--seed", type=_args.nonnegative_int, default=0, help="seed of training and MD noise"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run :func:`ase_cg.demo.demo` (or :func:`ase_cg.demo_water.water_demo`)."""
    if args.system == "water":
        from ase_cg.demo_water import water_demo

        water_demo(
            args.output_dir, reference=args.reference, frames=args.frames, steps=args.steps,
            quick=args.quick, ranks=args.ranks, seed=args.seed,
        )  # fmt: skip
        return 0
    from ase_cg.demo import demo

    demo(
        args.output_dir,
        reference=args.reference,
        mapping=args.mapping,
        frames=args.frames,
        steps=args.steps,
        device=args.device,
        quick=args.quick,
        ranks=args.ranks,
        lammps=args.lammps,
        seed=args.seed,
    )
    return 0
