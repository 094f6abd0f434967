"""The :class:`Trajectory` protocol and what every implementation shares: frame selection,
chunks, one frame as ``ase.Atoms``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator


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


def chunks(n_frames: int, chunk_size: int) -> Iterator[slice]:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, n_frames, chunk_size):
        yield slice(start, min(start + chunk_size, n_frames))


def frame_atoms(trajectory, frame: int, masses, **arrays) -> Atoms:
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


class FramesMixin:
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
        return chunks(self.n_frames, 64 if chunk_size is None else chunk_size)

    def close(self) -> None:
        """Nothing to release (kept for the file-backed trajectories' interface)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def trajectory_name(trajectory) -> str:
    """The path of a file-backed trajectory, else its class name (for messages)."""
    return str(getattr(trajectory, "path", None) or type(trajectory).__name__)
