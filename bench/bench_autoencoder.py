"""Learned mappings: how often the auto-encoder finds the chemical beads, and what they are worth.

1. Ethane, 2 beads, seeds 0–4 (default :class:`~ase_cg.autoencoder.AutoencoderConfig`): count
   the seeds whose assignment is {C + its 3 H} | {C + its 3 H}; per seed whether the beads are
   connected in the bond graph and its time; time of the five restarts.
2. Propane, 3 beads, seeds 0–4: the same checks (each carbon with its hydrogens).
3. Force-matching quality: the learned ethane mapping and the hand-made CH3|CH3 mapping
   (``data/ethane_mapping.json``) map the same all-atom trajectory; a classical spline fit
   (:func:`ase_cg.fitting.fit_classical`) on each gives a held-out fraction of force variance
   unexplained (FVU).

The all-atom references are generated with :func:`ase_cg.reference.generate_reference` unless
given. Prints a Markdown section (paste it under "Learned mapping" in ``BENCHMARKS.md``) and
writes the numbers as JSON to ``--json`` when given.

Usage: ``.venv/bin/python bench/bench_autoencoder.py [--work DIR] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ase_cg.autoencoder import AutoencoderConfig, learn_mapping
from ase_cg.fitting import ClassicalConfig, fit_classical
from ase_cg.io import H5MDTrajectory
from ase_cg.mapping import CGMapping, map_trajectory
from ase_cg.reference import generate_reference

ROOT = Path(__file__).resolve().parents[1]


def chemical_beads(template, groups) -> bool:
    """Every bead one carbon with exactly the hydrogens bonded to it."""
    symbols = template.get_chemical_symbols()
    distances = template.get_all_distances()
    carbons = [j for j, s in enumerate(symbols) if s == "C"]
    for group in groups:
        heavy = [j for j in group if j in carbons]
        if len(heavy) != 1:
            return False
        bonded = {
            j for j in range(len(symbols)) if j not in carbons and distances[heavy[0], j] < 1.3
        }
        if {j for j in group if j not in carbons} != bonded:
            return False
    return True


def reference(work: Path, molecule: str, n_molecules: int, production_ps: float) -> Path:
    path = work / f"{molecule}_{n_molecules}.h5"
    if not path.exists():
        generate_reference(
            molecule,
            output=path,
            n_molecules=n_molecules,
            equilibration_ps=0.5,
            production_ps=production_ps,
            stride=20,
            progress=False,
        )
    return path


def learn(path: Path, n_beads: int, config: AutoencoderConfig) -> dict:
    started = time.perf_counter()
    result = learn_mapping(path, n_beads, config=config, seeds=range(5), progress=False)
    seconds = time.perf_counter() - started
    (name,) = result.mapping.molecule_types
    template = result.templates[name]
    symbols = template.get_chemical_symbols()
    runs = []
    for run in result.report["runs"]:
        runs.append(
            {
                "seed": run["seed"],
                "groups": run["groups"][name],
                "text": " | ".join(
                    " ".join(f"{symbols[j]}{j}" for j in g) for g in run["groups"][name]
                ),
                "chemical": chemical_beads(template, run["groups"][name]),
                "connected": run["connected"],
                "failed": run["failed"],
                "seconds": run["seconds"],
                "hardness": run["hardness"][name],
                "validation": run["validation"]["total"],
            }
        )
    return {
        "result": result,
        "seconds": seconds,
        "runs": runs,
        "best_seed": result.report["best_seed"],
        "best_chemical": chemical_beads(template, result.mapping.groups[name]),
        "selection": result.report["selection"],
        "n_frames": result.report["n_train_frames"] + result.report["n_validation_frames"],
    }


def fvu(aa_path: Path, mapping: CGMapping, work: Path, label: str) -> dict:
    cg_path = work / f"cg_{label}.h5"
    map_trajectory(aa_path, cg_path, mapping, progress=False)
    with H5MDTrajectory(aa_path) as trajectory:
        cell = trajectory.cells([0])[0]
    half = 0.5 * float(np.min(np.linalg.norm(cell, axis=1)))
    config = ClassicalConfig(pair_cutoff=min(10.0, half - 0.1), temperature=180.0)
    _, report = fit_classical(cg_path, mapping, config=config, progress=False)
    return {
        "validation_fvu": report["validation"]["all"]["fraction_unexplained"],
        "validation_force_mse": report["validation"]["all"]["force_mse"],
        "train_fvu": report["train"]["all"]["fraction_unexplained"],
        "pair_cutoff": config.pair_cutoff,
        "n_validation_frames": report["n_validation_frames"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="bench_autoencoder_work", help="folder for references")
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--fvu-molecules", type=int, default=64, help="ethane molecules (FVU)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    config = AutoencoderConfig()
    out = {"machine": platform.processor() or platform.machine(), "config": config.to_dict()}
    ethane = learn(reference(work, "ethane", 27, 2.0), 2, config)
    propane = learn(reference(work, "propane", 27, 2.0), 3, config)
    fvu_path = reference(work, "ethane", args.fvu_molecules, 4.0)
    learned = fvu(fvu_path, ethane["result"].mapping, work, "learned")
    hand = fvu(fvu_path, CGMapping.load(ROOT / "data" / "ethane_mapping.json"), work, "hand")
    for key, value in (("ethane", ethane), ("propane", propane)):
        out[key] = {k: v for k, v in value.items() if k != "result"}
    out["fvu"] = {"learned": learned, "hand_made": hand, "n_molecules": args.fvu_molecules}
    lines = []
    for key, value in (("Ethane, 2 beads", ethane), ("Propane, 3 beads", propane)):
        n_ok = sum(r["chemical"] for r in value["runs"])
        lines += [
            f"{key} (27 molecules, {value['n_frames']} frames): chemical beads in {n_ok} of 5 "
            f"seeds; 5 restarts took {value['seconds']:.0f} s; best seed {value['best_seed']} "
            f"({'chemical' if value['best_chemical'] else 'NOT chemical'}; "
            f"{value['selection']}).",
            "",
            "| seed | groups | chemical | connected | hardness | validation loss | time (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['seed']} | {r['text'].replace('|', chr(92) + '|')} | "
            f"{'yes' if r['chemical'] else 'no'} | {'yes' if r['connected'] else 'no'} | "
            f"{r['hardness']:.3f} | {r['validation']:.4f} | {r['seconds']:.0f} |"
            for r in value["runs"]
        ]
        lines.append("")
    lines += [
        f"Classical spline fit (pair cutoff {learned['pair_cutoff']:.1f} Å) on ethane "
        f"({args.fvu_molecules} molecules), held-out FVU: learned mapping "
        f"{learned['validation_fvu']:.4f}, hand-made CH3|CH3 {hand['validation_fvu']:.4f} "
        f"(train {learned['train_fvu']:.4f} / {hand['train_fvu']:.4f}).",
    ]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
