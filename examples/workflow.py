"""The CG pipeline as plain file-to-file steps, for a workflow manager (or a Makefile).

    .venv/bin/python examples/workflow.py --workdir wf                      # shipped reference
    .venv/bin/python examples/workflow.py --workdir wf --generate 64 --production-ps 5

Each step is a function that reads its inputs from files and writes its outputs to files, so
a workflow manager (AiiDA, Snakemake, Parsl, FireWorks, …) can run each one as its own task
and cache its results::

    reference()  →  aa.h5                 all-atom H5MD (positions, forces, velocities, box)
    map_step()   →  cg.h5                 mapped beads and bead-sum forces
    train_step() →  <kind>/model.pt       classical fit or neural training by force matching
    md_step()    →  <kind>_md.h5          CG MD (ASE or LAMMPS)
    compare_step() → report_<kind>/       RDF, bonds, density, diffusion vs the reference
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase_cg import shipped_data


def reference(output: Path, n_molecules: int, production_ps: float) -> Path:
    """Generate an all-atom ethane reference with LAMMPS (OPLS-AA, 180 K)."""
    from ase_cg.reference import generate_reference

    return generate_reference(
        "ethane", output=output, n_molecules=n_molecules, equilibration_ps=2.0,
        production_ps=production_ps, stride=20, seed=1, progress=False,
    )  # fmt: skip


def map_step(aa: Path, mapping: Path, output: Path) -> Path:
    """Map an all-atom trajectory to beads (positions, bead-sum forces, velocities)."""
    from ase_cg.mapping import CGMapping, map_trajectory

    map_trajectory(aa, output, CGMapping.load(mapping), progress=False)
    return output


def train_step(cg: Path, mapping: Path, output_dir: Path, kind: str, config: Path | None) -> Path:
    """Fit (classical) or train (neural) a CG potential; returns the model file."""
    from ase_cg.pipeline import train_model

    return train_model(cg, output_dir, kind=kind, mapping_path=mapping, config_path=config)


def md_step(model: Path, start: Path, output: Path, steps: int, engine: str) -> Path:
    """CG MD at the reference temperature from the last mapped frame; returns the trajectory."""
    from ase_cg.pipeline import simulate

    summary = simulate(
        model, engine=engine, start=start, output=output, temperature=180.0, time_step_fs=2.0,
        steps=steps, interval=max(1, steps // 50), seed=1, progress=False,
    )  # fmt: skip
    print(f"  {output.name}: {summary.ns_per_day:.3g} ns/day, T = {summary.temperature_K:.0f} K")
    return output


def compare_step(reference_cg: Path, cg_run: Path, output_dir: Path) -> dict:
    """Compare a CG run with the mapped reference; writes ``output_dir/index.md``."""
    from ase_cg.analysis import compare

    return compare(reference_cg, cg_run, output_dir=output_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="workflow", help="folder of every step's files")
    parser.add_argument(
        "--reference",
        default=shipped_data("ethane_aa.h5"),
        help="all-atom H5MD (unless --generate)",
    )
    parser.add_argument(
        "--generate", type=int, metavar="N", help="generate a reference of N molecules instead"
    )
    parser.add_argument("--production-ps", type=float, default=5.0, help="with --generate, ps")
    parser.add_argument(
        "--mapping", default=shipped_data("ethane_mapping.json"), help="mapping JSON"
    )
    parser.add_argument("--kind", choices=("classical", "neural"), default="classical")
    parser.add_argument("--config", default=None, help="training config (YAML, see README)")
    parser.add_argument("--steps", type=int, default=2000, help="CG MD steps of 2 fs")
    parser.add_argument("--engine", choices=("ase", "lammps"), default="ase", help="MD engine")
    args = parser.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    aa = Path(args.reference)
    if args.generate:
        aa = reference(work / "aa.h5", args.generate, args.production_ps)
    print(f"reference: {aa}")
    cg = map_step(aa, Path(args.mapping), work / "cg.h5")
    print(f"mapped: {cg}")
    model = train_step(cg, Path(args.mapping), work / args.kind, args.kind, args.config)
    print(f"model: {model}")
    run = md_step(model, cg, work / f"{args.kind}_md.h5", args.steps, args.engine)
    metrics = compare_step(cg, run, work / f"report_{args.kind}")
    for pair, values in metrics["rdf"].items():
        print(f"  RDF {pair}: max |Δg| = {values['max_abs_difference']:.3f}")
    print(f"report: {work / f'report_{args.kind}' / 'index.md'}")


if __name__ == "__main__":
    main()
