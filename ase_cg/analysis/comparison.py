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
from ase_cg.report import (
    AA_COLOR,
    AA_LABEL,
    CG_COLOR,
    CG_LABEL,
    FigureLink,
    Section,
    Table,
    new_figure,
    save_figure,
    write_json,
    write_report,
)
from ase_cg.trajectory import MappedTrajectory, cg_trajectory, open_trajectory
from ase_cg.units import AMU_PER_A3_TO_G_PER_CM3

__all__ = [
    "AMU_PER_A3_TO_G_PER_CM3",
    "A2_PER_FS_TO_CM2_PER_S",
    "AnalysisError",
    "DiffusionFit",
    "angle_distribution",
    "bond_angles",
    "bond_distribution",
    "bond_lengths",
    "compare",
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

#: 1 Å²/fs in cm²/s (1e-16 cm² / 1e-15 s).
A2_PER_FS_TO_CM2_PER_S = 0.1


class AnalysisError(InputError):
    """A trajectory, topology or parameter given to :mod:`ase_cg.analysis` cannot be analysed."""


# --------------------------------------------------------------------------------------------
# trajectories
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _frames_of(images, what: str = "images"):
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
    """Pair-distance histograms of several type pairs and their ideal-gas normalisation.

    One neighbour list per frame serves every type pair. ``pairs`` holds ``None`` (all
    particles) or ``(name_a, name_b)`` tuples. Frames can be added to ``n_blocks`` separate
    blocks (e.g. the two halves of a run, to see the statistical noise of g).
    """

    def __init__(
        self, r_max: float, n_bins: int, pairs, intermolecular: bool, what: str, n_blocks: int = 1
    ):
        if not r_max > 0.0:
            raise AnalysisError(f"{what}: r_max = {r_max} Å; give a positive r_max")
        if int(n_bins) < 1:
            raise AnalysisError(f"{what}: n_bins = {n_bins}; give at least one bin")
        for types in pairs:
            if types is not None and (isinstance(types, str) or len(types) != 2):
                raise AnalysisError(
                    f"{what}: types = {types!r}; give a pair of type names such as "
                    "('CH3', 'CH3'), or None for all particles"
                )
        self.edges = np.linspace(0.0, float(r_max), int(n_bins) + 1)
        self.pairs = [None if t is None else (str(t[0]), str(t[1])) for t in pairs]
        self.intermolecular = bool(intermolecular)
        self.what = what
        self.counts = np.zeros((n_blocks, len(self.pairs), int(n_bins)), dtype=np.float64)
        # Σ_frames n_pairs / V per type pair: the pair density an ideal gas would have, 1/Å³
        self.ideal_pair_density = np.zeros((n_blocks, len(self.pairs)))
        self.n_frames = 0

    def add(self, atoms: Atoms, frame: int, block: int = 0) -> None:
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
        mol = _mol_ids(atoms, frame, self.what, needed=self.intermolecular)
        members = []
        for types in self.pairs:
            if types is None:
                everyone = np.ones(len(atoms), dtype=bool)
                members.append((everyone, everyone))
                continue
            in_a, in_b = names == types[0], names == types[1]
            for name, selected in zip(types, (in_a, in_b), strict=True):
                if not selected.any():
                    raise AnalysisError(
                        f"{self.what}, frame {frame}: no particle of type {name!r}; types "
                        f"present: {sorted(set(names.tolist()))}"
                    )
            members.append((in_a, in_b))

        selected = np.flatnonzero(np.any([a | b for a, b in members], axis=0))
        points = np.ascontiguousarray(atoms.positions[selected], dtype=np.float64)
        calculator = vesin.NeighborList(cutoff=float(r_max), full_list=False)
        pair_i, pair_j, distances = calculator.compute(
            points=points, box=cell, periodic=True, quantities="ijd"
        )
        pair_i = selected[pair_i.astype(np.int64)]
        pair_j = selected[pair_j.astype(np.int64)]
        if self.intermolecular:
            different = mol[pair_i] != mol[pair_j]
            pair_i, pair_j, distances = pair_i[different], pair_j[different], distances[different]
            _, inverse = np.unique(mol, return_inverse=True)

        # uniform bins: bin index by one division (bin n_bins collects d == r_max, dropped)
        n_bins = len(self.edges) - 1
        bins = np.minimum((distances * (n_bins / r_max)).astype(np.int64), n_bins)
        for k, (types, (in_a, in_b)) in enumerate(zip(self.pairs, members, strict=True)):
            same = types is None or types[0] == types[1]
            if same:
                keep = in_a[pair_i] & in_a[pair_j]
            else:
                keep = (in_a[pair_i] & in_b[pair_j]) | (in_b[pair_i] & in_a[pair_j])
            self.counts[block, k] += np.bincount(bins[keep], minlength=n_bins + 1)[:n_bins]
            n_a, n_b = int(in_a.sum()), int(in_b.sum())
            n_pairs = n_a * (n_a - 1) / 2 if same else n_a * n_b
            if self.intermolecular:
                per_mol_a = np.bincount(inverse, weights=in_a.astype(float))
                per_mol_b = np.bincount(inverse, weights=in_b.astype(float))
                if same:
                    n_pairs -= float(np.sum(per_mol_a * (per_mol_a - 1) / 2))
                else:
                    n_pairs -= float(np.sum(per_mol_a * per_mol_b))
            if n_pairs <= 0:
                raise AnalysisError(
                    f"{self.what}, frame {frame}: no {'intermolecular ' * self.intermolecular}"
                    f"pair of types {types or 'all'} exists; check the types and molecule ids"
                )
            self.ideal_pair_density[block, k] += n_pairs / volume
        self.n_frames += 1

    def result(self, block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Bin centres (n_bins,) in Å and g(r) (n_pairs, n_bins) of one block or of all."""
        r = 0.5 * (self.edges[1:] + self.edges[:-1])
        shell = 4.0 / 3.0 * np.pi * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)
        if block is None:
            counts, ideal = self.counts.sum(axis=0), self.ideal_pair_density.sum(axis=0)
        else:
            counts, ideal = self.counts[block], self.ideal_pair_density[block]
        with np.errstate(invalid="ignore", divide="ignore"):
            return r, counts / (ideal[:, None] * shell)


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
    accumulator = _RDFAccumulator(r_max, n_bins, [types], intermolecular, "rdf")
    with _frames_of(images, "rdf") as frames:
        for frame, atoms in enumerate(_iter_frames(frames, desc="RDF")):
            accumulator.add(atoms, frame)
    r, g = accumulator.result()
    return r, g[0]


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
    with _frames_of(images, name) as frames:
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
    with _frames_of(images, "density") as frames:
        values = []
        for frame, atoms in enumerate(_iter_frames(frames)):
            _, volume = _check_periodic(atoms, frame, "density")
            values.append(atoms.get_masses().sum() / volume * AMU_PER_A3_TO_G_PER_CM3)
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# mean-squared displacement and diffusion
# --------------------------------------------------------------------------------------------


class _Unwrapper:
    r"""Continuous positions from wrapped frames, one frame at a time.

    The displacement of each wrapped position since the previous frame is reduced to its
    nearest image in the *current* cell (the lattice-displacement scheme of von Bülow,
    Bullerjahn & Hummer, J. Chem. Phys. 153, 021101 (2020)):

    .. math:: u_t = u_{t-1} + \Delta w - \mathrm{round}(\Delta w\, h_t^{-1})\, h_t,
              \qquad \Delta w = w_t - w_{t-1}

    with :math:`h_t` the cell (rows). Exact in fixed cells as long as no particle moves more
    than half a box width between frames; in NPT runs it does not amplify box fluctuations
    the way ``w_t + n_t h_t`` with image counters does; triclinic cells work.
    """

    def __init__(self):
        self.previous = None
        self.current = None

    def add(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.float64)
        if self.current is None:
            self.current = positions.copy()
        else:
            step = positions - self.previous
            step -= np.round(np.linalg.solve(cell.T, step.T).T) @ cell
            self.current = self.current + step
        self.previous = positions
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
    by taking each displacement to its nearest periodic image in the current cell (von Bülow
    et al. 2020, safe for NPT and triclinic cells); this assumes no particle moves more than
    half a box width between consecutive frames. Memory: the continuous positions of all
    frames, (n_frames, n, 3) float64.

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
        with _frames_of(images, "msd") as frames:
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


# --------------------------------------------------------------------------------------------
# CG vs all-atom comparison
# --------------------------------------------------------------------------------------------

#: Default RDF bin width of :func:`compare`, Å (VOTCA's usual 0.01 nm).
COMPARE_BIN_WIDTH = 0.1
#: Default largest RDF distance of :func:`compare` (when the box allows it), Å.
COMPARE_R_MAX = 15.0

_BONDED = (
    ("bonds", 2, bond_lengths),
    ("angles", 3, bond_angles),
    ("dihedrals", 4, dihedral_angles),
)
_BONDED_TITLE = {"bonds": "Bond-length", "angles": "Bond-angle", "dihedrals": "Dihedral-angle"}
_BONDED_LABEL = {
    "bonds": ("bond length (Å)", "1/Å"),
    "angles": ("bond angle (°)", "1/°"),
    "dihedrals": ("dihedral angle (°)", "1/°"),
}


def _type_key(names) -> str:
    """Canonical name of a bonded term or pair by its types: the smaller of both directions."""
    names = tuple(str(n) for n in names)
    return "-".join(min(names, names[::-1]))


@dataclass
class _Observed:
    """Everything :func:`compare` measures on one trajectory, gathered in one pass."""

    label: str
    n_frames: int = 0
    n_beads: int = 0
    n_molecules: int = 0
    bead_types: tuple = ()
    rdf: _RDFAccumulator | None = None
    bonded: dict | None = None  # kind -> type key -> list of (n_terms,) arrays
    densities: list | None = None
    times: list | None = None
    centres: list | None = None  # (n_molecules or n_beads, 3) continuous positions per frame
    msd_of: str = "beads"


def _observe(frames, label, topology, pairs, r_max, n_bins) -> _Observed:
    """One pass over a CG (or mapped) trajectory: RDF counts, bonded values, density, MSD input."""
    observed = _Observed(
        label=label, rdf=_RDFAccumulator(r_max, n_bins, pairs, True, label, n_blocks=2)
    )
    observed.bonded = {kind: {} for kind, _, _ in _BONDED}
    observed.densities, observed.times, observed.centres = [], [], []
    unwrapper = _Unwrapper()
    groups = {}
    first = frames[0]
    names = _particle_types(first)
    mol_ids = _mol_ids(first, 0, label, needed=True)
    masses = first.get_masses()
    observed.n_beads = len(first)
    observed.n_molecules = len(np.unique(mol_ids))
    observed.bead_types = tuple(sorted(set(names.tolist())))
    molecular = observed.n_molecules < len(first)
    observed.msd_of = "molecule centres of mass" if molecular else "beads"
    for kind, width, _ in _BONDED:
        terms = _as_index_array(topology.get(kind, ()), width, kind, len(first))
        keys = np.array([_type_key(names[t]) for t in terms])
        groups[kind] = {key: terms[keys == key] for key in sorted(set(keys.tolist()))}
    for frame, atoms in enumerate(_iter_frames(frames, desc=f"analysing {label}")):
        if len(atoms) != observed.n_beads:
            raise AnalysisError(
                f"{label}, frame {frame}: {len(atoms)} beads, frame 0 has {observed.n_beads}; "
                "the analysis needs a fixed number of particles"
            )
        observed.rdf.add(atoms, frame, block=int(2 * frame >= len(frames)))
        cell, volume = _check_periodic(atoms, frame, label)
        observed.densities.append(masses.sum() / volume * AMU_PER_A3_TO_G_PER_CM3)
        for kind, _, function in _BONDED:
            for key, terms in groups[kind].items():
                observed.bonded[kind].setdefault(key, []).append(function(atoms, terms))
        continuous = unwrapper.add(atoms.positions, cell)
        observed.centres.append(
            _centres_of_mass(continuous, mol_ids, masses) if molecular else continuous.copy()
        )
        observed.times.append(atoms.info.get("time"))
        observed.n_frames += 1
    if getattr(frames, "times", None) is not None:
        observed.times = list(np.asarray(frames.times, dtype=float))
    return observed


def _first_peak(r: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """Position (Å) and height of the first maximum of g(r).

    The first local maximum (of a 3-bin running mean, against bin noise) after g first exceeds
    1; the global maximum when g never does.
    """
    above = np.flatnonzero(g > 1.0)
    if len(above) == 0:
        k = int(np.argmax(g))
        return float(r[k]), float(g[k])
    smooth = np.convolve(g, np.ones(3) / 3, mode="same")
    k = int(above[0])
    while k + 1 < len(g) and smooth[k + 1] >= smooth[k]:
        k += 1
    k = max(0, k - 1) + int(np.argmax(g[max(0, k - 1) : k + 2]))
    return float(r[k]), float(g[k])


def _plot_rdf(folder, key, r, g_ref, g_cg, metrics) -> str:
    figure, (top, bottom) = new_figure(2, 1, size=(6.4, 5.2), height_ratios=(3, 1.2), sharex=True)
    top.plot(r, g_ref, color=AA_COLOR, lw=2.2, label=AA_LABEL)
    top.plot(r, g_cg, color=CG_COLOR, lw=1.4, ls="--", label=CG_LABEL)
    top.axhline(1.0, color="0.6", lw=0.8, ls=":")
    top.set_ylabel("g(r)")
    top.set_title(f"Intermolecular RDF, {key.replace('-', '–')}")
    # g ≈ 1 at large r, 0 at small r: the lower right corner is free in any liquid
    top.legend(
        frameon=False,
        loc="lower right",
        title=f"max |Δg| = {metrics['max_abs_difference']:.3f}, "
        f"IAE = {metrics['integrated_absolute_error']:.3f} Å",
        title_fontsize=9,
    )
    top.set_ylim(bottom=0.0)
    bottom.plot(r, g_cg - g_ref, color="0.2", lw=1.2)
    bottom.axhline(0.0, color="0.6", lw=0.8, ls=":")
    bottom.set_ylabel("Δg (CG − AA)")
    bottom.set_xlabel("r (Å)")
    bottom.set_xlim(0.0, r[-1] + 0.5 * (r[1] - r[0]))
    name = f"rdf_{key}.png"
    save_figure(figure, Path(folder) / name)
    return name


def _plot_bonded(folder, kind, histograms) -> str:
    n = len(histograms)
    n_cols = min(n, 3)
    n_rows = -(-n // n_cols)
    figure, axes = new_figure(n_rows, n_cols, size=(4.2 * n_cols, 3.4 * n_rows))
    axes = np.atleast_1d(axes).ravel()
    xlabel, unit = _BONDED_LABEL[kind]
    for ax, (key, (centres, p_ref, p_cg, js)) in zip(axes, histograms.items(), strict=False):
        ax.plot(centres, p_ref, color=AA_COLOR, lw=2.2, drawstyle="steps-mid", label=AA_LABEL)
        ax.plot(
            centres, p_cg, color=CG_COLOR, lw=1.4, ls="--", drawstyle="steps-mid", label=CG_LABEL
        )
        ax.set_title(f"{key.replace('-', '–')}   (JS = {js:.3g})", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"probability density ({unit})")
        ax.set_ylim(bottom=0.0)
        if kind == "dihedrals":
            ax.set_xlim(-180.0, 180.0)
            ax.set_xticks(np.arange(-180, 181, 60))
        ax.legend(frameon=False, fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    name = f"{kind}.png"
    save_figure(figure, Path(folder) / name)
    return name


def _plot_msd(folder, curves, title) -> str:
    figure, ax = new_figure(size=(6.4, 4.4))
    for label, color, style, (t, values, fit) in (
        (AA_LABEL, AA_COLOR, "-", curves["reference"]),
        (CG_LABEL, CG_COLOR, "--", curves["cg"]),
    ):
        shown = t <= 0.5 * t[-1] if len(t) > 4 else slice(None)
        ax.plot(
            t[shown] / 1000.0,
            values[shown],
            color=color,
            lw=2.2 if style == "-" else 1.6,
            ls=style,
            label=f"{label}: D = {fit.cm2_per_s:.3g} cm²/s",
        )
        line_t = np.linspace(*fit.fit_range_fs, 20)
        ax.plot(
            line_t / 1000.0,
            fit.intercept_a2 + 2 * fit.dimensions * fit.a2_per_fs * line_t,
            color="k",
            lw=1.0,
            ls=":",
        )
    ax.plot([], [], color="k", lw=1.0, ls=":", label="linear fits (Einstein)")
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.set_title(title)
    ax.set_xlim(left=0.0)
    ax.set_ylim(bottom=0.0)
    ax.legend(frameon=False, fontsize=9, loc="upper left")
    name = "msd.png"
    save_figure(figure, Path(folder) / name)
    return name


def _plot_density(folder, series) -> str:
    figure, ax = new_figure(size=(6.4, 3.4))
    for label, color, style, (t, values) in (
        (AA_LABEL, AA_COLOR, "-", series["reference"]),
        (CG_LABEL, CG_COLOR, "--", series["cg"]),
    ):
        x, xlabel = (np.arange(len(values)), "frame") if t is None else (t / 1000.0, "time (ps)")
        ax.plot(
            x, values, color=color, ls=style, lw=1.6, label=f"{label}: {np.mean(values):.4f} g/cm³"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density (g/cm³)")
    ax.set_title("Mass density")
    ax.legend(frameon=False, fontsize=9)
    name = "density.png"
    save_figure(figure, Path(folder) / name)
    return name


def _js_or_disjoint(p, q) -> float:
    """:func:`jensen_shannon`, or ln 2 when one histogram is empty (all values off the bins)."""
    if np.sum(p) == 0 or np.sum(q) == 0:
        return float(np.log(2.0))
    return jensen_shannon(p, q)


def _smallest_half_width(frames) -> float:
    """Smallest half perpendicular box width over all frames, Å (cells only are read)."""
    source = frames.source if isinstance(frames, MappedTrajectory) else frames
    if callable(getattr(source, "cells", None)):
        cells = source.cells()
    else:
        cells = [np.asarray(source[i].cell[:]) for i in range(len(source))]
    return min(_half_width(np.asarray(cell, dtype=np.float64)) for cell in cells)


def _describe(source, frames) -> str:
    """How the report names an input: its path, else what was given."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    if getattr(source, "path", None) is not None:  # an open H5MDTrajectory
        return str(source.path)
    return f"{len(frames)} ase.Atoms frames given in memory"


def _topology_of(frames, mapping, given) -> dict:
    """Bonded topology of a CG trajectory: from the mapping, else the file's bonds, else given."""
    if isinstance(frames, MappedTrajectory):
        return frames.topology
    if mapping is not None:
        return mapping.topology(frames[0])
    bonds = getattr(frames, "bonds", None)
    if bonds is not None:
        return topology_from_bonds(bonds)
    return given or {}


def _times_or_none(times) -> np.ndarray | None:
    if times is None or any(t is None for t in times) or len(times) < 3:
        return None
    return np.asarray(times, dtype=np.float64)


def _rdf_section(folder, observed, pairs, r_max, n_bins) -> tuple[dict, list]:
    """RDF metrics, table and figures of :func:`compare`."""
    metrics, sections = {}, []
    r, g_ref = observed["reference"].rdf.result()
    _, g_cg = observed["cg"].rdf.result()
    halves = {}  # max |Δg| between the first and the second half of each run: its noise
    for side in observed:
        if observed[side].n_frames >= 2:
            first_half = observed[side].rdf.result(0)[1]
            second_half = observed[side].rdf.result(1)[1]
            halves[side] = np.max(np.abs(first_half - second_half), axis=1)
    metrics["rdf"] = {}
    rdf_rows, rdf_figures = [], []
    for k, (a, b) in enumerate(pairs):
        key = f"{a}-{b}"
        entry = {
            "max_abs_difference": max_abs_difference(g_ref[k], g_cg[k]),
            "integrated_absolute_error": integrated_absolute_error(r, g_ref[k], g_cg[k]),
            "first_peak_reference": dict(zip(("r_A", "g"), _first_peak(r, g_ref[k]), strict=True)),
            "first_peak_cg": dict(zip(("r_A", "g"), _first_peak(r, g_cg[k]), strict=True)),
            "halves_max_abs_difference_reference": (
                float(halves["reference"][k]) if "reference" in halves else None
            ),
            "halves_max_abs_difference_cg": float(halves["cg"][k]) if "cg" in halves else None,
        }
        metrics["rdf"][key] = entry
        rdf_rows.append(
            [
                key,
                entry["max_abs_difference"],
                entry["integrated_absolute_error"],
                entry["first_peak_reference"]["r_A"],
                entry["first_peak_cg"]["r_A"],
                entry["first_peak_reference"]["g"],
                entry["first_peak_cg"]["g"],
                entry["halves_max_abs_difference_reference"],
                entry["halves_max_abs_difference_cg"],
            ]
        )
        name = _plot_rdf(folder, key, r, g_ref[k], g_cg[k], entry)
        rdf_figures.append(
            FigureLink(
                name,
                f"Intermolecular RDF {key}: {AA_LABEL} vs {CG_LABEL}, with the difference below.",
            )
        )
    sections.append(
        Section(
            "Radial distribution functions",
            f"Intermolecular bead–bead g(r) up to {r_max:.2f} Å in {n_bins} bins, pairs within one "
            "molecule excluded (and from the normalisation, so g → 1 at large r). max |Δg| is the "
            "largest difference over all bins; IAE = ∫|g_CG − g_AA| dr. The last two columns "
            "are the max |Δg| between the first and the second half of each run: the "
            "statistical noise of g on these bins (each half has half the frames, so this is "
            "about √2 × the noise of a full-length comparison); a max |Δg| near them is noise.",
            [
                Table(
                    [
                        "pair",
                        "max |Δg|",
                        "IAE (Å)",
                        "peak r AA (Å)",
                        "peak r CG (Å)",
                        "peak g AA",
                        "peak g CG",
                        "halves AA",
                        "halves CG",
                    ],
                    rdf_rows,
                )
            ],
            rdf_figures,
        )
    )

    return metrics, sections


def _bonded_section(folder, observed, bins_of) -> tuple[dict, list]:
    """Bond, angle and dihedral metrics, tables and figures of :func:`compare`."""
    metrics, sections = {}, []
    bonded_tables, bonded_figures = [], []
    for kind, _, _ in _BONDED:
        values = {s: observed[s].bonded[kind] for s in observed}
        keys = sorted(set(values["reference"]) | set(values["cg"]))
        metrics[kind] = {}
        histograms, rows = {}, []
        for key in keys:
            if key not in values["reference"] or key not in values["cg"]:
                only = "reference" if key in values["reference"] else "CG"
                metrics[kind][key] = {"only_in": only}
                rows.append([key, f"only in the {only}", "–", None, None, None])
                continue
            ref_values = np.concatenate(values["reference"][key])
            cg_values = np.concatenate(values["cg"][key])
            if kind == "dihedrals":
                value_range = (-180.0, 180.0)
            else:
                pooled = np.concatenate([ref_values, cg_values])
                low, high = np.percentile(pooled, [0.05, 99.95])
                pad = 0.05 * max(high - low, 1e-3)
                value_range = (low - pad, high + pad)
            edges = _bin_edges(bins_of[kind], value_range, kind)
            p_ref = np.histogram(ref_values, bins=edges, density=True)[0]
            p_cg = np.histogram(cg_values, bins=edges, density=True)[0]
            js = _js_or_disjoint(p_ref, p_cg)
            # JS between the two halves of each run: its finite-sample floor on these bins
            halves = {}
            for side in ("reference", "cg"):
                per_frame = values[side][key]
                if len(per_frame) >= 2:
                    middle = (len(per_frame) + 1) // 2
                    halves[side] = _js_or_disjoint(
                        *(
                            np.histogram(np.concatenate(part), bins=edges)[0]
                            for part in (per_frame[:middle], per_frame[middle:])
                        )
                    )
            entry = {
                "jensen_shannon": js,
                "halves_jensen_shannon_reference": halves.get("reference"),
                "halves_jensen_shannon_cg": halves.get("cg"),
                "mean_reference": float(ref_values.mean()),
                "std_reference": float(ref_values.std()),
                "mean_cg": float(cg_values.mean()),
                "std_cg": float(cg_values.std()),
            }
            metrics[kind][key] = entry
            histograms[key] = (0.5 * (edges[1:] + edges[:-1]), p_ref, p_cg, js)
            rows.append(
                [
                    key,
                    f"{entry['mean_reference']:.4g} ± {entry['std_reference']:.2g}",
                    f"{entry['mean_cg']:.4g} ± {entry['std_cg']:.2g}",
                    js,
                    entry["halves_jensen_shannon_reference"],
                    entry["halves_jensen_shannon_cg"],
                ]
            )
        if not keys:
            continue
        unit = _BONDED_LABEL[kind][0].split("(")[-1].rstrip(")")
        bonded_tables.append(
            Table(
                [
                    "type",
                    f"AA mean ± std ({unit})",
                    f"CG mean ± std ({unit})",
                    "JS (nats)",
                    "JS halves AA",
                    "JS halves CG",
                ],
                rows,
                caption=kind,
            )
        )
        if histograms:
            name = _plot_bonded(folder, kind, histograms)
            bonded_figures.append(
                FigureLink(name, f"{_BONDED_TITLE[kind]} distributions: {AA_LABEL} vs {CG_LABEL}.")
            )
    if bonded_tables:
        sections.append(
            Section(
                "Bonded distributions",
                "Minimum-image distributions on common bins; JS is the Jensen–Shannon divergence "
                "of the two histograms (0 = identical, ln 2 ≈ 0.693 = no overlap). 'JS halves' "
                "compares the first and the second half of one run: the floor that sampling "
                "noise sets on these bins (with half the samples each, so about twice the floor "
                "of the full-length comparison).",
                bonded_tables,
                bonded_figures,
            )
        )

    return metrics, sections


def _density_section(folder, observed) -> tuple[dict, list]:
    """Density metrics, table and figure of :func:`compare`."""
    metrics, sections = {}, []
    rho = {s: np.asarray(observed[s].densities) for s in observed}

    def spread(values):  # standard deviation, rounding noise of a constant volume shown as 0
        std = float(values.std())
        return std if std > 1e-12 * abs(float(values.mean())) else 0.0

    metrics["density"] = {
        "reference_g_cm3": float(rho["reference"].mean()),
        "reference_std_g_cm3": spread(rho["reference"]),
        "cg_g_cm3": float(rho["cg"].mean()),
        "cg_std_g_cm3": spread(rho["cg"]),
        "relative_difference": float(rho["cg"].mean() / rho["reference"].mean() - 1.0),
    }
    times = {s: _times_or_none(observed[s].times) for s in observed}
    name = _plot_density(folder, {s: (times[s], rho[s]) for s in observed})
    d = metrics["density"]
    sections.append(
        Section(
            "Density",
            "Mass density of each frame (total bead mass / cell volume); constant in NVT runs.",
            [
                Table(
                    ["", "mean (g/cm³)", "std (g/cm³)"],
                    [
                        [AA_LABEL, d["reference_g_cm3"], d["reference_std_g_cm3"]],
                        [CG_LABEL, d["cg_g_cm3"], d["cg_std_g_cm3"]],
                        ["relative difference (CG/AA − 1)", d["relative_difference"], None],
                    ],
                )
            ],
            [FigureLink(name, "Density of each frame.")],
        )
    )

    return metrics, sections


def _pressures(frames) -> np.ndarray | None:
    """Per-frame pressure (bar) stored with a trajectory (``observables/pressure``), or None."""
    if "pressure" not in getattr(frames, "observable_names", ()):
        return None
    return np.asarray(frames.observable("pressure")) / units.bar


def _block_error(values: np.ndarray, n_blocks: int = 5) -> float:
    """Standard error of the mean of a correlated series from ``n_blocks`` block means."""
    if len(values) < n_blocks:
        return float("nan")
    means = [block.mean() for block in np.array_split(values, n_blocks)]
    return float(np.std(means, ddof=1) / np.sqrt(n_blocks))


def _pressure_section(pressures: dict) -> tuple[dict, list]:
    """Pressure metrics and table of :func:`compare` (when both runs store their pressure)."""
    missing = [side for side, values in pressures.items() if values is None]
    if missing:
        reason = (
            f"no observables/pressure in the {' and '.join(missing)} trajectory (ase-cg "
            "reference and ase-cg simulate store it; ase-cg reference --add-pressure FILE adds "
            "it to an older reference)"
        )
        return {"pressure": {"skipped": reason}}, [Section("Pressure", reason, [], [])]
    p = pressures
    metrics = {
        "reference_bar": float(p["reference"].mean()),
        "reference_error_bar": _block_error(p["reference"]),
        "cg_bar": float(p["cg"].mean()),
        "cg_error_bar": _block_error(p["cg"]),
        "difference_bar": float(p["cg"].mean() - p["reference"].mean()),
    }
    table = Table(
        ["", "mean (bar)", "standard error (bar, 5 blocks)"],
        [
            [AA_LABEL, metrics["reference_bar"], metrics["reference_error_bar"]],
            [CG_LABEL, metrics["cg_bar"], metrics["cg_error_bar"]],
            ["difference (CG − AA)", metrics["difference_bar"], None],
        ],
    )
    text = (
        "Mean pressure (kinetic + virial) of the stored frames; for an NVT CG run at the "
        "reference's volume the two should agree (ase-cg refine corrects it)."
    )
    return {"pressure": metrics}, [Section("Pressure", text, [table], [])]


def _diffusion_section(folder, observed, fit_range_fs) -> tuple[dict, list]:
    """MSD, diffusion coefficients, table and figure of :func:`compare`."""
    metrics, sections = {}, []
    times = {s: _times_or_none(observed[s].times) for s in observed}
    if any(t is None for t in times.values()):
        reasons = [
            f"the {observed[s].label} run has "
            + ("fewer than 3 frames" if observed[s].n_frames < 3 else "no frame times")
            for s, t in times.items()
            if t is None
        ]
        metrics["diffusion"] = {"skipped": "; ".join(reasons)}
        sections.append(Section("Diffusion", f"Skipped: {metrics['diffusion']['skipped']}."))
    else:
        curves = {}
        for side in observed:
            _check_times(times[side], len(times[side]), observed[side].label)
            lags = times[side] - times[side][0]
            values = _msd_fft(np.stack(observed[side].centres))
            fit_range = fit_range_fs or (0.1 * lags[-1], 0.5 * lags[-1])
            curves[side] = (lags, values, diffusion_coefficient(lags, values, fit_range))
        fits = {side: curves[side][2] for side in curves}
        metrics["diffusion"] = {
            "of": observed["cg"].msd_of,
            "reference_cm2_s": fits["reference"].cm2_per_s,
            "cg_cm2_s": fits["cg"].cm2_per_s,
            "reference_A2_fs": fits["reference"].a2_per_fs,
            "cg_A2_fs": fits["cg"].a2_per_fs,
            "ratio": float(fits["cg"].cm2_per_s / fits["reference"].cm2_per_s),
            "reference_fit_range_fs": list(fits["reference"].fit_range_fs),
            "cg_fit_range_fs": list(fits["cg"].fit_range_fs),
        }
        name = _plot_msd(folder, curves, f"MSD of {observed['cg'].msd_of}")
        dm = metrics["diffusion"]

        def ps(fit):
            return f"{fit.fit_range_fs[0] / 1000:.3g}–{fit.fit_range_fs[1] / 1000:.3g}"

        sections.append(
            Section(
                "Diffusion",
                f"Mean-squared displacement of {dm['of']} (unwrapped, averaged over time "
                "origins); D from a line MSD = 6Dt + c fitted over the lag times in the table "
                "(default 10 %–50 % of each run's span: past the ballistic start, before the "
                "noisy long lags; give a common range with --fit-range). CG dynamics are "
                "usually faster than all-atom (smoother free-energy surface, less friction): "
                "the ratio measures that speed-up.",
                [
                    Table(
                        ["", "D (cm²/s)", "D (Å²/fs)", "fit range (ps)"],
                        [
                            [
                                AA_LABEL,
                                dm["reference_cm2_s"],
                                dm["reference_A2_fs"],
                                ps(fits["reference"]),
                            ],
                            [CG_LABEL, dm["cg_cm2_s"], dm["cg_A2_fs"], ps(fits["cg"])],
                            ["ratio D_CG / D_AA", dm["ratio"], None, ""],
                        ],
                    )
                ],
                [
                    FigureLink(
                        name,
                        "MSD up to half of each run's span, with the fitted lines (black, "
                        "dotted) over their fit ranges.",
                    )
                ],
            )
        )

    return metrics, sections


def _summary_section(metrics, inputs) -> Section:
    """The first section of the report: one row per quantity, both values and the metric."""

    def pm(mean, std, digits=4):
        return f"{mean:.{digits}g} ± {std if std > 1e-9 * abs(mean) else 0.0:.2g}"

    summary_rows = []
    for key, v in metrics["rdf"].items():
        peaks = [v[f"first_peak_{s}"] for s in ("reference", "cg")]
        summary_rows.append(
            [f"RDF {key}: first peak r (Å), g"]
            + [f"{p['r_A']:.3g} Å, {p['g']:.3g}" for p in peaks]
            + ["max |Δg|", v["max_abs_difference"]]
        )
    for kind, _, _ in _BONDED:
        unit = _BONDED_LABEL[kind][0].split("(")[-1].rstrip(")")
        for key, v in metrics[kind].items():
            if "jensen_shannon" in v:
                summary_rows.append(
                    [
                        f"{kind[:-1]} {key} ({unit})",
                        pm(v["mean_reference"], v["std_reference"]),
                        pm(v["mean_cg"], v["std_cg"]),
                        "JS divergence (nats)",
                        v["jensen_shannon"],
                    ]
                )
    d = metrics["density"]
    summary_rows.append(
        [
            "density (g/cm³)",
            pm(d["reference_g_cm3"], d["reference_std_g_cm3"]),
            pm(d["cg_g_cm3"], d["cg_std_g_cm3"]),
            "CG/AA − 1",
            d["relative_difference"],
        ]
    )
    if "cg_bar" in metrics["pressure"]:
        pr = metrics["pressure"]
        summary_rows.append(
            [
                "pressure (bar)",
                pm(pr["reference_bar"], pr["reference_error_bar"]),
                pm(pr["cg_bar"], pr["cg_error_bar"]),
                "CG − AA (bar)",
                pr["difference_bar"],
            ]
        )
    if "ratio" in metrics["diffusion"]:
        dm = metrics["diffusion"]
        summary_rows.append(
            [
                "D (cm²/s)",
                f"{dm['reference_cm2_s']:.3e}",
                f"{dm['cg_cm2_s']:.3e}",
                "D_CG / D_AA",
                dm["ratio"],
            ]
        )
    input_rows = [
        [
            AA_LABEL if s == "reference" else CG_LABEL,
            v["source"],
            v["n_frames"],
            v["n_beads"],
            v["n_molecules"],
        ]
        for s, v in inputs.items()
    ]
    return Section(
        "Summary",
        "",
        [
            Table(["quantity", AA_LABEL, CG_LABEL, "metric", "value"], summary_rows),
            Table(["trajectory", "source", "frames", "beads", "molecules"], input_rows),
        ],
    )


def compare(
    reference,
    cg,
    *,
    mapping=None,
    output_dir="report",
    r_max: float | None = None,
    n_bins: int | None = None,
    bond_bins: int = 80,
    angle_bins: int = 90,
    dihedral_bins: int = 72,
    fit_range_fs: tuple[float, float] | None = None,
    topology: dict | None = None,
    title: str = "CG vs all-atom comparison",
) -> dict:
    """Compare a CG run with its all-atom reference and write a report folder.

    The reference is mapped to beads first when ``mapping`` is given (frame by frame: one
    all-atom frame in memory at a time); otherwise both inputs must already be CG (bead types
    in ``arrays["bead-type"]``). Both are then analysed identically:

    - intermolecular RDF of every bead-type pair (:func:`rdf` normalisation), compared by
      :func:`max_abs_difference` and :func:`integrated_absolute_error`;
    - bond, angle and dihedral distributions per type (from the mapping's topology, else from
      the bonds stored in the H5MD files), compared by :func:`jensen_shannon` on common bins;
    - density per frame (mean, standard deviation, relative difference);
    - pressure, when both trajectories store it (``observables/pressure``: mean, block error,
      difference);
    - MSD of molecule centres of mass (of beads for one-bead molecules), diffusion coefficient
      by :func:`diffusion_coefficient`, and the ratio D_CG / D_AA.

    Written to ``output_dir``::

        report/
        ├── index.md          Markdown tables of every number below, figure links
        ├── metrics.json      the returned dict
        ├── rdf_<A>-<B>.png   g(r) overlay with a difference panel, per bead-type pair
        ├── bonds.png, angles.png, dihedrals.png   (those the topology has)
        ├── density.png
        └── msd.png           (when both trajectories carry frame times)

    Parameters
    ----------
    reference : sequence of ase.Atoms, path of an H5MD file, or ase_cg.trajectory object
        All-atom (mapped with ``mapping``) or CG reference trajectory (a CG one is used as it
        is, with or without ``mapping``).
    cg : sequence of ase.Atoms, path of an H5MD file, or ase_cg.trajectory object
        CG trajectory (``arrays["bead-type"]`` and ``arrays["mol-id"]``).
    mapping : CGMapping or path of a mapping JSON file, optional
        Maps the reference; also gives both sides' bonded topology.
    output_dir : str or path
        Report folder (created; files in it are replaced).
    r_max : float, Å, optional
        Largest RDF distance; default the smaller of 15 Å and 98 % of half the shortest
        perpendicular box width of any frame of either trajectory.
    n_bins : int, optional
        RDF bins; default one per 0.1 Å.
    bond_bins, angle_bins, dihedral_bins : int
        Bins of the bonded distributions (common to both sides; bonds and angles span both
        sides' observed ranges, dihedrals −180°..180°).
    fit_range_fs : (float, float), fs, optional
        Lag times of the diffusion fit, for both runs; default 10 %–50 % of each run's own
        time span.
    topology : dict, optional
        Bead ``"bonds"`` (n, 2), ``"angles"`` (n, 3), ``"dihedrals"`` (n, 4) of both
        trajectories (same bead order), for inputs that carry none (in-memory frames without
        a mapping); a mapping or the bonds stored in an H5MD file take precedence.
    title : str
        Title of ``index.md``.

    Returns
    -------
    dict
        The metrics, also in ``metrics.json`` (None where not computable):

        - ``"rdf"``: per pair ``"A-B"``: ``max_abs_difference``, ``integrated_absolute_error``
          (Å), ``first_peak_reference`` / ``first_peak_cg`` (``r_A``, ``g``), and
          ``halves_max_abs_difference_reference`` / ``_cg``: max |Δg| between the first and the
          second half of that run, its noise level on these bins;
        - ``"bonds"``, ``"angles"``, ``"dihedrals"``: per type ``"A-B"``, ``"A-B-C"``, …:
          ``jensen_shannon`` (nats), ``halves_jensen_shannon_reference`` / ``_cg``,
          ``mean_*`` and ``std_*`` (Å or degrees), or ``only_in`` when one side lacks it;
        - ``"density"``: ``reference_g_cm3``, ``cg_g_cm3``, their ``*_std_g_cm3``,
          ``relative_difference`` (CG/AA − 1);
        - ``"pressure"``: when both trajectories store ``observables/pressure``:
          ``reference_bar``, ``cg_bar``, their block ``*_error_bar``, ``difference_bar``;
          else ``skipped`` with the reason;
        - ``"diffusion"``: ``reference_cm2_s``, ``cg_cm2_s``, ``*_A2_fs``, ``ratio``
          (D_CG / D_AA), ``*_fit_range_fs``, ``of`` (molecule centres of mass or beads), or
          ``skipped`` with the reason;
        - ``"inputs"``, ``"parameters"`` (``r_max_A``, ``n_bins``), ``"files"``.

    Raises
    ------
    AnalysisError
        Inputs without bead types (an all-atom reference without ``mapping``), different bead
        types on both sides, non-periodic frames, a changing number of beads.
    """
    from ase_cg import __version__

    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise AnalysisError(f"compare: output_dir {folder} exists and is not a folder")
    mapping_source = None
    if mapping is not None and not hasattr(mapping, "system"):
        from ase_cg.mapping import CGMapping

        mapping_source = str(mapping)
        mapping = CGMapping.load(mapping)

    with (
        _frames_of(reference, "reference") as reference_frames,
        _frames_of(cg, "cg") as cg_frames,
    ):
        if mapping is not None:  # all-atom frames are mapped, CG frames pass
            reference_frames = cg_trajectory(
                reference_frames, mapping, split_constraints="allow", atoms_arrays=()
            )
        sides = {"reference": reference_frames, "cg": cg_frames}
        sources = {
            "reference": _describe(reference, reference_frames),
            "cg": _describe(cg, cg_frames),
        }
        first = {side: frames[0] for side, frames in sides.items()}
        types = {}
        for side, atoms in first.items():
            if BEAD_TYPE_KEY not in atoms.arrays:
                hint = (
                    "it looks all-atom: pass the mapping (--mapping FILE)"
                    if side == "reference"
                    else "give a CG trajectory (written by ase-cg simulate or ase-cg map)"
                )
                raise AnalysisError(
                    f"compare: the {side} trajectory ({sources[side]}) has no bead types "
                    f"(arrays['{BEAD_TYPE_KEY}']); {hint}"
                )
            types[side] = sorted(set(_particle_types(atoms).tolist()))
        if types["reference"] != types["cg"]:
            raise AnalysisError(
                f"compare: bead types differ: reference {types['reference']}, CG {types['cg']}; "
                "compare a CG run with the reference mapped by the same mapping"
            )
        bead_types = types["cg"]
        pairs = [(a, b) for k, a in enumerate(bead_types) for b in bead_types[k:]]
        if r_max is None:
            for side, atoms in first.items():
                _check_periodic(atoms, 0, side)
            largest = min(_smallest_half_width(frames) for frames in sides.values())
            r_max = min(COMPARE_R_MAX, 0.98 * largest)
        if n_bins is None:
            n_bins = max(1, int(round(r_max / COMPARE_BIN_WIDTH)))
        pressures = {side: _pressures(frames) for side, frames in sides.items()}
        observed = {}
        for side, frames in sides.items():
            label = "reference" if side == "reference" else "CG"
            observed[side] = _observe(
                frames, label, _topology_of(frames, mapping, topology), pairs, r_max, n_bins
            )
        inputs = {
            side: {
                "source": _describe(source, sides[side]),
                "n_frames": observed[side].n_frames,
                "n_beads": observed[side].n_beads,
                "n_molecules": observed[side].n_molecules,
            }
            for side, source in (("reference", reference), ("cg", cg))
        }

    folder.mkdir(parents=True, exist_ok=True)
    metrics: dict = {
        "inputs": {**inputs, "mapping": mapping_source, "bead_types": bead_types},
        "parameters": {"r_max_A": float(r_max), "n_bins": int(n_bins)},
    }
    sections: list[Section] = []
    for part, part_sections in (
        _rdf_section(folder, observed, pairs, r_max, n_bins),
        _bonded_section(
            folder,
            observed,
            {"bonds": bond_bins, "angles": angle_bins, "dihedrals": dihedral_bins},
        ),
        _density_section(folder, observed),
        _pressure_section(pressures),
        _diffusion_section(folder, observed, fit_range_fs),
    ):
        metrics.update(part)
        sections += part_sections
    sections.insert(0, _summary_section(metrics, inputs))
    intro = (
        f"Bead types: {', '.join(bead_types)}. "
        + (f"Reference mapped to beads with `{mapping_source}`. " if mapping_source else "")
        + (
            "Reference mapped to beads with the given mapping. "
            if mapping is not None and not mapping_source
            else ""
        )
        + f"Written by ase_cg {__version__} (`ase_cg.analysis.compare`); the numbers are also in "
        "`metrics.json`."
    )
    figures = [f.path for section in sections for f in section.figures]
    metrics["files"] = {"index": "index.md", "metrics": "metrics.json", "figures": figures}
    write_report(folder, title, sections, intro=intro)
    write_json(folder / "metrics.json", metrics)
    return metrics
