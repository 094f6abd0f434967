"""CPU time of the cgtorch model call with and without per-layer pair pruning.

The plugin hands the model every pair within the cutoff that touches a bead within
(K − 1)·r_c + skin/2 of the rank's subdomain (the ghost shell is K·r_c + skin). Without pruning
every SchNet layer computes all of them; with pruning (``SchNetEnergy(..., owned)``) layer l of
K computes only the pairs within K − 1 − l hops of a local bead. This script builds the same
inputs as the plugin for rank 0 of an x-slab decomposition of a CG ethane box (the SchNet of
``bench/bench_lammps.py``: 2 interactions, 32 features, 6 Å cutoff, float32, skin 2 Å) and times
energy + gradient calls of the TorchScript network on one thread, both ways interleaved (CPU
time, the minimum of ``--repeats``), after checking that the local energies are equal.

Usage: ``.venv/bin/python bench/bench_pruning.py [--beads 432 10000] [--ranks 1 2]``; appends to
``bench/results/pruning.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import vesin

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from bench_lammps import ethane_model  # noqa: E402

from ase_cg.md import build_cg_box  # noqa: E402

RESULTS = ROOT / "results" / "pruning.json"
SKIN = 2.0  # Å, the exported deck's neighbour skin


def plugin_inputs(n_beads: int, ranks: int, cutoff: float, n_layers: int, seed: int = 1):
    """Bead positions (local first), n_local and the plugin's directed pairs for rank 0."""
    model = ethane_model(neural=False)
    atoms = build_cg_box(model, n_beads // 2, 0.5495, seed=seed)
    box = atoms.cell.lengths()
    positions = atoms.positions % box
    shifts = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
    images = (positions[None] + shifts[:, None] * box).reshape(-1, 3)
    is_original = np.repeat((shifts == 0).all(axis=1), len(positions))
    sub_lo, sub_hi = np.zeros(3), np.array([box[0] / ranks, box[1], box[2]])
    outside = np.linalg.norm(np.maximum(0, np.maximum(sub_lo - images, images - sub_hi)), axis=1)
    local = is_original & (outside == 0)
    ghost = ~local & (outside <= n_layers * cutoff + SKIN)
    order = np.concatenate([np.nonzero(local)[0], np.nonzero(ghost)[0]])
    x, outside = images[order], outside[order]
    i, j = vesin.NeighborList(cutoff=cutoff, full_list=True).compute(
        x, np.eye(3) * 1e5, periodic=False, quantities="ij"
    )
    reach = (n_layers - 1) * cutoff + 0.5 * SKIN
    keep = (outside[i] <= reach) | (outside[j] <= reach)
    return x, int(local.sum()), i[keep].astype(np.int64), j[keep].astype(np.int64)


def local_energy(network, types, positions, pair_i, pair_j, owned, n_local, prune) -> float:
    """Σ local energies (eV) and their gradient, as the plugin computes them."""
    vectors = (positions[pair_j] - positions[pair_i]).requires_grad_(True)
    energies = network(types, pair_i, pair_j, vectors, owned if prune else None)
    energy = energies[:n_local].sum()
    torch.autograd.grad(energy, vectors)
    return float(energy.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beads", type=int, nargs="+", default=[432, 10000])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    schnet = next(t for t in ethane_model(neural=True).terms if hasattr(t, "network"))
    network = torch.jit.script(schnet.network.float())
    n_layers = len(schnet.network.interactions)
    rows = []
    for n_beads in args.beads:
        for ranks in args.ranks:
            x, n_local, i, j = plugin_inputs(n_beads, ranks, schnet.cutoff, n_layers)
            positions = torch.as_tensor(x, dtype=torch.float32)
            pair_i, pair_j = torch.as_tensor(i), torch.as_tensor(j)
            types = torch.zeros(len(x), dtype=torch.int64)
            owned = torch.arange(len(x)) < n_local

            inputs = (network, types, positions, pair_i, pair_j, owned, n_local)
            difference = abs(local_energy(*inputs, False) - local_energy(*inputs, True))
            times = {False: [], True: []}
            for _ in range(args.repeats):
                for prune in (False, True):
                    start = time.process_time()
                    local_energy(*inputs, prune)
                    times[prune].append(time.process_time() - start)
            row = {
                "beads": n_beads,
                "ranks": ranks,
                "local": n_local,
                "local_and_ghost": len(x),
                "directed_pairs": len(i),
                "energy_difference_eV": difference,
                "full_cpu_s": min(times[False]),
                "pruned_cpu_s": min(times[True]),
                "speedup": min(times[False]) / min(times[True]),
            }
            rows.append(row)
            print(
                f"{n_beads:>6} beads, {ranks} rank(s): {n_local} local / {len(x)} with ghosts, "
                f"{len(i)} pairs; full {row['full_cpu_s']:.3f} s, pruned "
                f"{row['pruned_cpu_s']:.3f} s CPU per call ({row['speedup']:.2f}x); "
                f"|ΔE| = {difference:.1e} eV",
                flush=True,
            )
    report = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "threads": 1,
        "results": rows,
    }
    runs = json.loads(RESULTS.read_text())["runs"] if RESULTS.exists() else []
    RESULTS.write_text(json.dumps({"runs": [*runs, report]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
