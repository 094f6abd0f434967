r"""Local order of one-bead liquids: the angles between neighbours of a bead within a first-shell
cutoff, and the tetrahedral order parameter of its four nearest neighbours.

One-bead CG water is the standard case: pair potentials reproduce its O–O radial distribution
but not the tetrahedral arrangement of the first shell, which shows in these two observables.
All particles of a frame count, whatever their type or molecule (for one-bead molecules every
particle is a molecule); distances are minimum-image ones in any periodic cell.

Tetrahedral order parameter (Errington & Debenedetti, Nature 409, 318 (2001)):

.. math::

    q_i = 1 - \frac{3}{8} \sum_{j=1}^{3} \sum_{k=j+1}^{4}
          \left(\cos\psi_{jk} + \tfrac13\right)^2

over the four nearest neighbours of particle i, :math:`\psi_{jk}` the angle j–i–k. q = 1 for a
perfect tetrahedron, and its mean is 0 for neighbour directions drawn independently and
uniformly on the sphere (an ideal gas), since then
:math:`\langle(\cos\psi + 1/3)^2\rangle = 1/3 + 1/9 = 4/9` for each of the six pairs.
"""

from __future__ import annotations

import numpy as np
import vesin
from ase import Atoms

from ase_cg.analysis._frames import (
    AnalysisError,
    cell_half_width,
    check_periodic,
    frames_of,
    iter_frames,
)
from ase_cg.analysis.bonded import bin_edges

__all__ = [
    "FIRST_SHELL_CUTOFF",
    "neighbor_angle_distribution",
    "neighbor_angles",
    "tetrahedral_order",
    "tetrahedral_order_parameters",
]

#: Default first-shell cutoff of :func:`neighbor_angles`, Å: the O–O first-shell radius
#: of liquid water used for its O–O–O angle distribution.
FIRST_SHELL_CUTOFF = 3.18

#: Range of the tetrahedral order parameter (q = −3 when all four neighbours coincide in
#: direction, 1 for a perfect tetrahedron).
Q_RANGE = (-3.0, 1.0)


def _neighbors(atoms: Atoms, cutoff: float, frame: int, what: str):
    """Neighbour vectors of every particle within ``cutoff``, padded to a common count.

    Returns
    -------
    vectors : (n_particles, n_max, 3) float64, Å
        Minimum-image vectors from each particle to its neighbours; zeros as padding.
    distances : (n_particles, n_max) float64, Å
        Their lengths; ``inf`` as padding.
    counts : (n_particles,) int64
        Neighbours of each particle.
    """
    cell, _ = check_periodic(atoms, frame, what)
    half_width = cell_half_width(cell)
    if not 0.0 < cutoff <= half_width * (1 + 1e-12):
        raise AnalysisError(
            f"{what}, frame {frame}: cutoff {cutoff:.4g} Å must be positive and at most half "
            f"the shortest perpendicular width of the cell ({half_width:.4g} Å); use a smaller "
            "cutoff or a larger box"
        )
    n = len(atoms)
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    pair_i, vectors, distances = calculator.compute(
        points=np.ascontiguousarray(atoms.positions, dtype=np.float64),
        box=cell,
        periodic=True,
        quantities="iDd",
    )
    pair_i = pair_i.astype(np.int64)
    order = np.argsort(pair_i, kind="stable")
    pair_i, vectors, distances = pair_i[order], vectors[order], distances[order]
    counts = np.bincount(pair_i, minlength=n)
    slot = np.arange(len(pair_i)) - (np.cumsum(counts) - counts)[pair_i]
    n_max = int(counts.max()) if n else 0
    padded_vectors = np.zeros((n, n_max, 3))
    padded_distances = np.full((n, n_max), np.inf)
    padded_vectors[pair_i, slot] = vectors
    padded_distances[pair_i, slot] = distances
    return padded_vectors, padded_distances, counts


def _cosines(unit: np.ndarray) -> np.ndarray:
    """(n, m, m) cosines between the (n, m, 3) unit vectors of each particle."""
    return np.clip(np.einsum("nad,nbd->nab", unit, unit), -1.0, 1.0)


def neighbor_angles(atoms: Atoms, cutoff: float = FIRST_SHELL_CUTOFF) -> np.ndarray:
    """Angles j–i–k of every particle i and each unordered pair j, k of its neighbours.

    Parameters
    ----------
    atoms : ase.Atoms
        One periodic frame.
    cutoff : float, Å
        First-shell radius: j and k are neighbours of i when closer than ``cutoff``; at most half
        the shortest perpendicular width of the cell.

    Returns
    -------
    (n_angles,) float64, degrees
        One angle per particle and pair of its neighbours, in [0, 180].

    Raises
    ------
    AnalysisError
        A non-periodic frame or a cutoff beyond half the box.
    """
    return frame_angles(atoms, cutoff, 0, "neighbor_angles")


def frame_angles(atoms: Atoms, cutoff: float, frame: int, what: str) -> np.ndarray:
    """:func:`neighbor_angles` of frame ``frame``, errors naming ``what`` and the frame."""
    vectors, distances, counts = _neighbors(atoms, cutoff, frame, what)
    if vectors.shape[1] < 2:
        return np.zeros(0)
    unit = vectors / np.where(np.isinf(distances), 1.0, distances)[..., None]
    j, k = np.triu_indices(vectors.shape[1], k=1)
    present = (j[None, :] < counts[:, None]) & (k[None, :] < counts[:, None])
    cosines = _cosines(unit)[:, j, k]
    return np.degrees(np.arccos(cosines[present]))


def tetrahedral_order_parameters(atoms: Atoms) -> np.ndarray:
    """Tetrahedral order parameter q of every particle, from its four nearest neighbours.

    See the module docstring for the definition. The neighbours are searched within a radius
    that starts where an ideal gas of the frame's density would have twelve neighbours and grows
    until every particle has four, up to half the shortest perpendicular width of the cell.

    Parameters
    ----------
    atoms : ase.Atoms
        One periodic frame of at least five particles.

    Returns
    -------
    (n_particles,) float64
        q of each particle, dimensionless, in [−3, 1].

    Raises
    ------
    AnalysisError
        A non-periodic frame, fewer than five particles, or a particle without four neighbours
        within half the box.
    """
    return frame_order_parameters(atoms, 0, "tetrahedral_order_parameters")


def frame_order_parameters(atoms: Atoms, frame: int, what: str) -> np.ndarray:
    """:func:`tetrahedral_order_parameters` of frame ``frame``, errors naming ``what`` and the
    frame."""
    cell, volume = check_periodic(atoms, frame, what)
    n = len(atoms)
    if n < 5:
        raise AnalysisError(
            f"{what}, frame {frame}: {n} particles; q needs four neighbours per particle, "
            "so at least five particles"
        )
    half_width = cell_half_width(cell)
    radius = min((9.0 * volume / (np.pi * n)) ** (1.0 / 3.0), half_width)
    while True:
        vectors, distances, counts = _neighbors(atoms, radius, frame, what)
        if counts.min() >= 4:
            break
        if radius >= half_width:
            lonely = int(np.argmin(counts))
            raise AnalysisError(
                f"{what}, frame {frame}: particle {lonely} has {int(counts[lonely])} "
                f"neighbours within half the box ({half_width:.4g} Å); q needs four: use a "
                "larger or denser box"
            )
        radius = min(1.5 * radius, half_width)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :4]
    unit = np.take_along_axis(vectors, nearest[..., None], axis=1)
    unit /= np.take_along_axis(distances, nearest, axis=1)[..., None]
    j, k = np.triu_indices(4, k=1)
    cosines = _cosines(unit)[:, j, k]
    return 1.0 - 0.375 * np.sum((cosines + 1.0 / 3.0) ** 2, axis=1)


def neighbor_angle_distribution(
    images, cutoff: float = FIRST_SHELL_CUTOFF, bins=90
) -> tuple[np.ndarray, np.ndarray]:
    """Probability density of the neighbour angles j–i–k (:func:`neighbor_angles`) over all
    frames, between 0° and 180°.

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
        Periodic frames (mapped frames of an all-atom run, CG runs).
    cutoff : float, Å
        First-shell radius (default :data:`FIRST_SHELL_CUTOFF`, for water's O–O shell).
    bins : int or (n_bins + 1,) float, degrees
        Number of bins between 0° and 180°, or bin edges.

    Returns
    -------
    centres : (n_bins,) float64, degrees
    density : (n_bins,) float64, 1/degree
        Normalised so that ``sum(density * bin_widths) == 1``.

    Raises
    ------
    AnalysisError
        Non-periodic frames, a cutoff beyond half the box, or no particle with two neighbours
        within the cutoff in any frame.
    """
    name = "neighbor_angle_distribution"
    with frames_of(images, name) as frames:
        values = [
            frame_angles(atoms, cutoff, frame, name)
            for frame, atoms in enumerate(iter_frames(frames, desc=name))
        ]
    values = np.concatenate(values) if values else np.zeros(0)
    if values.size == 0:
        raise AnalysisError(
            f"{name}: no particle has two neighbours within {cutoff:.4g} Å in any frame; give "
            "the first-shell radius of this liquid (the first minimum of its g(r)) as cutoff"
        )
    edges = bin_edges(bins, (0.0, 180.0), name)
    density, _ = np.histogram(values, bins=edges, density=True)
    return 0.5 * (edges[1:] + edges[:-1]), density


def tetrahedral_order(images, bins=200) -> tuple[np.ndarray, np.ndarray, float]:
    """Distribution and mean of the tetrahedral order parameter q
    (:func:`tetrahedral_order_parameters`) over all particles and frames.

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
        Periodic frames.
    bins : int or (n_bins + 1,) float
        Number of bins between −3 and 1 (the range of q), or bin edges.

    Returns
    -------
    centres : (n_bins,) float64
    density : (n_bins,) float64
        Probability density of q, normalised so that ``sum(density * bin_widths) == 1``.
    mean : float
        Mean q over all particles and frames.

    Raises
    ------
    AnalysisError
        As :func:`tetrahedral_order_parameters`, for any frame.
    """
    name = "tetrahedral_order"
    with frames_of(images, name) as frames:
        values = [
            frame_order_parameters(atoms, frame, name)
            for frame, atoms in enumerate(iter_frames(frames, desc=name))
        ]
    values = np.concatenate(values) if values else np.zeros(0)
    if values.size == 0:
        raise AnalysisError(f"{name}: no frames")
    edges = bin_edges(bins, Q_RANGE, name)
    density, _ = np.histogram(values, bins=edges, density=True)
    return 0.5 * (edges[1:] + edges[:-1]), density, float(values.mean())
