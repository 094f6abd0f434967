"""Random A-B-B-A chain liquids and spline models of them (classical fitting and tables tests)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ase_cg.fitting import ClassicalConfig
from ase_cg.fitting.linear import _build_terms
from ase_cg.potentials import CGModel, SystemTopology


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def chain_from_internal(bonds, angles, dihedral) -> np.ndarray:
    """(4, 3) positions of a 4-bead chain with 3 bond lengths, 2 angles (rad), 1 dihedral."""
    a = np.zeros(3)
    b = np.array([bonds[0], 0.0, 0.0])
    c = b + bonds[1] * np.array([-math.cos(angles[0]), math.sin(angles[0]), 0.0])
    # place d by the natural extension reference frame
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    local = np.array(
        [
            -bonds[2] * math.cos(angles[1]),
            bonds[2] * math.sin(angles[1]) * math.cos(dihedral),
            bonds[2] * math.sin(angles[1]) * math.sin(dihedral),
        ]
    )
    d = c + local[0] * bc + local[1] * m + local[2] * n
    return np.array([a, b, c, d])


def chain_liquid(rng, n_molecules=20, box=16.0, min_distance=2.0):
    """Random periodic liquid of A-B-B-A chains with uniformly sampled internal coordinates.

    Bond lengths in [1.3, 1.9] Å, angles in [1.5, 2.9] rad, dihedrals in [−π, π); molecules are
    inserted so that beads of different molecules are at least ``min_distance`` apart.
    """
    cell = np.diag([box, box * 1.05, box * 0.95])
    molecules = []
    while len(molecules) < n_molecules:
        chain = chain_from_internal(
            rng.uniform(1.3, 1.9, 3), rng.uniform(1.5, 2.9, 2), rng.uniform(-math.pi, math.pi)
        )
        chain = chain @ random_rotation(rng).T + rng.uniform(0, 1, 3) @ cell
        ok = True
        for other in molecules:
            d = chain[:, None] - other[None]
            frac = np.linalg.solve(cell.T, d.reshape(-1, 3).T).T
            d = (frac - np.round(frac)) @ cell
            if np.linalg.norm(d, axis=-1).min() < min_distance:
                ok = False
                break
        if ok:
            molecules.append(chain)
    positions = np.concatenate(molecules)
    positions = (np.linalg.solve(cell.T, positions.T).T % 1.0) @ cell
    first = 4 * np.arange(n_molecules)[:, None, None]
    topology = SystemTopology(
        np.tile([0, 1, 1, 0], n_molecules),
        (first + np.array([[0, 1], [1, 2], [2, 3]])[None]).reshape(-1, 2),
        (first + np.array([[0, 1, 2], [1, 2, 3]])[None]).reshape(-1, 3),
        (first + np.array([[0, 1, 2, 3]])[None]).reshape(-1, 4),
    )
    return positions, cell, topology


CHAIN_CONFIG = ClassicalConfig(
    pair_cutoff=7.0,
    pair_spacing=0.25,
    pair_r_min=2.0,
    bond_spacing=0.05,
    bond_range=(1.3, 1.9),
    angle_spacing=0.1,
    angle_range=(1.5, 2.9),
    dihedral_intervals=12,
    smoothness=0.0,
    ridge=1e-12,
)


def random_chain_model(rng, config=CHAIN_CONFIG) -> CGModel:
    """A model of all four spline terms with random coefficients for the sampled combinations.

    Sampled ranges span the whole grids, so no extrapolation happens on chain liquids.
    """
    empty = SystemTopology(np.zeros(4, int), [[0, 1]], [[0, 1, 2]], [[0, 1, 2, 3]])
    terms = _build_terms(2, empty, config, {})
    sampled = {
        "pair": [(0, 0), (0, 1), (1, 1)],
        "bond": [(0, 1), (1, 1)],
        "angle": [(0, 1, 1)],
        "dihedral": [(0, 1, 1, 0)],
    }
    with torch.no_grad():
        for term in terms:
            for combination in sampled[term.kind]:
                index = term.combinations.index(combination)
                values = 0.05 * rng.normal(size=term.n_free)
                term.coefficients[index, : term.n_free] = torch.as_tensor(values)
                term.samples[index] = 1.0
    return CGModel(["A", "B"], terms).double()
