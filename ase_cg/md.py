"""CG molecular dynamics with ASE: integrators, blow-up detection, H5MD output.

* :func:`run_md` runs Bussi (stochastic velocity rescaling, the default, which keeps the
  dynamics and so the diffusion) or Langevin NVT, velocity Verlet (NVE) or isotropic MTK (NPT)
  dynamics with a :class:`~ase_cg.calculator.CGCalculator`, optional bond constraints (RATTLE,
  :mod:`ase_cg.constraints`), a progress bar with ns/day, H5MD output
  (:class:`ase_cg.io.H5MDWriter`) and checks after every step that stop the run with a
  :class:`MDBlowUpError` naming the step and the bead (non-finite positions or forces, beads
  closer than ``min_distance``, a jump of the total energy). The frames written before a
  blow-up stay in a valid file.

Start structures (new boxes, frames read from files, replicated boxes) are
:mod:`ase_cg.start`'s, bond constraints :mod:`ase_cg.constraints`'; :func:`build_cg_box`,
:func:`read_start`, :func:`repeat_molecules` and :func:`make_molecules_whole` are importable
from here too. Choosing between this ASE engine and LAMMPS (:mod:`lammps_interface.engine`) is
:func:`ase_cg.pipeline.simulate`'s, which ``ase-cg simulate`` calls.

Units at this interface: temperatures in K, pressures in bar, time step in fs, friction in
1/fs, densities in g/cm³; inside, everything is ASE's (Å, eV, amu, ASE time).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms, units
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg.analysis import density
from ase_cg.calculator import NonFiniteResultError
from ase_cg.constraints import ConstraintError, bond_constraint
from ase_cg.errors import ASECGError, InputError
from ase_cg.io import H5MDWriter
from ase_cg.neighbors import closest_pair
from ase_cg.start import build_cg_box, make_molecules_whole, read_start, repeat_molecules

__all__ = [
    "ENSEMBLES",
    "THERMOSTATS",
    "MDBlowUpError",
    "MDSummary",
    "build_cg_box",
    "make_molecules_whole",
    "read_start",
    "repeat_molecules",
    "run_md",
]

ENSEMBLES = ("nvt", "nve", "npt")
#: NVT thermostats of the ASE engine (the first is the default)
THERMOSTATS = ("bussi", "langevin")


class MDBlowUpError(ASECGError, RuntimeError):
    """A CG MD run became unphysical; ``step`` and ``bead`` say where.

    Attributes
    ----------
    step : int
        MD step at which the check failed.
    bead : int
        Index of the bead at fault (the closest pair's first bead, the bead with a non-finite
        value, or the bead with the largest force for an energy jump).
    summary : MDSummary
        What the run did up to the failure (the trajectory written so far is valid).
    """

    def __init__(self, message: str, step: int, bead: int, summary: MDSummary | None = None):
        super().__init__(message)
        self.step, self.bead, self.summary = step, bead, summary


@dataclass
class MDSummary:
    """What a CG MD run did (averages over the frames sampled every ``interval`` steps).

    Attributes
    ----------
    ensemble : str
    steps : int
        Steps completed.
    time_step_fs : float
    simulated_ps : float
    wall_s : float
    steps_per_s : float
    ns_per_day : float
    n_beads : int
    temperature_K : float
        Mean kinetic temperature.
    potential_energy_eV : float
        Mean potential energy.
    total_energy_drift_eV_per_bead : float
        (E_total(last) − E_total(first)) / n_beads; meaningful for NVE.
    density_g_cm3 : float
        Mean mass density (constant unless NPT).
    pressure_bar : float
        Mean pressure (virial + kinetic); NaN without a cell.
    trajectory : str or None
        H5MD file written.
    n_frames : int
        Frames in it.
    thermostat : str
        What held the temperature: ``"bussi"``, ``"langevin"``, ``"nose-hoover"`` (LAMMPS and
        NPT), ``"berendsen"`` (constrained NPT in ASE) or ``"none"`` (NVE).
    """

    ensemble: str
    steps: int
    time_step_fs: float
    simulated_ps: float
    wall_s: float
    steps_per_s: float
    ns_per_day: float
    n_beads: int
    temperature_K: float
    potential_energy_eV: float
    total_energy_drift_eV_per_bead: float
    density_g_cm3: float
    pressure_bar: float
    trajectory: str | None
    n_frames: int
    thermostat: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.ensemble.upper()}: {self.steps} steps × {self.time_step_fs:g} fs = "
            f"{self.simulated_ps:.3f} ps of {self.n_beads} beads in {self.wall_s:.1f} s "
            f"({self.steps_per_s:.1f} steps/s, {self.ns_per_day:.3f} ns/day); "
            f"T = {self.temperature_K:.1f} K, ⟨E_pot⟩ = {self.potential_energy_eV:.4f} eV, "
            f"ρ = {self.density_g_cm3:.4f} g/cm³, p = {self.pressure_bar:.1f} bar, "
            f"E_total drift = {self.total_energy_drift_eV_per_bead:.2e} eV/bead"
            + (f"; {self.n_frames} frames in {self.trajectory}" if self.trajectory else "")
        )


def _make_dynamics(
    atoms, ensemble, thermostat, time_step, temperature, pressure_bar, friction_fs, rng, constrained
):
    """The ASE integrator for ``ensemble``."""
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=time_step)
    if ensemble == "nvt" and thermostat == "bussi":
        # the relaxation time of LAMMPS's Nosé–Hoover in the exported decks: 100 steps
        return Bussi(
            atoms, timestep=time_step, temperature_K=temperature, taut=100 * time_step, rng=rng
        )
    if ensemble == "nvt":
        return Langevin(
            atoms,
            timestep=time_step,
            temperature_K=temperature,
            friction=friction_fs / units.fs,
            fixcm=False,
            rng=rng,
        )
    state = {"timestep": time_step, "temperature_K": temperature}
    state["pressure_au"] = pressure_bar * units.bar
    if constrained:
        # ASE's MTK barostat does not support constraints; Berendsen scales the box instead
        return NPTBerendsen(
            atoms,
            **state,
            taut=100 * time_step,
            taup=1000 * time_step,
            compressibility_au=4.57e-5 / units.bar,
        )
    return IsotropicMTKNPT(atoms, **state, tdamp=100 * time_step, pdamp=1000 * time_step)


def _thermostat_name(ensemble: str, thermostat: str, constrained: bool) -> str:
    """What holds the temperature in an ASE run (:attr:`MDSummary.thermostat`)."""
    if ensemble == "nve":
        return "none"
    if ensemble == "npt":
        return "berendsen" if constrained else "nose-hoover"
    return thermostat


class _Monitor:
    """Per-step blow-up checks, averages, trajectory frames and the progress bar."""

    def __init__(self, dyn, atoms, writer, interval, min_distance, max_energy_jump, progress):
        self.dyn, self.atoms, self.writer = dyn, atoms, writer
        self.interval, self.min_distance, self.max_energy_jump = (
            interval,
            min_distance,
            max_energy_jump,
        )
        self.progress = progress
        self.samples: dict[str, list[float]] = {
            "temperature": [],
            "energy": [],
            "total": [],
            "density": [],
            "pressure": [],
        }
        self.periodic = bool(np.all(atoms.pbc))
        self.first_total = None
        self.last_total = None
        self.first_step = self.steps_done = dyn.nsteps

    def _fail(self, why: str, bead: int) -> None:
        step = self.dyn.nsteps
        names = self.atoms.arrays.get(K.BEAD_TYPE)
        mols = self.atoms.arrays.get(K.MOL_ID)
        what = f"bead {bead}"
        if names is not None:
            what += f" ({names[bead]}"
            what += f", molecule {mols[bead]})" if mols is not None else ")"
        raise MDBlowUpError(
            f"CG MD blew up at step {step} (t = {step * self.dyn.dt / units.fs / 1000:.4f} ps): "
            f"{what} {why}. Lower the time step (now {self.dyn.dt / units.fs:g} fs), constrain "
            "the bonds, relax the start structure, or check the model in this region",
            step=step,
            bead=bead,
        )

    def check(self) -> None:
        """Stop with :class:`MDBlowUpError` if the current state is unphysical."""
        atoms = self.atoms
        positions = atoms.positions
        bad = ~np.isfinite(positions).all(axis=1)
        if bad.any():
            self._fail("has a non-finite position", int(np.flatnonzero(bad)[0]))
        bad = ~np.isfinite(atoms.get_momenta()).all(axis=1)
        if bad.any():
            self._fail("has a non-finite velocity", int(np.flatnonzero(bad)[0]))
        forces = atoms.calc.results.get("forces")
        if forces is None:
            forces = atoms.get_forces()
        bad = ~np.isfinite(forces).all(axis=1)
        if bad.any():
            self._fail("has a non-finite force", int(np.flatnonzero(bad)[0]))
        pair = closest_pair(positions, atoms.cell.array, self.periodic, self.min_distance)
        if pair is not None:
            self._fail(
                f"is {pair[2]:.3f} Å from bead {pair[1]} (closer than {self.min_distance} Å)",
                pair[0],
            )
        total = atoms.get_potential_energy() + atoms.get_kinetic_energy()
        if not np.isfinite(total):
            self._fail("has a non-finite energy", int(np.argmax(np.abs(forces).sum(axis=1))))
        if self.last_total is not None:
            jump = (total - self.last_total) / len(atoms)
            if abs(jump) > self.max_energy_jump:
                bead = int(np.argmax(np.linalg.norm(forces, axis=1)))
                self._fail(
                    f"has the largest force ({np.linalg.norm(forces[bead]):.3g} eV/Å) after the "
                    f"total energy jumped by {jump:.3g} eV per bead in one step (limit "
                    f"{self.max_energy_jump} eV per bead)",
                    bead,
                )
        self.last_total = total

    def sample(self) -> None:
        """Record averages and write a frame."""
        atoms = self.atoms
        energy = atoms.get_potential_energy()
        total = energy + atoms.get_kinetic_energy()
        if self.first_total is None:
            self.first_total = total
        self.samples["temperature"].append(atoms.get_temperature())
        self.samples["energy"].append(energy)
        self.samples["total"].append(total)
        observables = None
        if self.periodic:
            self.samples["density"].append(float(density(atoms)[0]))
            tensor = -atoms.get_stress(voigt=False, include_ideal_gas=True)  # Σmv⊗v/V + virial
            self.samples["pressure"].append(np.trace(tensor) / 3.0 / units.bar)
            observables = {"pressure": np.trace(tensor) / 3.0, "pressure_tensor": tensor}
        if self.writer is not None:
            self.writer.append(
                atoms.positions,
                atoms.cell.array if self.periodic else None,
                forces=atoms.get_forces(),
                velocities=atoms.get_velocities(),
                step=self.dyn.nsteps,
                time=self.dyn.nsteps * self.dyn.dt / units.fs,
                energy=energy,
                observables=observables,
            )

    def __call__(self) -> None:
        self.check()
        self.steps_done = self.dyn.nsteps
        if self.dyn.nsteps % self.interval == 0:
            self.sample()
        if self.progress is not None and self.dyn.nsteps > 0:
            self.progress.update(1)
            if self.dyn.nsteps % max(1, self.interval) == 0:
                elapsed = self.progress.format_dict["elapsed"] or 1e-9
                ns_day = self.dyn.nsteps * self.dyn.dt / units.fs * 1e-6 / elapsed * 86400
                self.progress.set_postfix(
                    ns_day=f"{ns_day:.3g}", T=f"{self.samples['temperature'][-1]:.0f}K"
                )


def run_md(
    atoms: Atoms,
    calculator,
    *,
    ensemble: str = "nvt",
    temperature: float = 180.0,
    pressure: float = 1.01325,
    time_step_fs: float = 2.0,
    steps: int = 1000,
    thermostat: str = "bussi",
    friction: float = 0.01,
    trajectory: str | os.PathLike | None = None,
    interval: int = 100,
    constrain_bonds: bool = False,
    seed: int | None = None,
    min_distance: float = 0.5,
    max_energy_jump: float = 0.1,
    progress: bool | None = None,
    first_step: int = 0,
) -> MDSummary:
    """Run CG molecular dynamics with ASE on ``atoms`` (changed in place).

    Velocities: kept if ``atoms`` carries momenta (e.g. a mapped all-atom frame), else drawn
    from the Maxwell–Boltzmann distribution at ``temperature``; the centre-of-mass motion is
    removed either way.

    Parameters
    ----------
    atoms : ase.Atoms
        CG beads with ``bead-type`` and ``mol-id`` arrays.
    calculator : CGCalculator
        Attached to ``atoms``.
    ensemble : {"nvt", "nve", "npt"}
        NVT with ``thermostat``; velocity Verlet; isotropic Martyna–Tobias–Klein barostat with
        Nosé–Hoover chains (damping 100 and 1000 time steps) — with ``constrain_bonds``,
        Berendsen (ASE's MTK integrator does not take constraints).
    thermostat : {"bussi", "langevin"}
        NVT only. ``"bussi"``: stochastic velocity rescaling (Bussi, Donadio & Parrinello,
        J. Chem. Phys. 126, 014101 (2007)), relaxation time 100 steps; it leaves the dynamics
        and so diffusion as they are. ``"langevin"``: friction on every bead, which slows
        diffusion (by about half for CG ethane at 0.01/fs).
    temperature : float, K
    pressure : float, bar
        NPT only.
    time_step_fs : float, fs
    steps : int
    friction : float, 1/fs
        Langevin friction (``thermostat="langevin"`` only).
    trajectory : path, optional
        H5MD file to write every ``interval`` steps (positions, velocities, forces, box,
        potential energy), frame by frame, each flushed to disk
        (:class:`~ase_cg.io.H5MDWriter` with ``incremental=True``): its root attribute
        ``complete`` is True once the run has ended (finished or stopped by an
        :class:`MDBlowUpError`), False if it was interrupted (signal, kill); the frames
        written before any of these stay in a valid file.
    interval : int
        Steps between frames and between samples of the averages.
    constrain_bonds : bool
        Hold the CG bonds at fixed lengths (RATTLE through ASE's FixBondLengths) — the stiff
        CG bonds then no longer limit the time step.
    seed : int, optional
        Seed of the velocities and of the Langevin noise.
    min_distance : float, Å
        Beads closer than this stop the run.
    max_energy_jump : float, eV per bead
        A change of the total energy larger than this in one step stops the run.
    progress : bool, optional
        Show a tqdm bar (default: only on a terminal).
    first_step : int
        Step number of the start state. > 0 continues an interrupted run: ``trajectory``
        must then be its incomplete file, whose last frame (step ``first_step``) is the start
        state; ``steps`` more steps are appended to it.

    Returns
    -------
    MDSummary

    Raises
    ------
    MDBlowUpError
        Naming the step and the bead; its ``summary`` covers the steps done.
    InputError
        Bad arguments (unknown ensemble, non-positive time step, ...).
    """
    ensemble = ensemble.lower()
    if ensemble not in ENSEMBLES:
        raise InputError(f"ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
    if thermostat not in THERMOSTATS:
        raise InputError(f"thermostat must be one of {THERMOSTATS}, got {thermostat!r}")
    for name, value in (("time_step_fs", time_step_fs), ("temperature", temperature)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive number, got {value!r}")
    if steps < 0 or interval < 1:
        raise InputError(f"steps must be ≥ 0 and interval ≥ 1, got {steps} and {interval}")
    if ensemble == "npt" and not np.all(atoms.pbc):
        raise InputError("NPT needs a periodic box: set atoms.cell and atoms.pbc = True")

    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    if constrain_bonds:
        bonds = calculator.model.topology(atoms).bonds
        if len(bonds) == 0:
            raise InputError("constrain_bonds=True, but the model gives these beads no bonds")
        atoms.set_constraint(bond_constraint(atoms, bonds))
    if atoms.has("momenta") and not np.all(np.isfinite(atoms.get_momenta())):
        bead = int(np.flatnonzero(~np.isfinite(atoms.get_momenta()).all(axis=1))[0])
        raise InputError(f"bead {bead} starts with a non-finite velocity; fix atoms.set_velocities")
    if not atoms.has("momenta") or not np.any(atoms.get_momenta()):
        thermalize_momenta(atoms, temperature, rng=rng)
    Stationary(atoms)
    if constrain_bonds:  # remove velocity components along the bonds
        atoms.set_momenta(atoms.get_momenta(), apply_constraint=True)

    time_step = time_step_fs * units.fs
    dyn = _make_dynamics(
        atoms,
        ensemble,
        thermostat,
        time_step,
        temperature,
        pressure,
        friction,
        rng,
        constrain_bonds,
    )
    dyn.nsteps = int(first_step)  # > 0: ASE neither samples nor logs the start state again
    writer = None
    if trajectory is not None and first_step > 0:
        writer = H5MDWriter.resume(trajectory)
    elif trajectory is not None:
        topology = calculator.model.topology(atoms)
        writer = H5MDWriter(
            trajectory,
            bead_types=np.asarray(atoms.arrays[K.BEAD_TYPE]).astype(str),
            masses=atoms.get_masses(),
            mol_ids=atoms.arrays.get(K.MOL_ID),
            bonds=topology.bonds if len(topology.bonds) else None,
            time_step=time_step_fs,
            pbc=atoms.pbc,
            triclinic=True if ensemble == "npt" else None,
            incremental=True,
        )
    show = _is_terminal() if progress is None else bool(progress)
    bar = tqdm(total=steps, unit="step", desc=f"CG MD {ensemble.upper()}", disable=not show)
    monitor = _Monitor(dyn, atoms, writer, interval, min_distance, max_energy_jump, bar)
    dyn.attach(monitor, interval=1)
    start = time.perf_counter()
    failure = None
    ended = False  # finished or stopped by a blow-up; not interrupted
    try:
        dyn.run(steps)
        ended = True
    except MDBlowUpError as error:
        failure, ended = error, True
    except (NonFiniteResultError, ConstraintError) as error:  # raised inside a step
        failure = MDBlowUpError(
            f"CG MD blew up at step {dyn.nsteps + 1}: {error}. Lower the time step (now "
            f"{time_step_fs:g} fs), relax the start structure, or check the model",
            step=dyn.nsteps + 1,
            bead=error.bead,
        )
        ended = True
    finally:
        bar.close()
        if writer is not None:
            if writer.n_frames:
                writer.close(complete=ended)
            else:
                writer.abort()
    wall = time.perf_counter() - start
    thermostat_name = _thermostat_name(ensemble, thermostat, constrain_bonds)
    summary = _summarise(
        monitor, ensemble, thermostat_name, time_step_fs, wall, atoms, trajectory, writer
    )
    if failure is not None:
        failure.summary = summary
        raise failure
    return summary


def _is_terminal() -> bool:
    return sys.stderr.isatty()


def _summarise(
    monitor, ensemble, thermostat, time_step_fs, wall, atoms, trajectory, writer
) -> MDSummary:
    s = monitor.samples

    def mean(values):
        return float(np.mean(values)) if values else float("nan")

    steps = monitor.steps_done - monitor.first_step
    simulated_ps = steps * time_step_fs / 1000.0
    drift = float("nan")
    if monitor.first_total is not None and len(s["total"]) > 1:
        drift = (s["total"][-1] - monitor.first_total) / len(atoms)
    return MDSummary(
        ensemble=ensemble,
        steps=steps,
        time_step_fs=float(time_step_fs),
        simulated_ps=simulated_ps,
        wall_s=wall,
        steps_per_s=steps / wall if wall > 0 else float("nan"),
        ns_per_day=simulated_ps * 1e-3 / wall * 86400 if wall > 0 else float("nan"),
        n_beads=len(atoms),
        temperature_K=mean(s["temperature"]),
        potential_energy_eV=mean(s["energy"]),
        total_energy_drift_eV_per_bead=drift,
        density_g_cm3=mean(s["density"]),
        pressure_bar=mean(s["pressure"]),
        trajectory=None if trajectory is None else str(trajectory),
        n_frames=0 if writer is None else writer.n_frames,
        thermostat=thermostat,
    )
