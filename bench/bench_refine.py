"""Benchmark: `ase-cg refine` on a shipped ethane model, before/after structure, pressure, density.

Runs :func:`ase_cg.refine.refine` from ``--model`` against the all-atom reference (or reuses a
finished ``--refine-dir``), then for the starting and the refined model

* the NVT pressure and RDF max |Δg| of the first and the last refine iteration,
* an NPT run at the reference pressure (LAMMPS, isotropic Nosé–Hoover, from the reference's last
  frame): mean density of the last two thirds and its block error, against the all-atom density,
* ``ase-cg compare`` of the NPT run with the mapped reference: RDF max |Δg|, bond-length
  Jensen–Shannon divergence, diffusion ratio,

and writes one JSON record (``--output``).

Usage::

    .venv/bin/python bench/bench_refine.py --model data/ethane_classical_force_matched.pt \\
        --refine-dir /tmp/refine_classical --output bench/results/refine_ethane_classical.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def npt(model, reference, output, pressure, temperature, steps, seed):
    """NPT density (g/cm³, block error) and pressure (bar) of the last two thirds of a run."""
    from ase_cg.pipeline import simulate
    from lammps_interface.run import read_thermo

    simulate(model, engine="lammps", start=reference, output=output, ensemble="npt",
             pressure=pressure, temperature=temperature, time_step_fs=2.0, steps=steps,
             interval=100, seed=seed, progress=False)  # fmt: skip
    thermo = read_thermo(output.with_name(f"{output.stem}_lammps") / "log.lammps")
    keep = len(thermo["density"]) // 3
    density = thermo["density"][keep:]
    blocks = [block.mean() for block in np.array_split(density, 5)]
    return {
        "density_g_cm3": float(density.mean()),
        "density_error_g_cm3": float(np.std(blocks, ddof=1) / np.sqrt(5)),
        "pressure_bar": float(thermo["pressure"][keep:].mean()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=REPO / "data" / "ethane_classical_force_matched.pt"
    )
    parser.add_argument("--reference", type=Path, default=REPO / "data" / "ethane_aa.h5")
    parser.add_argument("--mapping", type=Path, default=REPO / "data" / "ethane_mapping.json")
    parser.add_argument("--refine-dir", type=Path, required=True, help="refine folder (resumed)")
    parser.add_argument("--steps", type=int, default=5000, help="refine MD steps per iteration")
    parser.add_argument("--max-iterations", type=int, default=8, help="refine iterations at most")
    parser.add_argument("--npt-steps", type=int, default=30000, help="NPT steps (2 fs)")
    parser.add_argument(
        "--which", nargs="+", choices=("before", "after"), default=["before", "after"],
        help="NPT runs to make (two invocations with one each can run side by side)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, required=True, help="JSON record written")
    args = parser.parse_args(argv)

    from ase_cg.analysis import compare
    from ase_cg.refine import RefineConfig, refine

    started = time.perf_counter()
    config = RefineConfig(steps=args.steps, max_iterations=args.max_iterations)
    result = refine(args.model, args.reference, args.refine_dir, config=config, progress=False)
    refine_seconds = time.perf_counter() - started
    rows = result["iterations"]
    last = rows[-1]
    temperature, pressure = last["temperature_target_K"], last["reference_pressure_bar"]
    record = {
        "model": str(args.model),
        "reference": str(args.reference),
        "refine": {
            "converged": result["converged"],
            "iterations": len(rows),
            "wall_s": refine_seconds,
            "steps_per_iteration": args.steps,
            "nvt_pressure_bar": [row["pressure_bar"] for row in rows],
            "nvt_pressure_error_bar": [row["pressure_error_bar"] for row in rows],
            "max_abs_dg": [row["max_abs_dg"] for row in rows],
            "reference_pressure_bar": pressure,
            "reference_density_g_cm3": last["reference_density_g_cm3"],
        },
    }
    for label, model in (("before", args.model), ("after", result["model"])):
        if label not in args.which:
            continue
        output = args.refine_dir / f"npt_{label}.h5"
        state = npt(model, args.reference, output, pressure, temperature, args.npt_steps, 7)
        state["density_relative_difference"] = (
            state["density_g_cm3"] / last["reference_density_g_cm3"] - 1.0
        )
        metrics = compare(args.reference, output, mapping=args.mapping,
                          output_dir=args.refine_dir / f"compare_{label}")  # fmt: skip
        state["npt_rdf_max_abs_dg"] = max(v["max_abs_difference"] for v in metrics["rdf"].values())
        bonds = metrics["bonds"].items()
        state["npt_bond_js_nats"] = {key: value.get("jensen_shannon") for key, value in bonds}
        state["diffusion_ratio"] = metrics["diffusion"].get("ratio")
        record[f"npt_{label}"] = state
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
