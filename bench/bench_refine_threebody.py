"""Benchmark: block-alternating refinement of a model with a three-body term.

``refine`` corrects pair structure and pressure and keeps the three-body term fixed; applying
the angular step (:func:`ase_cg.fitting.threebody_correction`) together with the pair steps in
every iteration makes one-site water's RDF and pressure oscillate (BENCHMARKS.md). This script
measures the block-alternating schedule instead: per cycle, one damped angular step on the
frames of the last run, then ``--iterations`` pair-only ``refine`` iterations from the result,
and prints the angle error before each angular step and the RDF error and NVT pressure of every
refine iteration. The last model is ``DIR/cycleN/model.pt``; ``bench/bench_refine.py
--refine-dir DIR/cycleN --which after`` runs the NPT check on it.

Usage::

    .venv/bin/python bench/bench_refine_threebody.py --model REFINED.pt --run LAST_RUN.h5 \\
        --reference data/water_aa.h5 --work /tmp/w4 --cycles 3 --iterations 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model with a three-body term")
    parser.add_argument("--run", type=Path, required=True, help="an NVT run of --model (H5MD)")
    parser.add_argument("--reference", type=Path, required=True, help="all-atom reference")
    parser.add_argument("--work", type=Path, required=True, help="folder of the cycles")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=3, help="refine iterations per cycle")
    parser.add_argument("--steps", type=int, default=5000, help="MD steps per refine iteration")
    parser.add_argument("--damping", type=float, default=0.5, help="α of the angular step")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    args = parser.parse_args(argv)

    from ase_cg.fitting import threebody_correction
    from ase_cg.io import read_h5md
    from ase_cg.model import load_model
    from ase_cg.refine import RefineConfig, refine

    model, run = load_model(args.model), args.run
    record = {"arguments": {k: str(v) for k, v in vars(args).items()}, "cycles": []}
    for cycle in range(args.cycles):
        frames = read_h5md(run)
        frames = frames[len(frames) // 5 :]  # the refine runs' equilibration fraction
        model = threebody_correction(
            model, args.reference, frames, temperature=args.temperature, damping=args.damping
        )
        before = model.provenance["threebody_correction"]["max_abs_difference_before_per_deg"]
        folder = args.work / f"cycle{cycle}"
        config = RefineConfig(steps=args.steps, max_iterations=args.iterations,
                              temperature=args.temperature)  # fmt: skip
        rows = refine(model, args.reference, folder, config=config, progress=False)["iterations"]
        record["cycles"].append({
            "angle_max_abs_dp_per_deg_before_step": before,
            "rdf_max_abs_dg": [row["max_abs_dg"] for row in rows],
            "nvt_pressure_bar": [row["pressure_bar"] for row in rows],
        })  # fmt: skip
        print(f"cycle {cycle}: angle max |Δp| before the step {max(before.values()):.4f}/deg; "
              "refine RDF max |Δg| " + ", ".join(f"{row['max_abs_dg']:.3f}" for row in rows)
              + "; NVT pressure " + ", ".join(f"{row['pressure_bar']:.0f}" for row in rows)
              + " bar", flush=True)  # fmt: skip
        last = folder / f"iter_{rows[-1]['iteration']:02d}"
        model, run = load_model(last / "model.pt"), last / "run.h5"
    (args.work / "cycles.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
