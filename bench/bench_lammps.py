"""CG ethane in LAMMPS: bead-steps/s of the table export and of the cgtorch plugin (f32/f64).

Builds CG ethane boxes (two CH3 beads per molecule, 0.5495 g/cm³, 180 K) and exports them with
:func:`lammps_interface.export`:

* ``tables``: classical model (repulsive prior + pair spline + harmonic bond) → ``pair_style
  table`` + ``bond_style table``, no neural code;
* ``plugin f32`` / ``plugin f64``: the same prior tables overlaid (``hybrid/overlay``) with a
  SchNet term run by the ``cgtorch`` plugin (2 interactions, 32 features, 6 Å cutoff; features
  cross ranks after each interaction);
* ``tables-shake`` / ``plugin-f32-shake``: as ``tables`` / ``plugin-f32`` with the CG bond held
  by the deck's constraint fix (SHAKE), at a 5 fs time step.

Each case runs NVT (2 fs) under ``mpiexec -n ranks``: 3 warm-up steps (TorchScript optimises
its first calls), then the timed run, whose LAMMPS ``Loop time`` gives bead-steps/s.
The per-simulated-ns speed-up over all-atom ethane (8 atoms per molecule, time step Δt_AA) is

    speed-up = (bead-steps/s / 2 beads × Δt_CG) / (atom-steps/s / 8 atoms × Δt_AA)

with the fastest all-atom run of ``bench/bench_allatom.py`` (``bench/results/allatom.json``) on
the same number of cores, its atom-steps/s taken as independent of the box size: all-atom and
the tables use one core per MPI rank, the plugin ranks × ``threads_per_rank`` (LibTorch
threads; on 2 cores, 1 rank runs 2 threads). This benchmark uses a hand-made model at large
box sizes (scaling); ``bench/bench_speedup.py`` measures the shipped models against all-atom
side by side. Prints a table and appends the run to ``bench/results/lammps.json``
(``{"runs": [...]}``).

Usage: ``.venv/bin/python bench/bench_lammps.py [--beads 10000 100000] [--ranks 1 2]
[--cases tables plugin-f32 plugin-f64]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import tempfile
from pathlib import Path

import torch

from ase_cg._paths import write_text_atomic
from ase_cg.mapping import CGMapping
from ase_cg.md import build_cg_box
from ase_cg.potentials import CGModel, HarmonicBonds, Repulsion
from ase_cg.potentials.classical import PairSpline
from ase_cg.potentials.neural import NeuralPotential
from lammps_interface import export
from lammps_interface.run import run_deck, threads_per_rank

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "lammps.json"
ALLATOM = ROOT / "bench" / "results" / "allatom.json"
#: CG time step of each case, fs: the stiff CH3–CH3 bond (σ ≈ 0.03 Å) limits free bonds to
#: ~2 fs; with the bond constrained ("tables-shake") the soft non-bonded forces of 15-amu beads
#: allow 5 fs (LJ time σ·sqrt(m/ε) ≈ 1.6 ps for CG ethane).
CASE_TIME_STEP_FS = {
    "tables": 2.0,
    "tables-shake": 5.0,
    "plugin-f32": 2.0,
    "plugin-f64": 2.0,
    "plugin-f32-shake": 5.0,
}
WARMUP_STEPS = 3
_LOOP = re.compile(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")


def ethane_model(neural: bool) -> CGModel:
    """Classical CG ethane (prior + pair spline + bond), optionally with a SchNet term."""
    mapping = CGMapping.load(ROOT / "data" / "ethane_mapping.json")
    pair = PairSpline(1, 2.5, 8.0, 40)
    knots = torch.linspace(2.5, 8.0, pair.grid.n_basis, dtype=torch.float64)
    coefficients = 0.3 * torch.exp(-(knots - 2.5) / 0.4) - 0.01 * torch.exp(-((knots - 4.2) ** 2))
    coefficients[-3:] = 0.0
    pair.coefficients.copy_(coefficients[None])
    pair.lower.fill_(2.6)
    terms = [
        Repulsion(1, sigma=3.3, epsilon=0.01, power=12, cutoff=8.0),
        pair,
        HarmonicBonds(1, k=20.0, r0=1.69),
    ]
    if neural:
        torch.manual_seed(0)
        schnet = NeuralPotential(
            1, n_atom_basis=32, n_filters=32, n_interactions=2, n_rbf=16, cutoff=6.0
        )
        with torch.no_grad():
            for parameter in schnet.parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
        terms.append(schnet)
    return CGModel(["CH3"], terms, mapping=mapping).double()


def run_case(case: str, n_beads: int, ranks: int, steps: int, device: str = "auto") -> dict:
    """Export and run one case; return its numbers.

    ``device`` is the plugin's (``auto``: a GPU when torch sees one, else the CPU).
    """
    neural = case.startswith("plugin")
    model = ethane_model(neural)
    atoms = build_cg_box(model, n_beads // 2, 0.5495, seed=1)
    constrain_bonds = case.endswith("-shake")
    dtype = {"plugin-f32": torch.float32, "plugin-f64": torch.float64}.get(
        case.removesuffix("-shake")
    )
    time_step = CASE_TIME_STEP_FS[case]
    with tempfile.TemporaryDirectory(prefix="bench_lammps") as directory:
        export(
            model,
            directory,
            atoms=atoms,
            neural_dtype=dtype,
            neural_device=device,
            temperature=180.0,
            timestep=time_step,
            steps=steps,
            dump_every=10 * steps,
            constrain_bonds=constrain_bonds,
        )
        # warm-up run first (TorchScript profiles and optimises its first calls), then time
        deck = Path(directory) / "in.bench"
        # the constraint fix exactly as the exported deck has it (empty unless constrain_bonds)
        shake = [
            line
            for line in (Path(directory) / "in.cg").read_text().splitlines()
            if line.startswith("fix constrain")
        ]
        write_text_atomic(
            deck,
            "\n".join(
                [
                    "include system.in",
                    "velocity all create 180.0 4928459 mom yes rot yes dist gaussian",
                    f"fix integrate all nvt temp 180.0 180.0 {100 * time_step}",
                    *shake,
                    f"timestep {time_step}",
                    "thermo 1000",
                    f"run {WARMUP_STEPS}",
                    f"run {steps}",
                    "",
                ]
            ),
        )
        outputs = run_deck(directory, ranks, deck="in.bench", h5md=None)
        match = list(_LOOP.finditer(outputs["log"].read_text()))[-1]
    loop_time, _, n_steps, n_atoms = (float(g) for g in match.groups())
    bead_steps = n_steps * n_atoms / loop_time
    return {
        "case": case,
        "device": device if neural else "cpu",
        "beads": int(n_atoms),
        "ranks": ranks,
        "cores": ranks * threads_per_rank(ranks) if neural else ranks,
        "steps": int(n_steps),
        "loop_time_s": loop_time,
        "bead_steps_per_s": bead_steps,
        "time_step_fs": time_step,
        "ns_per_day": n_steps / loop_time * time_step * 86400 * 1e-6,
    }


def allatom_rate(cores: int) -> tuple[float | None, float | None]:
    """Fastest all-atom run of ``bench/bench_allatom.py`` on ``cores``: its atom-steps/s and fs.

    Atom-steps/s is taken as independent of the box size (the CG box here is larger).
    """
    if not ALLATOM.exists():
        return None, None
    rows = [r for r in json.loads(ALLATOM.read_text())["results"] if r["cores"] == cores]
    if not rows:
        return None, None
    best = max(rows, key=lambda r: r["ns_per_day"])
    return best["atom_steps_per_s"], best["time_step_fs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beads", type=int, nargs="+", default=[10000])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["tables", "plugin-f32", "plugin-f64"],
        choices=list(CASE_TIME_STEP_FS),
    )
    parser.add_argument("--table-steps", type=int, default=200, help="steps of table runs")
    parser.add_argument("--plugin-steps", type=int, default=10, help="steps of plugin runs")
    args = parser.parse_args()
    report = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_1min": round(os.getloadavg()[0], 1),
        "results": [],
    }
    print(
        f"{'case':>16} {'beads':>7} {'ranks':>5} {'cores':>5} {'steps':>5} {'bead-steps/s':>13} "
        f"{'speed-up':>9}"
    )
    for n_beads in args.beads:
        for case in args.cases:
            for ranks in args.ranks:
                steps = args.table_steps if case.startswith("tables") else args.plugin_steps
                result = run_case(case, n_beads, ranks, steps)
                aa, aa_time_step = allatom_rate(result["cores"])
                result["speedup_vs_allatom"] = (
                    None
                    if aa is None
                    else (result["bead_steps_per_s"] / 2 * result["time_step_fs"])
                    / (aa / 8 * aa_time_step)
                )
                report["results"].append(result)
                speed = result["speedup_vs_allatom"]
                print(
                    f"{case:>16} {result['beads']:>7} {ranks:>5} {result['cores']:>5} "
                    f"{result['steps']:>5} "
                    f"{result['bead_steps_per_s']:>13.3g} "
                    f"{'n/a' if speed is None else f'{speed:.3g}':>9}",
                    flush=True,
                )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(RESULTS.read_text())["runs"] if RESULTS.exists() else []
    write_text_atomic(RESULTS, json.dumps({"runs": [*runs, report]}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
