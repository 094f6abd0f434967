"""Does a thermostat change diffusion? CG ethane D under each NVT thermostat vs NVE.

The shipped classical model (``data/ethane_classical.pt``) on the 432-bead box of the last
reference frame (mapped, with its velocities, as the demo starts), equilibrated with the ASE
engine's default NVT (Bussi), then from that one state runs of equal length:

* ``ase-bussi``: ASE NVT, Bussi stochastic velocity rescaling, default τ (the default);
* ``ase-nve``: ASE NVE, velocity Verlet (the baseline: dynamics untouched);
* ``ase-langevin``: ASE NVT, Langevin, friction 0.01/fs;
* ``lammps-nvt``: LAMMPS NVT, the engine's default (Nosé–Hoover chain, 100 steps damping);
* ``lammps-nve``: LAMMPS NVE (tells the engine's share of a difference from the thermostat's).

D of the molecules' centres of mass from the MSD (:func:`ase_cg.analysis.msd`,
:func:`ase_cg.analysis.diffusion_coefficient`, fit over 10–50 % of the lags) in each of
``--blocks`` consecutive blocks of a run; D ± error is the mean ± standard error of the block
values. Prints a table with the ratio to NVE (errors propagated) and saves it as JSON.

Usage: ``nice python bench/bench_thermostat_diffusion.py [--steps 1200] [--blocks 3]
[--runs ase-bussi ...] [--seed 1] [--output bench/results/thermostat_diffusion.json]``
(about 5 min CPU on one core at the defaults: ASE ~0.05 s per step, LAMMPS tables ~8 s a run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from _cg_runs import machine, write_json

from ase_cg import shipped_data
from ase_cg.analysis import diffusion_coefficient, msd
from ase_cg.io import read_h5md
from ase_cg.pipeline import simulate

RESULTS = Path(__file__).resolve().parent / "results"
#: name → simulate() keywords of each run
RUNS = {
    "ase-bussi": {"engine": "ase", "ensemble": "nvt", "thermostat": "bussi"},
    "ase-nve": {"engine": "ase", "ensemble": "nve"},
    "ase-langevin": {
        "engine": "ase",
        "ensemble": "nvt",
        "thermostat": "langevin",
        "friction": 0.01,
    },
    "lammps-nvt": {"engine": "lammps", "ensemble": "nvt"},
    "lammps-nve": {"engine": "lammps", "ensemble": "nve"},
}
BASELINE = "ase-nve"


def block_diffusion(path: Path, n_blocks: int) -> tuple[float, float, list[float]]:
    """D of molecule centres in each block of a trajectory: mean, standard error, values (Å²/ps)."""
    frames = read_h5md(path, index=":")
    values = []
    for block in np.array_split(np.arange(len(frames)), n_blocks):
        lags, msd_a2 = msd([frames[i] for i in block], by_molecule=True)
        values.append(1000.0 * diffusion_coefficient(lags, msd_a2).a2_per_fs)
    values = np.asarray(values)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n_blocks)), values.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200, help="steps of 2 fs per run")
    parser.add_argument("--equilibration", type=int, default=200, help="Bussi steps first")
    parser.add_argument("--interval", type=int, default=5, help="steps between stored frames")
    parser.add_argument("--blocks", type=int, default=3, help="blocks per run for the error")
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS), help="runs made")
    parser.add_argument("--seed", type=int, default=1, help="seed of equilibration and noise")
    parser.add_argument("--output", type=Path, default=RESULTS / "thermostat_diffusion.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = shipped_data("ethane_classical.pt")
    common = {"time_step_fs": 2.0, "seed": args.seed, "progress": False}
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        start = work / "equilibrated.h5"
        reference = shipped_data("ethane_aa.h5")
        summary = simulate(model, start=reference, output=start, steps=args.equilibration,
                           interval=args.equilibration, **common)  # fmt: skip
        print(f"equilibration: {summary}", flush=True)
        for name in args.runs:
            options = RUNS[name]
            output = work / f"{name}.h5"
            summary = simulate(model, start=start, output=output, steps=args.steps,
                               interval=args.interval, **options, **common)  # fmt: skip
            d, err, blocks = block_diffusion(output, args.blocks)
            rows[name] = {"D_A2_per_ps": d, "error": err, "blocks": blocks,
                          "temperature_K": summary.temperature_K,
                          "thermostat": summary.thermostat, "wall_s": summary.wall_s}  # fmt: skip
            print(f"{name}: D = {d:.4f} ± {err:.4f} Å²/ps, T = {summary.temperature_K:.1f} K "
                  f"({summary.thermostat})", flush=True)  # fmt: skip
    base = rows.get(BASELINE, {"D_A2_per_ps": np.nan, "error": np.nan})
    print(f"\n| run | thermostat | T (K) | D (Å²/ps) | D / D_{BASELINE} |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        ratio = row["D_A2_per_ps"] / base["D_A2_per_ps"]
        ratio_err = ratio * np.hypot(row["error"] / row["D_A2_per_ps"],
                                     base["error"] / base["D_A2_per_ps"])  # fmt: skip
        row["ratio_to_baseline"], row["ratio_error"] = ratio, ratio_err
        print(
            f"| {name} | {row['thermostat']} | {row['temperature_K']:.1f} | "
            f"{row['D_A2_per_ps']:.3f} ± {row['error']:.3f} | "
            + (f"{ratio:.2f} ± {ratio_err:.2f} |" if BASELINE in rows else "— |")
        )
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": vars(args) | {"output": str(args.output), "baseline": BASELINE},
        "runs": rows,
    }
    write_json(args.output, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
