"""``ase-cg simulate``: CG molecular dynamics of a trained model."""

from __future__ import annotations

import argparse
import sys
import warnings

from ase_cg import _args
from ase_cg.commands import (
    add_ensemble_options,
    add_md_options,
    add_repeat_option,
    add_start_options,
)
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
    add_start_options(parser)
    add_repeat_option(
        parser, "replicate the start structure NX×NY×NZ times (new molecule ids per copy)"
    )
    parser.add_argument(
        "-o", "--output", default="cg_md.h5", type=_args.output_file, help="H5MD trajectory written"
    )
    add_ensemble_options(
        parser,
        "ASE engine: nvt --thermostat, nve velocity Verlet, npt isotropic MTK (Berendsen with "
        "--constrain-bonds); LAMMPS engine: fix nvt / nve / npt iso (Nosé–Hoover)",
    )
    add_md_options(parser, "temperature, K (default: the model's training temperature)")
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
