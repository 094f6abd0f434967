"""Largest stable time step of a CG model with its bonds constrained, from NVE drift and NVT.

For each time step: the shipped model exported with the given settings
(:mod:`_cg_runs`: equilibrated 4 ps at 2 fs), then

* NVE with RATTLE for ``--ps`` ps: the linear drift of the total energy in k_B T per degree of
  freedom per ns (degrees of freedom 3N − bonds − 3);
* NVT (Nosé–Hoover, 100 steps damping) with SHAKE for as long: mean temperature and pressure.

A time step is stable if ``|drift| <= --drift-limit`` and the NVT mean temperature is within
``--temperature-limit`` (relative) of the target; the largest stable one is printed and saved
with the scan in ``bench/results/timestep_<model file name>.json``.

Usage: ``python bench/bench_timestep.py [--model data/ethane_classical.pt] [--molecules 400]
[--time-steps 2 5 10 15 20 25] [--ps 50]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _cg_runs import (
    CLASSICAL,
    TEMPERATURE,
    Case,
    energy_drift,
    load,
    report_header,
    run,
    start_box,
    write_json,
)

RESULTS = Path(__file__).resolve().parent / "results"


def scan(model_path, n_molecules, time_steps, ps, threads, options) -> list[dict]:
    """NVE drift and NVT averages at each time step (see the module docstring)."""
    model = load(model_path)
    atoms = start_box(n_molecules)
    n_bonds = len(model.topology(atoms).bonds)
    dof = 3 * len(atoms) - n_bonds - 3
    rows = []
    for time_step in time_steps:
        steps = int(round(ps * 1000.0 / time_step))
        every = max(1, steps // 200)
        row = {"time_step_fs": time_step, "steps": steps}
        for ensemble in ("nve", "nvt"):
            case = Case(
                f"{ensemble} {time_step} fs",
                str(model_path),
                time_step,
                constrain=True,
                ensemble=ensemble,
                threads=threads,
                export_options=options,
            )
            result = run(case, atoms, steps, thermo=every)
            if "failed" in result:
                row["failed"] = result["failed"]
                break
            thermo = result["thermo"]
            if ensemble == "nve":
                row["drift_kT_per_dof_per_ns"] = energy_drift(thermo, time_step, dof)
                row["nve_temperature_K"] = float(np.mean(thermo["temp"]))
            else:
                row["nvt_temperature_K"] = float(np.mean(thermo["temp"]))
                row["nvt_pressure_atm"] = float(np.mean(thermo["press"]))
                row["ns_per_day"] = result["ns_per_day"]
        rows.append(row)
        print(
            " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            ),
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(CLASSICAL))
    parser.add_argument("--molecules", type=int, default=400)
    parser.add_argument("--time-steps", type=float, nargs="+", default=[2, 5, 10, 15, 20, 25])
    parser.add_argument("--ps", type=float, default=50.0, help="simulated ps per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--drift-limit", type=float, default=0.1, help="k_B T per DOF per ns")
    parser.add_argument("--temperature-limit", type=float, default=0.01, help="relative")
    parser.add_argument("--pair-cutoff", default="auto", help="'auto', Å, or 'model'")
    args = parser.parse_args()
    options = {} if args.pair_cutoff == "model" else {"pair_cutoff": _cutoff(args.pair_cutoff)}
    rows = scan(args.model, args.molecules, args.time_steps, args.ps, args.threads, options)
    stable = [
        r["time_step_fs"]
        for r in rows
        if "failed" not in r
        and abs(r["drift_kT_per_dof_per_ns"]) <= args.drift_limit
        and abs(r["nvt_temperature_K"] / TEMPERATURE - 1.0) <= args.temperature_limit
    ]
    largest = max(stable, default=None)
    print(f"largest stable time step: {largest} fs")
    report = {
        **report_header(),
        "model": Path(args.model).name,
        "export_options": options,
        "criteria": {
            "drift_kT_per_dof_per_ns": args.drift_limit,
            "temperature_relative": args.temperature_limit,
        },
        "scan": rows,
        "largest_stable_time_step_fs": largest,
    }
    path = RESULTS / f"timestep_{Path(args.model).stem}.json"
    write_json(path, json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def _cutoff(text: str):
    return text if text == "auto" else float(text)


if __name__ == "__main__":
    main()
