"""Whole trajectories into one new H5MD file, all or nothing: from ``ase.Atoms``
(:func:`write_h5md`, also behind ``ase.io.write``) or from any stream of frames
(:func:`write_frames`), through :class:`ase_cg.io.H5MDWriter`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms

from ase_cg.errors import InputError
from ase_cg.io.writer import H5MDWriter

__all__ = ["write_frames", "write_h5md"]


def write_h5md(
    path: str | os.PathLike,
    images,
    *,
    bonds=None,
    time_step: float | None = None,
    group: str = "all",
    compression: str | None = "gzip",
) -> None:
    """Write ``ase.Atoms`` frames to an H5MD file (atomically).

    Parameters
    ----------
    path : str or Path
    images : ase.Atoms or iterable of ase.Atoms
        Same atoms in every frame.  Species, masses, ``arrays["mol-id"]`` and
        ``arrays["bead-type"]`` come from the first frame; per frame: positions, cell,
        velocities, forces and energy held by the calculator, ``info["step"]``,
        ``info["time"]`` (fs).
    bonds : (n_bonds, 2) int, optional
    time_step : float, fs, optional
    group : str
    compression : str or None
    """
    if isinstance(images, Atoms):
        images = [images]
    triclinic = None
    if isinstance(images, Sequence):
        if not images:
            raise InputError(f"{path}: no frames to write")
        triclinic = any(np.any(a.cell.array[~np.eye(3, dtype=bool)] != 0) for a in images)
    iterator = iter(images)
    first = next(iterator, None)
    if first is None:
        raise InputError(f"{path}: no frames to write")
    bead_types = first.arrays.get("bead-type")
    with H5MDWriter(
        path,
        species=None if bead_types is not None else first.numbers,
        bead_types=bead_types,
        masses=first.get_masses(),
        mol_ids=first.arrays.get("mol-id"),
        bonds=bonds,
        group=group,
        time_step=time_step,
        compression=compression,
        pbc=first.pbc,
        triclinic=triclinic,
    ) as writer:
        writer.append_atoms(first)
        for atoms in iterator:
            writer.append_atoms(atoms)


def write_frames(frames: Iterable, open_writer, append, *, empty: str) -> int:
    """Stream ``frames`` into a new H5MD file, all or nothing.

    The writer is made from the first frame (``open_writer(frame) -> H5MDWriter``, which
    fixes the particles), then ``append(writer, frame)`` writes each frame. The file appears
    only when every frame is written (:meth:`H5MDWriter.close`); on any error, interrupt
    included, the partial file is discarded (:meth:`H5MDWriter.abort`) and the error re-raised.

    Parameters
    ----------
    frames : iterable
        Anything ``open_writer`` and ``append`` understand.
    open_writer, append : callable
    empty : str
        Message of the :class:`~ase_cg.errors.InputError` raised when there are no frames.

    Returns
    -------
    int
        Number of frames written.
    """
    writer = None
    try:
        for frame in frames:
            if writer is None:
                writer = open_writer(frame)
            append(writer, frame)
        if writer is None:
            raise InputError(empty)
        n_frames = writer.n_frames
        writer.close()
        return n_frames
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
