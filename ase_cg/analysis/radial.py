"""Radial distribution functions, intermolecular by default, per type pair, in any periodic cell."""

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
    mol_ids_of,
    particle_types,
)

__all__ = ["rdf"]


class RDFAccumulator:
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
        cell, volume = check_periodic(atoms, frame, self.what)
        r_max = self.edges[-1]
        half_width = cell_half_width(cell)
        if r_max > half_width * (1 + 1e-12):
            raise AnalysisError(
                f"{self.what}, frame {frame}: r_max = {r_max:.4g} Å exceeds half the shortest "
                f"perpendicular width of the cell ({half_width:.4g} Å); use r_max ≤ "
                f"{half_width:.4g} Å or a larger box"
            )
        names = particle_types(atoms)
        mol = mol_ids_of(atoms, frame, self.what, needed=self.intermolecular)
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
    accumulator = RDFAccumulator(r_max, n_bins, [types], intermolecular, "rdf")
    with frames_of(images, "rdf") as frames:
        for frame, atoms in enumerate(iter_frames(frames, desc="RDF")):
            accumulator.add(atoms, frame)
    r, g = accumulator.result()
    return r, g[0]
