"""CGCalculator speed in ASE MD: ``python bench/bench_calculator.py [--threads 1] [--quick]
[--compile]``.

Measures, on boxes of CH3|CH3 ethane beads (``data/ethane_mapping.json``) at 0.55 g/cm³ built
with :func:`ase_cg.start.build_cg_box` and briefly relaxed:

1. one force call (energy + forces + stress) of :class:`~ase_cg.calculator.CGCalculator`, ms;
2. MD steps/s of :func:`ase_cg.md.run_md` (Langevin, 2 fs, blow-up checks on, no
   trajectory), and ns/day;
3. the neighbour-list rebuild fraction with a 1 Å skin;

for 1 000 and 10 000 beads and two models: the prior alone (repulsion 5 Å cutoff + harmonic
bonds, float64) and prior + SchNet (64 features, 3 interactions, 8 Å cutoff, float32 weights,
the NeuralConfig defaults; random weights cost the same as trained ones); with ``--compile``
also prior + SchNet with ``CGCalculator(compile=True)`` (its first call, which compiles, is in
the "first call" column). Prints the "ASE calculator" section of BENCHMARKS.md as Markdown.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "data" / "ethane_mapping.json"


def models():
    from ase_cg.mapping import CGMapping
    from ase_cg.potentials import CGModel, HarmonicBonds, NeuralPotential, Repulsion

    mapping = CGMapping.load(MAPPING)
    n = len(mapping.bead_types)

    def prior_terms():
        return [
            Repulsion(n, sigma=3.4, epsilon=0.01, power=12, cutoff=5.0),
            HarmonicBonds(n, k=21.0, r0=1.69),
        ]

    prior = CGModel(mapping.bead_types, prior_terms(), mapping=mapping).double()
    torch.manual_seed(0)
    schnet = NeuralPotential(n, n_atom_basis=64, n_filters=64, n_interactions=3, cutoff=8.0)
    for parameter in schnet.parameters():
        parameter.data.normal_(0.0, 0.05)
    neural = CGModel(mapping.bead_types, [*prior_terms(), schnet], mapping=mapping)
    neural.terms[0].double()
    neural.terms[1].double()
    return {"prior (float64)": prior, "prior + SchNet (float32)": neural}, mapping


def measure(model, atoms, steps: int, calls: int, compile: bool = False) -> dict:
    from ase_cg.calculator import CGCalculator
    from ase_cg.md import run_md

    calc = CGCalculator(model, skin=1.0, compile=compile)
    atoms = atoms.copy()
    atoms.calc = calc
    start = time.perf_counter()
    atoms.get_forces()  # warm-up (and compilation with compile=True)
    first_call_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        atoms.positions += rng.normal(0.0, 0.01, atoms.positions.shape)
        atoms.get_forces()
    call_ms = (time.perf_counter() - start) / calls * 1e3
    call_cpu_ms = (time.process_time() - cpu) / calls * 1e3
    builds_before = calc.neighbor_list_builds
    cpu = time.process_time()
    summary = run_md(
        atoms, calc, ensemble="nvt", steps=steps, time_step_fs=2.0, interval=steps, seed=1
    )
    cpu_per_step = (time.process_time() - cpu) / max(steps, 1)
    return {
        "first_call_s": first_call_s,
        "call_ms": call_ms,
        "call_cpu_ms": call_cpu_ms,
        "cpu_steps_per_s": 1.0 / cpu_per_step,
        "steps_per_s": summary.steps_per_s,
        "ns_per_day": summary.ns_per_day,
        "rebuilds": (calc.neighbor_list_builds - builds_before) / max(steps, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke test)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time the SchNet model with CGCalculator(compile=True) (torch.compile)",
    )
    parser.add_argument(
        "--beads", type=int, nargs="+", default=[1000, 10000], help="system sizes (2 per molecule)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from ase_cg.calculator import CGCalculator
    from ase_cg.md import build_cg_box, run_md

    model_set, mapping = models()
    rows = []
    for n_molecules in (n // 2 for n in args.beads):
        atoms = build_cg_box(mapping, n_molecules, 0.55, seed=0)
        # relax the lattice start with the prior so the timings see a liquid, not a crystal
        run_md(atoms, CGCalculator(model_set["prior (float64)"]), steps=20, time_step_fs=1.0)
        cases = [(name, model, False) for name, model in model_set.items()]
        if args.compile:
            schnet = model_set["prior + SchNet (float32)"]
            cases.append(("prior + SchNet (float32), compiled", schnet, True))
        for name, model, compile in cases:
            heavy = "SchNet" in name
            steps = (2 if heavy else 10) if n_molecules > 1000 else (5 if heavy else 50)
            calls = 2 if heavy else 5
            if args.quick:
                steps, calls = 2, 1
            result = measure(model, atoms, steps, calls, compile)
            rows.append((len(atoms), name, steps, result))
            print(f"{len(atoms)} beads, {name}: {result}", flush=True)

    print()
    print("## ASE calculator")
    print()
    print(
        f"`python bench/bench_calculator.py --threads {args.threads} --beads "
        f"{' '.join(map(str, args.beads))}` — CGCalculator in ASE MD "
        f"(Langevin, 2 fs, blow-up checks every step, no trajectory), ethane CH3|CH3 beads at "
        f"0.55 g/cm³, skin 1 Å; torch {torch.__version__}, {args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}, shared 2-core machine (other jobs ran)."
    )
    print()
    print(
        "| beads | model | first call s | force call, wall (CPU) ms | MD steps/s, wall (CPU) "
        "| ns/day (wall) | list rebuilds/step |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n_beads, name, _, r in rows:
        print(
            f"| {n_beads} | {name} | {r['first_call_s']:.1f} | "
            f"{r['call_ms']:.0f} ({r['call_cpu_ms']:.0f}) | "
            f"{r['steps_per_s']:.2f} ({r['cpu_steps_per_s']:.2f}) | {r['ns_per_day']:.3f} | "
            f"{r['rebuilds']:.2f} |"
        )


if __name__ == "__main__":
    main()
