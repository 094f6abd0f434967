"""Cost of the cgtorch plugin against SchNet size, to choose a model: bead-steps/s per size.

CG ethane (``--molecules`` molecules, 2 beads each) with the shipped neural model's prior
(repulsion table and bond of ``data/ethane_neural.pt``) plus a SchNet term of each size
(features = filters, interactions, radial basis size, cutoff; weights random: the cost does not
depend on them), float32, ``--cores`` LAMMPS ranks of one LibTorch thread, bonds constrained
(SHAKE) at ``--time-step`` fs. The shipped model's own SchNet (1 × 16, 7 Å) is the first row.
Prints a markdown table (with ns/day and the ratio to the fastest all-atom run of
``bench_speedup.py`` on as many cores, ``bench/results/speedup_<cores>core.json``, if that file
exists) and writes
``bench/results/plugin_sizes.json``.

Usage: ``python bench/bench_plugin_sizes.py [--molecules 400] [--cores 2] [--steps 40]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

import torch
from _cg_runs import NEURAL, Case, load, report_header, run, start_box, write_json

from ase_cg.potentials import CGModel
from ase_cg.potentials.neural import NeuralPotential

RESULTS = Path(__file__).resolve().parent / "results" / "plugin_sizes.json"
SPEEDUP = RESULTS.parent
#: (features, interactions, cutoff Å) of each row after the shipped model
SIZES = [(32, 2, 7.0), (16, 2, 7.0), (32, 1, 7.0), (32, 3, 7.0), (64, 2, 7.0), (16, 1, 5.0)]


def model_of_size(shipped, features: int, interactions: int, cutoff: float) -> CGModel:
    """The shipped model's prior terms with a fresh SchNet term of the given size."""
    torch.manual_seed(0)
    prior = [copy.deepcopy(t) for t in shipped.terms if t.kind != "manybody"]
    schnet = NeuralPotential(
        len(shipped.bead_type_names),
        n_atom_basis=features,
        n_filters=features,
        n_interactions=interactions,
        n_rbf=16,
        cutoff=cutoff,
    )
    return CGModel(
        list(shipped.bead_type_names), [*prior, schnet], mapping=shipped.mapping
    ).double()


def best_allatom(cores: int) -> dict | None:
    """Fastest all-atom run of ``bench_speedup.py --cores cores`` (its JSON), if there is one."""
    path = SPEEDUP / f"speedup_{cores}core.json"
    if not path.exists():
        return None
    return max(json.loads(path.read_text())["allatom"], key=lambda r: r["ns_per_day"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=400)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per size")
    parser.add_argument("--time-step", type=float, default=10.0, help="fs, bonds constrained")
    args = parser.parse_args()
    shipped = load(str(NEURAL))
    atoms = start_box(args.molecules)
    baseline = best_allatom(args.cores)
    rows = []
    sizes = [("shipped", None)] + [(None, size) for size in SIZES]
    for label, size in sizes:
        if size is None:
            model, (features, interactions, cutoff) = str(NEURAL), (32, 2, 7.0)
        else:
            features, interactions, cutoff = size
            model = model_of_size(shipped, features, interactions, cutoff)
        case = Case(
            f"SchNet {interactions}×{features}, {cutoff:g} Å" + (" (shipped)" if label else ""),
            model,
            args.time_step,
            constrain=True,
            ranks=args.cores,
            export_options={"neural_dtype": torch.float32},
        )
        load_average = round(os.getloadavg()[0], 2)
        result = run(case, atoms, args.steps, warmup=5, settle=20)
        if "failed" in result:
            raise SystemExit(f"{case.name} failed: {result['failed']}")
        result.update(
            features=features,
            interactions=interactions,
            cutoff_A=cutoff,
            load_average_1min=load_average,
            vs_best_allatom=None
            if baseline is None
            else result["ns_per_day"] / baseline["ns_per_day"],
        )
        rows.append(result)
        print(f"{case.name}: {result['bead_steps_per_s']:.3g} bead-steps/s", flush=True)
    print("| SchNet (interactions × features, cutoff) | bead-steps/s | ns/day | vs best all-atom |")
    print("|---|---:|---:|---:|")
    for r in rows:
        ratio = "n/a" if r["vs_best_allatom"] is None else f"{r['vs_best_allatom']:.2f}"
        print(f"| {r['case']} | {r['bead_steps_per_s']:.3g} | {r['ns_per_day']:.2f} | {ratio} |")
    report = {
        **report_header(),
        "baseline": baseline,
        "results": rows,
    }
    write_json(RESULTS, json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
