"""Speed of the SchNet term: energy + forces for a CG liquid, against schnetpack 2.1.1.

Usage::

    .venv/bin/python bench/bench_neural.py [--n-beads 1000] [--cutoff 8] [--threads 1]
                                           [--repeats 7] [--aoti] [--json out.json]

A liquid of CH3–CH3 dimers (bond 1.69 Å) at the bead density of liquid ethane at 180 K
(0.0220 beads/Å³) in a cubic box; SchNet with 64 features, 64 filters, 3 interactions, 20
Gaussians. Every implementation gets the same weights (copied from a schnetpack model) and the
same neighbour list; times exclude the neighbour list (timed separately) and are medians over
``--repeats`` calls, taken in turns so that a busy machine slows all of them alike. Parameters
do not require gradients (inference, as in MD).

Rows: ``ase_cg eager`` (CGModel: graph, SchNet term, autograd forces), ``ase_cg TorchScript``
(the exported LAMMPS module + autograd on the pair vectors), ``ase_cg AOTInductor`` (with
``--aoti``: the ``export_aoti`` package, compiled first, which takes minutes), ``schnetpack``
(NeuralNetworkPotential with PairwiseDistances, Atomwise, Forces).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ase_cg import _keys as K
from ase_cg.potentials import CGModel, SystemTopology, make_batch
from ase_cg.potentials.neural import NeuralPotential, evaluate_layers
from ase_cg.potentials.schnetpack_compat import import_schnetpack
from lammps_interface.torchscript import export_aoti, write_neural_term

BEAD_DENSITY = 0.0220  # beads/Å³: 2 × 0.5495 g/cm³ / 30.07 g/mol × N_A


def dimer_liquid(n_beads: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_molecules = n_beads // 2
    box = (2 * n_molecules / BEAD_DENSITY) ** (1 / 3)
    centres = rng.uniform(0, box, (n_molecules, 3))
    axis = rng.normal(size=(n_molecules, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    positions = np.concatenate([centres - 0.845 * axis, centres + 0.845 * axis]) % box
    return positions, np.eye(3) * box


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-beads", type=int, default=1000, help="beads (default 1000)")
    parser.add_argument("--cutoff", type=float, default=8.0, help="SchNet cutoff, Å (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls each (default 7)")
    parser.add_argument("--aoti", action="store_true", help="also compile and time AOTInductor")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spk = import_schnetpack()
    from ase import Atoms

    positions, cell = dimer_liquid(args.n_beads)
    n_beads = len(positions)
    representation = spk.representation.SchNet(
        n_atom_basis=64,
        n_interactions=3,
        radial_basis=spk.nn.GaussianRBF(n_rbf=20, cutoff=args.cutoff),
        cutoff_fn=spk.nn.CosineCutoff(args.cutoff),
        n_filters=64,
    )
    head = spk.atomistic.Atomwise(n_in=64, output_key="energy")
    reference = spk.model.NeuralNetworkPotential(
        representation=representation,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[head, spk.atomistic.Forces(energy_key="energy", force_key="forces")],
    )
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    term = NeuralPotential.from_schnetpack(representation, head, type_map=[6])
    model = CGModel(["CH3"], [term])
    for parameter in model.parameters():
        parameter.requires_grad_(False)

    topology = SystemTopology(
        np.zeros(n_beads, dtype=np.int64), np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4))
    )
    start = time.perf_counter()
    batch = make_batch(positions, cell, topology, args.cutoff)
    batch_ms = 1000 * (time.perf_counter() - start)
    n_pairs = len(batch[K.PAIR_I])
    atoms = Atoms(numbers=np.full(n_beads, 6), positions=positions, cell=cell, pbc=True)

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for dtype in (torch.float32, torch.float64):
            name = str(dtype).removeprefix("torch.")
            reference.to(dtype)
            model.to(dtype)
            converter = spk.interfaces.AtomsConverter(
                neighbor_list=spk.transform.MatScipyNeighborList(cutoff=args.cutoff), dtype=dtype
            )
            inputs = converter(atoms)
            scripted = torch.jit.load(
                str(write_neural_term(term, Path(folder) / f"{name}.pt", ["CH3"]))
            )
            shifts = batch[K.PAIR_SHIFTS] @ batch[K.CELL][0]
            pair_i, pair_j, types = batch[K.PAIR_I], batch[K.PAIR_J], batch[K.BEAD_TYPE_INDEX]
            pairs = (types, pair_i, pair_j)
            half = pair_i < pair_j  # the plugin's half list (no bead sees its own image here)
            half_pairs = (types, pair_i[half], pair_j[half], shifts[half])

            def torchscript_forces(scripted=scripted, dtype=dtype, half_pairs=half_pairs):
                types, i, j, shifts = half_pairs
                x = batch[K.POSITIONS].detach().requires_grad_(True)
                vectors = (x[j] - x[i] + shifts).to(dtype)
                energy = evaluate_layers(scripted, term.n_interactions, types, i, j, vectors)
                return torch.autograd.grad(energy.sum(), x)[0]

            runs = {
                "ase_cg eager": lambda: model(batch),
                "ase_cg TorchScript": torchscript_forces,
                "schnetpack": lambda inputs=inputs: reference(dict(inputs)),
            }
            if args.aoti:
                start = time.perf_counter()
                package_path = export_aoti(term, Path(folder) / f"{name}.pt2", ["CH3"], dtype=dtype)
                compile_s = time.perf_counter() - start
                package = torch._inductor.aoti_load_package(str(package_path))
                vectors = (batch[K.POSITIONS][pair_j] - batch[K.POSITIONS][pair_i] + shifts).to(
                    dtype
                )
                runs["ase_cg AOTInductor"] = lambda p=package, v=vectors, q=pairs: p(*q, v)
                results[f"aoti compile s ({name})"] = round(compile_s, 1)
            for run in runs.values():  # warm up
                run()
            timings = {label: [] for label in runs}
            for _ in range(args.repeats):
                for label, run in runs.items():
                    timings[label].append(median_ms(run, 1))
            for label, values in timings.items():
                results[f"{label} ({name})"] = round(statistics.median(values), 1)

    print(
        f"{n_beads} beads, {n_pairs} directed pairs within {args.cutoff} Å, "
        f"{args.threads} thread(s); make_batch (vesin neighbour list) {batch_ms:.1f} ms"
    )
    print(f"{'energy + forces':34s} {'ms':>8s}")
    for label, value in results.items():
        print(f"{label:34s} {value:8.1f}")
    if args.json:
        summary = {
            "n_beads": n_beads,
            "n_pairs": n_pairs,
            "cutoff": args.cutoff,
            "threads": args.threads,
            "make_batch_ms": round(batch_ms, 1),
            "ms": results,
        }
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
