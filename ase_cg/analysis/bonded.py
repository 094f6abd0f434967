"""Bonded geometry: bond lengths, bond angles and dihedral angles (minimum image), their
distributions over a trajectory, and angles and dihedrals from bonds.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.geometry import find_mic

from ase_cg.analysis._frames import AnalysisError, frames_of, iter_frames

__all__ = [
    "angle_distribution",
    "bond_angles",
    "bond_distribution",
    "bond_lengths",
    "dihedral_angles",
    "dihedral_distribution",
    "topology_from_bonds",
]


def as_index_array(terms, width: int, name: str, n_particles: int) -> np.ndarray:
    """(n, width) int64 index array from an array or a topology dict, validated."""
    if isinstance(terms, dict):
        if name not in terms:
            raise AnalysisError(
                f"topology has no {name!r} entry (keys: {sorted(terms)}); give a topology with "
                f"{name!r} or the (n, {width}) index array itself"
            )
        terms = terms[name]
    array = np.asarray(terms)
    if array.size == 0:
        return np.zeros((0, width), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != width or not np.issubdtype(array.dtype, np.integer):
        raise AnalysisError(
            f"{name}: expected an (n, {width}) integer array of particle indices, got shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    if array.min() < 0 or array.max() >= n_particles:
        raise AnalysisError(
            f"{name}: particle indices run from {int(array.min())} to {int(array.max())}, "
            f"out of range for a frame of {n_particles} particles"
        )
    return array.astype(np.int64)


def _mic_vectors(atoms: Atoms, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n, 3) minimum-image vectors from particles ``start`` to particles ``end``, Å."""
    vectors = atoms.positions[end] - atoms.positions[start]
    if len(vectors) and atoms.pbc.any():
        vectors, _ = find_mic(vectors, atoms.cell, atoms.pbc)
    return vectors


def bond_lengths(atoms: Atoms, bonds) -> np.ndarray:
    """Minimum-image length of each bond in one frame.

    Parameters
    ----------
    atoms : ase.Atoms
    bonds : (n_bonds, 2) int, or a topology dict with a ``"bonds"`` entry

    Returns
    -------
    (n_bonds,) float64, Å
    """
    bonds = as_index_array(bonds, 2, "bonds", len(atoms))
    return np.linalg.norm(_mic_vectors(atoms, bonds[:, 0], bonds[:, 1]), axis=1)


def bond_angles(atoms: Atoms, angles) -> np.ndarray:
    """Angle i–j–k (vertex j) of each angle in one frame, minimum image.

    Parameters
    ----------
    atoms : ase.Atoms
    angles : (n_angles, 3) int, or a topology dict with an ``"angles"`` entry

    Returns
    -------
    (n_angles,) float64, degrees in [0, 180]
    """
    angles = as_index_array(angles, 3, "angles", len(atoms))
    u = _mic_vectors(atoms, angles[:, 1], angles[:, 0])
    v = _mic_vectors(atoms, angles[:, 1], angles[:, 2])
    cosine = np.einsum("ij,ij->i", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def dihedral_angles(atoms: Atoms, dihedrals) -> np.ndarray:
    """Dihedral angle i–j–k–l of each dihedral in one frame, minimum image (IUPAC sign).

    Cis is 0°, trans ±180°; positive when, looking along j→k, the bond k–l is rotated clockwise
    from the bond j–i.

    Parameters
    ----------
    atoms : ase.Atoms
    dihedrals : (n_dihedrals, 4) int, or a topology dict with a ``"dihedrals"`` entry

    Returns
    -------
    (n_dihedrals,) float64, degrees in (−180, 180]
    """
    dihedrals = as_index_array(dihedrals, 4, "dihedrals", len(atoms))
    b1 = _mic_vectors(atoms, dihedrals[:, 0], dihedrals[:, 1])
    b2 = _mic_vectors(atoms, dihedrals[:, 1], dihedrals[:, 2])
    b3 = _mic_vectors(atoms, dihedrals[:, 2], dihedrals[:, 3])
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    m1 = np.cross(n1, b2 / np.linalg.norm(b2, axis=1, keepdims=True))
    x = np.einsum("ij,ij->i", n1, n2)
    y = np.einsum("ij,ij->i", m1, n2)
    angle = -np.degrees(np.arctan2(y, x))
    return np.where(angle <= -180.0, angle + 360.0, angle)


def bin_edges(bins, values_range, name: str) -> np.ndarray:
    if np.ndim(bins) == 0:
        if int(bins) < 1:
            raise AnalysisError(f"{name}: bins = {bins}; give a positive number of bins")
        low, high = values_range
        if high <= low:
            high = low + 1e-6
        return np.linspace(low, high, int(bins) + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise AnalysisError(f"{name}: bin edges must be a strictly increasing 1-D array")
    return edges


def _distribution(images, terms, bins, value_range, function, name):
    with frames_of(images, name) as frames:
        values = [function(atoms, terms) for atoms in iter_frames(frames, desc=name)]
    values = np.concatenate(values) if values else np.zeros(0)
    if values.size == 0:
        raise AnalysisError(f"{name}: no {name.split('_')[0]} terms to histogram")
    if value_range is None:
        value_range = (float(values.min()), float(values.max()))
    edges = bin_edges(bins, value_range, name)
    density_values, _ = np.histogram(values, bins=edges, density=True)
    return 0.5 * (edges[1:] + edges[:-1]), density_values


def bond_distribution(images, bonds, bins=100, *, range=None):
    """Probability density of bond lengths over all frames (minimum image).

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
    bonds : (n_bonds, 2) int, or a topology dict with a ``"bonds"`` entry
        Particle indices, the same for every frame.
    bins : int or (n_bins + 1,) float, Å
        Number of bins (spanning ``range``, default the observed min..max) or bin edges.
    range : (float, float), Å, optional
        Histogram range when ``bins`` is a number.

    Returns
    -------
    centres : (n_bins,) float64, Å
    density : (n_bins,) float64, 1/Å
        Normalised so that ``sum(density * bin_widths) == 1``.
    """
    return _distribution(images, bonds, bins, range, bond_lengths, "bond_distribution")


def angle_distribution(images, angles, bins=90, *, range=None):
    """Probability density of bond angles over all frames (minimum image).

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
    angles : (n_angles, 3) int, or a topology dict with an ``"angles"`` entry (vertex middle)
    bins : int or (n_bins + 1,) float, degrees
    range : (float, float), degrees, optional

    Returns
    -------
    centres : (n_bins,) float64, degrees
    density : (n_bins,) float64, 1/degree
    """
    return _distribution(images, angles, bins, range, bond_angles, "angle_distribution")


def dihedral_distribution(images, dihedrals, bins=72, *, range=(-180.0, 180.0)):
    """Probability density of dihedral angles over all frames (minimum image, IUPAC sign).

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
    dihedrals : (n_dihedrals, 4) int, or a topology dict with a ``"dihedrals"`` entry
    bins : int or (n_bins + 1,) float, degrees
    range : (float, float), degrees
        Histogram range when ``bins`` is a number; the full circle by default.

    Returns
    -------
    centres : (n_bins,) float64, degrees
    density : (n_bins,) float64, 1/degree
    """
    return _distribution(images, dihedrals, bins, range, dihedral_angles, "dihedral_distribution")


def topology_from_bonds(bonds) -> dict[str, np.ndarray]:
    """Angles and proper dihedrals implied by a bond list (every path of 2 and 3 bonds).

    Parameters
    ----------
    bonds : (n_bonds, 2) int
        Particle indices.

    Returns
    -------
    dict
        ``"bonds"`` (n_bonds, 2), ``"angles"`` (n_angles, 3) with the vertex in the middle,
        ``"dihedrals"`` (n_dihedrals, 4); int64; each angle and dihedral listed once (in the
        direction whose first index is smaller than its last).
    """
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    neighbours: dict[int, set[int]] = {}
    for i, j in bonds.tolist():
        neighbours.setdefault(i, set()).add(j)
        neighbours.setdefault(j, set()).add(i)
    angles = []
    for j, around in neighbours.items():
        ordered = sorted(around)
        for a, i in enumerate(ordered):
            angles.extend((i, j, k) for k in ordered[a + 1 :])
    dihedrals = []
    for j, k in bonds.tolist():
        for i in sorted(neighbours[j] - {k}):
            for m in sorted(neighbours[k] - {j}):
                if i == m:
                    continue
                dihedrals.append((i, j, k, m) if i < m else (m, k, j, i))
    return {
        "bonds": bonds,
        "angles": np.asarray(angles, dtype=np.int64).reshape(-1, 3),
        "dihedrals": np.asarray(sorted(set(dihedrals)), dtype=np.int64).reshape(-1, 4),
    }


#: Kinds of bonded term: (name, particles per term, per-frame value function).
BONDED = (
    ("bonds", 2, bond_lengths),
    ("angles", 3, bond_angles),
    ("dihedrals", 4, dihedral_angles),
)
