"""Multiscale coarse-graining: classical spline potentials fitted by force matching.

The classical CG energy is linear in its spline coefficients ``c``, so the CG force on every bead
of every frame is ``F = G(x) c`` with ``G`` the (negative) derivative of the basis functions
(built analytically: basis derivative × coordinate gradient, scattered onto beads). Force
matching (Izvekov & Voth 2005; Noid et al. 2008) minimises

.. math::

    L(c) = \\frac{1}{3 n} \\sum_{\\text{frames}} |F_{ref} − G c|^2
           + λ_s \\sum_{\\text{functions}} h^{-5} |Δ^3 c|^2 + λ_r |c|^2

over the ``n`` bead-frames, whose minimum solves the normal equations
``(GᵀG/3n + R) c = Gᵀ F_ref / 3n``. ``GᵀG`` and ``GᵀF_ref`` are summed over chunks of frames, so
memory does not grow with the trajectory. The smoothness term ``h^{-5}|Δ³c|²`` approximates
``∫ (d²F/dx²)² dx`` (third differences of the energy coefficients = second derivative of the
force): it leaves harmonic (linear-force) terms unbiased. The small ridge ``λ_r`` makes the
system definite for basis functions the data does not reach.

After the solve, each combination's sampled range ``[lower, upper]`` is where its histogram has at
least ``min_samples`` samples per interval; outside it the terms extrapolate repulsively (see
:mod:`ase_cg.potentials.classical`). Combinations sampled by no data keep zero coefficients and
get only the extrapolation walls.

Pressure matching (Das & Andersen, J. Chem. Phys. 132, 164106 (2010)): force matching pins the
forces, not the pressure, which weighs the small long-range forces by r³ρ²; an FM model can be
off by hundreds of bar. The virial of the spline model is linear in ``c`` too, so the
instantaneous virial equation of every training frame is one more least-squares row. With the
all-atom pressure ``P_t`` of frame ``t`` (kinetic + virial, ``observables/pressure`` of the
file, or ``ClassicalConfig.pressure``), the CG model in CG MD at the same temperature has the
pressure

.. math::

    P^{CG} = \\frac{1}{3V} \\Big(\\sum_I M_I |V_I|^2 + W(R)\\Big), \\qquad
    W(R) = \\sum_I R_I \\cdot F_I = -\\sum_{\\text{distances } x} x\\, V'(x) = w(R) \\cdot c,

(angles and dihedrals do not change under a uniform dilation and add nothing to ``W``;
periodic images through the pair vectors). Equal mean pressures need
``⟨w c⟩ = ⟨3 V P_t − K_t⟩`` with ``K_t`` the CG kinetic term: ``Σ_I M_I |V_I|²`` of the mapped
bead velocities when the frames have them (its mean is ``3 N_beads k_B T`` for a centre-of-mass
map, as in CG MD), else ``3 N_beads k_B T`` with ``ClassicalConfig.temperature``. Each frame
adds the row

.. math::

    λ_P \\,\\big(\\tfrac{w_t c + K_t}{3 V_t} − P_t\\big)^2 \\quad(\\text{pressures in bar})

averaged over frames, next to the mean squared force residual per component (eV²/Å²), so
``λ_P = pressure_weight`` is in (eV/Å)² per bar². The per-frame fluctuation of ``P_t`` that no
CG configuration explains adds a constant to the loss; the mean mismatch shrinks as λ_P grows.
For an FM model the pressure direction is soft (tail forces are small), so a λ_P that matches
the mean pressure to a bar changes the force residual by well under 1 %; too large a λ_P fits the
virial's frame-to-frame fluctuation as well and costs force residual. The report gives both
(``"pressure"``, ``"train"``).

Held-out frames (the last ``validation_fraction`` of the selected frames, a time block) are
evaluated through the finished :class:`~ase_cg.potentials.CGModel`, extrapolation included, and
reported as the fraction of mapped-force variance left unexplained, per bead type.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from ase import units
from ase.units import kB
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg._paths import atomic_path
from ase_cg.config import config_from_dict
from ase_cg.errors import InputError
from ase_cg.potentials._splines import basis_weights
from ase_cg.potentials.base import CGModel, SystemTopology, build_graph, make_batch
from ase_cg.potentials.classical import SPLINE_TERMS, SplineTerm
from ase_cg.trajectory import cg_trajectory, is_cg, open_trajectory, opened

__all__ = [
    "ArrayTrajectory",
    "ClassicalConfig",
    "FitError",
    "fit_classical",
    "ibi_pair_correction",
    "plot_classical",
    "pressure_correction",
    "pressure_ramp",
    "structural_correction",
    "term_pressure",
]


class FitError(InputError):
    """Input that the classical fit cannot use (no forces, wrong sizes, bad config)."""


@dataclass
class ClassicalConfig:
    """Settings of :func:`fit_classical` (all lengths Å, angles rad, energies eV)."""

    pair_cutoff: float = 10.0
    """Cutoff of the pair splines, Å (past the first minimum of the bead RDF; 10 Å for CG
    ethane, whose first minimum is at 6.6 Å). Energy and force go smoothly to zero there."""

    pair_spacing: float = 0.1
    """Knot spacing of the pair splines, Å."""

    pair_r_min: float | None = None
    """Start of the pair grid, Å; ``None``: 0.5 Å below the closest non-excluded approach seen in
    up to 20 frames spread over the training frames. Closer pair samples are left out of the
    fit."""

    bond_spacing: float = 0.01
    """Knot spacing of the bond splines, Å (CG bonds can be stiff: ethane's fluctuates ±0.03 Å)."""

    bond_range: tuple[float, float] | None = None
    """Bond grid ``(start, stop)``, Å; ``None``: the bond lengths seen in up to 20 frames, widened
    by a quarter of their range plus two knots each side. Bonds outside are left out of the fit."""

    angle_spacing: float = 0.05
    """Knot spacing of the angle splines, rad."""

    angle_range: tuple[float, float] | None = None
    """Angle grid ``(start, stop)`` within ``[0, π]``, rad; ``None``: as for ``bond_range``."""

    dihedral_intervals: int = 36
    """Intervals of the periodic dihedral splines over 2π."""

    terms: tuple[str, ...] = ("pair", "bond", "angle", "dihedral")
    """Which term kinds to fit; bonded kinds the topology does not have are skipped."""

    smoothness: float = 1e-6
    """λ_s of the curvature-of-force penalty ``λ_s ∫ (d²F/dx²)² dx``, in (coordinate unit)³;
    relative to the mean squared force error per component (eV²/Å²). 0 switches it off."""

    ridge: float = 1e-8
    """λ_r of the ridge penalty ``λ_r |c|²`` (1/Å² relative to the force error)."""

    min_samples: int = 10
    """Samples per grid interval needed to count as sampled; outside, the terms extrapolate."""

    start: int = 0
    """First frame used."""

    stop: int | None = None
    """Frame after the last one used (``None``: to the end)."""

    stride: int = 1
    """Use every ``stride``-th frame (neighbouring MD frames are correlated)."""

    validation_fraction: float = 0.2
    """Fraction of the selected frames held out, as one block at the end (time-block split)."""

    chunk_size: int = 10
    """Frames per chunk. Peak memory ≈ chunk_size · 3 · n_beads · n_coefficients · 8 bytes."""

    temperature: float = 300.0
    """Temperature of the data, K: the extrapolation walls rise at least by k_B T per
    ``wall_width`` (force floor k_B T / wall_width, stiffness floor k_B T / wall_width²)."""

    wall_width: float = 0.1
    """Width of the extrapolation wall (Å for distances, rad for angles), see ``temperature``."""

    exclusion_bonds: int = 3
    """Pair splines skip bead pairs at most this many bonds apart (3: 1-2, 1-3, 1-4)."""

    pressure_weight: float = 0.0
    """λ_P of the pressure-matching rows (module docstring), (eV/Å)² per bar²; 0: plain
    force matching. The right size depends on the system: for CG ethane (432 beads, 240
    frames) 1e-9 moves the training pressure from +484 bar off to 0.002 bar off at a force
    residual 2e-5 higher (relative); 1e-7 costs 3 % of residual, 1e-6 11 % (the rows then fit
    the virial's frame-to-frame fluctuation too). Check ``report["pressure"]`` and the residual."""

    pressure: float | None = None
    """Reference pressure, bar, for every frame; ``None``: the trajectory's per-frame
    ``observables/pressure`` (needed when ``pressure_weight`` > 0)."""

    def __post_init__(self) -> None:
        self.terms = tuple(self.terms)
        for name in ("bond_range", "angle_range"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, (float(value[0]), float(value[1])))
        problems = []
        unknown = sorted(set(self.terms) - set(SPLINE_TERMS))
        if unknown:
            problems.append(f"terms {unknown} unknown (choose from {sorted(SPLINE_TERMS)})")
        for name in ("pair_cutoff", "pair_spacing", "bond_spacing", "angle_spacing"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("smoothness", "ridge", "pressure_weight"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("stride", "chunk_size", "dihedral_intervals"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.validation_fraction < 1:
            problems.append(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.pressure is not None and not math.isfinite(self.pressure):
            problems.append(f"pressure must be a finite number of bar, got {self.pressure}")
        if not self.temperature > 0 or not self.wall_width > 0:
            problems.append("temperature and wall_width must be > 0")
        for name in ("bond_range", "angle_range"):
            value = getattr(self, name)
            if value is not None and not value[1] > value[0]:
                problems.append(f"{name} needs stop > start, got {value}")
        if problems:
            raise FitError("invalid ClassicalConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict) -> ClassicalConfig:
        """Build from a dict (e.g. parsed YAML); unknown keys are an error, not ignored."""
        return config_from_dict(data, cls, source="classical config", error=FitError)

    def to_dict(self) -> dict:
        """JSON-able dict (tuples as lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclass
class ArrayTrajectory:
    """CG frames held in memory, with the array interface of :class:`ase_cg.io.H5MDTrajectory`.

    Parameters
    ----------
    positions_array : (n_frames, n_beads, 3) float, Å
    cells_array : (n_frames, 3, 3) or (3, 3) float, Å
        Cell vectors as rows; zeros for a non-periodic system.
    forces_array : (n_frames, n_beads, 3) float, eV/Å
        Mapped reference forces.
    bead_types : (n_beads,) str, optional
        Bead-type names.
    pressures_array : (n_frames,) float, eV/Å³, optional
        Reference pressure of each frame (kinetic + virial), read as
        ``observable("pressure")``.
    velocities_array : (n_frames, n_beads, 3) float, Å per ASE time unit, optional
    masses : (n_beads,) float, amu, optional
        Bead masses (with velocities: the kinetic term of pressure matching).
    """

    positions_array: np.ndarray
    cells_array: np.ndarray
    forces_array: np.ndarray
    bead_types: np.ndarray | None = None
    pressures_array: np.ndarray | None = None
    velocities_array: np.ndarray | None = None
    masses: np.ndarray | None = None
    has_forces: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        self.positions_array = np.asarray(self.positions_array, dtype=np.float64)
        self.forces_array = np.asarray(self.forces_array, dtype=np.float64)
        cells = np.asarray(self.cells_array, dtype=np.float64)
        if self.positions_array.ndim != 3 or self.positions_array.shape[2] != 3:
            raise FitError(
                f"positions must be (n_frames, n_beads, 3), got {self.positions_array.shape}"
            )
        if self.forces_array.shape != self.positions_array.shape:
            raise FitError(
                f"forces {self.forces_array.shape} must have the shape of positions "
                f"{self.positions_array.shape}"
            )
        if cells.shape == (3, 3):
            cells = np.broadcast_to(cells, (self.n_frames, 3, 3))
        if cells.shape != (self.n_frames, 3, 3):
            raise FitError(f"cells must be (3, 3) or (n_frames, 3, 3), got {cells.shape}")
        self.cells_array = np.ascontiguousarray(cells)
        if self.pressures_array is not None:
            self.pressures_array = np.asarray(self.pressures_array, dtype=np.float64)
            if self.pressures_array.shape != (self.n_frames,):
                raise FitError(
                    f"pressures must be (n_frames,) = ({self.n_frames},), got "
                    f"{self.pressures_array.shape}"
                )
        if (self.velocities_array is None) != (self.masses is None):
            raise FitError("ArrayTrajectory: give velocities and masses together")
        if self.velocities_array is not None:
            self.velocities_array = np.asarray(self.velocities_array, dtype=np.float64)
            self.masses = np.asarray(self.masses, dtype=np.float64)
            if self.velocities_array.shape != self.positions_array.shape or self.masses.shape != (
                self.n_atoms,
            ):
                raise FitError(
                    f"velocities {self.velocities_array.shape} must have the shape of positions "
                    f"and masses {self.masses.shape} be (n_beads,)"
                )
        for name in ("positions_array", "forces_array", "cells_array", "pressures_array"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                raise FitError(f"ArrayTrajectory: {name.removesuffix('_array')} has NaN or inf")

    @property
    def n_frames(self) -> int:
        return self.positions_array.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.positions_array.shape[1]

    @property
    def pbc(self) -> bool:
        return bool(np.any(self.cells_array != 0))

    def positions(self, frames=None) -> np.ndarray:
        return self.positions_array[slice(None) if frames is None else frames]

    def forces(self, frames=None) -> np.ndarray:
        return self.forces_array[slice(None) if frames is None else frames]

    def cells(self, frames=None) -> np.ndarray:
        return self.cells_array[slice(None) if frames is None else frames]

    @property
    def has_velocities(self) -> bool:
        return self.velocities_array is not None

    def velocities(self, frames=None) -> np.ndarray:
        return self.velocities_array[slice(None) if frames is None else frames]

    @property
    def observable_names(self) -> tuple[str, ...]:
        return () if self.pressures_array is None else ("pressure",)

    def observable(self, name: str, frames=None) -> np.ndarray:
        if name not in self.observable_names:
            raise FitError(f"ArrayTrajectory: no observable {name!r}")
        return self.pressures_array[slice(None) if frames is None else frames]


# --- inputs --------------------------------------------------------------------------------------
def _open_trajectory(trajectory, mapping_or_topology):
    """``(source, owned)``: CG frames with the trajectory array interface; all-atom frames
    are mapped with a :class:`~ase_cg.mapping.CGMapping` (:func:`ase_cg.trajectory.cg_trajectory`).
    """
    if isinstance(trajectory, str | os.PathLike):
        source = open_trajectory(trajectory)
        owned = True
    else:
        for name in ("positions", "forces", "cells", "n_frames", "n_atoms"):
            if not hasattr(trajectory, name):
                raise FitError(
                    f"trajectory must be a trajectory file path, an ase_cg.trajectory object "
                    f"or an ArrayTrajectory; got {type(trajectory).__name__} (no {name!r})"
                )
        source, owned = trajectory, False
    if is_cg(source) or isinstance(mapping_or_topology, SystemTopology):
        return source, owned
    try:
        return cg_trajectory(source, mapping_or_topology, what="force matching"), owned
    except BaseException:
        if owned:
            source.close()
        raise


def _describe(source) -> str:
    return str(getattr(source, "path", type(source).__name__))


def _resolve_topology(source, mapping_or_topology, bead_type_names, exclusion_bonds):
    """``(bead_type_names, SystemTopology, mapping or None)`` for the fit."""
    where = _describe(source)
    if isinstance(mapping_or_topology, SystemTopology):
        topology = mapping_or_topology
        if topology.exclusion_bonds != exclusion_bonds:
            topology = SystemTopology(
                topology.bead_type_index,
                topology.bonds,
                topology.angles,
                topology.dihedrals,
                exclusion_bonds,
            )
        n_types = int(topology.bead_type_index.max()) + 1 if topology.n_beads else 0
        file_types = getattr(source, "bead_types", None)
        if bead_type_names is None and file_types is not None:
            bead_type_names = sorted(set(map(str, file_types)))
            lookup = {name: i for i, name in enumerate(bead_type_names)}
            from_file = np.array([lookup[str(t)] for t in file_types])
            if not np.array_equal(from_file, topology.bead_type_index):
                raise FitError(
                    f"{where}: the bead types in the file do not match the topology's "
                    "bead_type_index (sorted type names index the types); pass bead_type_names"
                )
        if bead_type_names is None:
            bead_type_names = [f"B{i}" for i in range(n_types)]
        bead_type_names = list(map(str, bead_type_names))
        if len(bead_type_names) < n_types:
            raise FitError(
                f"topology uses {n_types} bead types but bead_type_names has only "
                f"{len(bead_type_names)}: {bead_type_names}"
            )
        return bead_type_names, topology, None
    mapping = mapping_or_topology
    if not hasattr(mapping, "topology") or not hasattr(mapping, "bead_types"):
        raise FitError(
            "mapping_or_topology must be an ase_cg.mapping.CGMapping or a SystemTopology, "
            f"got {type(mapping).__name__}"
        )
    try:
        atoms = source[0]
    except TypeError:
        raise FitError(
            f"{where}: a CGMapping needs a trajectory that yields ase.Atoms (a CG H5MD file); "
            "with arrays, pass a SystemTopology instead"
        ) from None
    names = list(mapping.bead_types)
    per_bead = atoms.arrays.get(K.BEAD_TYPE)
    if per_bead is None or K.MOL_ID not in atoms.arrays:
        raise FitError(
            f"{where}: CG frames need bead-type names and molecule ids; map the all-atom "
            "trajectory with ase_cg.mapping.map_trajectory (ase-cg map) first"
        )
    lookup = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(map(str, per_bead)) - set(lookup))
    if unknown:
        raise FitError(
            f"{where}: bead types {unknown} are not in the mapping (it has {names}); "
            "use the mapping the trajectory was made with"
        )
    topo = mapping.topology(atoms)
    topology = SystemTopology(
        np.array([lookup[str(t)] for t in per_bead]),
        topo["bonds"],
        topo["angles"],
        topo["dihedrals"],
        exclusion_bonds,
    )
    return names, topology, mapping


def _selections(indices: np.ndarray, chunk_size: int):
    """Chunks of frame indices as slices where contiguous (one HDF5 hyperslab each)."""
    for first in range(0, len(indices), chunk_size):
        chunk = indices[first : first + chunk_size]
        if len(chunk) > 1 and np.all(np.diff(chunk) == 1):
            yield slice(int(chunk[0]), int(chunk[-1]) + 1), len(chunk)
        elif len(chunk) == 1:
            yield slice(int(chunk[0]), int(chunk[0]) + 1), 1
        else:
            yield chunk, len(chunk)


def _graphs(source, indices, topology, cutoff, pbc, chunk_size, disable, description):
    """Yield ``(graph, reference_forces (n, 3), n_frames, selection)`` per chunk of frames."""
    bar = tqdm(total=len(indices), desc=description, unit="frame", disable=disable)
    try:
        for selection, n in _selections(indices, chunk_size):
            positions = source.positions(selection)
            cells = source.cells(selection)
            forces = source.forces(selection)
            batch = make_batch(positions, cells, topology, cutoff, pbc=pbc)
            graph = build_graph(batch, batch[K.POSITIONS], batch[K.CELL])
            yield graph, torch.as_tensor(forces.reshape(-1, 3), dtype=torch.float64), n, selection
            bar.update(n)
    finally:
        bar.close()


# --- grids -----------------------------------------------------------------------------------
def _grid_from_range(low, high, spacing, clip=(-math.inf, math.inf)) -> tuple[float, float, int]:
    """Grid over ``[low, high]`` widened by a quarter of the range plus two knots each side (the
    range comes from a subset of frames; the rest may reach a little further)."""
    margin = 2 * spacing + 0.25 * (high - low)
    start = max(low - margin, clip[0])
    stop = min(high + margin, clip[1])
    n = max(1, math.ceil((stop - start) / spacing - 1e-9))
    return start, stop, n


def _scan_ranges(source, indices, topology, config, pbc, kinds, disable, n_scan=20):
    """Min/max of each coordinate kind over up to ``n_scan`` frames spread over ``indices``."""
    probes = {
        "pair": SPLINE_TERMS["pair"](1, 0.0, config.pair_cutoff, 1),
        "bond": SPLINE_TERMS["bond"](1, 0.0, 1.0, 1),
        "angle": SPLINE_TERMS["angle"](1, 0.0, math.pi, 1),
    }
    subset = indices[np.unique(np.linspace(0, len(indices) - 1, n_scan).round().astype(int))]
    ranges = {kind: [math.inf, -math.inf] for kind in kinds}
    cutoff = config.pair_cutoff if "pair" in kinds else 0.0
    for graph, _, _, _ in _graphs(
        source, subset, topology, cutoff, pbc, config.chunk_size, disable, "scan ranges"
    ):
        graph = graph._replace(bead_types=torch.zeros_like(graph.bead_types))
        for kind in kinds:
            x = probes[kind].design_coordinates(graph)[0]
            if len(x):
                ranges[kind][0] = min(ranges[kind][0], float(x.min()))
                ranges[kind][1] = max(ranges[kind][1], float(x.max()))
    return ranges


def _build_terms(n_types, topology, config, ranges) -> list[SplineTerm]:
    floors = {
        "force_floor": kB * config.temperature / config.wall_width,
        "stiffness_floor": kB * config.temperature / config.wall_width**2,
    }
    terms = []
    if "pair" in config.terms:
        if config.pair_r_min is not None:
            r_min = config.pair_r_min
        elif math.isfinite(ranges.get("pair", [math.inf])[0]):
            r_min = max(ranges["pair"][0] - 0.5, 0.0)  # scanned on a subset: leave room
        else:
            r_min = 0.5 * config.pair_cutoff
        h = config.pair_spacing
        n = max(4, math.ceil((config.pair_cutoff - r_min) / h - 1e-9))
        start = config.pair_cutoff - n * h
        if start < 0:
            n = int(config.pair_cutoff // h)
            start = config.pair_cutoff - n * h
        terms.append(SPLINE_TERMS["pair"](n_types, start, config.pair_cutoff, n, **floors))
    for kind, count, spacing, fixed, clip in (
        ("bond", len(topology.bonds), config.bond_spacing, config.bond_range, (0.0, math.inf)),
        ("angle", len(topology.angles), config.angle_spacing, config.angle_range, (0.0, math.pi)),
    ):
        if kind not in config.terms or count == 0:
            continue
        if fixed is not None:
            start, stop = fixed
            n = max(1, math.ceil((stop - start) / spacing - 1e-9))
        else:
            start, stop, n = _grid_from_range(*ranges[kind], spacing, clip)
        terms.append(SPLINE_TERMS[kind](n_types, start, stop, n, **floors))
    if "dihedral" in config.terms and len(topology.dihedrals):
        terms.append(SPLINE_TERMS["dihedral"](n_types, config.dihedral_intervals, **floors))
    return terms


# --- normal equations --------------------------------------------------------------------------
class _NormalEquations:
    """Running sums GᵀG, GᵀF, FᵀF over chunks, and per-combination sample histograms."""

    def __init__(self, terms: list[SplineTerm]) -> None:
        self.terms = terms
        self.offsets = np.cumsum([0] + [len(t.combinations) * t.n_free for t in terms])
        self.n_columns = int(self.offsets[-1])
        self.gram = torch.zeros(self.n_columns, self.n_columns, dtype=torch.float64)
        self.projection = torch.zeros(self.n_columns, dtype=torch.float64)
        self.force_squared = 0.0
        self.force_sum = torch.zeros(3, dtype=torch.float64)
        self.n_rows = 0
        self.n_bead_frames = 0
        self.histograms = [
            torch.zeros(len(t.combinations), t.grid.n_intervals, dtype=torch.float64) for t in terms
        ]
        self.pressure_gram = torch.zeros_like(self.gram)
        self.pressure_projection = torch.zeros_like(self.projection)
        self.pressure_rows_sum = torch.zeros_like(self.projection)
        self.pressure_target_sum = 0.0
        self.pressure_residual_sum = 0.0
        self.pressure_residual_squared = 0.0
        self.n_pressure_frames = 0

    def design_matrix(self, graph) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense G (3 n_beads, n_columns) of one chunk, F_model = G c, and the virial rows w
        (n_frames, n_columns), W_model = w c (eV): ``−x dB/dx`` summed over each frame's
        distances (pair and bond terms; angles and dihedrals add nothing)."""
        n_rows = 3 * graph.n_beads
        n_frames = int(graph.system_index.max()) + 1 if graph.n_beads else 0
        flat = torch.zeros(n_rows * self.n_columns, dtype=torch.float64)
        virial = torch.zeros(n_frames * self.n_columns, dtype=torch.float64)
        for index, term in enumerate(self.terms):
            x, combination, beads, gradients = term.design_coordinates(graph)
            if not term.periodic:
                inside = (x >= term.grid.start) & (x <= term.grid.stop)
                x, combination = x[inside], combination[inside]
                beads, gradients = beads[inside], gradients[inside]
            if len(x) == 0:
                continue
            interval, basis, u = term.grid.locate(x)
            self.histograms[index].view(-1).index_add_(
                0, combination * term.grid.n_intervals + interval, torch.ones_like(x)
            )
            derivative = basis_weights(u)[1] / term.grid.spacing  # (n, 4) dB/dx
            if term.fixed_tail:  # coefficients held at zero: add nothing to a valid column
                fixed = basis >= term.n_free
                derivative = derivative.masked_fill(fixed, 0.0)
                basis = basis.masked_fill(fixed, 0)
            columns = int(self.offsets[index]) + combination.unsqueeze(1) * term.n_free + basis
            rows = 3 * beads.unsqueeze(-1) + torch.arange(3)  # (n, k, 3)
            values = -derivative[:, :, None, None] * gradients[:, None, :, :]  # (n, 4, k, 3)
            keys = rows[:, None, :, :] * self.n_columns + columns[:, :, None, None]
            flat.index_add_(0, keys.reshape(-1), values.reshape(-1))
            if term.kind in ("pair", "bond"):
                frame = graph.system_index[beads[:, 0]]
                keys = frame.unsqueeze(1) * self.n_columns + columns
                virial.index_add_(0, keys.reshape(-1), (-x.unsqueeze(1) * derivative).reshape(-1))
        return flat.view(n_rows, self.n_columns), virial.view(n_frames, self.n_columns)

    def add(self, graph, reference_forces: torch.Tensor, pressure=None) -> None:
        """Add one chunk; ``pressure``: ``(target (n,), kinetic (n,), volume (n,))`` of its
        frames (bar, eV, Å³) for the pressure rows."""
        design, virial = self.design_matrix(graph)
        target = reference_forces.reshape(-1)
        self.gram += design.T @ design
        self.projection += design.T @ target
        self.force_squared += float(target @ target)
        self.force_sum += reference_forces.sum(0)
        self.n_rows += target.shape[0]
        self.n_bead_frames += reference_forces.shape[0]
        if pressure is not None:
            target_bar, kinetic, volume = (torch.as_tensor(a).double() for a in pressure)
            scale = 1.0 / (3.0 * volume * units.bar)  # eV → bar
            rows = virial * scale[:, None]  # (n, n_columns): P_model − P_kinetic, bar per c
            residual = target_bar - kinetic * scale  # what the virial must supply, bar
            self.pressure_gram += rows.T @ rows
            self.pressure_projection += rows.T @ residual
            self.pressure_rows_sum += rows.sum(0)
            self.pressure_target_sum += float(target_bar.sum())
            self.pressure_residual_sum += float(residual.sum())
            self.pressure_residual_squared += float(residual @ residual)
            self.n_pressure_frames += len(residual)

    def penalty(self, config: ClassicalConfig) -> np.ndarray:
        """Regularisation matrix R (n_columns, n_columns)."""
        penalty = config.ridge * np.eye(self.n_columns)
        if config.smoothness == 0:
            return penalty
        for index, term in enumerate(self.terms):
            differences = term.grid.difference_matrix(3)[:, : term.n_free]
            block = differences.T @ differences * config.smoothness / term.grid.spacing**5
            for combination in range(len(term.combinations)):
                first = self.offsets[index] + combination * term.n_free
                penalty[first : first + term.n_free, first : first + term.n_free] += block
        return penalty


def _solve(equations: _NormalEquations, config: ClassicalConfig) -> np.ndarray:
    """Coefficients (n_columns,) of the regularised least-squares problem; unsampled
    combinations are left out (zero)."""
    gram = equations.gram.numpy() / equations.n_rows
    rhs = equations.projection.numpy() / equations.n_rows
    if config.pressure_weight > 0:
        weight = config.pressure_weight / equations.n_pressure_frames
        gram = gram + weight * equations.pressure_gram.numpy()
        rhs = rhs + weight * equations.pressure_projection.numpy()
    matrix = gram + equations.penalty(config)
    active = np.zeros(equations.n_columns, dtype=bool)
    for index, term in enumerate(equations.terms):
        sampled = equations.histograms[index].sum(1).numpy() > 0
        for combination in np.flatnonzero(sampled):
            first = equations.offsets[index] + combination * term.n_free
            active[first : first + term.n_free] = True
    solution = np.zeros(equations.n_columns)
    if not active.any():
        return solution
    # least squares on the (symmetric) normal matrix: directions that neither data nor penalty
    # determine (relative singular value < machine precision) get zero instead of noise
    sub = matrix[np.ix_(active, active)]
    scale = 1.0 / np.sqrt(np.clip(np.diag(sub), 1e-300, None))  # Jacobi scaling: conditioning
    scaled = scipy.linalg.lstsq(sub * scale[:, None] * scale[None, :], rhs[active] * scale)[0]
    solution[active] = scaled * scale
    return solution


def _install(equations: _NormalEquations, solution: np.ndarray, config: ClassicalConfig) -> None:
    """Write coefficients, sampled ranges and sample counts into the terms."""
    for index, term in enumerate(equations.terms):
        histogram = equations.histograms[index].numpy()
        n_comb = len(term.combinations)
        block = solution[equations.offsets[index] : equations.offsets[index + 1]]
        coefficients = np.zeros((n_comb, term.grid.n_basis))
        coefficients[:, : term.n_free] = block.reshape(n_comb, term.n_free)
        lower = np.full(n_comb, term.grid.start)
        upper = np.full(n_comb, term.grid.stop)
        knots = term.grid.knots()
        for combination in range(n_comb):
            well_sampled = np.flatnonzero(histogram[combination] >= config.min_samples)
            if len(well_sampled) == 0:
                well_sampled = np.flatnonzero(histogram[combination] > 0)
            if len(well_sampled) and not term.periodic:
                lower[combination] = knots[well_sampled[0]]
                if term.extrapolate_upper:
                    upper[combination] = knots[well_sampled[-1] + 1]
        with torch.no_grad():
            term.coefficients.copy_(torch.as_tensor(coefficients))
            term.lower.copy_(torch.as_tensor(lower))
            term.upper.copy_(torch.as_tensor(upper))
            term.samples.copy_(torch.as_tensor(histogram.sum(1)))
            if term.kind != "pair":  # bonded energies are defined up to a constant: min = 0
                for combination in np.flatnonzero(histogram.sum(1) > 0):
                    x = torch.linspace(float(lower[combination]), float(upper[combination]), 512)
                    rows = torch.full((512,), int(combination), dtype=torch.int64)
                    term.coefficients[combination] -= term.energy(x.double(), rows).min()


# --- pressure rows -----------------------------------------------------------------------------
def _pressure_source(source, config: ClassicalConfig, where: str):
    """``(target, kinetic)`` descriptions for the pressure rows, or None without a pressure.

    target: ``"config"`` or ``"file"``; kinetic: ``"velocities"`` (Σ M V² of the frames) or
    ``"temperature"`` (3 N k_B T)."""
    if config.pressure is not None:
        target = "config"
    elif "pressure" in getattr(source, "observable_names", ()):
        target = "file"
    elif config.pressure_weight > 0:
        raise FitError(
            f"{where}: pressure matching (pressure_weight={config.pressure_weight}) needs the "
            "reference pressure, and the file has no observables/pressure; give it "
            "(ClassicalConfig.pressure, bar; --pressure BAR on the command line) or map a "
            "reference that stores it (ase-cg reference writes it; ase-cg reference "
            "--add-pressure FILE adds it to an older one)"
        )
    else:
        return None
    with_velocities = getattr(source, "has_velocities", False)
    kinetic = "velocities" if with_velocities and getattr(source, "has_masses", True) else None
    return target, kinetic or "temperature"


def _pressure_rows_input(source, selection, config, pressure_source):
    """``(target (n,) bar, kinetic (n,) eV, volume (n,) Å³)`` of a chunk's frames."""
    target, kinetic = pressure_source
    volume = np.abs(np.linalg.det(source.cells(selection)))
    n = len(volume)
    if target == "config":
        pressure = np.full(n, float(config.pressure))
    else:
        pressure = np.asarray(source.observable("pressure", selection)) / units.bar
    if kinetic == "velocities":
        velocities = source.velocities(selection)
        energy = np.einsum("i,fia,fia->f", np.asarray(source.masses), velocities, velocities)
    else:
        energy = np.full(n, 3.0 * source.n_atoms * kB * config.temperature)
    return pressure, energy, volume


# --- held-out report ---------------------------------------------------------------------------
def _force_statistics(model, source, indices, topology, pbc, names, config, disable) -> dict:
    """Force-matching error and mapped-force variance per bead type on ``indices``."""
    n_types = len(names)
    sq_error = np.zeros(n_types)
    sq_force = np.zeros(n_types)
    force_sum = np.zeros((n_types, 3))
    counts = np.zeros(n_types)
    types = topology.bead_type_index
    bar = tqdm(total=len(indices), desc="validate", unit="frame", disable=disable)
    for selection, n in _selections(indices, config.chunk_size):
        batch = make_batch(
            source.positions(selection), source.cells(selection), topology, model.cutoff, pbc=pbc
        )
        reference = source.forces(selection).reshape(-1, 3)
        predicted = model(batch)[K.FORCES].detach().numpy()
        bead_types = np.tile(types, n)
        bar.update(n)
        error = ((predicted - reference) ** 2).sum(1)
        np.add.at(sq_error, bead_types, error)
        np.add.at(sq_force, bead_types, (reference**2).sum(1))
        np.add.at(force_sum, bead_types, reference)
        np.add.at(counts, bead_types, 1)
    bar.close()
    return _summarise(names, sq_error, sq_force, force_sum, counts)


def _summarise(names, sq_error, sq_force, force_sum, counts) -> dict:
    def entry(error, squared, total, count):
        mse = error / count
        variance = squared / count - float((total / count) @ (total / count))
        return {
            "force_mse": float(mse),
            "force_variance": float(variance),
            "fraction_unexplained": float(mse / variance) if variance > 0 else math.nan,
            "n_bead_frames": int(count),
        }

    out = {
        name: entry(sq_error[i], sq_force[i], force_sum[i], counts[i])
        for i, name in enumerate(names)
        if counts[i] > 0
    }
    out["all"] = entry(sq_error.sum(), sq_force.sum(), force_sum.sum(0), counts.sum())
    return out


# --- the public function -------------------------------------------------------------------------
def fit_classical(
    trajectory,
    mapping_or_topology,
    *,
    config: ClassicalConfig | None = None,
    bead_type_names: list[str] | None = None,
    progress: bool | None = None,
) -> tuple[CGModel, dict]:
    """Fit pair and bonded spline potentials to mapped forces (multiscale coarse-graining).

    Parameters
    ----------
    trajectory : path, ase_cg.trajectory.Trajectory or ArrayTrajectory
        Frames with forces: a CG H5MD file (``ase-cg map`` output), any
        :mod:`ase_cg.trajectory` object (a :class:`~ase_cg.trajectory.MappedTrajectory`, an
        open ``H5MDTrajectory`` …), or arrays wrapped in :class:`ArrayTrajectory`. All-atom
        frames (a file path or object) are mapped with the mapping as they are read. Read in
        chunks.
    mapping_or_topology : ase_cg.mapping.CGMapping or SystemTopology
        A mapping (bead types and bonded topology come from the frames' ``bead-type`` and
        ``mol-id``; the model carries the mapping), or the topology of the CG system directly
        (the model then has no mapping: give it one before using it on ``ase.Atoms``).
    config : ClassicalConfig, optional
        Grids, regularisation, frames, chunking (defaults: ``ClassicalConfig()``).
    bead_type_names : list of str, optional
        Names of the topology's bead-type indices (topology input only; default: the file's
        bead-type names sorted, else ``B0, B1, …``).
    progress : bool or None
        Show progress bars (``None``: only on a terminal).

    Returns
    -------
    model : CGModel
        Float64 model with one spline term per fitted kind.
    report : dict
        ``"validation"`` and ``"train"``: per bead-type name and ``"all"``, the force-matching
        error ``force_mse`` (mean over beads of |ΔF|², eV²/Å²), the mapped-force variance
        ``force_variance`` (eV²/Å²) and their ratio ``fraction_unexplained`` (validation: held-out
        frames through the model; ``None`` without held-out frames; train: ``"all"`` only,
        from the normal equations); ``"n_train_frames"``, ``"n_validation_frames"``,
        ``"n_coefficients"``, ``"fit_seconds"``, ``"frames_per_second"`` (accumulation),
        ``"samples"`` (per term and type combination), ``"pressure"`` (with a reference
        pressure: mean ``"reference_bar"`` and fitted-model ``"model_bar"`` pressure of the
        training frames, its ``"kinetic_bar"`` part and where that came from; else None).

    Raises
    ------
    FitError
        Trajectory without forces, bead counts that do not match, too few frames.
    """
    config = ClassicalConfig() if config is None else config
    disable = None if progress is None else not progress
    source, owned = _open_trajectory(trajectory, mapping_or_topology)
    try:
        return _fit(source, mapping_or_topology, config, bead_type_names, disable)
    finally:
        if owned:
            source.close()


def _fit(source, mapping_or_topology, config, bead_type_names, disable):
    where = _describe(source)
    if not getattr(source, "has_forces", True):
        raise FitError(
            f"{where}: the trajectory has no forces; force matching needs mapped all-atom "
            "forces (write forces in the reference run, then map with ase-cg map)"
        )
    names, topology, mapping = _resolve_topology(
        source, mapping_or_topology, bead_type_names, config.exclusion_bonds
    )
    if topology.n_beads != source.n_atoms:
        raise FitError(
            f"{where}: {source.n_atoms} particles per frame but the topology has "
            f"{topology.n_beads} beads; use the mapping/topology of this CG trajectory"
        )
    indices = np.arange(source.n_frames)[config.start : config.stop : config.stride]
    n_validation = int(round(config.validation_fraction * len(indices)))
    if config.validation_fraction > 0 and len(indices) >= 2:
        n_validation = max(n_validation, 1)
    train, validation = (
        indices[: len(indices) - n_validation],
        indices[len(indices) - n_validation :],
    )
    if len(train) == 0:
        raise FitError(
            f"{where}: no training frames (selected {len(indices)} of {source.n_frames} with "
            f"start={config.start}, stop={config.stop}, stride={config.stride}, "
            f"validation_fraction={config.validation_fraction})"
        )
    pbc_attr = getattr(source, "pbc", True)
    pbc = bool(np.all(pbc_attr))
    kinds = []
    if "pair" in config.terms and config.pair_r_min is None:
        kinds.append("pair")
    if "bond" in config.terms and len(topology.bonds) and config.bond_range is None:
        kinds.append("bond")
    if "angle" in config.terms and len(topology.angles) and config.angle_range is None:
        kinds.append("angle")
    started = time.perf_counter()
    ranges = _scan_ranges(source, train, topology, config, pbc, kinds, disable) if kinds else {}
    terms = _build_terms(len(names), topology, config, ranges)
    if not terms:
        raise FitError(f"config.terms={config.terms} leaves nothing to fit for this topology")
    equations = _NormalEquations(terms)
    cutoff = max(term.cutoff for term in terms)
    accumulate_start = time.perf_counter()
    pressure_source = _pressure_source(source, config, where)
    for graph, forces, _, selection in _graphs(
        source, train, topology, cutoff, pbc, config.chunk_size, disable, "force matching"
    ):
        pressure = None
        if pressure_source is not None:
            pressure = _pressure_rows_input(source, selection, config, pressure_source)
        equations.add(graph, forces, pressure)
    accumulate_seconds = time.perf_counter() - accumulate_start
    solution = _solve(equations, config)
    _install(equations, solution, config)
    fit_seconds = time.perf_counter() - started

    gram = equations.gram.numpy()
    rhs = equations.projection.numpy()
    train_error = float(solution @ gram @ solution - 2 * solution @ rhs + equations.force_squared)
    mean_force = equations.force_sum.numpy() / equations.n_bead_frames
    train_variance = equations.force_squared / equations.n_bead_frames - float(
        mean_force @ mean_force
    )
    train_mse = train_error / equations.n_bead_frames
    pressure_report = None
    if equations.n_pressure_frames:
        n = equations.n_pressure_frames
        kinetic_bar = (equations.pressure_target_sum - equations.pressure_residual_sum) / n
        pressure_report = {
            "reference_bar": equations.pressure_target_sum / n,
            "model_bar": kinetic_bar + float(equations.pressure_rows_sum.numpy() @ solution) / n,
            "kinetic_bar": kinetic_bar,
            "kinetic_from": pressure_source[1],
            "pressure_weight": config.pressure_weight,
            "n_frames": n,
        }
    samples = {
        f"{type(term).__name__}": {
            "-".join(names[t] for t in combination): float(term.samples[i])
            for i, combination in enumerate(term.combinations)
        }
        for term in terms
    }
    report = {
        "n_train_frames": int(len(train)),
        "n_validation_frames": int(len(validation)),
        "n_coefficients": int(equations.n_columns),
        "fit_seconds": fit_seconds,
        "frames_per_second": len(train) / accumulate_seconds if accumulate_seconds > 0 else None,
        "train": {
            "all": {
                "force_mse": train_mse,
                "force_variance": train_variance,
                "fraction_unexplained": train_mse / train_variance if train_variance > 0 else None,
                "n_bead_frames": int(equations.n_bead_frames),
            }
        },
        "validation": None,
        "samples": samples,
        "pressure": pressure_report,
    }
    provenance = {
        "method": "force matching (multiscale coarse-graining), ase_cg.fitting.fit_classical",
        "data": where,
        "fit_config": config.to_dict(),
        "train_frames": [int(train[0]), int(train[-1]), int(config.stride)],
    }
    model = CGModel(
        names,
        terms,
        mapping=mapping,
        exclusion_bonds=config.exclusion_bonds,
        provenance=provenance,
    ).double()
    if len(validation):
        report["validation"] = _force_statistics(
            model, source, validation, topology, pbc, names, config, disable
        )
        model.provenance["validation_fraction_unexplained"] = report["validation"]["all"][
            "fraction_unexplained"
        ]
    model.provenance["train_fraction_unexplained"] = report["train"]["all"]["fraction_unexplained"]
    return model, report


# --- plots -------------------------------------------------------------------------------------
def plot_classical(model: CGModel, path: str | os.PathLike, *, n_points: int = 400) -> Path:
    """Plot every spline term of ``model`` (energy per type combination) to a PNG.

    One panel per term: solid lines over the sampled range, dashed over the extrapolation;
    angles and dihedrals in degrees. Written atomically.

    Parameters
    ----------
    model : CGModel
    path : str or Path
        Output ``.png``.
    n_points : int
        Points per curve.

    Returns
    -------
    Path of the written file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    terms = [term for term in model.terms if isinstance(term, SplineTerm)]
    if not terms:
        raise FitError("plot_classical: the model has no spline terms to plot")
    names = model.bead_type_names
    figure = Figure(figsize=(4.2 * len(terms), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(terms), squeeze=False)[0]
    for axis, term in zip(axes, terms, strict=True):
        angular = term.kind in ("angle", "dihedral")
        scale = 180.0 / math.pi if angular else 1.0
        for index, combination in enumerate(term.combinations):
            if float(term.samples[index]) <= 0:
                continue
            lower, upper = float(term.lower[index]), float(term.upper[index])
            start, stop = term.default_range(combination)
            if term.kind == "pair":
                start = max(start, lower - 0.5)
            elif term.kind == "bond":
                width = upper - lower
                start, stop = max(lower - 0.5 * width, 0.0), upper + 0.5 * width
            x = np.linspace(start, stop, n_points)
            energy, _ = term.evaluate(x, combination)
            label = "-".join(names[t] for t in combination)
            inside = (x >= lower) & (x <= upper)
            (line,) = axis.plot(x[inside] * scale, energy[inside], label=label)
            for part in (x < lower, x > upper):
                if part.any():
                    axis.plot(x[part] * scale, energy[part], "--", color=line.get_color())
        sampled = [
            float(term.upper[i] - term.lower[i]) > 0 and float(term.samples[i]) > 0
            for i in range(len(term.combinations))
        ]
        if term.kind == "pair" and any(sampled):
            visible = [
                term.evaluate(np.linspace(float(term.lower[i]), term.grid.stop, n_points), c)[0]
                for i, c in enumerate(term.combinations)
                if sampled[i]
            ]
            low = min(v.min() for v in visible)
            axis.set_ylim(low - 0.1 * abs(low) - 1e-3, max(0.05, 3 * abs(low)))
        axis.axhline(0.0, color="0.7", lw=0.8)
        symbol = {"pair": "r (Å)", "bond": "r (Å)", "angle": "θ (deg)", "dihedral": "φ (deg)"}
        axis.set_xlabel(symbol[term.kind])
        axis.set_ylabel("energy (eV)")
        axis.set_title(type(term).__name__)
        axis.legend(fontsize=8)
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=120)
    return Path(path)


#: Å, inner end of the exported pair tables (lammps_interface.export's default table_inner)
TABLE_INNER = 0.5


def ibi_pair_correction(
    bead_type_names: list[str],
    rdfs: dict,
    *,
    temperature: float,
    cutoff: float,
    taper_width: float = 1.5,
    damping: float = 1.0,
    min_g: float = 0.1,
    spacing: float = 0.1,
):
    r"""One iterative-Boltzmann-inversion step as a pair term to add to a force-matched model.

    .. math:: \Delta V_{ab}(r) = \alpha k_B T \ln[g^{CG}_{ab}(r) / g^{ref}_{ab}(r)]

    Force matching gives the best pair + many-body forces, not the exact structure: orientational
    correlations that no function of the bead positions fitted to the noisy mapped force
    captures leave a small RDF bias (for CG ethane the split first peak, see BENCHMARKS.md). This
    term removes it where both RDFs are sampled (g > ``min_g``); below that the first sampled
    value is held (no force), the result is smoothed over three bins, tapered to zero over the
    last ``taper_width`` before ``cutoff`` (cosine), and fitted by least squares to a cubic
    B-spline (:class:`~ase_cg.potentials.classical.PairSpline`, zero energy, force and curvature
    at ``cutoff``), so it exports to LAMMPS tables like any pair term.

    Parameters
    ----------
    bead_type_names : list of str
        The model's bead types (the term's type indices follow this order).
    rdfs : dict
        ``{(name_a, name_b): (r, g_reference, g_cg)}``: intermolecular RDFs on the same bins
        (Å; :func:`ase_cg.analysis.rdf`); pairs not given get no correction.
    temperature : float, K
    cutoff : float, Å
        Range of the correction (at most the RDFs' largest ``r``).
    taper_width : float, Å
    damping : float
        α of the update (1: the full Boltzmann-inverted difference).
    min_g : float
        RDF values below this count as unsampled.
    spacing : float, Å
        Knot spacing of the spline.

    Returns
    -------
    PairSpline
        Energies in eV; append it to the model's terms.
    """
    if not temperature > 0 or not cutoff > taper_width > 0 or not damping > 0:
        raise FitError(
            f"ibi_pair_correction: temperature={temperature!r} K, cutoff={cutoff!r} Å, "
            f"taper_width={taper_width!r} Å and damping={damping!r} must be positive, with "
            "taper_width < cutoff"
        )
    lookup = {name: index for index, name in enumerate(bead_type_names)}
    corrections = {}
    for (name_a, name_b), (r, g_reference, g_cg) in rdfs.items():
        if name_a not in lookup or name_b not in lookup:
            raise FitError(
                f"ibi_pair_correction: RDF of ({name_a!r}, {name_b!r}), but the model's bead "
                f"types are {bead_type_names}"
            )
        r, g_reference, g_cg = (np.asarray(a, dtype=np.float64) for a in (r, g_reference, g_cg))
        if not (r.shape == g_reference.shape == g_cg.shape) or r.ndim != 1 or r[-1] < cutoff:
            raise FitError(
                f"ibi_pair_correction: RDF of ({name_a!r}, {name_b!r}) must be three equal 1-D "
                f"arrays reaching the cutoff {cutoff} Å (r ends at {r[-1] if r.size else None})"
            )
        sampled = (g_reference > min_g) & (g_cg > min_g)
        if not sampled.any():
            raise FitError(
                f"ibi_pair_correction: RDF of ({name_a!r}, {name_b!r}) is nowhere above {min_g}"
            )
        delta = np.zeros_like(r)
        delta[sampled] = np.log(g_cg[sampled] / g_reference[sampled])
        first = int(np.argmax(sampled))
        delta[:first] = delta[first]
        delta = np.convolve(np.pad(delta, 1, mode="edge"), np.ones(3) / 3.0, mode="valid")
        ramp = np.clip((cutoff - r) / taper_width, 0.0, 1.0)
        delta *= 0.5 * (1.0 - np.cos(np.pi * ramp)) * damping * kB * temperature
        key = tuple(sorted((lookup[name_a], lookup[name_b])))
        corrections[key] = (r, delta)
    return _pair_spline_through(len(bead_type_names), corrections, cutoff, spacing)


def _pair_spline_through(n_types: int, curves: dict, cutoff: float, spacing: float):
    """PairSpline fitted by least squares to ``curves`` ``{(type_a, type_b): (r, energy)}``
    (Å, eV; sorted type-index pairs), zero energy, force and curvature at ``cutoff``."""
    from ase_cg.potentials.classical import PairSpline

    # the grid starts at the LAMMPS tables' inner end, so the spline's below-range
    # extrapolation (a repulsive wall meant for fitted pair terms) is never reached
    start = TABLE_INNER
    n_intervals = max(4, int(round((cutoff - start) / spacing)))
    term = PairSpline(n_types, start, cutoff, n_intervals)
    x = torch.linspace(start, cutoff, 20 * n_intervals + 1, dtype=torch.float64)
    rows = torch.zeros(len(x), dtype=torch.int64)
    eye = torch.eye(term.grid.n_basis, dtype=torch.float64)
    design = torch.stack([term.grid.evaluate(eye[k : k + 1], rows, x) for k in range(len(eye))], 1)
    design = design[:, : term.n_free].numpy()
    with torch.no_grad():
        for key, (r, energy) in curves.items():
            target = np.interp(x.numpy(), r, energy)
            solution, *_ = np.linalg.lstsq(design, target, rcond=None)
            row = int(term.combination_index(torch.tensor([key]))[0])
            term.coefficients[row, : term.n_free] = torch.from_numpy(solution)
    return term


def pressure_ramp(
    n_types: int,
    amplitude: float,
    cutoff: float,
    *,
    taper_width: float = 1.0,
    spacing: float = 0.1,
):
    r"""The pressure-correction pair term :math:`ΔV(r) = A (1 − r/r_c)` for every type pair.

    Its force :math:`−ΔV' = A/r_c` is constant, so it shifts the pressure without reshaping
    the first shells much; to first order (structure held) it adds

    .. math::

        ΔP = \frac{1}{3V} \Big\langle \sum_{pairs} r\,(−ΔV'(r)) \Big\rangle
           = \frac{2π}{3} \sum_{ab} ρ_a ρ_b \int_0^{r_c} r^3 g_{ab}(r)\,(−ΔV'_{ab}(r))\,dr
           = \frac{2π ρ^2}{3} \frac{A}{r_c} \int_0^{r_c} r^3 g(r)\,dr \quad (\text{one type}),

    positive (more repulsion) for ``A > 0``. The ramp is smoothed to zero energy and force over
    the last ``taper_width`` before ``r_c`` (cosine, as the IBI term) and fitted to a cubic
    B-spline, so it exports to LAMMPS tables; :func:`pressure_correction` measures its ΔP on CG
    frames with the spline itself, taper included.

    Parameters
    ----------
    n_types : int
        Bead types of the model.
    amplitude : float, eV
        ``A`` (the value at r = 0 of the untapered ramp).
    cutoff : float, Å
    taper_width : float, Å
    spacing : float, Å
        Knot spacing.

    Returns
    -------
    PairSpline
    """
    if not cutoff > taper_width > 0 or not math.isfinite(amplitude):
        raise FitError(
            f"pressure_ramp: need cutoff > taper_width > 0 Å and a finite amplitude, got "
            f"cutoff={cutoff!r}, taper_width={taper_width!r}, amplitude={amplitude!r}"
        )
    r = np.linspace(0.0, cutoff, int(round(cutoff / 0.01)) + 1)
    taper = np.clip((cutoff - r) / taper_width, 0.0, 1.0)
    energy = amplitude * (1.0 - r / cutoff) * 0.5 * (1.0 - np.cos(np.pi * taper))
    pairs = [(a, b) for a in range(n_types) for b in range(a, n_types)]
    return _pair_spline_through(n_types, {pair: (r, energy) for pair in pairs}, cutoff, spacing)


def term_pressure(model: CGModel, term, cg, *, max_frames: int = 5) -> float:
    """Mean virial pressure (bar) of one energy ``term`` alone on CG frames.

    ``−tr σ / 3`` of a model made of ``term`` with ``model``'s bead types, mapping and
    exclusions: the first-order pressure change from adding ``term`` to ``model`` (structure
    held).

    Parameters
    ----------
    model : CGModel
        Gives bead types, mapping (bonded topology) and exclusions.
    term : EnergyTerm
    cg : path of an H5MD file or sequence of ase.Atoms
        Periodic CG frames.
    max_frames : int
        At most this many frames, evenly spread.
    """
    alone = CGModel(
        list(model.bead_type_names),
        [copy.deepcopy(term)],
        mapping=model.mapping,
        exclusion_bonds=model.exclusion_bonds,
    ).double()
    pressures = []
    with opened(cg) as frames:
        n = len(frames)
        picks = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
        for index in picks:
            atoms = frames[int(index)]
            if not atoms.pbc.all():
                raise FitError("term_pressure: the CG frames must be periodic")
            batch = make_batch(
                atoms.positions[None], atoms.cell.array[None], alone.topology(atoms), alone.cutoff
            )
            stress = alone(batch, compute_stress=True)[K.STRESS][0].detach().numpy()
            pressures.append(-np.trace(stress) / 3.0 / units.bar)
    return float(np.mean(pressures))


def pressure_correction(
    model: CGModel,
    cg,
    pressure_change: float,
    *,
    cutoff: float | None = None,
    taper_width: float = 1.0,
    max_frames: int = 5,
) -> CGModel:
    """``model`` plus a pressure ramp (:func:`pressure_ramp`) sized to shift its pressure by
    ``pressure_change`` to first order.

    The ramp's pressure per unit amplitude is measured on frames of a CG run of ``model``:
    ``ΔP(A) = A · p₁`` with ``p₁ = −tr σ₁ / 3`` the stress of the unit-amplitude spline on
    those frames (its exact virial, structure held); then ``A = pressure_change / p₁``. The
    liquid relaxes under the new term, so the realised change is usually somewhat smaller:
    iterate (:func:`ase_cg.refine.refine`).

    Parameters
    ----------
    model : CGModel
        Classical or neural; the ramp is appended as one more pair term.
    cg : path of an H5MD file or sequence of ase.Atoms
        CG frames of a run of ``model`` (bead types, molecule ids; periodic).
    pressure_change : float, bar
        Wanted change, e.g. ``P_ref − P_CG``.
    cutoff : float, Å, optional
        Range of the ramp; default the model's largest pair-term cutoff (≥ 8 Å).
    taper_width : float, Å
    max_frames : int
        At most this many frames, evenly spread, are used.

    Returns
    -------
    CGModel
        A new model; ``provenance["pressure_correction"]`` lists the ramps added so far
        (amplitude eV, cutoff Å, requested and predicted bar). ``model`` is not changed.
    """
    pair_cutoffs = [t.cutoff for t in model.terms if getattr(t, "kind", None) == "pair"]
    cutoff = float(cutoff if cutoff is not None else max([8.0, *pair_cutoffs]))
    names = list(model.bead_type_names)
    unit = pressure_ramp(len(names), 1.0, cutoff, taper_width=taper_width)
    per_unit_bar = term_pressure(model, unit, cg, max_frames=max_frames)
    if not abs(per_unit_bar) > 0:
        raise FitError("pressure_correction: the ramp has no pressure on these frames")
    amplitude = float(pressure_change) / per_unit_bar
    term = pressure_ramp(len(names), amplitude, cutoff, taper_width=taper_width)
    provenance = dict(model.provenance)
    provenance["pressure_correction"] = [
        *provenance.get("pressure_correction", []),
        {
            "amplitude_eV": amplitude,
            "cutoff_A": cutoff,
            "taper_width_A": float(taper_width),
            "requested_bar": float(pressure_change),
            "bar_per_eV": per_unit_bar,
        },
    ]
    return CGModel(
        names,
        [*model.terms, term.to(model.dtype)],
        mapping=model.mapping,
        exclusion_bonds=model.exclusion_bonds,
        provenance=provenance,
    )


def structural_correction(
    model: CGModel,
    reference,
    cg,
    *,
    temperature: float,
    cutoff: float | None = None,
    r_max: float = 13.0,
    bin_width: float = 0.1,
    damping: float = 1.0,
) -> CGModel:
    """``model`` plus one IBI step (:func:`ibi_pair_correction`) for every bead-type pair.

    Parameters
    ----------
    model : CGModel
        The model that produced ``cg`` (force-matched, classical or neural).
    reference : path of an H5MD file or sequence of ase.Atoms
        All-atom reference (mapped with ``model.mapping``) or an already mapped CG one.
    cg : path of an H5MD file or sequence of ase.Atoms
        A CG MD run of ``model`` at the reference's state point.
    temperature : float, K
    cutoff : float, Å, optional
        Range of the correction; default the model's largest pair-term cutoff (≥ 8 Å).
    r_max, bin_width : float, Å
        RDF range and bin width (``r_max`` must not exceed half the shortest box width).
    damping : float
        α of the update.

    Returns
    -------
    CGModel
        A new model: the same terms plus the correction term; its
        ``provenance["structural_correction"]`` records the inputs. ``model`` is not changed.
    """
    from ase_cg.analysis import rdf

    pair_cutoffs = [t.cutoff for t in model.terms if getattr(t, "kind", None) == "pair"]
    cutoff = float(cutoff if cutoff is not None else max([8.0, *pair_cutoffs]))
    if cutoff > r_max:
        raise FitError(f"structural_correction: cutoff {cutoff} Å exceeds r_max {r_max} Å")
    n_bins = int(round(r_max / bin_width))
    names = list(model.bead_type_names)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    rdfs: dict = {}
    with opened(reference) as ref_frames, opened(cg) as cg_frames:
        if not is_cg(ref_frames):
            if model.mapping is None:
                raise FitError(
                    "structural_correction: the reference is all-atom and the model has no "
                    "mapping to map it with; give a mapped (CG) reference"
                )
            ref_frames = cg_trajectory(
                ref_frames, model.mapping, split_constraints="allow", atoms_arrays=()
            )
        for a, b in pairs:
            r, g_reference = rdf(ref_frames, r_max, n_bins, types=(a, b))
            _, g_cg = rdf(cg_frames, r_max, n_bins, types=(a, b))
            if g_reference.any() and g_cg.any():
                rdfs[(a, b)] = (r, g_reference, g_cg)
    term = ibi_pair_correction(names, rdfs, temperature=temperature, cutoff=cutoff, damping=damping)
    provenance = dict(model.provenance)
    provenance["structural_correction"] = {
        "reference": str(reference) if isinstance(reference, str | os.PathLike) else None,
        "cg": str(cg) if isinstance(cg, str | os.PathLike) else None,
        "temperature_K": float(temperature),
        "cutoff_A": cutoff,
        "damping": float(damping),
        "max_abs_difference_before": {
            f"{a}-{b}": float(np.abs(g_cg - g_ref).max())
            for (a, b), (_, g_ref, g_cg) in rdfs.items()
        },
    }
    return CGModel(
        names,
        [*model.terms, term.to(model.dtype)],
        mapping=model.mapping,
        exclusion_bonds=model.exclusion_bonds,
        provenance=provenance,
    )
