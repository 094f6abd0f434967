"""CG molecular dynamics with ASE: start boxes, integrators, blow-up detection, H5MD output.

* :func:`build_cg_box` fills a cubic periodic box with CG molecules at a given mass density:
  each molecule is its template (from the model's mapping) mapped to beads, randomly oriented,
  centred on a random site of a cubic lattice, and re-oriented until no two beads of different
  molecules are closer than a threshold.
* :func:`read_start` reads a start frame (a CG frame as it is, an all-atom one mapped), and
  :func:`repeat_molecules` replicates a box.
* :func:`run_md` runs Bussi (stochastic velocity rescaling, the default, which keeps the
  dynamics and so the diffusion) or Langevin NVT, velocity Verlet (NVE) or isotropic MTK (NPT)
  dynamics with a :class:`~ase_cg.calculator.CGCalculator`, optional bond constraints (ASE's
  :class:`~ase.constraints.FixBondLengths`, RATTLE), a progress bar with ns/day, H5MD output
  (:class:`ase_cg.io.H5MDWriter`) and checks after every step that stop the run with a
  :class:`MDBlowUpError` naming the step and the bead (non-finite positions or forces, beads
  closer than ``min_distance``, a jump of the total energy). The frames written before a
  blow-up stay in a valid file.

Choosing between this ASE engine and LAMMPS (:mod:`lammps_interface.engine`) is
:func:`ase_cg.pipeline.simulate`'s, which ``ase-cg simulate`` calls.

Units at this interface: temperatures in K, pressures in bar, time step in fs, friction in
1/fs, densities in g/cm³; inside, everything is ASE's (Å, eV, amu, ASE time).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.constraints import FixBondLengths
from ase.geometry import find_mic
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg.beads import set_bead_types
from ase_cg.calculator import NonFiniteResultError
from ase_cg.errors import ASECGError, InputError
from ase_cg.io import H5MDWriter, check_coordinates, read_h5md
from ase_cg.neighbors import closest_pair, neighbor_pairs
from ase_cg.units import AMU_PER_A3_TO_G_PER_CM3

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


def _mapping_of(model_or_mapping):
    """The :class:`~ase_cg.mapping.CGMapping` of a model (or the mapping itself)."""
    mapping = getattr(model_or_mapping, "mapping", model_or_mapping)
    if mapping is None or not hasattr(mapping, "templates"):
        raise InputError(
            "building a CG box needs molecule templates: give a CGMapping or a model that "
            "carries one (model.mapping is None; train or build the model with a mapping)"
        )
    return mapping


def density_of(atoms: Atoms) -> float:
    """Mass density of ``atoms`` in g/cm³."""
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3)


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3, 3) uniformly random rotation matrices (from random unit quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    ).transpose(2, 0, 1)


def build_cg_box(
    model_or_mapping,
    n_molecules: int | dict[str, int],
    density_g_cm3: float,
    *,
    seed: int | None = None,
    min_distance: float = 2.0,
    max_tries: int = 200,
) -> Atoms:
    """A cubic periodic box of randomly placed and oriented CG molecules.

    Parameters
    ----------
    model_or_mapping : CGModel or CGMapping
        Where the molecule templates, bead types and bead masses come from.
    n_molecules : int or dict of str to int
        Number of molecules; a dict ``{molecule type: count}`` for several types (an int needs
        a mapping with one molecule type).
    density_g_cm3 : float, g/cm³
        Mass density; fixes the box edge ``L = (M / ρ)^(1/3)``.
    seed : int, optional
        Seed of the placement (same seed, same box).
    min_distance : float, Å
        Smallest allowed distance between beads of different molecules.
    max_tries : int
        Rounds of re-orienting (then re-siting) the molecules that still overlap.

    Returns
    -------
    ase.Atoms
        ``numbers`` 0, bead masses (amu), positions wrapped into the box (Å), ``pbc`` True,
        ``arrays["mol-id"]`` (int) and ``arrays["bead-type"]`` (str); beads ordered molecule
        by molecule, template bead order within a molecule (as ``CGMapping.map`` gives).

    Raises
    ------
    InputError
        Unknown molecule type, non-positive count or density, or no overlap-free placement
        found (density too high for ``min_distance``).
    """
    mapping = _mapping_of(model_or_mapping)
    types = mapping.molecule_types
    if isinstance(n_molecules, dict):
        counts = {name: int(count) for name, count in n_molecules.items()}
        unknown = sorted(set(counts) - set(types))
        if unknown:
            raise InputError(f"molecule types {unknown} are not in the mapping (it has {types})")
    else:
        if len(types) != 1:
            raise InputError(
                f"the mapping has {len(types)} molecule types {types}: give n_molecules as a "
                "dict {molecule type: count}"
            )
        counts = {types[0]: int(n_molecules)}
    if any(count < 0 for count in counts.values()) or sum(counts.values()) == 0:
        raise InputError(f"n_molecules must be positive counts, got {counts}")
    if not (np.isfinite(density_g_cm3) and density_g_cm3 > 0):
        raise InputError(f"density_g_cm3 must be a positive number, got {density_g_cm3!r}")

    templates, bead_names, bead_masses = mapping.templates, mapping.bead_names, mapping.bead_masses
    shapes, names, masses, molecule_of = [], [], [], []
    for name, count in counts.items():
        template = templates[name]
        beads = mapping.position_matrix(name) @ template.positions
        beads -= beads.mean(axis=0)
        for _ in range(count):
            shapes.append(beads)
            names.extend(bead_names[name])
            masses.extend(bead_masses[b] for b in bead_names[name])
            molecule_of.extend([len(shapes) - 1] * len(beads))
    n_total = len(shapes)
    masses = np.asarray(masses, dtype=np.float64)
    molecule_of = np.asarray(molecule_of, dtype=np.int64)
    volume = masses.sum() * AMU_PER_A3_TO_G_PER_CM3 / density_g_cm3  # Å³
    edge = volume ** (1.0 / 3.0)
    cell = np.eye(3) * edge

    rng = np.random.default_rng(seed)
    n_side = int(np.ceil(n_total ** (1.0 / 3.0) - 1e-9))
    sites = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    order = rng.permutation(n_total)  # mix the molecule types over the lattice
    site_of = np.empty(n_total, dtype=np.int64)
    site_of[order] = rng.choice(len(sites), n_total, replace=False)
    centres = (sites[site_of] + 0.5) * (edge / n_side)
    rotations = _random_rotations(rng, n_total)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in shapes])])

    def place(molecules: np.ndarray) -> None:
        for m in molecules:
            positions[starts[m] : starts[m + 1]] = shapes[m] @ rotations[m].T + centres[m]

    positions = np.zeros((len(masses), 3))
    place(np.arange(n_total))
    for attempt in range(max_tries):
        i, j, _ = neighbor_pairs(positions, cell, True, min_distance)
        clash = molecule_of[i] != molecule_of[j]
        if not clash.any():
            break
        bad = np.unique(molecule_of[i[clash]])
        rotations[bad] = _random_rotations(rng, len(bad))
        if attempt >= max_tries // 2:  # orientations alone do not help: jitter the centres
            centres[bad] += rng.normal(0.0, 0.1 * edge / n_side, (len(bad), 3))
        place(bad)
    else:
        raise InputError(
            f"could not place {n_total} molecules at {density_g_cm3} g/cm³ (box edge "
            f"{edge:.2f} Å) with beads of different molecules ≥ {min_distance} Å apart after "
            f"{max_tries} tries; lower the density or min_distance"
        )
    atoms = Atoms(
        numbers=np.zeros(len(masses), dtype=int), positions=positions, cell=cell, pbc=True
    )
    atoms.set_masses(masses)
    atoms.wrap()
    atoms.arrays[K.MOL_ID] = molecule_of.copy()
    set_bead_types(atoms, names)
    return atoms


def _edge_colours(bonds: np.ndarray) -> list[np.ndarray]:
    """Split bonds into groups in which no two bonds share a bead (greedy edge colouring)."""
    colour_of = np.empty(len(bonds), dtype=np.int64)
    used: dict[int, set[int]] = {}
    for k, (a, b) in enumerate(bonds.tolist()):
        taken = used.setdefault(a, set()) | used.setdefault(b, set())
        colour = next(c for c in range(len(taken) + 1) if c not in taken)
        colour_of[k] = colour
        used[a].add(colour)
        used[b].add(colour)
    return [np.flatnonzero(colour_of == c) for c in range(colour_of.max(initial=-1) + 1)]


class FixedBondLengths(FixBondLengths):
    """ASE's :class:`~ase.constraints.FixBondLengths` (SHAKE/RATTLE), vectorised over bonds.

    ASE's class corrects one bond at a time in a Python loop, ~1 s per step for a few hundred
    bonds. Here the bonds are split into groups that share no bead (an edge colouring) and each
    group is corrected at once with the same per-bond formulas, group after group, until every
    correction is below ``tolerance``: the same Gauss–Seidel iteration, in NumPy.

    Parameters
    ----------
    pairs : (n_bonds, 2) int
    bondlengths : (n_bonds,) float, Å
    tolerance : float
        Largest relative correction accepted as converged.
    """

    def __init__(self, pairs, bondlengths, tolerance: float = 1e-12):
        super().__init__(pairs, tolerance=tolerance, bondlengths=np.asarray(bondlengths, float))
        self.pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self._colours = _edge_colours(self.pairs)

    def _bond_vectors(self, atoms) -> np.ndarray:
        """Minimum-image ``x_a − x_b`` (n_bonds, 3) at the positions before the update."""
        raw = atoms.positions[self.pairs[:, 0]] - atoms.positions[self.pairs[:, 1]]
        return find_mic(raw, atoms.cell, atoms.pbc)[0]

    def _fail(self, x: np.ndarray, group: np.ndarray, what: str):
        worst = group[int(np.argmax(np.abs(x)))]
        a, b = self.pairs[worst]
        error = ConstraintError(
            f"the {what} of bond {worst} (beads {a}-{b}) did not converge in {self.maxiter} "
            "iterations"
        )
        error.bead = int(a)
        return error

    def adjust_positions(self, atoms, new):
        masses = atoms.get_masses()
        old = atoms.positions
        d0 = self._bond_vectors(atoms)
        shift = d0 - (old[self.pairs[:, 0]] - old[self.pairs[:, 1]])
        for _ in range(self.maxiter):
            converged = True
            for group in self._colours:
                a, b = self.pairs[group, 0], self.pairs[group, 1]
                d1 = new[a] - new[b] + shift[group]
                x = 0.5 * (self.bondlengths[group] ** 2 - np.einsum("ij,ij->i", d1, d1))
                x /= np.einsum("ij,ij->i", d0[group], d1)
                if not np.all(np.isfinite(x)):
                    raise self._fail(np.where(np.isfinite(x), 0.0, np.inf), group, "position")
                if np.abs(x).max() > self.tolerance:
                    converged = False
                    reduced = 1.0 / (1.0 / masses[a] + 1.0 / masses[b])
                    step = (x * reduced)[:, None] * d0[group]
                    new[a] += step / masses[a, None]
                    new[b] -= step / masses[b, None]
            if converged:
                return
        raise self._fail(x, group, "position")

    def adjust_momenta(self, atoms, p):
        masses = atoms.get_masses()
        d = self._bond_vectors(atoms)
        for _ in range(self.maxiter):
            converged = True
            for group in self._colours:
                a, b = self.pairs[group, 0], self.pairs[group, 1]
                dv = p[a] / masses[a, None] - p[b] / masses[b, None]
                x = -np.einsum("ij,ij->i", dv, d[group]) / self.bondlengths[group] ** 2
                if np.abs(x).max() > self.tolerance:
                    converged = False
                    reduced = 1.0 / (1.0 / masses[a] + 1.0 / masses[b])
                    step = (x * reduced)[:, None] * d[group]
                    p[a] += step
                    p[b] -= step
            if converged:
                return
        raise self._fail(x, group, "velocity")


class ConstraintError(ASECGError, RuntimeError):
    """Bond constraints that could not be satisfied (the run is blowing up)."""

    bead: int = 0


def _bond_constraint(atoms: Atoms, bonds: np.ndarray) -> FixedBondLengths:
    """Bond constraints holding each bond at its type's mean length in ``atoms``.

    The length of each bond type (pair of bead-type names) is the mean over the bonds of that
    type, so a mapped all-atom frame's fluctuating bonds start from one length per type.
    """
    names = np.asarray(atoms.arrays[K.BEAD_TYPE]).astype(str)
    vectors, _ = find_mic(
        atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], atoms.cell, atoms.pbc
    )
    lengths = np.linalg.norm(vectors, axis=1)
    keys = np.array(["|".join(sorted(pair)) for pair in names[bonds]])
    target = np.empty(len(bonds))
    for key in np.unique(keys):
        target[keys == key] = lengths[keys == key].mean()
    return FixedBondLengths(bonds, target)


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
    if constrained:
        # ASE's MTK barostat does not support constraints; Berendsen scales the box instead
        return NPTBerendsen(
            atoms,
            timestep=time_step,
            temperature_K=temperature,
            pressure_au=pressure_bar * units.bar,
            taut=100 * time_step,
            taup=1000 * time_step,
            compressibility_au=4.57e-5 / units.bar,
        )
    return IsotropicMTKNPT(
        atoms,
        timestep=time_step,
        temperature_K=temperature,
        pressure_au=pressure_bar * units.bar,
        tdamp=100 * time_step,
        pdamp=1000 * time_step,
    )


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
            self.samples["density"].append(density_of(atoms))
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
        atoms.set_constraint(_bond_constraint(atoms, bonds))
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


def read_start(path: Path, frame: int, model) -> Atoms:
    """One frame of ``path`` as CG atoms (all-atom frames are mapped with the model's mapping)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such start structure")
    out_of_range = InputError(f"{path}: has no frame {frame} (out of range; -1 is the last)")
    if path.suffix.lower() in (".h5", ".h5md", ".hdf5"):
        try:
            atoms = read_h5md(path, index=frame)
        except IndexError:
            raise out_of_range from None
    else:
        try:
            atoms = ase.io.read(path, index=frame)
        except (IndexError, StopIteration):
            raise out_of_range from None
        except Exception as error:  # ASE's readers raise many types for a file they cannot read
            raise InputError(
                f"{path}: cannot read a structure from it ({type(error).__name__}: {error})"
            ) from None
    check_coordinates(atoms.positions[None], f"{path}: frame", lambda _: frame)
    if K.BEAD_TYPE in atoms.arrays:
        return atoms
    if model.mapping is None:
        raise InputError(
            f"{path}: frame {frame} has no bead types (an all-atom frame?) and the model has no "
            "mapping to map it with; give a CG start structure"
        )
    cg = model.mapping.map(atoms)
    cg.calc = None
    return cg


def make_molecules_whole(atoms: Atoms, bonds: np.ndarray) -> Atoms:
    """A copy of ``atoms`` with each molecule whole: bonded beads at minimum-image distance.

    Walks each molecule's bond graph breadth first from its lowest-index bead and moves every
    bead to the periodic image nearest its parent, so bonds that crossed the box boundary no
    longer do (chains longer than half the box stay correct, since only bonded distances are
    imaged).

    Parameters
    ----------
    atoms : Atoms
        Periodic CG configuration.
    bonds : (n_bonds, 2) int
        Bonded bead pairs.
    """
    whole = atoms.copy()
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    if len(bonds) == 0:
        return whole
    n = len(atoms)
    graph = coo_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n, n)).tocsr()
    positions = whole.get_positions()
    visited = np.zeros(n, dtype=bool)
    for root in np.unique(bonds):
        if visited[root]:
            continue
        order, parents = breadth_first_order(graph, root, directed=False)
        visited[order] = True
        for bead in order[1:]:  # parents come before children in breadth-first order
            parent = parents[bead]
            vector, _ = find_mic(positions[bead] - positions[parent], atoms.cell, atoms.pbc)
            positions[bead] = positions[parent] + vector
    whole.set_positions(positions)
    return whole


def repeat_molecules(atoms: Atoms, repeat, bonds: np.ndarray | None = None) -> Atoms:
    """``atoms`` replicated ``repeat`` = (n1, n2, n3) times, each copy's molecules with new ids.

    Molecules are first made whole along ``bonds`` (:func:`make_molecules_whole`): a bond that
    crossed the original box's boundary would otherwise span the repeated box. ASE's
    :meth:`~ase.Atoms.repeat` copies every per-atom array, so the copies would share molecule
    ids; here copy ``c`` gets ids shifted by ``c · (max id + 1)``. Velocities are copied as
    they are (the copies start correlated; a thermostat decorrelates them).

    Raises
    ------
    InputError
        If ``repeat`` is not three positive integers or ``atoms`` has no periodic cell.
    """
    counts = tuple(int(n) for n in np.atleast_1d(repeat))
    if len(counts) != 3 or min(counts) < 1 or not np.allclose(counts, np.atleast_1d(repeat)):
        raise InputError(f"repeat must be three positive integers, got {repeat!r}")
    if counts == (1, 1, 1):
        return atoms
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        raise InputError("repeat needs a start structure with a periodic 3-D cell")
    if bonds is not None:
        atoms = make_molecules_whole(atoms, bonds)
    n_copies = counts[0] * counts[1] * counts[2]
    mol_ids = atoms.arrays.get(K.MOL_ID)
    repeated = atoms.repeat(counts)
    if mol_ids is not None:
        stride = int(mol_ids.max()) + 1
        copy = np.repeat(np.arange(n_copies), len(atoms))
        repeated.arrays[K.MOL_ID] = np.tile(mol_ids, n_copies) + stride * copy
    repeated.wrap()
    return repeated
