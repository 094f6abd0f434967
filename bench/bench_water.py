"""One-site CG water: pair, pair + three-body and neural models against the mapped SPC/E liquid.

The water demo's models and comparison (:mod:`ase_cg.demo_water`) at full size: from an all-atom
SPC/E reference (``ase-cg reference water``) mapped to one bead per molecule, on the same frames
and pair cutoff, ``pair`` (force matching), ``pair + three-body`` (pair splines and the
Stillinger–Weber-type angular term fitted together) and, with ``--neural``, a SchNet (or,
``--representation painn``, PaiNN) term trained on top of the pair model; plus any model given with
``--model NAME=PATH`` (e.g. a refined one). Each runs NVT in LAMMPS at the reference volume (300 K,
2 fs, from its last frame) and is compared: RDF max |Δg|, the neighbour-angle distribution within
the first shell (max |Δp| per degree; the reference's halves give its noise), the tetrahedral order
q, the pressure, and the held-out force residual of the fit. With ``--speed`` (run it on a quiet
machine): 1 vs 2 MPI ranks of each model (forces on the reference's last frame), and ns/day of
every model in LAMMPS (2 fs, NVT, the reference's last frame, one core) against all-atom SPC/E with
the same molecules, rigid, 2 fs: LAMMPS (SHAKE, PPPM) and GROMACS (SETTLE, PME, when ``gmx`` is
installed), measured in the same invocation. Prints markdown tables and writes ``--output`` (JSON)
and the compare folders (plots) under ``--work``.

Usage::

    python bench/bench_water.py --reference data/water_aa.h5 --work /tmp/water_bench \\
        --output bench/results/water.json [--neural] [--model refined=/tmp/refine/model.pt]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _cg_runs import report_header, write_json

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="all-atom SPC/E H5MD")
    parser.add_argument("--mapping", type=Path, default=REPO / "data" / "water_mapping.json")
    parser.add_argument("--work", type=Path, required=True, help="folder of models and runs")
    parser.add_argument("--frames", type=int, default=200, help="frames fitted (20 %% held out)")
    parser.add_argument("--steps", type=int, default=25000, help="NVT steps of 2 fs per model")
    parser.add_argument("--neural-steps", type=int, default=5000, help="NVT steps, neural")
    parser.add_argument("--neural", action="store_true", help="train the neural model too")
    parser.add_argument("--epochs", type=int, default=5, help="neural training epochs")
    parser.add_argument("--representation", choices=("schnet", "painn"), default="schnet",
                        help="neural term: SchNet (distances) or PaiNN (equivariant)")  # fmt: skip
    parser.add_argument("--neural-size", default="2x32", metavar="INTERACTIONSxFEATURES",
                        help="interaction blocks x features (= filters), neural")  # fmt: skip
    parser.add_argument("--ranks", type=int, default=1, help="MPI ranks of the LAMMPS runs")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a further model to run and compare")  # fmt: skip
    parser.add_argument("--speed", action="store_true", help="CG vs all-atom speed table")
    parser.add_argument(
        "--reuse", action="store_true", help="take the models an earlier run fitted in --work"
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON record written")
    args = parser.parse_args(argv)

    from ase_cg.demo_water import comparison_table, fit_water_models, run_and_compare
    from ase_cg.mapping import CGMapping, map_trajectory

    args.work.mkdir(parents=True, exist_ok=True)
    mapped = args.work / "mapped.h5"
    if not mapped.exists():
        map_trajectory(args.reference, mapped, CGMapping.load(args.mapping), progress=False)
    neural = None
    if args.neural:
        interactions, features = (int(n) for n in args.neural_size.lower().split("x"))
        neural = {"representation": args.representation, "n_atom_basis": features,
                  "n_filters": features, "n_interactions": interactions, "n_rbf": 16,
                  "cutoff": 6.0, "seed": 0}  # fmt: skip
    if args.reuse:
        previous = json.loads(args.output.read_text())
        models = {row["model"]: {"path": Path(previous["models"][row["model"]]),
                                 "fraction_unexplained": row["fraction_unexplained"]}
                  for row in previous["rows"]}  # fmt: skip
    else:
        models = fit_water_models(mapped, args.mapping, args.work, frames=args.frames,
                                  neural=neural, epochs=args.epochs)  # fmt: skip
    for item in args.model:
        name, _, path = item.partition("=")
        models[name] = {"path": Path(path), "fraction_unexplained": None}
    steps = {name: args.neural_steps if name == "neural" else args.steps for name in models}
    rows = run_and_compare(models, mapped, args.work, args.work / "compare", steps=steps,
                           ranks=args.ranks)  # fmt: skip
    record = {
        **report_header(),
        "reference": str(args.reference),
        "frames": args.frames,
        "neural": neural,
        "models": {name: str(model["path"]) for name, model in models.items()},
        "rows": rows,
    }
    print(comparison_table(rows), flush=True)
    if args.speed:
        record["speed"] = speed(models, mapped)
        record["ranks"] = one_vs_two_ranks(models, mapped, args.work)
    write_json(args.output, json.dumps(record, indent=1) + "\n")
    return 0


def one_vs_two_ranks(models: dict, mapped: Path, work: Path) -> dict:
    """Largest force difference (relative to the largest force) of 1 vs 2 MPI ranks, per model,
    on the reference's last frame in LAMMPS."""
    from ase_cg.io import read_h5md
    from ase_cg.model import load_model
    from lammps_interface import export
    from lammps_interface.run import evaluate

    atoms = read_h5md(mapped, -1)
    result = {}
    for name, model in models.items():
        folder = work / f"ranks_{name.replace(' + ', '_').replace(' ', '_')}"
        files = export(load_model(model["path"]), folder, atoms=atoms, temperature=300.0)
        one, two = evaluate(files["system"], ranks=1), evaluate(files["system"], ranks=2)
        scale = float(abs(one.forces).max())
        result[name] = {
            "max_force_difference_relative": float(abs(one.forces - two.forces).max()) / scale,
            "energy_difference_relative": abs(one.energy - two.energy) / abs(one.energy),
        }
        print(f"1 vs 2 ranks, {name}: {result[name]}", flush=True)
    return result


#: Timed CG steps per model (2 fs): the plugin is slower per step.
SPEED_STEPS = {"pair": 10000, "pair + three-body": 4000, "neural": 300}


def speed(models: dict, mapped: Path) -> dict:
    """ns/day of each model and of all-atom SPC/E (LAMMPS, GROMACS) on one core, one run."""
    from _cg_runs import Case, run

    from ase_cg.io import read_h5md
    from ase_cg.reference import WATER
    from ase_cg.reference.speed import BenchmarkError, measure_gromacs, measure_lammps

    atoms = read_h5md(mapped, -1)
    n_molecules = len(atoms)
    allatom = [measure_lammps(WATER, n_molecules, steps=500)]
    try:
        gromacs = measure_gromacs(WATER, n_molecules, steps=2000)
    except BenchmarkError as error:  # e.g. a box shorter than twice GROMACS's cutoff
        print(f"GROMACS not measured: {str(error).splitlines()[0]}")
        gromacs = None
    if gromacs is not None:
        allatom.append(gromacs)
    best = max(row["ns_per_day"] for row in allatom)
    cg = []
    for name, model in models.items():
        steps = SPEED_STEPS.get(name, 1000)
        result = run(Case(name, str(model["path"]), 2.0), atoms, steps, settle=100)
        result["vs_best_allatom"] = result["ns_per_day"] / best
        cg.append(result)
    print(f"\n| run ({n_molecules} molecules, 1 core, 2 fs) | ns/day | vs best all-atom |")
    print("|---|---:|---:|")
    for row in allatom:
        print(f"| {row['label']} | {row['ns_per_day']:.1f} | {row['ns_per_day'] / best:.2f}× |")
    for row in cg:
        print(f"| CG {row['case']} | {row['ns_per_day']:.1f} | {row['vs_best_allatom']:.2f}× |")
    return {"allatom": allatom, "cg": cg}


if __name__ == "__main__":
    raise SystemExit(main())
