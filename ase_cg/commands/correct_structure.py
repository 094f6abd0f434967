"""``ase-cg correct-structure``: one iterative-Boltzmann-inversion step on a trained model."""

from __future__ import annotations

import argparse

from ase_cg import _args
from ase_cg._paths import check_output_not_input

NAME = "correct-structure"
HELP = (
    "Add a pair correction ΔV = α k_B T ln(g_CG / g_ref) (one IBI step) to a model, from its CG "
    "run and the reference, so its RDFs match the reference."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg correct-structure``."""
    parser.add_argument("model", help="model file that produced the CG run")
    parser.add_argument(
        "reference", help="reference H5MD: all-atom (mapped with the model's mapping) or CG"
    )
    parser.add_argument("cg", help="CG H5MD run of the model (ase-cg simulate output)")
    parser.add_argument(
        "-o", "--output", required=True, type=_args.output_file, help="corrected model file written"
    )
    parser.add_argument(
        "--temperature", type=_args.positive_float, default=180.0, help="temperature, K"
    )
    parser.add_argument(
        "--cutoff",
        type=_args.positive_float,
        default=None,
        help="range of the correction, Å (default: the model's pair cutoff, at least 8)",
    )
    parser.add_argument("--r-max", type=_args.positive_float, default=13.0, help="RDF range, Å")
    parser.add_argument("--damping", type=_args.positive_float, default=1.0, help="α of the update")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call :func:`ase_cg.fitting.structural_correction` and save the model."""
    from ase_cg.fitting import structural_correction
    from ase_cg.model import load_model, save_model

    check_output_not_input(args.output, [args.model, args.reference, args.cg], option="-o")
    model = structural_correction(
        load_model(args.model),
        args.reference,
        args.cg,
        temperature=args.temperature,
        cutoff=args.cutoff,
        r_max=args.r_max,
        damping=args.damping,
    )
    path = save_model(model, args.output)
    before = model.provenance["structural_correction"]["max_abs_difference_before"]
    for pair, value in before.items():
        print(f"{pair}: max |Δg| of the input run {value:.3f}")
    print(f"corrected model written to {path}; run it again to check the RDFs (ase-cg compare)")
    return 0
