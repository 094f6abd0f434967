"""Trajectory input shared by the analyses: any accepted input opened as a trajectory,
frames one by one, periodic cells, particle types and molecule ids.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg.errors import InputError
from ase_cg.trajectory import open_trajectory


class AnalysisError(InputError):
    """A trajectory, topology or parameter given to :mod:`ase_cg.analysis` cannot be analysed."""


@contextlib.contextmanager
def frames_of(images, what: str = "images"):
    """The :class:`ase_cg.trajectory.Trajectory` of any accepted input (closed after use);
    failures are :class:`AnalysisError` naming ``what``."""
    if isinstance(images, str | os.PathLike) and not Path(images).is_file():
        raise AnalysisError(f"{what}: {images} is not a file; give an H5MD trajectory file")
    try:
        trajectory = open_trajectory(images)
    except AnalysisError:
        raise
    except InputError as error:
        raise AnalysisError(f"{what}: {error}") from error
    try:
        yield trajectory
    finally:
        if trajectory is not images:
            trajectory.close()


def iter_frames(frames, *, desc: str | None = None) -> Iterator[Atoms]:
    """Frames one by one (with a progress bar when ``desc`` is given and stderr is a TTY)."""
    indices = range(len(frames))
    if desc is not None:
        indices = tqdm(indices, desc=desc, unit="frame", disable=None, leave=False)
    for index in indices:
        yield frames[index]


def check_periodic(atoms: Atoms, frame: int, what: str) -> tuple[np.ndarray, float]:
    """Cell (3, 3) in Å and volume in Å³ of a fully periodic frame, else AnalysisError."""
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    volume = abs(float(np.linalg.det(cell)))
    if not np.all(atoms.pbc) or volume < 1e-9:
        raise AnalysisError(
            f"{what}, frame {frame}: pbc={atoms.pbc.tolist()} and cell volume {volume:.3g} Å³; "
            "the analysis needs a periodic liquid: set atoms.pbc = True and a cell"
        )
    return cell, volume


def cell_half_width(cell: np.ndarray) -> float:
    """Half the shortest perpendicular width of a cell, Å (largest minimum-image distance)."""
    volume = abs(np.linalg.det(cell))
    areas = [np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    return 0.5 * volume / max(areas)


def particle_types(atoms: Atoms) -> np.ndarray:
    """(n,) str: bead-type names when present, else chemical symbols."""
    if K.BEAD_TYPE in atoms.arrays:
        return np.asarray(atoms.arrays[K.BEAD_TYPE]).astype(str)
    return np.asarray(atoms.get_chemical_symbols(), dtype=str)


def mol_ids_of(atoms: Atoms, frame: int, what: str, needed: bool) -> np.ndarray | None:
    if K.MOL_ID in atoms.arrays:
        return np.asarray(atoms.arrays[K.MOL_ID]).astype(np.int64)
    if needed:
        raise AnalysisError(
            f"{what}, frame {frame}: no molecule ids (atoms.arrays['{K.MOL_ID}']); set them, "
            "or pass intermolecular=False / by_molecule=False"
        )
    return None
