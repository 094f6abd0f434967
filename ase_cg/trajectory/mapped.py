"""A CG view of an all-atom trajectory, mapped chunk by chunk as frames are read."""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_cg import _keys as K
from ase_cg.beads import set_bead_types
from ase_cg.chemistry import rigid_bonds, split_bonds
from ase_cg.errors import InputError
from ase_cg.io import SYSTEM_OBSERVABLES
from ase_cg.trajectory.base import (
    ConstraintWarning,
    FramesMixin,
    trajectory_name,
)


class MappedTrajectory(FramesMixin):
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
                f"{trajectory_name(trajectory)}: is already a CG trajectory (it has bead types); "
                "map an all-atom trajectory"
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
            f"{trajectory_name(self.source)}: {int(split.sum())} constrained bond(s) (length "
            f"constant over the frames) join atoms of different beads, e.g. atoms {named}. "
            "Engines write forces without constraint forces (GROMACS always), so the mapped "
            "bead forces miss them: choose beads that keep constrained bonds inside one bead, "
            "or, if the forces include the constraint forces (LAMMPS fix shake/rattle), allow "
            "it (split_constraints='allow', --split-constraints allow)."
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
                f"{trajectory_name(self)}: no observable {name!r} for the CG view (it has "
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
