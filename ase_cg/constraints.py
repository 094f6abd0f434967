"""Bond constraints of the ASE engine: SHAKE/RATTLE vectorised over the bonds.

:func:`bond_constraint` holds each CG bond at its type's mean length in a start frame, with
:class:`FixedBondLengths` (ASE's :class:`~ase.constraints.FixBondLengths` with the bonds
corrected group by group in NumPy); :class:`ConstraintError` says which bond did not converge.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.constraints import FixBondLengths
from ase.geometry import find_mic

from ase_cg import _keys as K
from ase_cg.errors import ASECGError


class ConstraintError(ASECGError, RuntimeError):
    """Bond constraints that could not be satisfied (the run is blowing up)."""

    bead: int = 0


def _edge_colours(bonds: np.ndarray) -> list[np.ndarray]:
    """Split bonds into groups in which no two bonds share a bead (greedy edge colouring)."""
    colour_of = np.empty(len(bonds), dtype=np.int64)
    used: dict[int, set[int]] = {}
    for k, (a, b) in enumerate(bonds.tolist()):
        taken = used.setdefault(a, set()) | used.setdefault(b, set())
        colour = next(c for c in range(len(taken) + 1) if c not in taken)
        colour_of[k] = colour
        used[a].add(colour)
        used[b].add(colour)
    return [np.flatnonzero(colour_of == c) for c in range(colour_of.max(initial=-1) + 1)]


class FixedBondLengths(FixBondLengths):
    """ASE's :class:`~ase.constraints.FixBondLengths` (SHAKE/RATTLE), vectorised over bonds.

    ASE's class corrects one bond at a time in a Python loop, ~1 s per step for a few hundred
    bonds. Here the bonds are split into groups that share no bead (an edge colouring) and each
    group is corrected at once with the same per-bond formulas, group after group, until every
    correction is below ``tolerance``: the same Gauss–Seidel iteration, in NumPy.

    Parameters
    ----------
    pairs : (n_bonds, 2) int
    bondlengths : (n_bonds,) float, Å
    tolerance : float
        Largest relative correction accepted as converged.
    """

    def __init__(self, pairs, bondlengths, tolerance: float = 1e-12):
        super().__init__(pairs, tolerance=tolerance, bondlengths=np.asarray(bondlengths, float))
        self.pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self._colours = _edge_colours(self.pairs)

    def _bond_vectors(self, atoms) -> np.ndarray:
        """Minimum-image ``x_a − x_b`` (n_bonds, 3) at the positions before the update."""
        raw = atoms.positions[self.pairs[:, 0]] - atoms.positions[self.pairs[:, 1]]
        return find_mic(raw, atoms.cell, atoms.pbc)[0]

    def _fail(self, x: np.ndarray, group: np.ndarray, what: str):
        worst = group[int(np.argmax(np.abs(x)))]
        a, b = self.pairs[worst]
        error = ConstraintError(
            f"the {what} of bond {worst} (beads {a}-{b}) did not converge in {self.maxiter} "
            "iterations"
        )
        error.bead = int(a)
        return error

    def adjust_positions(self, atoms, new):
        masses = atoms.get_masses()
        old = atoms.positions
        d0 = self._bond_vectors(atoms)
        shift = d0 - (old[self.pairs[:, 0]] - old[self.pairs[:, 1]])
        for _ in range(self.maxiter):
            converged = True
            for group in self._colours:
                a, b = self.pairs[group, 0], self.pairs[group, 1]
                d1 = new[a] - new[b] + shift[group]
                x = 0.5 * (self.bondlengths[group] ** 2 - np.einsum("ij,ij->i", d1, d1))
                x /= np.einsum("ij,ij->i", d0[group], d1)
                if not np.all(np.isfinite(x)):
                    raise self._fail(np.where(np.isfinite(x), 0.0, np.inf), group, "position")
                if np.abs(x).max() > self.tolerance:
                    converged = False
                    reduced = 1.0 / (1.0 / masses[a] + 1.0 / masses[b])
                    step = (x * reduced)[:, None] * d0[group]
                    new[a] += step / masses[a, None]
                    new[b] -= step / masses[b, None]
            if converged:
                return
        raise self._fail(x, group, "position")

    def adjust_momenta(self, atoms, p):
        masses = atoms.get_masses()
        d = self._bond_vectors(atoms)
        for _ in range(self.maxiter):
            converged = True
            for group in self._colours:
                a, b = self.pairs[group, 0], self.pairs[group, 1]
                dv = p[a] / masses[a, None] - p[b] / masses[b, None]
                x = -np.einsum("ij,ij->i", dv, d[group]) / self.bondlengths[group] ** 2
                if np.abs(x).max() > self.tolerance:
                    converged = False
                    reduced = 1.0 / (1.0 / masses[a] + 1.0 / masses[b])
                    step = (x * reduced)[:, None] * d[group]
                    p[a] += step
                    p[b] -= step
            if converged:
                return
        raise self._fail(x, group, "velocity")


def bond_constraint(atoms: Atoms, bonds: np.ndarray) -> FixedBondLengths:
    """Bond constraints holding each bond at its type's mean length in ``atoms``.

    The length of each bond type (pair of bead-type names) is the mean over the bonds of that
    type, so a mapped all-atom frame's fluctuating bonds start from one length per type.
    """
    names = np.asarray(atoms.arrays[K.BEAD_TYPE]).astype(str)
    vectors, _ = find_mic(
        atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], atoms.cell, atoms.pbc
    )
    lengths = np.linalg.norm(vectors, axis=1)
    keys = np.array(["|".join(sorted(pair)) for pair in names[bonds]])
    target = np.empty(len(bonds))
    for key in np.unique(keys):
        target[keys == key] = lengths[keys == key].mean()
    return FixedBondLengths(bonds, target)
