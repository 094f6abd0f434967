"""The physical prior: harmonic bonds and angles plus a short-range repulsion.

A neural CG potential only knows the configurations it was trained on; the prior keeps CG MD
stable where the data never went (beads overlapping, bonds stretched). Parameters come from the
mapped reference by Boltzmann inversion of a Gaussian: for a coordinate q with mean q̄ and
variance s², ``k = k_B T / s²`` and ``q0 = q̄`` give ``E = ½ k (q − q0)²``.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.units import kB
from torch import Tensor

from ase_cg.potentials.base import (
    CGGraph,
    EnergyTerm,
    pair_energies_to_beads,
    register_term,
    tuple_energies_to_beads,
)


def _table(n_types: int, rank: int, values) -> Tensor:
    """A float64 parameter table of shape (n_types,) * rank from nested lists or a scalar."""
    shape = (n_types,) * rank
    if values is None:
        return torch.zeros(shape, dtype=torch.float64)
    table = torch.as_tensor(values, dtype=torch.float64)
    if table.ndim == 0:
        return torch.full(shape, float(table), dtype=torch.float64)
    if table.shape != shape:
        raise ValueError(f"parameter table has shape {tuple(table.shape)}, expected {shape}")
    return table.clone()


@register_term
class HarmonicBonds(EnergyTerm):
    """``E = ½ k_ab (r − r0_ab)²`` for every bond between bead types a and b.

    Parameters
    ----------
    n_types : int
    k : (n_types, n_types) nested list or scalar, eV/Å²
    r0 : (n_types, n_types) nested list or scalar, Å
    """

    kind = "bond"

    def __init__(self, n_types: int, k=None, r0=None) -> None:
        super().__init__()
        self.n_types = int(n_types)
        self.register_buffer("k", _table(self.n_types, 2, k))
        self.register_buffer("r0", _table(self.n_types, 2, r0))

    def config(self) -> dict:
        return {"n_types": self.n_types}

    def forward(self, graph: CGGraph) -> Tensor:
        types = graph.bead_types[graph.bonds]
        r = torch.linalg.norm(graph.bond_vectors, dim=-1)
        k, r0 = self.k[types[:, 0], types[:, 1]], self.r0[types[:, 0], types[:, 1]]
        return tuple_energies_to_beads(graph, graph.bonds, 0.5 * k * (r - r0) ** 2)


def bond_angles(angle_vectors: Tensor) -> Tensor:
    """Angles (radians) between the two vectors of each angle, (n, 2, 3) → (n,)."""
    a, c = angle_vectors[:, 0], angle_vectors[:, 1]
    cross = torch.linalg.norm(torch.linalg.cross(a, c), dim=-1)
    # atan2 stays differentiable at 0 and π, unlike acos of the cosine
    return torch.atan2(cross, (a * c).sum(-1))


@register_term
class HarmonicAngles(EnergyTerm):
    """``E = ½ k_abc (θ − θ0_abc)²`` for every angle a–b–c (θ in radians).

    Parameters
    ----------
    n_types : int
    k : (n_types,)*3 nested list or scalar, eV/rad²
    theta0 : (n_types,)*3 nested list or scalar, rad
    """

    kind = "angle"

    def __init__(self, n_types: int, k=None, theta0=None) -> None:
        super().__init__()
        self.n_types = int(n_types)
        self.register_buffer("k", _table(self.n_types, 3, k))
        self.register_buffer("theta0", _table(self.n_types, 3, theta0))

    def config(self) -> dict:
        return {"n_types": self.n_types}

    def forward(self, graph: CGGraph) -> Tensor:
        t = graph.bead_types[graph.angles]
        theta = bond_angles(graph.angle_vectors)
        k = self.k[t[:, 0], t[:, 1], t[:, 2]]
        theta0 = self.theta0[t[:, 0], t[:, 1], t[:, 2]]
        return tuple_energies_to_beads(graph, graph.angles, 0.5 * k * (theta - theta0) ** 2)


@register_term
class Repulsion(EnergyTerm):
    """Short-range repulsion ``ε (σ_ab / r)^p``, shifted so energy and force vanish at the cutoff.

    .. math::

        E(r) = ε\\left[(σ/r)^p − (σ/r_c)^p + p\\,(σ/r_c)^p\\,(r − r_c)/r_c\\right], \\quad r < r_c

    Pairs few bonds apart (``graph.pair_excluded``) are skipped.

    Parameters
    ----------
    n_types : int
    sigma : (n_types, n_types) nested list or scalar, Å
        Distance where the unshifted repulsion equals ε; pick the closest approach seen in data.
    epsilon : float, eV
    power : int
    cutoff : float, Å
    """

    kind = "pair"

    def __init__(
        self, n_types: int, sigma=None, epsilon: float = 0.01, power: int = 12, cutoff: float = 5.0
    ) -> None:
        super().__init__()
        self.n_types = int(n_types)
        self.epsilon, self.power, self._cutoff = float(epsilon), int(power), float(cutoff)
        self.register_buffer("sigma", _table(self.n_types, 2, sigma))

    @property
    def cutoff(self) -> float:
        return self._cutoff

    def config(self) -> dict:
        return {
            "n_types": self.n_types,
            "epsilon": self.epsilon,
            "power": self.power,
            "cutoff": self._cutoff,
        }

    def pair_energy(self, r: Tensor, type_i: Tensor, type_j: Tensor) -> Tensor:
        """φ(r) in eV for pairs of bead types (no exclusions, zero beyond the cutoff)."""
        sigma = self.sigma[type_i, type_j]
        rc = self._cutoff
        inner = (sigma / r) ** self.power
        at_cut = (sigma / rc) ** self.power
        energy = self.epsilon * (inner - at_cut + self.power * at_cut * (r - rc) / rc)
        return torch.where(r < rc, energy, torch.zeros_like(energy))

    def forward(self, graph: CGGraph) -> Tensor:
        r = torch.linalg.norm(graph.pair_vectors, dim=-1)
        types = graph.bead_types
        energy = self.pair_energy(r, types[graph.pair_i], types[graph.pair_j])
        energy = torch.where(graph.pair_excluded, torch.zeros_like(energy), energy)
        return pair_energies_to_beads(graph, energy)


def gaussian_boltzmann_inversion(samples: np.ndarray, temperature: float) -> tuple[float, float]:
    """``(k, q0)`` of the harmonic potential whose Boltzmann distribution matches ``samples``.

    Parameters
    ----------
    samples : (n,) float
        Values of a bond length (Å) or angle (rad) from the mapped reference.
    temperature : float, K

    Returns
    -------
    k : float, eV per unit² of the samples
    q0 : float
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size < 2 or not np.all(np.isfinite(samples)):
        raise ValueError("need at least two finite samples to fit a harmonic prior")
    variance = samples.var()
    if variance <= 0:
        raise ValueError("the samples do not fluctuate: cannot fit a force constant")
    return kB * temperature / variance, float(samples.mean())
