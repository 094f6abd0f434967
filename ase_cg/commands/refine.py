"""``ase-cg refine``: iterate CG MD → compare → correct until RDFs and pressure match."""

from __future__ import annotations

import argparse

from ase_cg import _args
from ase_cg.commands import add_md_options, add_output_folder, add_repeat_option

NAME = "refine"
HELP = (
    "Refine a model against its reference: CG MD, compare RDFs and pressure, add IBI and "
    "pressure-ramp pair corrections, repeat until both match (resumes in the same folder; exit "
    "code 3 when --max-iterations ends unconverged)."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg refine``."""
    parser.add_argument("model", help="model file to start from (classical or neural)")
    parser.add_argument(
        "reference",
        help="reference H5MD (all-atom, mapped with the model's mapping, or CG); its last frame "
        "starts every run; its observables/pressure is the target pressure",
    )
    add_output_folder(parser, "folder of the iterations (reuse it to resume)")
    parser.add_argument(
        "--max-iterations", type=_args.positive_int, default=8, help="CG runs at most"
    )
    add_md_options(
        parser,
        "K; default: the reference's",
        time_step_help="MD time step, fs",
        steps_help="MD steps per iteration",
    )
    parser.add_argument(
        "--pressure",
        type=_args.finite_float,
        default=None,
        help="reference pressure, bar; default: the mean of the reference's observables/pressure",
    )
    parser.add_argument(
        "--rdf-tolerance", type=_args.positive_float, default=0.03, help="max |Δg| to reach"
    )
    parser.add_argument(
        "--pressure-tolerance",
        type=_args.positive_float,
        default=25.0,
        help="|P − P_ref| to reach, bar",
    )
    parser.add_argument(
        "--threebody-period",
        type=_args.nonnegative_int,
        default=0,
        help="models with a three-body term: correct its angular function in iterations 0, N, "
        "2N, … (the pairs in the others) until the angle distribution also matches; 0: keep it "
        "fixed (3 converges one-site water)",
    )
    parser.add_argument(
        "--threebody-damping",
        type=_args.positive_float,
        default=0.5,
        help="damping α of each angular step, in (0, 1]",
    )
    parser.add_argument(
        "--angle-tolerance",
        type=_args.positive_float,
        default=0.001,
        help="max |Δp| of the screened angle distribution to reach, 1/degree",
    )
    parser.add_argument("--engine", choices=("lammps", "ase"), default="lammps", help="MD engine")
    parser.add_argument(
        "--interval", type=_args.positive_int, default=50, help="steps between frames"
    )
    add_repeat_option(parser, "replicate the start frame (more beads, less pressure noise)")
    parser.add_argument(
        "--ranks", type=_args.positive_int, default=1, help="MPI ranks (LAMMPS engine)"
    )
    parser.add_argument(
        "--seed", type=_args.nonnegative_int, default=1, help="velocity seed of iteration 0"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call :func:`ase_cg.refine.refine` and print the last iteration."""
    from ase_cg.refine import RefineConfig, refine

    config = RefineConfig(
        max_iterations=args.max_iterations,
        temperature=args.temperature,
        pressure=args.pressure,
        rdf_tolerance=args.rdf_tolerance,
        pressure_tolerance=args.pressure_tolerance,
        threebody_period=args.threebody_period,
        threebody_damping=args.threebody_damping,
        angle_tolerance=args.angle_tolerance,
        engine=args.engine,
        steps=args.steps,
        time_step_fs=args.time_step,
        interval=args.interval,
        repeat=tuple(args.repeat),
        ranks=args.ranks,
        seed=args.seed,
    )
    result = refine(args.model, args.reference, args.output_dir, config=config)
    last = result["iterations"][-1]
    angles = last.get("angle_max_abs_dp_per_deg")
    print(
        f"iteration {last['iteration']}: max |Δg| {last['max_abs_dg']:.3f}, pressure "
        f"{last['pressure_bar']:.0f} ± {last['pressure_error_bar']:.0f} bar (reference "
        f"{last['reference_pressure_bar']:.0f})"
        + ("" if angles is None else f", angle max |Δp| {angles:.4f}/deg")
        + "; "
        + ("converged" if result["converged"] else "NOT converged")
    )
    print(f"refined model: {result['model']} (table: {args.output_dir}/iterations.csv)")
    return 0 if result["converged"] else 3
