"""``ase-cg simulate``: CG molecular dynamics of a trained model."""

from __future__ import annotations

import argparse
import sys
import warnings

from ase_cg import _args
from ase_cg.errors import InputError

NAME = "simulate"
HELP = (
    "Run CG molecular dynamics with a model file, from a start structure or a new box of "
    "molecules, and write an H5MD trajectory."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg simulate``."""
    parser.add_argument("model", help="model file (ase-cg train output, or data/ethane_*.pt)")
    parser.add_argument(
        "--engine",
        choices=["ase", "lammps"],
        default="ase",
        help="MD engine: 'ase' (ASE integrators with CGCalculator; all ensembles, bond "
        "constraints, blow-up checks) or 'lammps' (model exported to <output stem>_lammps/ as "
        "tables + the cgtorch plugin; NVT/NPT are Nosé–Hoover there, --thermostat is unused; "
        "--constrain-bonds uses SHAKE, RATTLE with nve)",
    )
    parser.add_argument(
        "--ranks",
        type=_args.positive_int,
        default=1,
        help="MPI ranks of the LAMMPS engine (mpiexec)",
    )
    parser.add_argument(
        "--start",
        default=None,
        help="start structure: H5MD (.h5) or any ASE-readable file, CG or all-atom (mapped "
        "with the model's mapping); none: build a box (--n-molecules, --density)",
    )
    parser.add_argument("--frame", type=int, default=-1, help="frame of --start (-1: the last)")
    parser.add_argument(
        "--repeat",
        type=_args.positive_int,
        nargs=3,
        default=(1, 1, 1),
        metavar=("N1", "N2", "N3"),
        help="replicate the start structure N1×N2×N3 times (new molecule ids per copy)",
    )
    parser.add_argument(
        "--n-molecules",
        type=_args.positive_int,
        default=None,
        help="molecules in a new box (no --start)",
    )
    parser.add_argument(
        "--density",
        type=_args.positive_float,
        default=None,
        help="density of a new box, g/cm³ (no --start; default: the model's training density)",
    )
    parser.add_argument(
        "-o", "--output", default="cg_md.h5", type=_args.output_file, help="H5MD trajectory written"
    )
    parser.add_argument(
        "--ensemble",
        choices=["nvt", "nve", "npt"],
        default="nvt",
        help="ASE engine: nvt --thermostat, nve velocity Verlet, npt isotropic MTK (Berendsen with "
        "--constrain-bonds); LAMMPS engine: fix nvt / nve / npt iso (Nosé–Hoover)",
    )
    parser.add_argument(
        "--temperature",
        type=_args.positive_float,
        default=None,
        help="temperature, K (default: the model's training temperature)",
    )
    parser.add_argument(
        "--pressure", type=_args.finite_float, default=1.01325, help="NPT pressure, bar"
    )
    parser.add_argument("--time-step", type=_args.positive_float, default=2.0, help="time step, fs")
    parser.add_argument("--steps", type=_args.positive_int, default=10000, help="MD steps")
    parser.add_argument(
        "--thermostat",
        choices=["bussi", "langevin"],  # ase_cg.md.THERMOSTATS (not imported: torch is slow)
        default="bussi",
        help="ASE engine NVT: bussi (stochastic velocity rescaling, keeps the dynamics and "
        "diffusion) or langevin (slows diffusion)",
    )
    parser.add_argument(
        "--friction",
        type=_args.nonnegative_float,
        default=0.01,
        help="Langevin friction, 1/fs (langevin only)",
    )
    parser.add_argument(
        "--interval", type=_args.positive_int, default=100, help="steps between trajectory frames"
    )
    parser.add_argument(
        "--constrain-bonds",
        action="store_true",
        help="hold CG bonds at fixed lengths (RATTLE), allowing a larger time step",
    )
    parser.add_argument(
        "--seed", type=_args.nonnegative_int, default=None, help="random seed (box, velocities)"
    )
    parser.add_argument(
        "--device", default="cpu", type=_args.torch_device, help="torch device of the model"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="ASE engine: compile the neural terms with torch.compile (about 30 s once, then "
        "about 2x faster SchNet calls on CPU)",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default=None,
        help="precision of the model evaluation (default: the model's)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run whose (incomplete) trajectory is -o, from its last "
        "frame (positions, velocities, box), up to --steps steps in all; give the options of "
        "the first run again (no --start, --n-molecules, --density)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call :func:`ase_cg.pipeline.simulate` and print its summary."""
    from ase_cg.md import MDBlowUpError
    from ase_cg.pipeline import simulate
    from lammps_interface.run import LammpsRunError

    try:
        summary = simulate(
            args.model,
            engine=args.engine,
            start=args.start,
            frame=args.frame,
            n_molecules=args.n_molecules,
            density=args.density,
            output=args.output,
            ensemble=args.ensemble,
            temperature=args.temperature,
            pressure=args.pressure,
            time_step_fs=args.time_step,
            steps=args.steps,
            thermostat=args.thermostat,
            friction=args.friction,
            interval=args.interval,
            constrain_bonds=args.constrain_bonds,
            seed=args.seed,
            device=args.device,
            dtype=args.dtype,
            compile=args.compile,
            ranks=args.ranks,
            repeat=tuple(args.repeat),
            resume=args.resume,
        )
    except (MDBlowUpError, LammpsRunError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        print(f"ase-cg simulate: error: {'; '.join(lines)}", file=sys.stderr)
        summary = getattr(error, "summary", None)
        if summary is not None and summary.n_frames:
            print(
                f"{summary.n_frames} frames before the failure are in {args.output}",
                file=sys.stderr,
            )
        return 3
    except KeyboardInterrupt:
        print(f"ase-cg simulate: {_saved(args)}", file=sys.stderr)
        raise
    print(summary)
    return 0


def _saved(args: argparse.Namespace) -> str:
    """What an interrupted run left in its output, and how to continue it."""
    from ase_cg.io import H5MDTrajectory, IncompleteTrajectoryWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteTrajectoryWarning)
            with H5MDTrajectory(args.output) as trajectory:
                n_frames, step = trajectory.n_frames, int(trajectory.steps[-1])
    except (InputError, OSError):
        return f"stopped before the first frame; nothing was written to {args.output}"
    return (
        f"{n_frames} frames up to step {step} are in {args.output} (marked incomplete); "
        f"continue the run with: ase-cg simulate {args.model} -o {args.output} --steps "
        f"{args.steps} --resume (and the same options)"
    )
