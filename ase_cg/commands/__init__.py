"""Subcommands of ``ase-cg``: one module each.

Every module here defines ``NAME`` (the subcommand), ``HELP`` (one line) and
``register(parser)``, which adds the arguments to its ``argparse`` sub-parser and sets
``parser.set_defaults(func=...)``; ``func(args)`` calls the one public library function
of the same name and returns an exit code.

``ase-cg`` imports every module here to build its parser, so ``ase-cg --help`` costs what
their top-level imports cost: the standard library, :mod:`ase_cg._args`, :mod:`ase_cg._paths`
and :mod:`ase_cg.errors` (about 0.1 s in all). The library modules a subcommand calls pull in
torch, h5py, ASE or MDAnalysis (seconds), so each ``func`` imports them itself, when it runs;
these are the package's only function-level imports of its own modules besides
``lammps_interface.export``.

The ``add_*`` functions below add the groups of options that several subcommands share.
"""

from __future__ import annotations

import argparse

from ase_cg import _args


def add_trajectory_options(parser: argparse.ArgumentParser, what: str = "the input") -> None:
    """Add ``--topology`` and ``--lammps-units``: how to read a non-H5MD trajectory."""
    parser.add_argument(
        "--topology",
        default=None,
        metavar="FILE",
        help=f"topology of {what} when it is not H5MD, read with MDAnalysis (GROMACS .tpr with "
        ".trr/.xtc, LAMMPS data file with a dump, .gro/.pdb with .dcd): elements, masses, bonds "
        "and molecules come from it, units are converted to Å and eV/Å",
    )
    parser.add_argument(
        "--lammps-units",
        default=None,
        choices=("real", "metal"),
        help="LAMMPS units style of a dump read with --topology (dumps carry no units)",
    )


def trajectory_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`ase_cg.trajectory.open_trajectory` from those options."""
    options = {"topology": args.topology}
    if args.lammps_units is not None:
        options["lammps_units"] = args.lammps_units
    return options


def add_output_folder(
    parser: argparse.ArgumentParser, help: str, *, flag: str = "--output-dir", default=None
) -> None:
    """Add ``-o``/``flag``: a folder to write into, required unless it has a ``default``."""
    parser.add_argument(
        "-o",
        flag,
        required=default is None,
        default=default,
        type=_args.output_folder,
        help=help,
    )


def add_start_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--start``, ``--frame``, ``--n-molecules``, ``--density``: an MD run's start."""
    parser.add_argument(
        "--start",
        default=None,
        help="start structure: H5MD (.h5) or any ASE-readable file, CG or all-atom (mapped "
        "with the model's mapping); none: build a box (--n-molecules, --density)",
    )
    parser.add_argument("--frame", type=int, default=-1, help="frame of --start (-1: the last)")
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


def add_repeat_option(parser: argparse.ArgumentParser, help: str) -> None:
    """Add ``--repeat NX NY NZ``: replicate the start structure."""
    parser.add_argument(
        "--repeat",
        type=_args.positive_int,
        nargs=3,
        default=(1, 1, 1),
        metavar=("NX", "NY", "NZ"),
        help=help,
    )


def add_md_options(
    parser: argparse.ArgumentParser,
    temperature_help: str,
    *,
    time_step_help: str = "time step, fs",
    steps_help: str = "MD steps",
) -> None:
    """Add ``--temperature`` (default None), ``--time-step`` (2 fs), ``--steps`` (10000)."""
    parser.add_argument(
        "--temperature", type=_args.positive_float, default=None, help=temperature_help
    )
    parser.add_argument("--time-step", type=_args.positive_float, default=2.0, help=time_step_help)
    parser.add_argument("--steps", type=_args.positive_int, default=10000, help=steps_help)


def add_ensemble_options(parser: argparse.ArgumentParser, ensemble_help: str) -> None:
    """Add ``--ensemble``, ``--pressure`` (NPT) and ``--constrain-bonds`` of an MD run."""
    parser.add_argument(
        "--ensemble", choices=["nvt", "nve", "npt"], default="nvt", help=ensemble_help
    )
    parser.add_argument(
        "--pressure", type=_args.finite_float, default=1.01325, help="NPT pressure, bar"
    )
    parser.add_argument(
        "--constrain-bonds",
        action="store_true",
        help="hold the CG bonds at fixed lengths (ASE: RATTLE; LAMMPS: SHAKE, RATTLE with "
        "nve), allowing a larger time step",
    )


def add_force_map_option(parser: argparse.ArgumentParser, default: str, help: str) -> None:
    """Add ``--force-map {bead_sum,pseudo_inverse}`` (:data:`ase_cg.mapping.FORCE_MAPS`)."""
    parser.add_argument(
        "--force-map", choices=("bead_sum", "pseudo_inverse"), default=default, help=help
    )


def add_no_progress_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-progress``."""
    parser.add_argument(
        "--no-progress", action="store_true", help="hide progress bars (shown on a terminal)"
    )
