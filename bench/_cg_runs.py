"""Shared by the CG speed benchmarks: export a shipped model, run a timed LAMMPS deck, parse it.

A run: :func:`lammps_interface.export` of the model and an equilibrated start box
(:func:`start_box`) into a temporary folder, then a deck that includes the exported
``system.in``, settles at 2 fs (NVT, bonds free or constrained as the case says), switches to
the case's time step and ensemble, runs a warm-up and the timed stretch. LAMMPS runs as
``lmp`` (``mpiexec -n ranks lmp`` for several ranks) in a subprocess, with the plugin's
environment when the model has a many-body term.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ase_cg._paths import write_text_atomic
from lammps_interface import export
from lammps_interface.plugin import lammps_plugin_env

ROOT = Path(__file__).resolve().parents[1]
CLASSICAL = ROOT / "data" / "ethane_classical.pt"
NEURAL = ROOT / "data" / "ethane_neural.pt"
#: State point of the reference liquid (saturated liquid ethane).
TEMPERATURE = 180.0
DENSITY = 0.5495
#: Steps at 2 fs (NVT, classical tables) that take the packed box to the liquid.
EQUILIBRATION_STEPS = 2000
#: Steps at 2 fs (NVT, the case's model and constraints) before each case's own time step.
SETTLE_STEPS = 200
#: Boltzmann constant, kcal/(mol K) (LAMMPS units real).
KB_REAL = 0.0019872042586

_LOOP = re.compile(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
_DANGEROUS = re.compile(r"Dangerous builds\s*=\s*(\d+)")


@dataclass
class Case:
    """One CG run.

    Attributes
    ----------
    name : str
    model : str or CGModel
        Path of the model file, or the model.
    time_step : float, fs
    constrain : bool
        Bonds held by SHAKE (RATTLE in NVE).
    ensemble : {"nvt", "nve"}
        Of the timed stretch (the equilibration is always NVT).
    threads : int
        OpenMP / LibTorch threads per rank.
    ranks : int
        MPI ranks.
    suffix : str or None
        ``-sf`` accelerator suffix of the ``lmp`` command (``"omp"``: ``pair_style table/omp``…).
    respa : str or None
        ``run_style respa`` arguments (e.g. ``"2 3 bond 1 pair 2"``), None: velocity Verlet.
    export_options : dict
        Passed to :func:`lammps_interface.export` (``pair_cutoff``, ``skin``, …).
    """

    name: str
    model: object
    time_step: float
    constrain: bool = False
    ensemble: str = "nvt"
    threads: int = 1
    ranks: int = 1
    suffix: str | None = None
    respa: str | None = None
    export_options: dict = field(default_factory=dict)

    @property
    def cores(self) -> int:
        return self.ranks * self.threads


def load(path) -> object:
    from ase_cg.model import load_model

    return load_model(path)


def start_box(n_molecules: int, seed: int = 1):
    """CG ethane liquid: ``n_molecules`` packed at the reference density, then
    :data:`EQUILIBRATION_STEPS` NVT steps of 2 fs with the shipped classical model (LAMMPS)."""
    from ase_cg.io import read_h5md
    from ase_cg.md import build_cg_box
    from lammps_interface.run import run_deck

    model = load(CLASSICAL)
    atoms = build_cg_box(model, n_molecules, DENSITY, seed=seed)
    with tempfile.TemporaryDirectory(prefix="bench_cg_start_") as tmp:
        export(
            model,
            tmp,
            atoms=atoms,
            temperature=TEMPERATURE,
            timestep=2.0,
            steps=EQUILIBRATION_STEPS,
            dump_every=EQUILIBRATION_STEPS,
        )
        return read_h5md(run_deck(tmp, variables={"seed": str(seed)})["h5md"])[-1]


def _deck(case: Case, constraint: str, steps: int, warmup: int, thermo: int, settle: int) -> str:
    nvt = f"fix integrate all nvt temp {TEMPERATURE} {TEMPERATURE} {100 * case.time_step}"
    lines = [
        "include system.in",
        "velocity all create 180.0 4928459 mom yes rot yes dist gaussian",
        f"fix integrate all nvt temp {TEMPERATURE} {TEMPERATURE} 200.0",
        constraint,
        "timestep 2.0",
        "thermo_style custom step temp pe ke etotal press",
        "thermo 1000",
        f"run {settle}",
        "unfix integrate",
    ]
    if constraint:
        lines.append("unfix constrain")
    lines.append(nvt if case.ensemble == "nvt" else "fix integrate all nve")
    if constraint:
        lines.append(
            constraint.replace("shake", "rattle") if case.ensemble == "nve" else constraint
        )
    if case.respa:
        lines.append(f"run_style respa {case.respa}")
    lines += [
        f"timestep {case.time_step!r}",
        "reset_timestep 0",
        f"run {warmup}",
        f"thermo {thermo}",
        f"run {steps}",
        "",
    ]
    return "\n".join(line for line in lines if line)


def run(
    case: Case,
    atoms,
    steps: int,
    *,
    warmup: int = 10,
    thermo: int = 0,
    settle: int = SETTLE_STEPS,
    keep: Path | None = None,
) -> dict:
    """Export ``case`` with the start box ``atoms``, run it, return its numbers.

    ``settle`` steps of 2 fs NVT come first, then ``warmup`` and the timed ``steps`` at the
    case's time step (thermo every ``thermo`` steps if given).

    Returns
    -------
    dict
        ``case``, ``beads``, ``cores``, ``time_step_fs``, ``steps``, ``seconds`` (timed run),
        ``bead_steps_per_s``, ``ns_per_day``, ``dangerous_builds``, ``pair_cutoff`` (Å, of the
        pair table) and, with ``thermo``, ``thermo``: the timed run's rows
        ``{"step", "temp", "poteng", "kineng", "toteng", "press"}`` as lists (units real).
    """
    model = load(case.model) if isinstance(case.model, str | Path) else case.model
    with tempfile.TemporaryDirectory(prefix="bench_cg_") as tmp:
        folder = Path(tmp) if keep is None else keep
        folder.mkdir(parents=True, exist_ok=True)
        export(
            model,
            folder,
            atoms=atoms,
            temperature=TEMPERATURE,
            timestep=case.time_step,
            constrain_bonds=case.constrain,
            **case.export_options,
        )
        constraint = next(
            (
                line
                for line in (folder / "in.cg").read_text().splitlines()
                if "fix constrain" in line
            ),
            "",
        )
        cutoff = re.search(r"# pair table cutoff (\S+)", (folder / "system.in").read_text())
        (folder / "in.bench").write_text(
            _deck(case, constraint, steps, warmup, thermo or steps, settle)
        )
        env = lammps_plugin_env() if "cgtorch" in (folder / "system.in").read_text() else None
        env = dict(env or _lammps_env())
        env["OMP_NUM_THREADS"] = str(case.threads)
        lmp = shutil.which("lmp", path=env["PATH"])
        command = [lmp, "-in", "in.bench", "-log", "log.lammps", "-nocite"]
        if case.ranks > 1:
            command = [shutil.which("mpiexec", path=env["PATH"]), "-n", str(case.ranks), *command]
        if case.suffix:
            command += ["-sf", case.suffix, "-pk", case.suffix, str(case.threads)]
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        log = (folder / "log.lammps").read_text() if (folder / "log.lammps").exists() else ""
        if result.returncode != 0 or not _LOOP.search(log):
            errors = [line for line in (result.stdout + log).splitlines() if "ERROR" in line]
            return {"case": case.name, "time_step_fs": case.time_step, "failed": errors[-1:] or
                    [result.stdout[-500:]]}  # fmt: skip
    loop = list(_LOOP.finditer(log))[-1]
    seconds, n_steps, n_beads = float(loop.group(1)), int(loop.group(3)), int(loop.group(4))
    dangerous = _DANGEROUS.findall(log)
    out = {
        "case": case.name,
        "beads": n_beads,
        "cores": case.cores,
        "time_step_fs": case.time_step,
        "steps": n_steps,
        "seconds": seconds,
        "bead_steps_per_s": n_steps * n_beads / seconds,
        "ns_per_day": n_steps * case.time_step * 1e-6 / seconds * 86400.0,
        "dangerous_builds": int(dangerous[-1]) if dangerous else None,
        "pair_cutoff": float(cutoff.group(1)) if cutoff else None,
    }
    if thermo:
        out["thermo"] = _thermo_rows(log[: loop.start()])
    return out


def _lammps_env() -> dict:
    from ase_cg._lammps import lammps_subprocess_env

    return lammps_subprocess_env()


def _thermo_rows(log: str) -> dict[str, list[float]]:
    """Thermo table of the last run in ``log`` (text up to its ``Loop time`` line)."""
    header = log.rfind("   Step ")
    lines = log[header:].splitlines()
    names = [n.lower() for n in lines[0].split()]
    rows = []
    for line in lines[1:]:
        words = line.split()
        if len(words) != len(names):
            break
        try:
            rows.append([float(w) for w in words])
        except ValueError:
            break
    table = np.array(rows)
    return {name: table[:, k].tolist() for k, name in enumerate(names)}


def energy_drift(rows: dict, time_step: float, dof: int) -> float:
    """Linear drift of the total energy in k_B T per degree of freedom per ns.

    Parameters
    ----------
    rows : dict
        Thermo rows of an NVE run (``step``, ``toteng`` in kcal/mol).
    time_step : float, fs
    dof : int
        Degrees of freedom (3 per bead, minus constraints and the 3 of the centre of mass).
    """
    t_ns = np.asarray(rows["step"]) * time_step * 1e-6
    slope = np.polyfit(t_ns, np.asarray(rows["toteng"]), 1)[0]
    return float(slope / (KB_REAL * TEMPERATURE) / dof)


def machine() -> dict:
    """CPU model, cores, 1-minute load average and platform of this machine."""
    model = platform.processor() or platform.machine()
    if shutil.which("lscpu"):
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        found = re.search(r"^Model name:\s*(.+)$", text, re.MULTILINE)
        model = found.group(1).strip() if found else model
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
    }


def report_header() -> dict:
    """``command``, ``date`` (UTC) and ``machine`` (:func:`machine`): the head of a report."""
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }


def write_json(path: Path, payload: str) -> None:
    """Write ``payload`` to ``path`` atomically (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, payload)
