"""Structure and dynamics of CG and all-atom liquids, and how close two runs are.

Everything here works on a *trajectory*: a sequence of :class:`ase.Atoms` (a list, an
:class:`ase_cg.io.H5MDTrajectory`, anything with ``len()`` and ``[i]``), a single
:class:`ase.Atoms`, or the path of an H5MD file (read lazily, frame by frame). Frames must be
periodic in all three directions with a cell of non-zero volume; orthorhombic and triclinic cells
are both handled. Particles are labelled by ``atoms.arrays["bead-type"]`` when present (CG
beads), else by their chemical symbols, and grouped into molecules by
``atoms.arrays["mol-id"]``.

Structure
    :func:`rdf` (radial distribution function, intermolecular by default, per type pair),
    :func:`bond_distribution`, :func:`angle_distribution`, :func:`dihedral_distribution`
    (minimum image; per-frame values from :func:`bond_lengths`, :func:`bond_angles`,
    :func:`dihedral_angles`), :func:`density`.
Dynamics
    :func:`msd` (mean-squared displacement, unwrapped across frames, of particles or molecule
    centres of mass) and :func:`diffusion_coefficient` (Einstein relation, linear fit).
Comparison
    :func:`max_abs_difference`, :func:`integrated_absolute_error`, :func:`jensen_shannon`, and
    :func:`compare`, which maps an all-atom reference, analyses it and a CG run the same way and
    writes a report folder (``index.md``, ``metrics.json``, PNG figures).

Units: Å, fs, amu at the interface; densities in g/cm³; diffusion coefficients in Å²/fs and
cm²/s; angles in degrees.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vesin
from ase import Atoms, units
from ase.geometry import find_mic
from tqdm.auto import tqdm

from ase_cg.errors import InputError

__all__ = [
    "AMU_PER_A3_TO_G_PER_CM3",
    "A2_PER_FS_TO_CM2_PER_S",
    "AnalysisError",
    "DiffusionFit",
    "angle_distribution",
    "bond_angles",
    "bond_distribution",
    "bond_lengths",
    "density",
    "diffusion_coefficient",
    "dihedral_angles",
    "dihedral_distribution",
    "integrated_absolute_error",
    "jensen_shannon",
    "max_abs_difference",
    "msd",
    "rdf",
    "topology_from_bonds",
]

#: (n,) int | molecule id of each atom or bead | -
MOL_ID_KEY = "mol-id"
#: (n,) str | bead-type name of each CG bead | -
BEAD_TYPE_KEY = "bead-type"

#: 1 amu/Å³ in g/cm³ (1 amu = ase.units._amu kg; 1 Å³ = 1e-24 cm³).
AMU_PER_A3_TO_G_PER_CM3 = units._amu * 1e3 / 1e-24
#: 1 Å²/fs in cm²/s (1e-16 cm² / 1e-15 s).
A2_PER_FS_TO_CM2_PER_S = 0.1


class AnalysisError(InputError):
    """A trajectory, topology or parameter given to :mod:`ase_cg.analysis` cannot be analysed."""


# --------------------------------------------------------------------------------------------
# trajectories
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _open_frames(images, what: str = "images"):
    """Yield a sequence of Atoms (``len()`` and ``[i]``) for any accepted trajectory form."""
    if isinstance(images, Atoms):
        yield [images]
    elif isinstance(images, str | os.PathLike):
        from ase_cg.io import H5MDTrajectory

        path = Path(images)
        if not path.is_file():
            raise AnalysisError(f"{what}: {path} is not a file; give an H5MD trajectory file")
        trajectory = H5MDTrajectory(path)
        try:
            yield trajectory
        finally:
            trajectory.close()
    elif hasattr(images, "__len__") and hasattr(images, "__getitem__"):
        if len(images) == 0:
            raise AnalysisError(f"{what}: the trajectory has no frames; give at least one frame")
        yield images
    else:
        raise AnalysisError(
            f"{what}: expected ase.Atoms, a sequence of ase.Atoms or an H5MD file path, "
            f"got {type(images).__name__}"
        )


def _iter_frames(frames, *, desc: str | None = None) -> Iterator[Atoms]:
    """Frames one by one (with a progress bar when ``desc`` is given and stderr is a TTY)."""
    indices = range(len(frames))
    if desc is not None:
        indices = tqdm(indices, desc=desc, unit="frame", disable=None, leave=False)
    for index in indices:
        yield frames[index]


def _check_periodic(atoms: Atoms, frame: int, what: str) -> tuple[np.ndarray, float]:
    """Cell (3, 3) in Å and volume in Å³ of a fully periodic frame, else AnalysisError."""
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    volume = abs(float(np.linalg.det(cell)))
    if not np.all(atoms.pbc) or volume < 1e-9:
        raise AnalysisError(
            f"{what}, frame {frame}: pbc={atoms.pbc.tolist()} and cell volume {volume:.3g} Å³; "
            "the analysis needs a periodic liquid: set atoms.pbc = True and a cell"
        )
    return cell, volume


def _half_width(cell: np.ndarray) -> float:
    """Half the shortest perpendicular width of a cell, Å (largest minimum-image distance)."""
    volume = abs(np.linalg.det(cell))
    areas = [np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    return 0.5 * volume / max(areas)


def _particle_types(atoms: Atoms) -> np.ndarray:
    """(n,) str: bead-type names when present, else chemical symbols."""
    if BEAD_TYPE_KEY in atoms.arrays:
        return np.asarray(atoms.arrays[BEAD_TYPE_KEY]).astype(str)
    return np.asarray(atoms.get_chemical_symbols(), dtype=str)


def _mol_ids(atoms: Atoms, frame: int, what: str, needed: bool) -> np.ndarray | None:
    if MOL_ID_KEY in atoms.arrays:
        return np.asarray(atoms.arrays[MOL_ID_KEY]).astype(np.int64)
    if needed:
        raise AnalysisError(
            f"{what}, frame {frame}: no molecule ids (atoms.arrays['{MOL_ID_KEY}']); set them, "
            "or pass intermolecular=False / by_molecule=False"
        )
    return None


# --------------------------------------------------------------------------------------------
# radial distribution function
# --------------------------------------------------------------------------------------------


class _RDFAccumulator:
    """Pair-distance histogram and its ideal-gas normalisation, summed over frames."""

    def __init__(self, r_max: float, n_bins: int, types, intermolecular: bool, what: str):
        if not r_max > 0.0:
            raise AnalysisError(f"{what}: r_max = {r_max} Å; give a positive r_max")
        if int(n_bins) < 1:
            raise AnalysisError(f"{what}: n_bins = {n_bins}; give at least one bin")
        if types is not None and (isinstance(types, str) or len(types) != 2):
            raise AnalysisError(
                f"{what}: types = {types!r}; give a pair of type names such as ('CH3', 'CH3') "
                "or None for all particles"
            )
        self.edges = np.linspace(0.0, float(r_max), int(n_bins) + 1)
        self.types = None if types is None else (str(types[0]), str(types[1]))
        self.intermolecular = bool(intermolecular)
        self.what = what
        self.counts = np.zeros(int(n_bins), dtype=np.float64)
        # Σ_frames n_pairs / V: the pair density an ideal gas would have, 1/Å³
        self.ideal_pair_density = 0.0
        self.n_frames = 0

    def add(self, atoms: Atoms, frame: int) -> None:
        cell, volume = _check_periodic(atoms, frame, self.what)
        r_max = self.edges[-1]
        half_width = _half_width(cell)
        if r_max > half_width * (1 + 1e-12):
            raise AnalysisError(
                f"{self.what}, frame {frame}: r_max = {r_max:.4g} Å exceeds half the shortest "
                f"perpendicular width of the cell ({half_width:.4g} Å); use r_max ≤ "
                f"{half_width:.4g} Å or a larger box"
            )
        names = _particle_types(atoms)
        if self.types is None:
            in_a = in_b = np.ones(len(atoms), dtype=bool)
        else:
            in_a, in_b = names == self.types[0], names == self.types[1]
            for name, selected in zip(self.types, (in_a, in_b), strict=True):
                if not selected.any():
                    raise AnalysisError(
                        f"{self.what}, frame {frame}: no particle of type {name!r}; types "
                        f"present: {sorted(set(names.tolist()))}"
                    )
        same = self.types is None or self.types[0] == self.types[1]
        mol = _mol_ids(atoms, frame, self.what, needed=self.intermolecular)

        selected = np.flatnonzero(in_a | in_b)
        points = np.ascontiguousarray(atoms.positions[selected], dtype=np.float64)
        calculator = vesin.NeighborList(cutoff=float(r_max), full_list=False)
        pair_i, pair_j, distances = calculator.compute(
            points=points, box=cell, periodic=True, quantities="ijd"
        )
        pair_i = selected[pair_i.astype(np.int64)]
        pair_j = selected[pair_j.astype(np.int64)]
        if same:
            keep = in_a[pair_i] & in_a[pair_j]
        else:
            keep = (in_a[pair_i] & in_b[pair_j]) | (in_b[pair_i] & in_a[pair_j])
        if self.intermolecular:
            keep &= mol[pair_i] != mol[pair_j]
        self.counts += np.histogram(distances[keep], bins=self.edges)[0]

        n_a, n_b = int(in_a.sum()), int(in_b.sum())
        n_pairs = n_a * (n_a - 1) / 2 if same else n_a * n_b
        if self.intermolecular:
            _, inverse = np.unique(mol, return_inverse=True)
            per_mol_a = np.bincount(inverse, weights=in_a.astype(float))
            per_mol_b = np.bincount(inverse, weights=in_b.astype(float))
            if same:
                n_pairs -= float(np.sum(per_mol_a * (per_mol_a - 1) / 2))
            else:
                n_pairs -= float(np.sum(per_mol_a * per_mol_b))
        if n_pairs <= 0:
            raise AnalysisError(
                f"{self.what}, frame {frame}: no {'intermolecular ' * self.intermolecular}pair "
                f"of types {self.types or 'all'} exists; check the types and molecule ids"
            )
        self.ideal_pair_density += n_pairs / volume
        self.n_frames += 1

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        r = 0.5 * (self.edges[1:] + self.edges[:-1])
        shell = 4.0 / 3.0 * np.pi * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)
        return r, self.counts / (self.ideal_pair_density * shell)


def rdf(
    images,
    r_max: float,
    n_bins: int,
    *,
    types: tuple[str, str] | None = None,
    intermolecular: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Radial distribution function g(r), averaged over frames.

    .. math::

        g_{AB}(r) = \frac{\sum_f \, n_f(r)}
                          {\sum_f \, (N^{\mathrm{pairs}}_f / V_f)\; 4\pi r^2\,\mathrm{d}r}

    where :math:`n_f(r)` counts the pairs (one A, one B; each unordered pair once) at distance
    r in frame f, and :math:`N^{\mathrm{pairs}}_f` is the number of such pairs that *could* be
    counted: :math:`N_A(N_A-1)/2` for A = B, :math:`N_A N_B` for A ≠ B. With
    ``intermolecular=True`` pairs inside one molecule are excluded from both: the pairs of
    each molecule, :math:`\sum_m n_{A,m}(n_{A,m}-1)/2` (or :math:`\sum_m n_{A,m} n_{B,m}`), are
    subtracted from :math:`N^{\mathrm{pairs}}`. So an ideal gas gives g = 1 at all r with or
    without the exclusion, and the intermolecular g(r) of a liquid tends to 1 at large r (not to
    1 − (intramolecular fraction), as with normalisations that keep :math:`N_A N_B`).
    NPT runs are handled frame by frame (each frame's own volume).

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
        Periodic frames (orthorhombic or triclinic).
    r_max : float, Å
        Largest distance; at most half the shortest perpendicular width of every frame's cell
        (so each pair is counted at its minimum-image distance only).
    n_bins : int
        Number of bins of width ``r_max / n_bins`` between 0 and ``r_max``.
    types : (str, str) or None
        Pair of type names (``arrays["bead-type"]``, else chemical symbols); None for all
        particles.
    intermolecular : bool
        Count only pairs of particles in different molecules (``arrays["mol-id"]`` needed).

    Returns
    -------
    r : (n_bins,) float64, Å
        Bin centres.
    g : (n_bins,) float64
        g(r), dimensionless.

    Raises
    ------
    AnalysisError
        Non-periodic frames, ``r_max`` beyond half the box, unknown types, missing molecule
        ids.
    """
    accumulator = _RDFAccumulator(r_max, n_bins, types, intermolecular, "rdf")
    with _open_frames(images, "rdf") as frames:
        for frame, atoms in enumerate(_iter_frames(frames, desc="RDF")):
            accumulator.add(atoms, frame)
    return accumulator.result()


# --------------------------------------------------------------------------------------------
# bonded distributions
# --------------------------------------------------------------------------------------------


def _as_index_array(terms, width: int, name: str, n_particles: int) -> np.ndarray:
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
    bonds = _as_index_array(bonds, 2, "bonds", len(atoms))
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
    angles = _as_index_array(angles, 3, "angles", len(atoms))
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
    dihedrals = _as_index_array(dihedrals, 4, "dihedrals", len(atoms))
    b1 = _mic_vectors(atoms, dihedrals[:, 0], dihedrals[:, 1])
    b2 = _mic_vectors(atoms, dihedrals[:, 1], dihedrals[:, 2])
    b3 = _mic_vectors(atoms, dihedrals[:, 2], dihedrals[:, 3])
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    m1 = np.cross(n1, b2 / np.linalg.norm(b2, axis=1, keepdims=True))
    x = np.einsum("ij,ij->i", n1, n2)
    y = np.einsum("ij,ij->i", m1, n2)
    angle = -np.degrees(np.arctan2(y, x))
    return np.where(angle <= -180.0, angle + 360.0, angle)


def _bin_edges(bins, values_range, name: str) -> np.ndarray:
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
    with _open_frames(images, name) as frames:
        values = [function(atoms, terms) for atoms in _iter_frames(frames, desc=name)]
    values = np.concatenate(values) if values else np.zeros(0)
    if values.size == 0:
        raise AnalysisError(f"{name}: no {name.split('_')[0]} terms to histogram")
    if value_range is None:
        value_range = (float(values.min()), float(values.max()))
    edges = _bin_edges(bins, value_range, name)
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


# --------------------------------------------------------------------------------------------
# density
# --------------------------------------------------------------------------------------------


def density(images) -> np.ndarray:
    """Mass density of each frame.

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
        Periodic frames with masses (amu).

    Returns
    -------
    (n_frames,) float64, g/cm³
    """
    with _open_frames(images, "density") as frames:
        values = []
        for frame, atoms in enumerate(_iter_frames(frames)):
            _, volume = _check_periodic(atoms, frame, "density")
            values.append(atoms.get_masses().sum() / volume * AMU_PER_A3_TO_G_PER_CM3)
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# mean-squared displacement and diffusion
# --------------------------------------------------------------------------------------------


class _Unwrapper:
    """Continuous positions from wrapped frames, one frame at a time.

    Each frame's displacement from the previous one is taken in fractional coordinates and
    reduced to the nearest image (``Δs − round(Δs)``), then converted with the current cell:
    exact as long as no particle moves more than half a box width between frames, and correct
    for changing (NPT) and triclinic cells.
    """

    def __init__(self):
        self.previous_fractional = None
        self.current = None

    def add(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        fractional = np.linalg.solve(cell.T, positions.T).T
        if self.current is None:
            self.current = np.array(positions, dtype=np.float64)
        else:
            step = fractional - self.previous_fractional
            step -= np.round(step)
            self.current = self.current + step @ cell
        self.previous_fractional = fractional
        return self.current


def _centres_of_mass(positions: np.ndarray, mol_ids: np.ndarray, masses: np.ndarray):
    """(n_molecules, 3) mass-weighted centres of ``positions`` grouped by molecule id."""
    _, inverse = np.unique(mol_ids, return_inverse=True)
    total = np.bincount(inverse, weights=masses)
    return (
        np.stack([np.bincount(inverse, weights=masses * positions[:, k]) for k in range(3)], axis=1)
        / total[:, None]
    )


def _msd_fft(trajectory: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Time-origin-averaged MSD of (n_frames, n, 3) continuous positions, for every lag.

    MSD(m) = S1(m) − 2 S2(m) with S2 the positions' autocorrelation from an FFT (O(T log T)),
    processed in chunks of particles so memory stays bounded.
    """
    n_frames, n_particles, _ = trajectory.shape
    lags = np.arange(n_frames)
    per_lag = n_frames - lags
    total = np.zeros(n_frames)
    size = 2 * n_frames
    for start in range(0, n_particles, chunk):
        x = trajectory[:, start : start + chunk]
        squared = np.sum(x * x, axis=2)  # (T, n)
        cumulative = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(squared, axis=0)])
        # Σ_{t<T−m} x_t² + Σ_{t≥m} x_t²
        s1 = cumulative[n_frames - lags] + cumulative[n_frames] - cumulative[lags]
        spectrum = np.fft.rfft(x, n=size, axis=0)
        autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, n=size, axis=0)[:n_frames]
        s2 = np.sum(autocorrelation, axis=2)
        total += np.sum(s1 - 2.0 * s2, axis=1)
    return np.maximum(total / (per_lag * n_particles), 0.0)


def _check_times(times_fs, n_frames: int, what: str) -> np.ndarray:
    times = np.asarray(times_fs, dtype=np.float64).reshape(-1)
    if len(times) != n_frames:
        raise AnalysisError(f"{what}: {len(times)} times for {n_frames} frames")
    if n_frames > 1:
        steps = np.diff(times)
        if np.any(steps <= 0) or not np.allclose(steps, steps[0], rtol=1e-4, atol=1e-6):
            raise AnalysisError(
                f"{what}: frame times must be evenly spaced and increasing (found spacings "
                f"{steps.min():.6g} to {steps.max():.6g} fs); give frames written at a fixed "
                "interval"
            )
    return times


def msd(
    images=None,
    *,
    positions=None,
    cells=None,
    times_fs=None,
    unwrapped: bool = False,
    by_molecule: bool = False,
    mol_ids=None,
    masses=None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean-squared displacement, averaged over particles (or molecules) and time origins.

    .. math:: \mathrm{MSD}(\tau) = \langle |x_i(t+\tau) - x_i(t)|^2 \rangle_{i,t}

    computed for every lag with an FFT. Wrapped positions are unwrapped first, frame to frame,
    by taking each displacement to its nearest periodic image (fractional coordinates, so
    triclinic and changing cells work); this assumes no particle moves more than half a box
    width between consecutive frames. Memory: the continuous positions of all frames,
    (n_frames, n, 3) float64.

    Parameters
    ----------
    images : sequence of ase.Atoms, or path of an H5MD file, optional
        Frames at evenly spaced times. Times come from ``times_fs``, else from
        ``atoms.info["time"]`` (fs) or the H5MD file's times.
    positions : (n_frames, n, 3) float, Å, optional
        Instead of ``images``: positions of every frame.
    cells : (n_frames, 3, 3) or (3, 3) float, Å, optional
        Cells of ``positions`` (needed unless ``unwrapped``).
    times_fs : (n_frames,) float, fs, optional
        Time of each frame.
    unwrapped : bool
        ``positions`` are already continuous (not wrapped into the box): skip unwrapping.
    by_molecule : bool
        MSD of molecule centres of mass instead of particles (needs ``mol_ids`` and ``masses``,
        taken from the frames when ``images`` is given).
    mol_ids : (n,) int, optional
    masses : (n,) float, amu, optional

    Returns
    -------
    lag_times : (n_frames,) float64, fs
    msd : (n_frames,) float64, Å²
    """
    if (images is None) == (positions is None):
        raise AnalysisError("msd: give either images or positions (with cells), not both")
    if images is not None:
        with _open_frames(images, "msd") as frames:
            unwrapper = _Unwrapper()
            continuous, frame_times = [], []
            for frame, atoms in enumerate(_iter_frames(frames, desc="MSD")):
                cell, _ = _check_periodic(atoms, frame, "msd")
                continuous.append(unwrapper.add(atoms.positions, cell).copy())
                frame_times.append(atoms.info.get("time"))
                if frame == 0 and by_molecule:
                    mol_ids = _mol_ids(atoms, frame, "msd", needed=True)
                    masses = atoms.get_masses()
            if times_fs is None and hasattr(frames, "times"):
                times_fs = frames.times
        trajectory = np.stack(continuous)
        if times_fs is None:
            if any(t is None for t in frame_times):
                raise AnalysisError(
                    "msd: frames carry no times (atoms.info['time'], fs); pass times_fs"
                )
            times_fs = frame_times
    else:
        trajectory = np.asarray(positions, dtype=np.float64)
        if trajectory.ndim != 3 or trajectory.shape[2] != 3:
            raise AnalysisError(
                f"msd: positions must be (n_frames, n, 3), got shape {trajectory.shape}"
            )
        if not unwrapped:
            if cells is None:
                raise AnalysisError("msd: wrapped positions need cells; pass cells= or unwrapped")
            cells = np.broadcast_to(np.asarray(cells, dtype=np.float64), (len(trajectory), 3, 3))
            unwrapper = _Unwrapper()
            trajectory = np.stack(
                [unwrapper.add(p, c).copy() for p, c in zip(trajectory, cells, strict=True)]
            )
        if times_fs is None:
            raise AnalysisError("msd: positions given without times; pass times_fs (fs)")
    times = _check_times(times_fs, len(trajectory), "msd")
    if by_molecule:
        if mol_ids is None or masses is None:
            raise AnalysisError("msd: by_molecule=True needs mol_ids and masses")
        mol_ids = np.asarray(mol_ids)
        masses = np.asarray(masses, dtype=np.float64)
        if len(mol_ids) != trajectory.shape[1] or len(masses) != trajectory.shape[1]:
            raise AnalysisError(
                f"msd: {len(mol_ids)} molecule ids and {len(masses)} masses for "
                f"{trajectory.shape[1]} particles"
            )
        trajectory = np.stack([_centres_of_mass(x, mol_ids, masses) for x in trajectory])
    return times - times[0], _msd_fft(trajectory)


@dataclass(frozen=True)
class DiffusionFit:
    """Self-diffusion coefficient from a linear fit MSD(t) = 2 d D t + c (Einstein relation)."""

    a2_per_fs: float
    """D, Å²/fs."""
    cm2_per_s: float
    """D, cm²/s (1 Å²/fs = 0.1 cm²/s)."""
    intercept_a2: float
    """Fitted c, Å² (ballistic regime and vibrations)."""
    fit_range_fs: tuple[float, float]
    """Lag times fitted, fs."""
    dimensions: int
    """d: number of dimensions the MSD is summed over."""


def diffusion_coefficient(times_fs, msd_a2, fit_range=None, *, dimensions: int = 3) -> DiffusionFit:
    r"""Self-diffusion coefficient by the Einstein relation, a least-squares line through MSD(t).

    .. math:: \mathrm{MSD}(t) \approx 2 d D t + c, \qquad t_0 \le t \le t_1

    Parameters
    ----------
    times_fs : (n,) float, fs
        Lag times.
    msd_a2 : (n,) float, Å²
        Mean-squared displacement at each lag.
    fit_range : (float, float), fs, optional
        Lag times ``(t0, t1)`` to fit; default from 10 % to 50 % of the longest lag (past the
        ballistic start, before the noisy long lags that few time origins average).
    dimensions : int
        d (3 for an MSD summed over x, y, z).

    Returns
    -------
    DiffusionFit
        ``a2_per_fs`` and ``cm2_per_s``: D in Å²/fs and cm²/s.
    """
    times = np.asarray(times_fs, dtype=np.float64)
    values = np.asarray(msd_a2, dtype=np.float64)
    if times.shape != values.shape or times.ndim != 1:
        raise AnalysisError(
            f"diffusion_coefficient: times {times.shape} and msd {values.shape} must be equal "
            "1-D arrays"
        )
    if fit_range is None:
        fit_range = (0.1 * times.max(), 0.5 * times.max())
    low, high = float(fit_range[0]), float(fit_range[1])
    selected = (times >= low) & (times <= high)
    if selected.sum() < 2:
        raise AnalysisError(
            f"diffusion_coefficient: fit range {low:g}–{high:g} fs holds {int(selected.sum())} "
            f"point(s) (lags span {times.min():g}–{times.max():g} fs); widen fit_range"
        )
    slope, intercept = np.polyfit(times[selected], values[selected], 1)
    d = slope / (2 * dimensions)
    return DiffusionFit(
        a2_per_fs=float(d),
        cm2_per_s=float(d * A2_PER_FS_TO_CM2_PER_S),
        intercept_a2=float(intercept),
        fit_range_fs=(low, high),
        dimensions=int(dimensions),
    )


# --------------------------------------------------------------------------------------------
# comparison metrics
# --------------------------------------------------------------------------------------------


def _same_shape(name: str, *arrays) -> list[np.ndarray]:
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    if any(a.shape != arrays[0].shape for a in arrays) or arrays[0].ndim != 1:
        raise AnalysisError(
            f"{name}: arrays must be 1-D of equal length (got shapes "
            f"{[a.shape for a in arrays]}); evaluate both on the same bins"
        )
    return arrays


def max_abs_difference(g_ref, g) -> float:
    """max_r |g(r) − g_ref(r)| on common bins (dimensionless for RDFs)."""
    g_ref, g = _same_shape("max_abs_difference", g_ref, g)
    return float(np.max(np.abs(g - g_ref))) if g.size else 0.0


def integrated_absolute_error(r, g_ref, g) -> float:
    """∫ |g(r) − g_ref(r)| dr by the trapezoidal rule (Å for RDFs on an r grid in Å)."""
    r, g_ref, g = _same_shape("integrated_absolute_error", r, g_ref, g)
    return float(np.trapezoid(np.abs(g - g_ref), r))


def jensen_shannon(p, q) -> float:
    r"""Jensen–Shannon divergence of two histograms on the same bins (natural log).

    .. math::

        \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \| m) + \tfrac12 \mathrm{KL}(q \| m),
        \quad m = \tfrac12 (p + q)

    Both are normalised to sum 1 first (counts or densities on equal-width bins). Symmetric,
    0 for equal histograms, at most ln 2 (histograms without common support).

    Parameters
    ----------
    p, q : (n_bins,) float
        Non-negative, each with a positive sum.

    Returns
    -------
    float, nats
    """
    p, q = _same_shape("jensen_shannon", p, q)
    for name, h in (("p", p), ("q", q)):
        if np.any(h < 0) or not np.all(np.isfinite(h)) or h.sum() <= 0:
            raise AnalysisError(
                f"jensen_shannon: histogram {name} must be finite, non-negative and not all zero"
            )
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a):
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log(a[nonzero] / m[nonzero])))

    return float(min(max(0.5 * kl(p) + 0.5 * kl(q), 0.0), np.log(2.0)))
