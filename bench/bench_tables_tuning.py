"""Each setting of the CG table run measured on its own: ns/day as the settings are added.

The shipped classical model (``data/ethane_classical.pt``), ``--molecules`` CG ethane molecules
on one core, a ladder of cases each adding one setting to the one before (see :data:`LADDER`),
then variations of the last (skin, neighbour checks, rRESPA). The cases run interleaved,
``--repeat`` rounds, best kept per case, so a change of the machine's load hits all alike.
Prints a markdown table and writes ``bench/results/tables_tuning.json``.

Usage: ``python bench/bench_tables_tuning.py [--molecules 400] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _cg_runs import CLASSICAL, Case, report_header, run, start_box, write_json

RESULTS = Path(__file__).resolve().parent / "results" / "tables_tuning.json"
AUTO = {"pair_cutoff": "auto"}
LINEAR = {**AUTO, "pair_table_style": "linear"}
#: (name, time step fs, constrain, suffix, export options, rRESPA); each adds to the one above
LADDER = [
    ("export defaults (10 Å pair table, spline, skin 2 Å), 2 fs", 2.0, False, None, {}, None),
    ("+ pair cutoff where the force vanishes (auto)", 2.0, False, None, AUTO, None),
    ("+ linear table interpolation", 2.0, False, None, LINEAR, None),
    ("+ table/omp (1 thread)", 2.0, False, "omp", LINEAR, None),
    ("+ bond by SHAKE, 5 fs", 5.0, True, "omp", LINEAR, None),
    ("+ SHAKE, 10 fs", 10.0, True, "omp", LINEAR, None),
    ("+ SHAKE, 15 fs", 15.0, True, "omp", LINEAR, None),
]
#: variations of the last ladder case
VARIATIONS = [
    ("SHAKE 15 fs, skin 1 Å", {**LINEAR, "skin": 1.0}, None),
    ("SHAKE 15 fs, skin 1.5 Å", {**LINEAR, "skin": 1.5}, None),
    ("SHAKE 15 fs, skin 3 Å", {**LINEAR, "skin": 3.0}, None),
    ("SHAKE 15 fs, neigh_modify every 2", {**LINEAR, "neighbor_every": 2}, None),
    ("free bond, rRESPA: bond 2 fs inside pair 10 fs", LINEAR, "2 5 bond 1 pair 2"),
]


def cases() -> list[Case]:
    ladder = [
        Case(name, str(CLASSICAL), dt, constrain=c, suffix=sf, export_options=o, respa=r)
        for name, dt, c, sf, o, r in LADDER
    ]
    variations = []
    for name, options, respa in VARIATIONS:
        if respa:  # rRESPA: outer step 10 fs, the bond on the inner 2 fs
            variations.append(Case(name, str(CLASSICAL), 10.0, export_options=options, respa=respa))
        else:
            variations.append(
                Case(
                    name, str(CLASSICAL), 15.0, constrain=True, suffix="omp", export_options=options
                )
            )
    return ladder + variations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10000, help="timed steps per case")
    args = parser.parse_args()
    atoms = start_box(args.molecules)
    todo = cases()
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for case in todo:
            load = round(os.getloadavg()[0], 2)
            result = run(case, atoms, args.steps)
            result["load_average_1min"] = load
            if "failed" in result:
                print(f"{case.name}: failed {result['failed']}", flush=True)
                continue
            if case.name not in best or result["ns_per_day"] > best[case.name]["ns_per_day"]:
                best[case.name] = result
            print(f"{case.name}: {result['ns_per_day']:.0f} ns/day (load {load})", flush=True)
    print("| setting | pair cutoff (Å) | ns/day | × previous | dangerous builds |")
    print("|---|---:|---:|---:|---:|")
    previous = None
    for case in todo:
        r = best.get(case.name)
        if r is None:
            continue
        ratio = "" if previous is None else f"{r['ns_per_day'] / previous:.2f}"
        print(
            f"| {case.name} | {r['pair_cutoff']:.2f} | {r['ns_per_day']:.0f} | {ratio} "
            f"| {r['dangerous_builds']} |"
        )
        if case.name in dict((n, 0) for n, *_ in LADDER):
            previous = r["ns_per_day"]
    report = {
        **report_header(),
        "n_molecules": args.molecules,
        "results": [best[c.name] for c in todo if c.name in best],
    }
    write_json(RESULTS, json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
