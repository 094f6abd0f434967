"""``ase-cg compare``: structure and dynamics of a CG run vs its (mapped) all-atom reference."""

from __future__ import annotations

import argparse

from ase_cg import _args
from ase_cg._paths import check_output_folder
from ase_cg.commands import add_output_folder, add_trajectory_options, trajectory_options

NAME = "compare"
HELP = (
    "Compare a CG trajectory with the all-atom reference (RDFs, bonded distributions, density, "
    "pressure, diffusion; neighbour angles and tetrahedral order for one-bead molecules) and "
    "write a Markdown + PNG report."
)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``ase-cg compare``."""
    parser.add_argument(
        "reference", help="reference H5MD trajectory: all-atom (give --mapping) or already CG"
    )
    parser.add_argument("cg", help="CG H5MD trajectory (ase-cg simulate output)")
    add_trajectory_options(parser, "the reference")
    parser.add_argument(
        "--mapping",
        default=None,
        help="mapping JSON file (e.g. data/ethane_mapping.json); maps the reference frame by "
        "frame and gives both sides' bonds, angles and dihedrals; without it both inputs must "
        "be CG (topology from the files' bonds)",
    )
    add_output_folder(
        parser,
        "report folder: index.md, index.html (self-contained), metrics.json and PNG figures "
        "(created; files replaced)",
        default="report",
    )
    parser.add_argument(
        "--r-max",
        type=_args.positive_float,
        default=None,
        help="largest RDF distance, Å; None: min(15 Å, 98 %% of half the shortest box width)",
    )
    parser.add_argument(
        "--n-bins", type=_args.positive_int, default=None, help="RDF bins; None: one per 0.1 Å"
    )
    for kind, bins, what in (
        ("bond", 80, "bond-length distributions"),
        ("angle", 90, "bond-angle distributions"),
        ("dihedral", 72, "dihedral distributions (−180°..180°)"),
    ):
        parser.add_argument(
            f"--{kind}-bins", type=_args.positive_int, default=bins, help=f"bins of the {what}"
        )
    parser.add_argument(
        "--shell-cutoff",
        type=_args.positive_float,
        default=None,
        help="first-shell radius of the neighbour angles of one-bead molecules, Å; None: "
        "3.18 Å, water's O–O shell (give the first minimum of g(r) for other liquids)",
    )
    parser.add_argument(
        "--fit-range",
        type=_args.nonnegative_float,
        nargs=2,
        metavar=("T0", "T1"),
        default=None,
        help="lag times of the diffusion fit MSD = 6Dt + c, fs; None: 10 %%–50 %% of each "
        "trajectory's own time span",
    )
    parser.add_argument("--title", default="CG vs all-atom comparison", help="title of index.md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Call :func:`ase_cg.analysis.compare` and print the headline numbers."""
    from ase_cg.analysis import compare
    from ase_cg.trajectory import opened

    check_output_folder(
        args.output_dir,
        [args.reference, args.cg, args.mapping],
        ["index.md", "metrics.json"],
        option="--output-dir",
    )
    with opened(args.reference, **trajectory_options(args)) as reference:
        metrics = compare(
            reference,
            args.cg,
            mapping=args.mapping,
            output_dir=args.output_dir,
            r_max=args.r_max,
            n_bins=args.n_bins,
            bond_bins=args.bond_bins,
            angle_bins=args.angle_bins,
            dihedral_bins=args.dihedral_bins,
            shell_cutoff=args.shell_cutoff,
            fit_range_fs=tuple(args.fit_range) if args.fit_range else None,
            title=args.title,
        )
    lines = [f"report written to {args.output_dir}/index.md"]
    for key, values in metrics["rdf"].items():
        lines.append(f"  RDF {key}: max |Δg| = {values['max_abs_difference']:.4f}")
    for kind in ("bonds", "angles", "dihedrals"):
        for key, values in metrics[kind].items():
            if "jensen_shannon" in values:
                lines.append(f"  {kind[:-1]} {key}: JS = {values['jensen_shannon']:.4g} nats")
    density = metrics["density"]
    lines.append(
        f"  density: {density['reference_g_cm3']:.4f} (AA) vs {density['cg_g_cm3']:.4f} (CG) g/cm³"
    )
    order = metrics["local_order"]
    if "skipped" not in order:
        if order["angle_max_abs_difference"] is not None:
            lines.append(
                f"  neighbour angles within {order['shell_cutoff_A']:.3g} Å: max |Δp| = "
                f"{order['angle_max_abs_difference']:.4g} /°"
            )
        lines.append(
            f"  tetrahedral order q: {order['mean_q_reference']:.4f} (AA) vs "
            f"{order['mean_q_cg']:.4f} (CG)"
        )
    pressure = metrics["pressure"]
    if "cg_bar" in pressure:
        lines.append(
            f"  pressure: {pressure['reference_bar']:.0f} ± {pressure['reference_error_bar']:.0f}"
            f" (AA) vs {pressure['cg_bar']:.0f} ± {pressure['cg_error_bar']:.0f} (CG) bar"
        )
    if "ratio" in metrics["diffusion"]:
        diffusion = metrics["diffusion"]
        lines.append(
            f"  D: {diffusion['reference_cm2_s']:.3e} (AA) vs {diffusion['cg_cm2_s']:.3e} (CG) "
            f"cm²/s, ratio {diffusion['ratio']:.3g}"
        )
    print("\n".join(lines))
    return 0
