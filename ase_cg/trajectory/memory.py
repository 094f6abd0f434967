"""Frames given as ``ase.Atoms``."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ase_cg import _keys as K
from ase_cg.errors import InputError
from ase_cg.trajectory.base import FramesMixin, frame_indices


class InMemoryTrajectory(FramesMixin):
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
