"""CG against the best all-atom run, side by side in one run: ns/day and the ratio per case.

For ``--molecules`` ethane molecules on ``--cores`` cores, measured one after the other:

* all-atom OPLS-AA with bonds to H constrained at 2 fs: LAMMPS (SHAKE, PPPM) and GROMACS (LINCS,
  PME; when ``gmx`` is on the PATH), :mod:`ase_cg.reference.speed`;
* CG (2 beads per molecule, the same molecules, :mod:`_cg_runs`), the shipped models:

  - ``tables 2 fs``: ``data/ethane_classical.pt`` exported with the export's defaults (pair
    table to the model's 10 Å cutoff, 2 Å skin, spline interpolation), bonds free;
  - ``tables 2 fs, tuned``: the same with :data:`TUNED` (pair cutoff where the fitted force
    vanishes, linear table interpolation);
  - ``tables SHAKE``: tuned, bond constrained, at the largest stable time step
    (``bench/bench_timestep.py``);

  the table cases run on ``--cores`` MPI ranks;
  - ``plugin 2 fs``: ``data/ethane_neural.pt`` (SchNet 1 interaction × 16 features, 7 Å, plus
    pair tables and a bond) in the cgtorch plugin, float32, filters read from the export's
    tables (0.002 Å), ``--cores`` MPI ranks of one LibTorch thread (faster than one rank of
    several threads on this kind of machine);
  - ``plugin SHAKE``: the same, bond constrained, at its largest stable time step;
  - ``plugin SHAKE, exact filters``: the same with the filter networks evaluated
    (``neural_filter_spacing=None``), to show what the tables gain.

Each case runs ``--repeat`` times (best kept). ns/day is per simulated time; the ratio is against
the fastest all-atom run of this same invocation. Prints a markdown table and writes
``bench/results/speedup_<cores>core.json`` (machine, date, command, load average of each run).

Usage: ``python bench/bench_speedup.py --molecules 400 --cores 1``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from _cg_runs import CLASSICAL, NEURAL, Case, report_header, run, start_box, write_json
from bench_allatom import measure

RESULTS = Path(__file__).resolve().parent / "results"
#: Export and run settings of the tuned table cases (each measured in BENCHMARKS.md).
TUNED = {"pair_cutoff": "auto", "pair_table_style": "linear"}
#: Largest stable constrained time steps, fs (bench/bench_timestep.py).
TABLES_SHAKE_FS = 15.0
PLUGIN_SHAKE_FS = 15.0


def schnet_size(path: Path) -> str:
    """``"interactions×features"`` of the SchNet term of the model file ``path``."""
    from ase_cg.model import load_model

    (term,) = [t for t in load_model(path).terms if t.kind == "manybody"]
    return f"{term.n_interactions}×{term.n_atom_basis}"


def cg_cases(cores: int, tables_shake: float, plugin_shake: float) -> list[tuple[Case, int]]:
    """The CG cases and their timed steps."""
    neural = {"neural_dtype": torch.float32}
    size = schnet_size(NEURAL)
    return [
        (Case("CG tables, 2 fs", str(CLASSICAL), 2.0, ranks=cores), 10000),
        (
            Case(
                "CG tables, 2 fs, tuned",
                str(CLASSICAL),
                2.0,
                ranks=cores,
                export_options=TUNED,
            ),
            20000,
        ),
        (
            Case(
                f"CG tables, SHAKE, {tables_shake:g} fs, tuned",
                str(CLASSICAL),
                tables_shake,
                constrain=True,
                ranks=cores,
                export_options=TUNED,
            ),
            20000,
        ),
        (
            Case(
                f"CG SchNet plugin {size}, 2 fs",
                str(NEURAL),
                2.0,
                ranks=cores,
                export_options=neural,
            ),  # fmt: skip
            120,
        ),
        (
            Case(
                f"CG SchNet plugin {size}, SHAKE, {plugin_shake:g} fs",
                str(NEURAL),
                plugin_shake,
                constrain=True,
                ranks=cores,
                export_options=neural,
            ),
            300,
        ),
        (
            Case(
                f"CG SchNet plugin {size}, SHAKE, {plugin_shake:g} fs, exact filters",
                str(NEURAL),
                plugin_shake,
                constrain=True,
                ranks=cores,
                export_options={**neural, "neural_filter_spacing": None},
            ),
            300,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=400)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2, help="runs per case, best kept")
    parser.add_argument("--tables-shake-fs", type=float, default=TABLES_SHAKE_FS)
    parser.add_argument("--plugin-shake-fs", type=float, default=PLUGIN_SHAKE_FS)
    parser.add_argument("--no-plugin", action="store_true", help="skip the plugin cases")
    args = parser.parse_args()
    report = {
        **report_header(),
        "n_molecules": args.molecules,
        "cores": args.cores,
    }
    allatom = measure(args.molecules, args.cores, args.repeat, 1000, 4000)
    atoms = start_box(args.molecules)
    cg = []
    for case, steps in cg_cases(args.cores, args.tables_shake_fs, args.plugin_shake_fs):
        if args.no_plugin and "plugin" in case.name:
            continue
        runs = []
        for _ in range(args.repeat):
            load = round(os.getloadavg()[0], 2)
            settle = 20 if "plugin" in case.name else 200  # the start box is equilibrated
            result = run(case, atoms, steps, warmup=10, settle=settle)
            if "failed" in result:
                raise SystemExit(f"{case.name} failed: {result['failed']}")
            result["load_average_1min"] = load
            runs.append(result)
            print(f"{case.name}: {result['ns_per_day']:.1f} ns/day (load {load})", flush=True)
        cg.append(max(runs, key=lambda r: r["ns_per_day"]))
    fastest = max(allatom, key=lambda r: r["ns_per_day"])
    report["allatom"], report["cg"] = allatom, cg
    report["baseline"] = fastest["label"]
    print(
        f"\n{args.molecules} ethane molecules, {args.cores} core(s); baseline: {fastest['label']}"
    )
    print("| run | particles | ns/day | vs best all-atom |")
    print("|---|---:|---:|---:|")
    for name, key, rows in (("label", "n_atoms", allatom), ("case", "beads", cg)):
        for r in rows:
            r["vs_best_allatom"] = r["ns_per_day"] / fastest["ns_per_day"]
            print(f"| {r[name]} | {r[key]} | {r['ns_per_day']:.1f} | {r['vs_best_allatom']:.2f} |")
    path = RESULTS / f"speedup_{args.cores}core.json"
    write_json(path, json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
