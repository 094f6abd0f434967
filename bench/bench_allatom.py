"""All-atom throughput of the reference liquid run the way a user runs it: the CG baseline.

Runs OPLS-AA liquid ethane (the reference force field and cutoffs, PPPM/PME 1e-5) with bonds to
hydrogen constrained at 2 fs, in LAMMPS (SHAKE) and, when ``gmx`` is on the PATH, in GROMACS
(LINCS), the same molecules on the same number of cores (:mod:`ase_cg.reference.speed`). Each
engine runs ``--repeat`` times and keeps its best. Prints a table, names the fastest run, and
writes ``bench/results/allatom.json``::

    {"command": "...", "date": "...", "machine": {..., "load_average_1min": ...},
     "n_molecules": N, "cores": [C, ...],
     "results": [{"engine", "label", "n_atoms", "time_step_fs", "cores", "steps", "seconds",
                  "ns_per_day", "atom_steps_per_s", "version", "load_average_1min"}, ...],
     "fastest": {"<cores>": "<label>", ...}}

Usage: ``python bench/bench_allatom.py [--molecules 400] [--cores 1 2] [--repeat 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _cg_runs import report_header, write_json

from ase_cg.reference import ETHANE, pack_molecules
from ase_cg.reference.speed import measure_gromacs, measure_lammps

RESULTS = Path(__file__).resolve().parent / "results" / "allatom.json"


def measure(n_molecules: int, cores: int, repeat: int, lammps_steps: int, gmx_steps: int):
    """Best of ``repeat`` runs of each engine, the same packed box for both."""
    atoms = pack_molecules(ETHANE, n_molecules, ETHANE.density, seed=1)
    runs = {
        "lammps": lambda: measure_lammps(
            ETHANE, n_molecules, steps=lammps_steps, ranks=cores, atoms=atoms
        ),
        "gromacs": lambda: measure_gromacs(
            ETHANE, n_molecules, steps=gmx_steps, threads=cores, atoms=atoms
        ),
    }
    best = []
    for engine, run in runs.items():
        results = []
        for _ in range(repeat):
            load = round(os.getloadavg()[0], 2)
            result = run()
            if result is None:
                print(f"{engine}: not installed, skipped", flush=True)
                break
            result["load_average_1min"] = load
            results.append(result)
            print(f"{engine}: {result['ns_per_day']:.2f} ns/day (load {load})", flush=True)
        if results:
            best.append(max(results, key=lambda r: r["ns_per_day"]))
    return best


def print_table(results: list[dict]) -> str:
    """Markdown table of ``results``; returns the label of the fastest."""
    fastest = max(results, key=lambda r: r["ns_per_day"])
    print("| run | atoms | cores | ns/day | atom-steps/s | vs fastest |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['label']} | {r['n_atoms']} | {r['cores']} | {r['ns_per_day']:.1f} "
            f"| {r['atom_steps_per_s']:.3g} | {r['ns_per_day'] / fastest['ns_per_day']:.2f} |"
        )
    print(f"fastest: {fastest['label']}")
    return fastest["label"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=400, help="ethane molecules")
    parser.add_argument(
        "--cores", type=int, nargs="+", default=[1], help="MPI ranks (LAMMPS) / threads (gmx)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per engine, best kept")
    parser.add_argument("--lammps-steps", type=int, default=1000, help="timed LAMMPS steps")
    parser.add_argument("--gmx-steps", type=int, default=4000, help="GROMACS steps (half timed)")
    args = parser.parse_args()
    report = {
        **report_header(),
        "n_molecules": args.molecules,
        "cores": args.cores,
    }
    report["results"], report["fastest"] = [], {}
    for cores in args.cores:
        results = measure(args.molecules, cores, args.repeat, args.lammps_steps, args.gmx_steps)
        report["results"] += results
        report["fastest"][str(cores)] = print_table(results)
    write_json(RESULTS, json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
