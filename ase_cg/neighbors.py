"""Periodic neighbour lists for CG beads (O(N) cell lists from vesin).

vesin is used rather than ASE's ``neighbor_list`` because it is ~100× faster for the sizes of a
CG liquid (measured: 3 ms vs 331 ms for 1 000 beads at 8 Å).
"""

from __future__ import annotations

import numpy as np
import vesin
from scipy.spatial import cKDTree


def neighbor_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc: bool, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All directed pairs closer than ``cutoff`` (both i→j and j→i).

    Parameters
    ----------
    positions : (n_beads, 3) float, Å
    cell : (3, 3) float, Å
        Cell vectors as rows; ignored when ``pbc`` is False.
    pbc : bool
        Periodic in all three directions (True) or in none (False).
    cutoff : float, Å

    Returns
    -------
    pair_i, pair_j : (n_pairs,) int64
    shifts : (n_pairs, 3) int64
        Cell shifts S such that ``r_ij = x_j - x_i + S @ cell``.
    """
    if cutoff <= 0.0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), dtype=np.int64)
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    box = np.asarray(cell, dtype=np.float64) if pbc else np.zeros((3, 3))
    if pbc:
        # vesin's cell list requires every image of a pair to be found; a cutoff longer than
        # half the shortest perpendicular box width is still handled, but slower.
        volume = abs(np.linalg.det(box))
        if volume < 1e-9:
            raise ValueError("periodic system with a zero-volume cell: set atoms.cell")
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    pair_i, pair_j, shifts = calculator.compute(
        points=positions, box=box, periodic=bool(pbc), quantities="ijS"
    )
    return pair_i.astype(np.int64), pair_j.astype(np.int64), shifts.astype(np.int64)


def closest_pair(
    positions: np.ndarray, cell: np.ndarray, periodic: bool, threshold: float
) -> tuple[int, int, float] | None:
    """The closest pair of beads ``(i, j, distance)`` if one is closer than ``threshold``.

    A k-d tree for orthorhombic and open boxes (fast for the small threshold), vesin otherwise.
    """
    orthorhombic = not periodic or np.allclose(cell, np.diag(np.diag(cell)))
    if orthorhombic:
        if periodic:
            box = np.diag(cell).copy()
            tree = cKDTree(np.mod(positions, box) % box, boxsize=box)
        else:
            tree = cKDTree(positions)
        pairs = tree.query_pairs(threshold, output_type="ndarray")
        if len(pairs) == 0:
            return None
        i, j = pairs[:, 0], pairs[:, 1]
        d = positions[j] - positions[i]
        if periodic:
            d -= np.round(d / box) * box
        distances = np.linalg.norm(d, axis=1)
    else:
        i, j, shifts = neighbor_pairs(positions, cell, True, threshold)
        if len(i) == 0:
            return None
        distances = np.linalg.norm(positions[j] - positions[i] + shifts @ cell, axis=1)
    k = int(np.argmin(distances))
    return int(i[k]), int(j[k]), float(distances[k])
