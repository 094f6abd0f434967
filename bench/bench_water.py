"""One-site CG water: pair, pair + three-body and neural models against the mapped SPC/E liquid.

The water demo's models and comparison (:mod:`ase_cg.demo_water`) at full size: from an
all-atom SPC/E reference (``ase-cg reference water``) mapped to one bead per molecule, on the
same frames and pair cutoff, ``pair`` (force matching), ``pair + three-body`` (pair splines and
the Stillinger–Weber-type angular term fitted together) and, with ``--neural``, a SchNet term
trained on top of the pair model; plus any model given with ``--model NAME=PATH`` (e.g. a
refined one). Each runs NVT in LAMMPS at the reference volume (300 K, 2 fs, from its last frame)
and is compared: RDF max |Δg|, the neighbour-angle distribution within the first shell (max
|Δp| per degree; the reference's halves give its noise), the tetrahedral order q, the pressure,
and the held-out force residual of the fit. Prints a markdown table and writes ``--output``
(JSON) and the compare folders (plots) under ``--work``.

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
    parser.add_argument("--ranks", type=int, default=1, help="MPI ranks of the LAMMPS runs")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a further model to run and compare")  # fmt: skip
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
        neural = {"n_atom_basis": 32, "n_filters": 32, "n_interactions": 2, "n_rbf": 16,
                  "cutoff": 6.0, "seed": 0}  # fmt: skip
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
    write_json(args.output, json.dumps(record, indent=1) + "\n")
    print(comparison_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
