"""``ase-cg reference``: simulate an all-atom reference liquid with LAMMPS and write H5MD."""

from __future__ import annotations

import argparse

from ase_cg import _args

NAME = "reference"
HELP = "Simulate an all-atom OPLS-AA liquid (e.g. ethane) with LAMMPS; write H5MD."


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg reference``."""
    parser.add_argument(
        "molecule",
        nargs="?",
        default="ethane",
        help="molecule template name (ethane, propane, water)",
    )
    parser.add_argument(
        "-o", "--output", default=None, type=_args.output_file, help="H5MD file to write"
    )
    parser.add_argument(
        "--add-pressure",
        metavar="H5MD",
        default=None,
        help="instead of simulating: evaluate the pressure (kinetic + virial, LAMMPS run 0 with "
        "the molecule's force field) of every frame of this existing all-atom file and store "
        "it in its observables/pressure and observables/pressure_tensor (bar)",
    )
    parser.add_argument(
        "--molecules",
        type=_args.positive_int,
        default=216,
        help="number of molecules in the cubic box",
    )
    parser.add_argument(
        "--temperature",
        type=_args.positive_float,
        default=None,
        help="temperature, K; None: the template's liquid state point (ethane 180 K, "
        "propane 231 K)",
    )
    parser.add_argument(
        "--density",
        type=_args.positive_float,
        default=None,
        help="packing and NVT density, g/cm³; None: the template's (ethane 0.5495, "
        "propane 0.58 g/cm³)",
    )
    parser.add_argument(
        "--npt",
        action="store_true",
        help="add an NPT equilibration and run production at its mean volume",
    )
    parser.add_argument(
        "--pressure", type=_args.finite_float, default=1.0, help="NPT pressure, atm"
    )
    parser.add_argument(
        "--equilibration-ps",
        type=_args.nonnegative_float,
        default=20.0,
        help="NVT (and NPT) equilibration, ps",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--production-ps",
        type=_args.positive_float,
        default=None,
        help="production time, ps; None: 20 ps unless --frames is given",
    )
    length.add_argument(
        "--frames",
        type=_args.positive_int,
        default=None,
        help="frames to store instead of --production-ps (production = frames x stride x "
        "time step)",
    )
    parser.add_argument(
        "--stride", type=_args.positive_int, default=100, help="time steps between frames"
    )
    parser.add_argument(
        "--time-step",
        type=_args.positive_float,
        default=None,
        help="time step, fs; None: the molecule's (1 fs; 2 fs for rigid water)",
    )
    parser.add_argument("--seed", type=_args.nonnegative_int, default=0, help="random seed")
    parser.add_argument(
        "--ranks",
        type=_args.positive_int,
        default=1,
        help="MPI ranks (> 1 runs LAMMPS under mpiexec)",
    )
    parser.add_argument(
        "--lammps-log", default=None, type=_args.output_file, help="LAMMPS log file; None: no log"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run :func:`ase_cg.reference.generate_reference` with the parsed arguments."""
    from ase_cg.reference import MOLECULES, generate_reference

    if args.add_pressure is not None:
        from ase_cg.reference.pressure import add_reference_pressure

        if args.output is not None:
            raise ValueError("--add-pressure writes into the given file; drop -o/--output")
        pressures = add_reference_pressure(args.add_pressure, args.molecule)
        print(
            f"{args.add_pressure}: pressure of {len(pressures)} frames stored, mean "
            f"{pressures.mean():.1f} bar (frame σ {pressures.std():.0f} bar)"
        )
        return 0
    if args.output is None:
        raise ValueError("give -o/--output (the H5MD file to write), or --add-pressure FILE")
    if args.frames is not None:
        time_step = args.time_step
        if time_step is None:
            # an unknown name gets time step 1 here and generate_reference's error below
            time_step = MOLECULES[args.molecule].time_step_fs if args.molecule in MOLECULES else 1.0
        production_ps = args.frames * args.stride * time_step / 1000.0
    else:
        production_ps = 20.0 if args.production_ps is None else args.production_ps
    path = generate_reference(
        args.molecule,
        output=args.output,
        n_molecules=args.molecules,
        temperature=args.temperature,
        density=args.density,
        npt=args.npt,
        pressure=args.pressure,
        equilibration_ps=args.equilibration_ps,
        production_ps=production_ps,
        stride=args.stride,
        time_step_fs=args.time_step,
        seed=args.seed,
        ranks=args.ranks,
        lammps_log=args.lammps_log,
    )
    print(path)
    return 0
