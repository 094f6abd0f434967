"""One-site CG water: pair, pair + three-body and neural models against the mapped SPC/E liquid.

From an all-atom SPC/E reference (``ase-cg reference water``) and the one-bead mapping
(``data/water_mapping.json``), on the same frames and pair cutoff:

* ``pair``: pair splines fitted by force matching;
* ``pair + three-body``: pair splines and a Stillinger–Weber-type angular term
  (:class:`~ase_cg.potentials.ThreeBodySpline`, mW's range and screening) fitted together;
* any further models given with ``--model NAME=PATH`` (e.g. a neural model trained on top of the
  pair model, or a refined one).

Each model runs NVT in LAMMPS at the reference volume and temperature (Nosé–Hoover, 2 fs, from
the reference's last frame) and is compared with ``ase_cg.analysis.compare``: RDF max |Δg|, the
O–O–O neighbour-angle distribution within the first shell (max |Δp| per degree, and the same
difference between the reference's two halves: its noise), the tetrahedral order q (mean and
block error), the NVT pressure, plus the held-out force residual of the fit (fraction of
variance unexplained). Prints a markdown table and writes ``--output`` (JSON) and the compare
folders (plots) under ``--work``.

Usage::

    python bench/bench_water.py --reference water_aa.h5 --work /tmp/water_bench \\
        --output bench/results/water.json [--model neural=/tmp/water_neural/model.pt]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _cg_runs import report_header, write_json

REPO = Path(__file__).resolve().parents[1]
#: Å, pair range of every fitted model (g(r) of SPC/E is flat to ±0.02 beyond ~9 Å).
PAIR_CUTOFF = 9.0


def fit(reference: Path, mapping, terms: tuple[str, ...], temperature: float, output: Path):
    """Force-matched classical model of ``terms``; returns (path, held-out FVU)."""
    from ase_cg.fitting import ClassicalConfig, fit_classical
    from ase_cg.model import save_model

    config = ClassicalConfig(pair_cutoff=PAIR_CUTOFF, terms=terms, temperature=temperature)
    model, report = fit_classical(reference, mapping, config=config, progress=False)
    save_model(model, output)
    return output, report["validation"]["all"]["fraction_unexplained"]


def nvt(model: Path, reference: Path, output: Path, temperature: float, steps: int) -> float:
    """Run NVT in LAMMPS; mean pressure (bar) of the last two thirds."""
    from ase_cg.pipeline import simulate
    from lammps_interface.run import read_thermo

    simulate(model, engine="lammps", start=reference, output=output, ensemble="nvt",
             temperature=temperature, time_step_fs=2.0, steps=steps, interval=100, seed=11,
             progress=False)  # fmt: skip
    thermo = read_thermo(output.with_name(f"{output.stem}_lammps") / "log.lammps")
    keep = len(thermo["pressure"]) // 3
    return float(np.mean(thermo["pressure"][keep:]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="all-atom SPC/E H5MD")
    parser.add_argument("--mapping", type=Path, default=REPO / "data" / "water_mapping.json")
    parser.add_argument("--work", type=Path, required=True, help="folder of models and runs")
    parser.add_argument("--steps", type=int, default=25000, help="NVT steps of 2 fs per model")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a further model to run and compare")  # fmt: skip
    parser.add_argument("--output", type=Path, required=True, help="JSON record written")
    args = parser.parse_args(argv)

    from ase_cg.analysis import compare
    from ase_cg.mapping import CGMapping

    mapping = CGMapping.load(args.mapping)
    args.work.mkdir(parents=True, exist_ok=True)
    models: dict[str, tuple[Path, float | None]] = {}
    for name, terms in (("pair", ("pair",)), ("pair + three-body", ("pair", "threebody"))):
        started = time.perf_counter()
        path = args.work / f"{name.replace(' ', '').replace('+', '_')}.pt"
        models[name] = fit(args.reference, mapping, terms, args.temperature, path)
        print(f"fitted {name} in {time.perf_counter() - started:.0f} s", flush=True)
    for item in args.model:
        name, _, path = item.partition("=")
        models[name] = (Path(path), None)

    rows = []
    for name, (path, fvu) in models.items():
        slug = name.replace(" ", "").replace("+", "_")
        run = args.work / f"nvt_{slug}.h5"
        started = time.perf_counter()
        pressure = nvt(path, args.reference, run, args.temperature, args.steps)
        seconds = time.perf_counter() - started
        metrics = compare(args.reference, run, mapping=mapping,
                          output_dir=args.work / f"compare_{slug}")  # fmt: skip
        order = metrics["local_order"]
        rows.append({
            "model": name,
            "path": str(path),
            "fraction_unexplained_validation": fvu,
            "rdf_max_abs_dg": max(v["max_abs_difference"] for v in metrics["rdf"].values()),
            "angle_max_abs_difference_per_degree": order["angle_max_abs_difference"],
            "angle_halves_noise_reference": order["halves_angle_max_abs_difference_reference"],
            "angle_jensen_shannon": order["angle_jensen_shannon"],
            "mean_q_reference": order["mean_q_reference"],
            "mean_q_cg": order["mean_q_cg"],
            "mean_q_error_cg": order.get("mean_q_error_cg"),
            "mean_q_difference": order["mean_q_difference"],
            "nvt_pressure_bar": pressure,
            "md_seconds": seconds,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    reference_pressure = metrics.get("pressure", {}).get("reference_bar")
    record = {
        **report_header(),
        "reference": str(args.reference),
        "pair_cutoff_A": PAIR_CUTOFF,
        "nvt_steps": args.steps,
        "reference_pressure_bar": reference_pressure,
        "models": rows,
    }
    write_json(args.output, json.dumps(record, indent=1) + "\n")
    print()
    print("| model | held-out FVU | RDF max abs Δg | angle max abs Δp (1/deg) | mean q (AA "
          f"{rows[0]['mean_q_reference']:.3f}) | NVT pressure (bar) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        fvu = row["fraction_unexplained_validation"]
        print(f"| {row['model']} | {'—' if fvu is None else f'{fvu:.3f}'} | "
              f"{row['rdf_max_abs_dg']:.3f} | {row['angle_max_abs_difference_per_degree']:.4f} "
              f"| {row['mean_q_cg']:.3f} | {row['nvt_pressure_bar']:.0f} |")  # fmt: skip
    print(f"reference angle noise (halves): {rows[0]['angle_halves_noise_reference']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
