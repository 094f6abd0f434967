"""One trajectory layer: every consumer reads frames through the same small protocol.

A :class:`Trajectory` is anything with these members (arrays in ASE units, float64)::

    n_frames, n_atoms : int               len(trajectory) == n_frames
    positions(frames) -> (n, n_atoms, 3)  Å
    forces(frames)    -> (n, n_atoms, 3)  eV/Å        (has_forces)
    velocities(frames)-> (n, n_atoms, 3)  Å/ASE time   (has_velocities)
    cells(frames)     -> (n, 3, 3)        Å, rows are cell vectors, zeros if not periodic
    iter_chunks(size) -> consecutive frame slices
    [i]               -> ase.Atoms (forces through a SinglePointCalculator)
    numbers (n_atoms,) int (0 for CG beads) | masses (n_atoms,) amu | pbc (3,) bool
    mol_ids (n_atoms,) int or None | bonds (n_bonds, 2) int or None
    bead_types (n_atoms,) str or None (None: all-atom) | steps (n_frames,) | times fs or None

``frames`` is an int (one frame: the leading axis is dropped), a slice, an index array or
``None`` (all).  Implementations:

* :class:`ase_cg.io.H5MDTrajectory`: H5MD files, lazily, one hyperslab per read;
* :class:`MDAnalysisTrajectory`: GROMACS TRR/XTC + TPR, LAMMPS data + dump, DCD … through
  MDAnalysis, frame by frame, units converted at the boundary;
* :class:`InMemoryTrajectory`: a list of ``ase.Atoms``;
* :class:`MappedTrajectory`: a CG view of an all-atom trajectory through a
  :class:`~ase_cg.mapping.CGMapping`, mapped chunk by chunk as frames are read.

:func:`open_trajectory` turns what a user gives (a path, paths, Atoms, a trajectory) into
one, and :func:`cg_trajectory` is the one place that decides whether frames are already CG
or must be mapped.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_masses
from ase.symbols import Symbols
from tqdm import tqdm

from ase_cg import _keys as K
from ase_cg.beads import set_bead_types
from ase_cg.chemistry import identify_elements, implausible_lengths, rigid_bonds, split_bonds
from ase_cg.errors import InputError
from ase_cg.io import SYSTEM_OBSERVABLES, H5MDTrajectory, H5MDWriter
from ase_cg.io.layout import FS_PER_ASE_TIME
from ase_cg.units import to_ase_factor

__all__ = [
    "ConstraintWarning",
    "InMemoryTrajectory",
    "MDAnalysisTrajectory",
    "MappedTrajectory",
    "Trajectory",
    "cg_trajectory",
    "is_cg",
    "open_trajectory",
    "opened",
    "write_trajectory",
]

#: Suffixes read by :class:`ase_cg.io.H5MDTrajectory`; every other file goes to MDAnalysis.
H5MD_SUFFIXES = (".h5", ".h5md", ".hdf5", ".hdf")
#: LAMMPS units styles :class:`MDAnalysisTrajectory` converts (dump files carry no units).
LAMMPS_UNITS = {
    "real": {"force": "kcal mol-1 Angstrom-1", "velocity": "Angstrom fs-1", "time": "fs"},
    "metal": {"force": "eV Angstrom-1", "velocity": "Angstrom ps-1", "time": "ps"},
}


@runtime_checkable
class Trajectory(Protocol):
    """Frames of a simulation, read by frame selections in ASE units (module docstring)."""

    n_frames: int
    n_atoms: int
    numbers: np.ndarray
    pbc: np.ndarray
    mol_ids: np.ndarray | None
    bonds: np.ndarray | None
    bead_types: np.ndarray | None
    has_forces: bool
    has_velocities: bool

    def __len__(self) -> int: ...

    def __getitem__(self, index): ...

    def positions(self, frames=None) -> np.ndarray: ...

    def forces(self, frames=None) -> np.ndarray: ...

    def velocities(self, frames=None) -> np.ndarray: ...

    def cells(self, frames=None) -> np.ndarray: ...

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[slice]: ...


class ConstraintWarning(UserWarning):
    """A mapping splits a constrained bond while the forces lack the constraint forces."""


def frame_indices(frames, n_frames: int, where: str = "trajectory") -> tuple[np.ndarray, bool]:
    """``(indices (n,) int64, single)`` for an int, slice, index or bool array, or None."""
    if frames is None:
        return np.arange(n_frames), False
    if isinstance(frames, slice):
        return np.arange(n_frames)[frames], False
    if isinstance(frames, int | np.integer):
        i = int(frames)
        if not -n_frames <= i < n_frames:
            raise IndexError(f"{where}: frame {i} out of range (n_frames={n_frames})")
        return np.array([i % n_frames]), True
    index = np.asarray(frames)
    if index.dtype == bool:
        index = np.flatnonzero(index)
    if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
        raise IndexError(f"frames must be an int, a slice or 1-D integer indices, got {frames!r}")
    index = index.astype(np.int64)
    if index.size and (index.min() < -n_frames or index.max() >= n_frames):
        raise IndexError(f"{where}: frame index out of range (n_frames={n_frames})")
    return index % max(n_frames, 1), False


def _chunks(n_frames: int, chunk_size: int) -> Iterator[slice]:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, n_frames, chunk_size):
        yield slice(start, min(start + chunk_size, n_frames))


def _atoms(trajectory, frame: int, masses, **arrays) -> Atoms:
    """One frame of ``trajectory`` as ``ase.Atoms`` (forces attached when present)."""
    atoms = Atoms(
        numbers=trajectory.numbers,
        positions=trajectory.positions(frame),
        cell=trajectory.cells(frame),
        pbc=trajectory.pbc,
        masses=masses,
    )
    if trajectory.has_velocities:
        atoms.set_velocities(trajectory.velocities(frame))
    for name, values in arrays.items():
        if values is not None:
            atoms.new_array(name, np.asarray(values).copy())
    if trajectory.has_forces:
        atoms.calc = SinglePointCalculator(atoms, forces=trajectory.forces(frame))
    steps = getattr(trajectory, "steps", None)
    if steps is not None:
        atoms.info["step"] = int(steps[frame])
    times = getattr(trajectory, "times", None)
    if times is not None:
        atoms.info["time"] = float(times[frame])
    return atoms


class _FramesMixin:
    """``len``, ``[i]`` and ``iter_chunks`` from the array methods."""

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, index):
        if isinstance(index, int | np.integer):
            i = frame_indices(int(index), self.n_frames, str(self))[0][0]
            return self._frame_atoms(int(i))
        indices, _ = frame_indices(index, self.n_frames, str(self))
        return [self._frame_atoms(int(i)) for i in indices]

    def __iter__(self):
        for i in range(self.n_frames):
            yield self._frame_atoms(i)

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[slice]:
        """Consecutive frame slices of at most ``chunk_size`` frames (default 64)."""
        return _chunks(self.n_frames, 64 if chunk_size is None else chunk_size)

    def close(self) -> None:
        """Nothing to release (kept for the file-backed trajectories' interface)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# In memory


class InMemoryTrajectory(_FramesMixin):
    """Frames given as ``ase.Atoms`` (same atoms in every frame), as a :class:`Trajectory`.

    Parameters
    ----------
    images : ase.Atoms or sequence of ase.Atoms
        Positions, cell, pbc, masses, velocities (if set), forces held by the calculator
        (never computed), ``arrays["mol-id"]`` and ``arrays["bead-type"]`` of the first frame,
        ``info["step"]``/``info["time"]`` (fs).
    bonds : (n_bonds, 2) int, optional
    """

    def __init__(self, images, *, bonds=None):
        images = [images] if isinstance(images, Atoms) else list(images)
        if not images:
            raise InputError("InMemoryTrajectory: no frames; give at least one ase.Atoms")
        first = images[0]
        self.n_frames, self.n_atoms = len(images), len(first)
        for i, atoms in enumerate(images):
            if len(atoms) != self.n_atoms or not np.array_equal(atoms.numbers, first.numbers):
                raise InputError(
                    f"InMemoryTrajectory: frame {i} has other atoms than frame 0 ({len(atoms)} "
                    f"vs {self.n_atoms} or other elements); every frame must hold the same atoms"
                )
        self.images = images
        self.numbers = first.numbers.astype(np.int64).copy()
        self.masses = first.get_masses().astype(np.float64)
        self.pbc = np.asarray(first.pbc, dtype=bool).copy()
        self.mol_ids = first.arrays.get(K.MOL_ID)
        self.bead_types = first.arrays.get(K.BEAD_TYPE)
        self.bonds = None if bonds is None else np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
        self._positions = np.stack([a.positions for a in images]).astype(np.float64)
        self._cells = np.stack([a.cell.array for a in images]).astype(np.float64)
        forces = [_stored_forces(a) for a in images]
        self.has_forces = all(f is not None for f in forces)
        self._forces = np.stack(forces).astype(np.float64) if self.has_forces else None
        self.has_velocities = all("momenta" in a.arrays for a in images)
        self._velocities = (
            np.stack([a.get_velocities() for a in images]) if self.has_velocities else None
        )
        self.steps = np.array([a.info.get("step", i) for i, a in enumerate(images)], np.int64)
        times = [a.info.get("time") for a in images]
        self.times = None if any(t is None for t in times) else np.asarray(times, np.float64)

    def __repr__(self) -> str:
        return f"InMemoryTrajectory({self.n_frames} frames × {self.n_atoms} particles)"

    def _select(self, array, frames):
        indices, single = frame_indices(frames, self.n_frames, "InMemoryTrajectory")
        return array[indices[0]].copy() if single else array[indices]

    def positions(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) Å ((n_atoms, 3) for an int)."""
        return self._select(self._positions, frames)

    def cells(self, frames=None) -> np.ndarray:
        """(n, 3, 3) Å ((3, 3) for an int)."""
        return self._select(self._cells, frames)

    def forces(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) eV/Å."""
        if self._forces is None:
            raise InputError("InMemoryTrajectory: the frames carry no forces (calc results)")
        return self._select(self._forces, frames)

    def velocities(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) Å per ASE time unit."""
        if self._velocities is None:
            raise InputError("InMemoryTrajectory: the frames carry no velocities")
        return self._select(self._velocities, frames)

    def _frame_atoms(self, i: int) -> Atoms:
        return self.images[i]


def _stored_forces(atoms: Atoms) -> np.ndarray | None:
    if atoms.calc is None:
        return None
    return atoms.calc.get_property("forces", atoms, allow_calculation=False)


# --------------------------------------------------------------------------------------------
# MDAnalysis


class MDAnalysisTrajectory(_FramesMixin):
    """Trajectories MDAnalysis reads (GROMACS TRR/XTC + TPR, LAMMPS data + dump, DCD …).

    Frames are read on request, one at a time, and converted to ASE units: MDAnalysis gives
    Å, kJ mol⁻¹ Å⁻¹ and Å ps⁻¹ for GROMACS and the like; LAMMPS dumps hold the raw values of
    the run's units style, given by ``lammps_units``.  Elements come from the topology's
    elements (checked against its masses), else its masses
    (:func:`ase_cg.chemistry.identify_elements`); molecules from GROMACS molecule numbers
    (TPR) or LAMMPS molecule ids (data file), bonds from the topology.

    Parameters
    ----------
    topology : path
        Topology (``.tpr``, LAMMPS data file, ``.gro``/``.pdb`` …) or a file MDAnalysis reads
        alone.
    trajectory : path or list of paths, optional
        Coordinates (``.trr``, ``.xtc``, ``.dcd``, LAMMPS dump …).
    lammps_units : {"real", "metal"}, optional
        Units style of a LAMMPS dump (required for dumps, which carry no units).
    **universe_kwargs
        Passed to ``MDAnalysis.Universe`` (e.g. ``format="LAMMPSDUMP"``, ``atom_style=…``).
    """

    def __init__(self, topology, trajectory=None, *, lammps_units=None, **universe_kwargs):
        # heavy: MDAnalysis takes a second to import, and most runs read H5MD only
        import MDAnalysis as mda
        from MDAnalysis.exceptions import NoDataError

        self.path = Path(topology if trajectory is None else _first(trajectory))
        self.topology_path = Path(topology)
        paths = [Path(topology)] + ([] if trajectory is None else _as_paths(trajectory))
        for path in paths:
            if not path.is_file():
                raise InputError(f"{path}: no such file (cwd is {Path.cwd()})")
        if _is_lammps_dump(trajectory, universe_kwargs):
            universe_kwargs.setdefault("format", "LAMMPSDUMP")
        args = [str(topology)] + ([] if trajectory is None else [str(p) for p in paths[1:]])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # guessers' chatter about missing attributes
                self.universe = mda.Universe(*args, **universe_kwargs)
        except (ValueError, TypeError, OSError, NoDataError, EOFError, KeyError) as error:
            raise InputError(
                f"{', '.join(map(str, paths))}: MDAnalysis cannot read this "
                f"({type(error).__name__}: {error}); check the files and their formats."
            ) from error
        reader = self.universe.trajectory
        self.format = type(reader).__name__
        atoms = self.universe.atoms
        self.n_frames = int(reader.n_frames)
        self.n_atoms = int(atoms.n_atoms)
        self._factors = self._unit_factors(reader, lammps_units)
        first = reader[0]
        self.has_forces = bool(first.has_forces)
        self.has_velocities = bool(first.has_velocities)
        self.pbc = np.full(3, first.dimensions is not None)
        self.bead_types = None
        masses = np.asarray(atoms.masses, dtype=np.float64) if hasattr(atoms, "masses") else None
        if masses is not None and not np.all(masses > 0):
            masses = None
        elements = getattr(atoms, "elements", None) if hasattr(atoms, "elements") else None
        if elements is not None and not all(str(e).strip() for e in elements):
            elements = None
        self.numbers, self.element_rule = identify_elements(
            masses=masses,
            names=elements,
            where=f"{self.topology_path}: {'elements' if elements is not None else 'masses'}",
        )
        if masses is None:
            masses = atomic_masses[self.numbers]
        self.masses = masses
        self.bonds = None
        try:
            bonds = np.asarray(atoms.bonds.indices, dtype=np.int64).reshape(-1, 2)
            self.bonds = bonds if len(bonds) else None
        except (NoDataError, AttributeError):
            pass
        self.mol_ids = None
        if hasattr(atoms, "molnums"):
            self.mol_ids = np.asarray(atoms.molnums, dtype=np.int64)
        elif hasattr(atoms, "resids"):
            resids = np.asarray(atoms.resids, dtype=np.int64)
            if self.bonds is None or np.all(resids[self.bonds[:, 0]] == resids[self.bonds[:, 1]]):
                self.mol_ids = resids
        steps, times = [], []
        for ts in reader:
            steps.append(int(ts.data.get("step", ts.frame)))
            times.append(float(ts.time) * self._factors["time_fs"])
        self.steps = np.asarray(steps, dtype=np.int64)
        self.times = np.asarray(times, dtype=np.float64)
        self.time_step = None
        self._cache: tuple | None = None
        check_lengths(self, f"{self.path} (lengths as MDAnalysis gives them, Å)")

    def __repr__(self) -> str:
        return (
            f"MDAnalysisTrajectory({str(self.path)!r}, {self.format}: {self.n_frames} frames × "
            f"{self.n_atoms} atoms)"
        )

    @staticmethod
    def _unit_factors(reader, lammps_units) -> dict[str, float]:
        units = dict(getattr(reader, "units", {}) or {})
        if units.get("length") is None:  # LAMMPS dumps: raw values in the run's units style
            if lammps_units not in LAMMPS_UNITS:
                raise InputError(
                    f"{reader.filename}: a LAMMPS dump holds values in the run's units style; "
                    f"give it: lammps_units= one of {sorted(LAMMPS_UNITS)} (--lammps-units)."
                )
            style = LAMMPS_UNITS[lammps_units]
            return {
                "force": to_ase_factor(style["force"], "force"),
                "velocity": to_ase_factor(style["velocity"], "velocity"),
                "time_fs": to_ase_factor(style["time"], "time") * FS_PER_ASE_TIME,
            }
        # MDAnalysis converts to its base units: Å, ps, Å/ps, kJ/(mol Å)
        return {
            "force": to_ase_factor("kJ mol-1 Angstrom-1", "force"),
            "velocity": to_ase_factor("Angstrom ps-1", "velocity"),
            "time_fs": 1000.0,
        }

    def _read(self, frames) -> tuple[dict, bool]:
        indices, single = frame_indices(frames, self.n_frames, str(self.path))
        key = tuple(indices.tolist())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], single
        reader = self.universe.trajectory
        n = len(indices)
        data = {"positions": np.empty((n, self.n_atoms, 3)), "cells": np.zeros((n, 3, 3))}
        if self.has_forces:
            data["forces"] = np.empty((n, self.n_atoms, 3))
        if self.has_velocities:
            data["velocities"] = np.empty((n, self.n_atoms, 3))
        for k, i in enumerate(indices):
            ts = reader[int(i)]
            data["positions"][k] = ts.positions
            if ts.dimensions is not None:
                data["cells"][k] = ts.triclinic_dimensions
            if self.has_forces:
                data["forces"][k] = ts.forces * self._factors["force"]
            if self.has_velocities:
                data["velocities"][k] = ts.velocities * self._factors["velocity"]
        for name, values in data.items():
            if not np.all(np.isfinite(values)):
                frame = int(indices[np.argwhere(~np.isfinite(values))[0, 0]])
                raise InputError(f"{self.path}: frame {frame}: {name} are not finite")
        self._cache = (key, data)
        return data, single

    def _get(self, name: str, frames) -> np.ndarray:
        data, single = self._read(frames)
        values = data[name]
        return values[0].copy() if single else values

    def positions(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) Å ((n_atoms, 3) for an int)."""
        return self._get("positions", frames)

    def cells(self, frames=None) -> np.ndarray:
        """(n, 3, 3) Å, rows are cell vectors; zeros without a box."""
        return self._get("cells", frames)

    def forces(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) eV/Å.

        Raises
        ------
        InputError
            The trajectory holds no forces (XTC, DCD, TRR written without ``nstfout``).
        """
        if not self.has_forces:
            raise InputError(
                f"{self.path}: this {self.format} trajectory holds no forces (XTC and DCD hold "
                "positions only: fine for analysis); force matching needs forces: write a TRR "
                "with nstfout > 0 (GROMACS) or a dump with fx fy fz (LAMMPS)."
            )
        return self._get("forces", frames)

    def velocities(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) Å per ASE time unit."""
        if not self.has_velocities:
            raise InputError(f"{self.path}: this {self.format} trajectory holds no velocities")
        return self._get("velocities", frames)

    def _frame_atoms(self, i: int) -> Atoms:
        return _atoms(self, i, self.masses, **{K.MOL_ID: self.mol_ids})

    def close(self) -> None:
        """Close MDAnalysis's file handles."""
        self.universe.trajectory.close()


def _as_paths(trajectory) -> list[Path]:
    if isinstance(trajectory, str | os.PathLike):
        return [Path(trajectory)]
    return [Path(p) for p in trajectory]


def _first(trajectory) -> Path:
    return _as_paths(trajectory)[0]


def _is_lammps_dump(trajectory, kwargs) -> bool:
    if trajectory is None or "format" in kwargs:
        return False
    name = _first(trajectory).name.lower()
    return name.endswith((".lammpstrj", ".dump")) or name.startswith("dump.")


def check_lengths(trajectory, label: str) -> None:
    """Refuse an all-atom trajectory whose bonded distances (frame 0) are far from the sum of
    covalent radii (:func:`ase_cg.chemistry.implausible_lengths`): its lengths are in
    another unit than ``label`` says."""
    if trajectory.bead_types is not None or not np.all(trajectory.numbers > 0):
        return
    problem = implausible_lengths(
        trajectory.numbers,
        trajectory.positions(0),
        trajectory.cells(0),
        trajectory.pbc,
        trajectory.bonds,
        trajectory.mol_ids,
    )
    if problem is not None:
        raise InputError(f"{label}: {problem}: the lengths are in another unit.")


# --------------------------------------------------------------------------------------------
# Mapped view


class MappedTrajectory(_FramesMixin):
    """A CG view of an all-atom :class:`Trajectory`: frames mapped as they are read.

    Positions are mapped with the molecules made whole (:meth:`SystemMapping.map_positions`),
    forces with ``force_map``, velocities by bead momentum over bead mass.  Reads of
    consecutive frames through ``[i]`` are mapped ``chunk`` frames at a time.

    Constrained bonds (length spread below :data:`ase_cg.chemistry.RIGID_BOND_STD` over
    up to 10 frames) that the mapping splits between beads are checked when forces are
    mapped: engines write forces without the constraint forces (GROMACS always; LAMMPS's
    fix shake/rattle include them), so the mapped forces would miss a force between the
    beads.  That gives a :class:`ConstraintWarning` naming the atoms
    (``split_constraints="warn"``), an :class:`~ase_cg.errors.InputError` (``"error"``) or
    nothing (``"allow"``).

    Parameters
    ----------
    trajectory : Trajectory
        All-atom frames.
    mapping : CGMapping
    force_map : {"bead_sum", "pseudo_inverse"}
    split_constraints : {"warn", "error", "allow"}
    chunk : int
        Frames mapped at a time for ``[i]`` access.
    atoms_arrays : tuple of str
        Which of ``"forces"`` and ``"velocities"`` the ``[i]`` Atoms carry (when present):
        ``()`` maps positions only (structure analysis).
    """

    def __init__(
        self,
        trajectory,
        mapping,
        *,
        force_map: str = "bead_sum",
        split_constraints: str = "warn",
        chunk: int = 64,
        atoms_arrays: tuple[str, ...] = ("forces", "velocities"),
    ):
        if split_constraints not in ("error", "warn", "allow"):
            raise ValueError(
                f"split_constraints must be 'error', 'warn' or 'allow', got {split_constraints!r}"
            )
        if trajectory.bead_types is not None:
            raise InputError(
                f"{_name(trajectory)}: is already a CG trajectory (it has bead types); map an "
                "all-atom trajectory"
            )
        self.source = trajectory
        self.mapping = mapping
        self.path = getattr(trajectory, "path", None)
        first = trajectory[0]
        self.system = mapping.system(first, bonds=trajectory.bonds, force_map=force_map)
        system = self.system
        self.n_frames = trajectory.n_frames
        self.n_atoms = system.n_beads
        self.numbers = np.zeros(system.n_beads, dtype=np.int64)
        self.masses = system.bead_masses
        self.pbc = system.pbc
        self.mol_ids = system.bead_mol_ids
        self.bead_types = system.bead_types
        self.bonds = system.topology["bonds"]
        self.topology = system.topology
        self.has_forces = bool(trajectory.has_forces)
        self.has_velocities = bool(trajectory.has_velocities)
        self.steps = getattr(trajectory, "steps", None)
        self.times = getattr(trajectory, "times", None)
        self.time_step = getattr(trajectory, "time_step", None)
        self.chunk = chunk
        self.atoms_arrays = tuple(atoms_arrays)
        self._cache: tuple = (0, {})
        self.split_constrained = np.zeros((0, 2), dtype=np.int64)
        if self.has_forces and split_constraints != "allow":
            self._check_constraints(split_constraints)

    def __repr__(self) -> str:
        return f"MappedTrajectory({self.source!r}, {self.system!r})"

    def _check_constraints(self, policy: str) -> None:
        """Find constrained bonds the mapping splits; raise or warn naming the atoms."""
        bonds = self.system.atom_bonds
        if len(bonds) == 0 or self.n_frames < 2:
            return
        frames = np.unique(np.linspace(0, self.n_frames - 1, min(10, self.n_frames)).astype(int))
        positions = self.source.positions(frames)
        cells = self.source.cells(frames)
        vectors = positions[:, bonds[:, 1]] - positions[:, bonds[:, 0]]
        if self.pbc.any():
            fractional = np.einsum("fbk,fkl->fbl", vectors, np.linalg.inv(cells))
            fractional[..., self.pbc] -= np.rint(fractional[..., self.pbc])
            vectors = np.einsum("fbk,fkl->fbl", fractional, cells)
        rigid = rigid_bonds(np.linalg.norm(vectors, axis=2))
        matrix = self.system.position_matrix.tocoo()
        atom_bead = np.full(self.system.n_atoms, -1, dtype=np.int64)
        atom_bead[matrix.col] = matrix.row
        split = rigid & split_bonds(bonds, atom_bead)
        self.split_constrained = bonds[split]
        if not split.any():
            return
        symbols = [Atoms(numbers=self.source.numbers[p]).get_chemical_symbols() for p in bonds]
        named = ", ".join(
            f"{a}-{b} ({symbols[k][0]}-{symbols[k][1]})"
            for k, (a, b) in zip(np.flatnonzero(split)[:5], bonds[split][:5], strict=True)
        )
        message = (
            f"{_name(self.source)}: {int(split.sum())} constrained bond(s) (length constant over "
            f"the frames) join atoms of different beads, e.g. atoms {named}. Engines write "
            "forces without constraint forces (GROMACS always), so the mapped bead forces miss "
            "them: choose beads that keep constrained bonds inside one bead, or, if the forces "
            "include the constraint forces (LAMMPS fix shake/rattle), allow it "
            "(split_constraints='allow', --split-constraints allow)."
        )
        if policy == "error":
            raise InputError(message)
        warnings.warn(message, ConstraintWarning, stacklevel=3)

    def positions(self, frames=None) -> np.ndarray:
        """Bead positions (n, n_beads, 3) Å, wrapped into the box."""
        return self.system.map_positions(self.source.positions(frames), self.source.cells(frames))

    def cells(self, frames=None) -> np.ndarray:
        """(n, 3, 3) Å, those of the all-atom frames."""
        return self.source.cells(frames)

    def forces(self, frames=None) -> np.ndarray:
        """Mapped forces F = b·f, (n, n_beads, 3) eV/Å."""
        return self.system.map_forces(self.source.forces(frames))

    def velocities(self, frames=None) -> np.ndarray:
        """Bead velocities (n, n_beads, 3), Å per ASE time unit."""
        return self.system.map_velocities(self.source.velocities(frames))

    @property
    def observable_names(self) -> tuple[str, ...]:
        """The source's observables that the CG view shares (:data:`ase_cg.io.SYSTEM_OBSERVABLES`:
        the pressure)."""
        names = getattr(self.source, "observable_names", ())
        return tuple(name for name in names if name in SYSTEM_OBSERVABLES)

    def observable(self, name: str, frames=None) -> np.ndarray:
        """The source's observable ``name`` (:meth:`ase_cg.io.H5MDTrajectory.observable`)."""
        if name not in self.observable_names:
            raise InputError(
                f"{_name(self)}: no observable {name!r} for the CG view (it has "
                f"{list(self.observable_names) or 'none'})"
            )
        return self.source.observable(name, frames)

    def _frame_atoms(self, i: int) -> Atoms:
        start, data = self._cache
        if not data or not start <= i < start + len(data["positions"]):
            start = i
            frames = slice(start, min(start + self.chunk, self.n_frames))
            data = {"cells": self.cells(frames), "positions": self.positions(frames)}
            if self.has_forces and "forces" in self.atoms_arrays:
                data["forces"] = self.forces(frames)
            if self.has_velocities and "velocities" in self.atoms_arrays:
                data["velocities"] = self.velocities(frames)
            self._cache = (start, data)
        k = i - start
        atoms = Atoms(
            numbers=self.numbers,
            positions=data["positions"][k],
            cell=data["cells"][k],
            pbc=self.pbc,
            masses=self.masses,
        )
        atoms.arrays[K.MOL_ID] = self.mol_ids.copy()
        set_bead_types(atoms, self.bead_types)
        if "velocities" in data:
            atoms.set_velocities(data["velocities"][k])
        if "forces" in data:
            atoms.calc = SinglePointCalculator(atoms, forces=data["forces"][k])
        if self.steps is not None:
            atoms.info["step"] = int(self.steps[i])
        if self.times is not None:
            atoms.info["time"] = float(self.times[i])
        return atoms

    def close(self) -> None:
        """Close the all-atom trajectory."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def _name(trajectory) -> str:
    return str(getattr(trajectory, "path", None) or type(trajectory).__name__)


# --------------------------------------------------------------------------------------------
# Opening and deciding


def open_trajectory(source, *, topology=None, **kwargs):
    """A :class:`Trajectory` for what a user gives.

    Parameters
    ----------
    source : path, list of paths, ase.Atoms, sequence of ase.Atoms or Trajectory
        H5MD files (``.h5``, ``.h5md``, ``.hdf5``) open as :class:`ase_cg.io.H5MDTrajectory`;
        other files through MDAnalysis (:class:`MDAnalysisTrajectory`, e.g. ``traj.trr``
        with ``topology="topol.tpr"``); Atoms as :class:`InMemoryTrajectory`; a trajectory is
        returned as it is.
    topology : path, optional
        Topology file for MDAnalysis (``.tpr``, LAMMPS data file, ``.gro``, ``.pdb`` …).
    **kwargs
        Passed to :class:`MDAnalysisTrajectory` (``lammps_units``, MDAnalysis options).

    Returns
    -------
    Trajectory
        Close it (``with`` or ``.close()``) when done with a file.
    """
    if isinstance(source, Trajectory) and not isinstance(source, Sequence):
        return source
    if isinstance(source, Atoms):
        return InMemoryTrajectory(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if topology is None and path.suffix.lower() in H5MD_SUFFIXES:
            if kwargs:
                raise InputError(f"{path}: options {sorted(kwargs)} do not apply to H5MD files")
            return H5MDTrajectory(path)
        if topology is None:
            return MDAnalysisTrajectory(path, **kwargs)
        return MDAnalysisTrajectory(topology, path, **kwargs)
    if isinstance(source, Sequence) and source and all(isinstance(a, Atoms) for a in source):
        return InMemoryTrajectory(source)
    if (
        isinstance(source, Sequence)
        and source
        and all(isinstance(p, str | os.PathLike) for p in source)
    ):
        if topology is None:
            raise InputError(
                "several trajectory files need a topology (topology=..., --topology FILE)"
            )
        return MDAnalysisTrajectory(topology, list(source), **kwargs)
    if isinstance(source, Sequence) and not source:
        raise InputError("no frames given: the trajectory is empty")
    raise InputError(
        f"expected a trajectory: an H5MD or MDAnalysis-readable file path, ase.Atoms or a list "
        f"of them, or an ase_cg trajectory object; got {type(source).__name__}"
    )


def is_cg(trajectory) -> bool:
    """Whether the frames are CG beads: they carry bead types, or no elements at all (CG
    arrays such as :class:`ase_cg.fitting.ArrayTrajectory`)."""
    if getattr(trajectory, "bead_types", None) is not None:
        return True
    numbers = getattr(trajectory, "numbers", None)
    return numbers is None or not np.any(numbers)


@contextlib.contextmanager
def opened(source, *, topology=None, **kwargs):
    """:func:`open_trajectory` as a context manager: closes what it opened (not a trajectory
    object passed in)."""
    trajectory = open_trajectory(source, topology=topology, **kwargs)
    try:
        yield trajectory
    finally:
        if trajectory is not source:
            trajectory.close()


def cg_trajectory(trajectory, mapping=None, *, what: str = "trajectory", **mapped_kwargs):
    """The CG frames of ``trajectory``: itself when it is CG, else mapped with ``mapping``.

    The one place that decides whether frames are all-atom (and must be mapped) or CG:
    CG frames carry bead types (:func:`is_cg`).

    Parameters
    ----------
    trajectory : Trajectory
    mapping : CGMapping, optional
        Needed for all-atom frames.
    what : str
        How errors name the input.
    **mapped_kwargs
        Passed to :class:`MappedTrajectory` (``force_map``, ``split_constraints``, ``chunk``).

    Raises
    ------
    InputError
        All-atom frames without a mapping.
    """
    if is_cg(trajectory):
        return trajectory
    if mapping is None:
        raise InputError(
            f"{what} ({_name(trajectory)}): is all-atom (no bead types); give the mapping "
            "(--mapping FILE) or map it first with `ase-cg map`"
        )
    return MappedTrajectory(trajectory, mapping, **mapped_kwargs)


def write_trajectory(
    trajectory,
    path,
    *,
    chunk_size: int = 256,
    group: str = "all",
    compression: str | None = "gzip",
    progress: bool | None = None,
) -> int:
    """Write any :class:`Trajectory` to an H5MD file (atomically), chunk by chunk.

    Everything the trajectory has goes in: positions, cells, forces and velocities where
    present, elements (or bead types), masses, molecule ids, bonds, steps and times.

    Parameters
    ----------
    trajectory : Trajectory
    path : path of the ``.h5`` file
    chunk_size : int
        Frames read and written at a time.
    group : str
    compression : {"gzip", "lzf", None}
    progress : bool or None
        tqdm bar (``None``: only on a terminal).

    Returns
    -------
    int
        Number of frames written.
    """
    cg = trajectory.bead_types is not None
    times = getattr(trajectory, "times", None)
    steps = getattr(trajectory, "steps", None)
    steps = np.arange(trajectory.n_frames) if steps is None else np.asarray(steps)
    with (
        H5MDWriter(
            path,
            species=None if cg else trajectory.numbers,
            bead_types=trajectory.bead_types if cg else None,
            masses=trajectory.masses,
            mol_ids=trajectory.mol_ids,
            bonds=trajectory.bonds,
            group=group,
            time_step=getattr(trajectory, "time_step", None),
            compression=compression,
            pbc=trajectory.pbc,
        ) as writer,
        tqdm(
            total=trajectory.n_frames,
            unit="frame",
            desc=Path(str(path)).name,
            disable=None if progress is None else not progress,
        ) as bar,
    ):
        for frames in trajectory.iter_chunks(chunk_size):
            positions, cells = trajectory.positions(frames), trajectory.cells(frames)
            forces = trajectory.forces(frames) if trajectory.has_forces else None
            velocities = trajectory.velocities(frames) if trajectory.has_velocities else None
            for k, frame in enumerate(range(*frames.indices(trajectory.n_frames))):
                writer.append(
                    positions[k],
                    cells[k] if np.any(cells[k]) else None,
                    forces=None if forces is None else forces[k],
                    velocities=None if velocities is None else velocities[k],
                    step=int(steps[frame]),
                    time=None if times is None else float(times[frame]),
                )
            bar.update(len(positions))
        return writer.n_frames


def summary(trajectory: Trajectory) -> str:
    """A few lines on any trajectory (what ``ase-cg info`` prints for non-H5MD files).

    Frames, particles and their composition, molecules and bonds, the first frame's box (Å)
    and which per-frame quantities can be read.
    """
    if trajectory.bead_types is not None:
        kinds = f"CG beads, types {sorted(set(np.asarray(trajectory.bead_types).tolist()))}"
    else:
        kinds = f"atoms, {Symbols(trajectory.numbers).get_chemical_formula('hill')}"
    cell = trajectory.cells(slice(0, 1))[0]
    box = " × ".join(f"{np.linalg.norm(v):.4f}" for v in cell) + " Å (cell vector lengths)"
    molecules = "none stored" if trajectory.mol_ids is None else len(set(trajectory.mol_ids))
    bonds = "none stored" if trajectory.bonds is None else len(trajectory.bonds)
    present = ["positions"]
    present += [n for n, f in (("forces", trajectory.has_forces),
                               ("velocities", trajectory.has_velocities)) if f]  # fmt: skip
    return "\n".join(
        [
            f"frames:      {trajectory.n_frames}",
            f"particles:   {trajectory.n_atoms} ({kinds})",
            f"molecules:   {molecules}",
            f"bonds:       {bonds}",
            f"box:         {box}, pbc={np.asarray(trajectory.pbc).tolist()}",
            f"present:     {', '.join(present)} (in ASE units: Å, eV/Å)",
        ]
    )
