"""Refine a CG model against its all-atom reference until structure and pressure both match.

Force matching gives the best forces, not the exact structure, and pins the pressure poorly (it
weighs the small tail forces by r³ρ²). :func:`refine` iterates

1. CG MD of the current model in NVT at the reference's temperature, from the reference's last
   frame (mapped), so at the reference's volume (:func:`ase_cg.pipeline.simulate`; LAMMPS by
   default);
2. compare: the maximum |g_CG − g_ref| of every bead-type RDF (intermolecular,
   :func:`ase_cg.analysis.rdf`) and the mean pressure (thermo output after the first
   ``equilibration_fraction`` of the run) against the reference pressure;
3. correct what is off: one IBI step where an RDF is off
   (:func:`ase_cg.fitting.structural_correction`, the ``correct-structure`` step), and a
   pressure ramp ``ΔV = A (1 − r/r_c)`` (:func:`ase_cg.fitting.pressure_correction`) where the
   pressure is off or the IBI term would move it, sized to the pressure error minus the IBI
   term's own first-order pressure, both measured on the run's frames;

until max |Δg| ≤ ``rdf_tolerance`` and |P − P_ref| ≤ ``pressure_tolerance``, or
``max_iterations`` runs. Corrections are pair splines appended to the model (classical or
neural), so the result exports to LAMMPS tables like the model itself. A model with a
three-body term (one-site water) can have that term's angular function refined too, in
iterations of its own (``RefineConfig.threebody_period``; the correction is made to the term
itself, which still exports to ``sw/angle/table``); the screened angle distribution then joins
the test (``angle_tolerance``). Everything goes to one folder; an interrupted refinement
started again with the same folder skips the iterations whose ``metrics.json`` is there::

    DIR/
    ├── reference_cg.h5        the reference mapped with the model's mapping (made once)
    ├── iter_00/
    │   ├── model.pt           the model run in this iteration (iter_00: the input model)
    │   ├── run.h5, run_lammps/    its CG MD run
    │   └── metrics.json       written last: the iteration is complete (after the next
    │                          iteration's model.pt, so a rerun with more iterations goes on)
    ├── iter_01/ …
    ├── iterations.csv         one row per complete iteration
    ├── progress.png           max |Δg|, pressure and density against the iteration
    └── model.pt               the refined model (the last iteration's)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units
from tqdm.auto import tqdm

from ase_cg._paths import atomic_path, write_text_atomic
from ase_cg.config import config_from_dict
from ase_cg.errors import InputError
from ase_cg.fitting import (
    pressure_correction,
    structural_correction,
    term_pressure,
    threebody_correction,
)
from ase_cg.io import H5MDTrajectory, read_h5md
from ase_cg.mapping import map_trajectory
from ase_cg.model import load_model, save_model
from ase_cg.pipeline import cg_temperature, simulate
from ase_cg.units import AMU_PER_A3_TO_G_PER_CM3
from lammps_interface.run import read_thermo

__all__ = ["RefineConfig", "refine"]


@dataclass
class RefineConfig:
    """Settings of :func:`refine` (K, bar, fs, Å)."""

    max_iterations: int = 8
    """CG runs at most (the last one may end unconverged)."""

    rdf_tolerance: float = 0.03
    """Converged when every bead-type RDF has max |g_CG − g_ref| at most this."""

    pressure_tolerance: float = 25.0
    """Converged when |P_CG − P_ref| is at most this, bar."""

    temperature: float | None = None
    """K; ``None``: the reference's ``parameters/ase_cg_reference`` temperature, else the
    kinetic temperature of its mapped velocities."""

    pressure: float | None = None
    """Reference pressure, bar; ``None``: the mean of the reference's
    ``observables/pressure``."""

    engine: str = "lammps"
    """``"lammps"`` or ``"ase"`` (:func:`ase_cg.pipeline.simulate`)."""

    steps: int = 10000
    """MD steps per iteration."""

    time_step_fs: float = 2.0
    """MD time step, fs."""

    interval: int = 50
    """Steps between stored frames (and LAMMPS thermo lines)."""

    equilibration_fraction: float = 0.2
    """Leading fraction of each run left out of the pressure and the RDFs."""

    repeat: tuple[int, int, int] = (1, 1, 1)
    """Replicate the start frame (bigger system, smaller pressure noise)."""

    ranks: int = 1
    """MPI ranks of the LAMMPS engine."""

    seed: int = 1
    """Seed of the initial velocities (iteration i uses seed + i)."""

    r_max: float | None = None
    """RDF range, Å; ``None``: 13 Å or 49 % of the shortest box width if smaller."""

    ibi_damping: float = 1.0
    """α of each IBI step."""

    pressure_damping: float = 1.0
    """Fraction of the remaining pressure error each ramp is sized for."""

    correction_cutoff: float | None = None
    """Range of the IBI term and the ramp, Å; ``None``: the model's largest pair cutoff (≥ 8)."""

    threebody_period: int = 0
    """Models with a three-body term: the iterations ``0, p, 2p, …`` correct its angular
    function (:func:`ase_cg.fitting.threebody_correction`) instead of the pair terms, the others
    the pairs only (and any iteration whose RDF and pressure already hold, the angles), and the
    angle distribution joins the convergence test. ``0``: the three-body term stays as it is
    (its angle error is still reported). Correcting angles and pairs in the same iteration
    makes one-site water oscillate; one angular step per three iterations converges."""

    threebody_damping: float = 0.5
    """α of each angular step."""

    angle_tolerance: float = 0.001
    """Converged (with ``threebody_period``) when every type triple's screened angle
    distribution has max |p_CG − p_ref| at most this, 1/degree. For one-site water the two
    halves of the SPC/E reference differ by 0.0003, and 0.001 holds the mean tetrahedral order
    q within 0.02 of it (0.0029 left it 0.038 below)."""

    def __post_init__(self) -> None:
        self.repeat = tuple(int(n) for n in self.repeat)
        problems = []
        if self.max_iterations < 1 or self.steps < 1 or self.interval < 1:
            problems.append("max_iterations, steps and interval must be >= 1")
        if self.engine not in ("lammps", "ase"):
            problems.append(f"engine must be 'lammps' or 'ase', got {self.engine!r}")
        for name in ("rdf_tolerance", "pressure_tolerance", "time_step_fs"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.equilibration_fraction < 1:
            problems.append("equilibration_fraction must be in [0, 1)")
        if not all(0 < d <= 1 for d in (self.ibi_damping, self.pressure_damping,
                                         self.threebody_damping)):  # fmt: skip
            problems.append("ibi_damping, pressure_damping and threebody_damping must be in (0, 1]")
        if self.threebody_period < 0:
            problems.append(f"threebody_period must be >= 0, got {self.threebody_period}")
        if not self.angle_tolerance > 0:
            problems.append(f"angle_tolerance must be > 0, got {self.angle_tolerance}")
        if len(self.repeat) != 3 or min(self.repeat) < 1:
            problems.append(f"repeat must be three integers >= 1, got {self.repeat}")
        if problems:
            raise InputError("invalid RefineConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict) -> RefineConfig:
        """Build from a dict (e.g. parsed YAML); unknown keys are an error."""
        return config_from_dict(data, cls, source="refine config", error=InputError)


def _reference_state(reference: Path, config: RefineConfig, mapping) -> tuple[float, float]:
    """``(temperature K, pressure bar)`` of the reference (config values win)."""
    with H5MDTrajectory(reference) as trajectory:
        temperature = config.temperature
        if temperature is None:
            temperature = trajectory.parameters.get("ase_cg_reference", {}).get("temperature_K")
        if temperature is None:  # atoms or beads: 3 k_B T / 2 of kinetic energy each
            temperature = cg_temperature(trajectory, slice(0, min(trajectory.n_frames, 50)))
        if temperature is None:
            raise InputError(f"{reference}: no temperature known; give --temperature K")
        pressure = config.pressure
        if pressure is None:
            if "pressure" not in trajectory.observable_names:
                raise InputError(
                    f"{reference}: no observables/pressure, so the reference pressure is unknown; "
                    "give it (--pressure BAR), or add it with `ase-cg reference --add-pressure "
                    f"{reference}` (all-atom files of ase_cg's reference liquids)"
                )
            pressure = float(np.mean(trajectory.observable("pressure")) / units.bar)
    return float(temperature), float(pressure)


def _mapped_reference(reference: Path, directory: Path, mapping) -> Path:
    """The reference as CG frames: itself if it is CG, else mapped once into ``directory``."""
    with H5MDTrajectory(reference) as trajectory:
        if trajectory.bead_types is not None:
            return reference
    target = directory / "reference_cg.h5"
    if not target.exists():
        if mapping is None:
            raise InputError(
                f"{reference}: all-atom, and the model has no mapping to map it with; give a CG "
                "(mapped) reference"
            )
        map_trajectory(reference, target, mapping, progress=False)
    return target


def _run(model_path: Path, start: Path, folder: Path, config: RefineConfig, iteration: int,
         temperature: float) -> dict:  # fmt: skip
    """CG NVT run of ``model_path``; mean pressure (bar), its block error and the density."""
    output = folder / "run.h5"
    summary = simulate(
        model_path,
        engine=config.engine,
        start=start,
        output=output,
        ensemble="nvt",
        temperature=temperature,
        time_step_fs=config.time_step_fs,
        steps=config.steps,
        interval=config.interval,
        seed=config.seed + iteration,
        progress=False,
        ranks=config.ranks,
        repeat=config.repeat,
    )
    if config.engine == "lammps":
        pressures = read_thermo(folder / "run_lammps" / "log.lammps")["pressure"]
        pressures = pressures[int(round(config.equilibration_fraction * len(pressures))) :]
        blocks = np.array_split(pressures, min(5, len(pressures)))
        error = float(np.std([b.mean() for b in blocks], ddof=1) / np.sqrt(len(blocks)))
        pressure = float(pressures.mean())
    else:
        pressure, error = float(summary.pressure_bar), float("nan")
    return {
        "pressure_bar": pressure,
        "pressure_error_bar": error,
        "density_g_cm3": float(summary.density_g_cm3),
        "temperature_K": float(summary.temperature_K),
    }


def _has_threebody(model) -> bool:
    return any(getattr(term, "kind", None) == "threebody" for term in model.terms)


def _equilibrated(run: Path, fraction: float) -> list:
    """The frames of ``run`` after the leading ``fraction``."""
    frames = read_h5md(run)
    return frames[int(round(fraction * len(frames))) :]


def _density(path: Path) -> float:
    """Mean mass density of an H5MD trajectory, g/cm³."""
    with H5MDTrajectory(path) as trajectory:
        volumes = np.abs(np.linalg.det(trajectory.cells()))
        return float(trajectory.masses.sum() / volumes.mean() * AMU_PER_A3_TO_G_PER_CM3)


def _write_table(directory: Path, rows: list[dict]) -> None:
    """``iterations.csv`` and ``progress.png`` from the complete iterations' metrics."""
    columns = [
        "iteration", "max_abs_dg", "pressure_bar", "pressure_error_bar", "reference_pressure_bar",
        "density_g_cm3", "reference_density_g_cm3", "angle_max_abs_dp_per_deg", "rdf_ok",
        "pressure_ok", "angle_ok", "converged", "ibi_applied", "ramp_requested_bar",
        "threebody_applied",
    ]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(directory / "iterations.csv", buffer.getvalue())

    # heavy: matplotlib is imported only when a figure is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    angles = [row.get("angle_max_abs_dp_per_deg") for row in rows]
    panels = 3 if all(value is None for value in angles) else 4
    figure = Figure(figsize=(3.7 * panels, 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels)
    x = [row["iteration"] for row in rows]
    last = rows[-1]
    axes[0].plot(x, [row["max_abs_dg"] for row in rows], "o-")
    axes[0].axhline(last["rdf_tolerance"], color="0.6", ls="--", label="tolerance")
    axes[0].set_ylabel("RDF max |Δg|")
    axes[1].errorbar(x, [row["pressure_bar"] for row in rows],
                     yerr=[row["pressure_error_bar"] for row in rows], fmt="o-")  # fmt: skip
    reference = last["reference_pressure_bar"]
    tolerance = last["pressure_tolerance_bar"]
    axes[1].axhspan(reference - tolerance, reference + tolerance, color="0.85", label="reference")
    axes[1].set_ylabel("NVT pressure (bar)")
    axes[2].plot(x, [row["density_g_cm3"] for row in rows], "o-", label="CG")
    axes[2].axhline(last["reference_density_g_cm3"], color="0.6", ls="--", label="reference")
    axes[2].set_ylabel("density (g/cm³)")
    if panels == 4:
        axes[3].plot(x, [np.nan if value is None else value for value in angles], "o-")
        axes[3].axhline(last["angle_tolerance_per_deg"], color="0.6", ls="--", label="tolerance")
        axes[3].set_ylabel("angle distribution max |Δp| (1/deg)")
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("iteration")
        axis.legend(fontsize=8)
    with atomic_path(directory / "progress.png", suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110)


def refine(
    model,
    reference: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    config: RefineConfig | None = None,
    progress: bool | None = None,
) -> dict:
    """Iterate CG MD → compare → correct until the RDFs and the pressure match the reference.

    Parameters
    ----------
    model : path or CGModel
        The starting model (classical or neural; with a mapping when ``reference`` is
        all-atom).
    reference : path
        Reference H5MD: all-atom (mapped with the model's mapping) or CG. Its last frame
        starts every run; its temperature and pressure (``observables/pressure``) are the
        targets unless ``config`` gives them.
    output_dir : path
        Folder of the iterations (layout in the module docstring); reusing it resumes.
    config : RefineConfig, optional
    progress : bool or None
        Progress bar over iterations (``None``: only on a terminal).

    Returns
    -------
    dict
        ``"model"`` (path of the refined model, ``DIR/model.pt``), ``"converged"`` (bool),
        ``"iterations"`` (the metrics of every iteration, as in ``iterations.csv``).
    """
    config = RefineConfig() if config is None else config
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    reference = Path(reference)
    first = directory / "iter_00" / "model.pt"
    if not first.exists():
        first.parent.mkdir(exist_ok=True)
        save_model(load_model(model) if isinstance(model, str | os.PathLike) else model, first)
    start_model = load_model(first)
    temperature, reference_pressure = _reference_state(reference, config, start_model.mapping)
    reference_cg = _mapped_reference(reference, directory, start_model.mapping)
    reference_density = _density(reference_cg)
    rows: list[dict] = []
    bar = tqdm(total=config.max_iterations, desc="refine", unit="iteration",
               disable=None if progress is None else not progress)  # fmt: skip
    try:
        for iteration in range(config.max_iterations):
            folder = directory / f"iter_{iteration:02d}"
            metrics_path = folder / "metrics.json"
            if metrics_path.exists():  # finished before an interruption
                rows.append(json.loads(metrics_path.read_text()))
                bar.update(1)
                if rows[-1]["converged"]:
                    break
                continue
            model_path = folder / "model.pt"
            if not model_path.exists():
                raise InputError(
                    f"{folder}: no model.pt to run; the folder is not from refine (or was "
                    "edited): start again in an empty folder"
                )
            current = load_model(model_path)
            run = _run(model_path, reference, folder, config, iteration, temperature)
            frames = _equilibrated(folder / "run.h5", config.equilibration_fraction)
            r_max = config.r_max
            if r_max is None:
                widths = frames[0].cell.array
                r_max = min(13.0, 0.49 * float(min(np.linalg.norm(widths, axis=1))))
            corrected = structural_correction(
                current,
                reference_cg,
                frames,
                temperature=temperature,
                cutoff=config.correction_cutoff,
                r_max=r_max,
                damping=config.ibi_damping,
            )
            dg = corrected.provenance["structural_correction"]["max_abs_difference_before"]
            max_dg = max(dg.values())
            pressure_error = run["pressure_bar"] - reference_pressure
            rdf_ok = max_dg <= config.rdf_tolerance
            pressure_ok = abs(pressure_error) <= config.pressure_tolerance
            angular, max_dp, angle_ok = None, None, True
            if _has_threebody(current):
                angular = threebody_correction(
                    current, reference_cg, frames, temperature=temperature,
                    damping=config.threebody_damping,
                )  # fmt: skip
                dp = angular.provenance["threebody_correction"]["max_abs_difference_before_per_deg"]
                max_dp = max(dp.values())
                angle_ok = config.threebody_period == 0 or max_dp <= config.angle_tolerance
            angular_turn = not angle_ok and (
                iteration % config.threebody_period == 0 or (rdf_ok and pressure_ok)
            )
            row = {
                "iteration": iteration,
                "max_abs_dg": max_dg,
                "max_abs_dg_per_pair": dg,
                **run,
                "reference_pressure_bar": reference_pressure,
                "reference_density_g_cm3": reference_density,
                "temperature_target_K": temperature,
                "rdf_tolerance": config.rdf_tolerance,
                "pressure_tolerance_bar": config.pressure_tolerance,
                "angle_max_abs_dp_per_deg": max_dp,
                "angle_tolerance_per_deg": config.angle_tolerance,
                "rdf_ok": rdf_ok,
                "pressure_ok": pressure_ok,
                "angle_ok": angle_ok,
                "converged": rdf_ok and pressure_ok and angle_ok,
                "ibi_applied": False,
                "ramp_requested_bar": 0.0,
                "threebody_applied": angular_turn,
            }
            following = None
            if angular_turn:
                following = angular
            elif not row["converged"]:
                following = current
                remaining = -pressure_error * config.pressure_damping
                if not rdf_ok:
                    following = corrected
                    remaining -= term_pressure(following, following.terms[-1], frames)
                    row["ibi_applied"] = True
                if not pressure_ok or row["ibi_applied"]:
                    following = pressure_correction(
                        following, frames, remaining, cutoff=config.correction_cutoff
                    )
                    row["ramp_requested_bar"] = remaining
            if following is not None:  # also after the last iteration: a rerun may go on
                following.provenance["refine"] = {"iteration": iteration + 1}
                next_folder = directory / f"iter_{iteration + 1:02d}"
                next_folder.mkdir(exist_ok=True)
                save_model(following, next_folder / "model.pt")
            write_text_atomic(metrics_path, json.dumps(row, indent=1))
            rows.append(row)
            _write_table(directory, rows)
            bar.update(1)
            bar.set_postfix(dg=f"{max_dg:.3f}", dP=f"{pressure_error:+.0f} bar")
            if row["converged"]:
                break
    finally:
        bar.close()
    if rows:
        _write_table(directory, rows)
    last = directory / f"iter_{rows[-1]['iteration']:02d}" / "model.pt"
    save_model(load_model(last), directory / "model.pt")
    return {
        "model": directory / "model.pt",
        "converged": bool(rows[-1]["converged"]),
        "iterations": rows,
        "config": dataclasses.asdict(config),
    }
