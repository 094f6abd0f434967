"""Classical CG potentials: pair and bonded energies as cubic B-splines, linear in coefficients.

Each term holds one spline per bead-type combination (unordered pair for pairs and bonds,
``(a, b, c) ≡ (c, b, a)`` for angles, ``(a, b, c, d) ≡ (d, c, b, a)`` for dihedrals):

* :class:`PairSpline` ``φ_ab(r)`` on ``[start, cutoff]``, its last three coefficients fixed at zero
  so that energy, force and force derivative vanish at the cutoff; pairs few bonds apart
  (``graph.pair_excluded``) are skipped;
* :class:`BondSpline` ``V_ab(r)`` over the bond length;
* :class:`AngleSpline` ``V_abc(θ)``, ``θ ∈ [0, π]`` the angle at the middle bead;
* :class:`DihedralSpline` ``V_abcd(φ)``, periodic, ``φ ∈ [−π, π)`` (IUPAC: trans = π);
* :class:`ThreeBodySpline` ``f_abc(θ)`` of every pair of non-bonded neighbours j, k of a bead i,
  screened by the two distances as in the Stillinger–Weber potential (LAMMPS
  ``pair_style sw/angle/table``): the many-body term one-bead liquids such as water need.

Because the energy is linear in the coefficients, force matching is a linear least-squares
problem (:func:`ase_cg.fitting.fit_classical`). Each term exposes, for that fit, the coordinate of
every instance and its analytic gradient with respect to the bead positions
(:meth:`SplineTerm.design_coordinates`).

Extrapolation
-------------
Data never samples overlapping beads or broken bonds, and a spline fitted there is noise. Outside
the sampled range ``[lower, upper]`` of each combination (buffers set by the fit), the energy
continues with a linear force that always points back into the sampled range:

.. math::

    V(x) = V(x_l) + f_l\\,(x_l − x) + \\tfrac12 k_l\\,(x_l − x)^2, \\quad x < x_l,
    \\qquad f_l = \\max(−V'(x_l), f_{min}),\\; k_l = \\max(V''(x_l), k_{min})

(and mirrored above ``upper`` for bonded terms; pair terms go to zero at the cutoff instead). So
``V`` increases strictly as ``x`` leaves the sampled range: never an attractive well. Forces are
continuous at ``x_l`` whenever the fitted wall is repulsive there (the usual case: the least
sampled distances are high-energy ones); ``f_min``, ``k_min`` (``force_floor``,
``stiffness_floor``) come from the fit's temperature and wall width.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor

from ase_cg.potentials._splines import SplineGrid
from ase_cg.potentials.base import (
    CGGraph,
    EnergyTerm,
    pair_energies_to_beads,
    register_term,
    tuple_energies_to_beads,
)
from ase_cg.potentials.prior import bond_angles


def type_combinations(n_types: int, arity: int) -> list[tuple[int, ...]]:
    """Canonical bead-type tuples (a tuple and its reverse are one combination), sorted.

    >>> type_combinations(2, 2)
    [(0, 0), (0, 1), (1, 1)]
    """
    return [t for t in itertools.product(range(n_types), repeat=arity) if t <= t[::-1]]


def dihedral_angles(dihedral_vectors: Tensor) -> Tensor:
    """Dihedral angles (rad, in ``(−π, π]``, trans = π) from (n, 3, 3) chain vectors → (n,)."""
    b1, b2, b3 = dihedral_vectors[:, 0], dihedral_vectors[:, 1], dihedral_vectors[:, 2]
    m = torch.linalg.cross(b1, b2)
    n = torch.linalg.cross(b2, b3)
    y = torch.linalg.norm(b2, dim=-1) * (b1 * n).sum(-1)
    return torch.atan2(y, (m * n).sum(-1))


def _safe_unit(vectors: Tensor, norms: Tensor) -> Tensor:
    return vectors / norms.clamp(min=1e-300).unsqueeze(-1)


def _angle_gradients(a: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Angle θ between vectors ``a`` and ``c`` (n, 3) at their common origin, and ∂θ/∂(x_a,
    x_vertex, x_c) (n, 3, 3) for ``a = x_a − x_vertex``, ``c = x_c − x_vertex``."""
    theta = bond_angles(torch.stack([a, c], dim=1))
    len_a, len_c = torch.linalg.norm(a, dim=-1), torch.linalg.norm(c, dim=-1)
    unit_a, unit_c = _safe_unit(a, len_a), _safe_unit(c, len_c)
    cos = (unit_a * unit_c).sum(-1)
    sin = torch.sin(theta)
    # ∂θ/∂a = (cos θ â − ĉ) / (|a| sin θ); undefined (set to 0) for straight angles
    scale = torch.where(sin > 1e-12, 1.0 / sin.clamp(min=1e-12), torch.zeros_like(sin))
    grad_a = (cos.unsqueeze(-1) * unit_a - unit_c) * (scale / len_a).unsqueeze(-1)
    grad_c = (cos.unsqueeze(-1) * unit_c - unit_a) * (scale / len_c).unsqueeze(-1)
    return theta, torch.stack([grad_a, -grad_a - grad_c, grad_c], dim=1)


class SplineTerm(EnergyTerm):
    """Base class of the spline terms: one cubic B-spline per bead-type combination.

    Parameters
    ----------
    n_types : int
        Number of bead types.
    start, stop : float
        Ends of the spline grid (Å for distances, rad for angles).
    n_intervals : int
        Number of grid intervals (``spacing = (stop − start) / n_intervals``).
    force_floor : float
        Smallest restoring force of the extrapolation (eV/Å or eV/rad).
    stiffness_floor : float
        Smallest stiffness of the extrapolation (eV/Å² or eV/rad²).

    Buffers
    -------
    coefficients : (n_combinations, n_basis) float64, eV
        B-spline coefficients, one row per :attr:`combinations` entry.
    lower, upper : (n_combinations,) float64
        Sampled range of each combination; the spline is used inside, the repulsive
        extrapolation outside (not used by periodic terms).
    samples : (n_combinations,) float64
        Number of samples each combination had in the fit (0: never sampled).
    """

    arity: int = 2
    periodic: bool = False
    fixed_tail: int = 0  # trailing coefficients held at zero
    extrapolate_upper: bool = True

    def __init__(
        self,
        n_types: int,
        start: float,
        stop: float,
        n_intervals: int,
        *,
        force_floor: float = 0.1,
        stiffness_floor: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_types = int(n_types)
        self.grid = SplineGrid(float(start), float(stop), int(n_intervals), self.periodic)
        self.force_floor = float(force_floor)
        self.stiffness_floor = float(stiffness_floor)
        if self.force_floor <= 0 or self.stiffness_floor < 0:
            raise ValueError("force_floor must be > 0 and stiffness_floor >= 0")
        self.combinations = type_combinations(self.n_types, self.arity)
        n_comb = len(self.combinations)
        lookup = torch.zeros(self.n_types**self.arity, dtype=torch.int64)
        for index, combination in enumerate(self.combinations):
            for key in {combination, combination[::-1]}:
                lookup[self._flat_key(key)] = index
        self.register_buffer("_lookup", lookup, persistent=False)
        self.register_buffer(
            "coefficients", torch.zeros(n_comb, self.grid.n_basis, dtype=torch.float64)
        )
        self.register_buffer("lower", torch.full((n_comb,), self.grid.start, dtype=torch.float64))
        self.register_buffer("upper", torch.full((n_comb,), self.grid.stop, dtype=torch.float64))
        self.register_buffer("samples", torch.zeros(n_comb, dtype=torch.float64))

    def _flat_key(self, types: tuple[int, ...]) -> int:
        key = 0
        for t in types:
            key = key * self.n_types + t
        return key

    # --- configuration ---------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "n_types": self.n_types,
            "start": self.grid.start,
            "stop": self.grid.stop,
            "n_intervals": self.grid.n_intervals,
            "force_floor": self.force_floor,
            "stiffness_floor": self.stiffness_floor,
        }

    @property
    def n_free(self) -> int:
        """Number of fitted coefficients per combination (the fixed tail excluded)."""
        return self.grid.n_basis - self.fixed_tail

    def combination_index(self, types: Tensor) -> Tensor:
        """(n,) index into :attr:`combinations` of bead-type tuples ``types`` (n, arity)."""
        key = torch.zeros(types.shape[0], dtype=torch.int64, device=types.device)
        for column in range(self.arity):
            key = key * self.n_types + types[:, column]
        return self._lookup[key]

    # --- geometry (implemented per kind) -----------------------------------------------------
    def coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor]:
        """Coordinate of every instance (differentiable) and its bead-type tuple (n, arity)."""
        raise NotImplementedError

    def design_coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """What the force-matching fit needs, without autograd.

        Returns
        -------
        x : (n,) float
            Coordinate of each instance (pairs: each non-excluded undirected pair once).
        combination : (n,) int64
        beads : (n, k) int64
            Beads whose force the instance changes.
        gradients : (n, k, 3) float
            ``∂x/∂(bead position)``; the force on those beads is ``−V'(x) · gradient``.
        """
        raise NotImplementedError

    # --- energies -------------------------------------------------------------------------------
    def _edge(self, at: Tensor, sign: float) -> tuple[Tensor, Tensor, Tensor]:
        """Energy, outward force and stiffness of the extrapolation at ``at`` (n_combinations,)."""
        rows = torch.arange(at.shape[0], device=at.device)
        c = self.coefficients
        energy = self.grid.evaluate(c, rows, at)
        force = (sign * self.grid.evaluate(c, rows, at, 1)).clamp(min=self.force_floor)
        stiffness = self.grid.evaluate(c, rows, at, 2).clamp(min=self.stiffness_floor)
        return energy, force, stiffness

    def energy(self, x: Tensor, combination: Tensor) -> Tensor:
        """Energy (eV) of instances at coordinate ``x`` (n,), with the extrapolation outside
        the sampled range. Differentiable in ``x``."""
        c = self.coefficients
        if self.periodic:
            return self.grid.evaluate(c, combination, x)
        lower, upper = self.lower[combination], self.upper[combination]
        # torch.where, not clamp: at x == lower the gradient must reach x in full
        clamped = torch.where(x < lower, lower, torch.where(x > upper, upper, x))
        inside = self.grid.evaluate(c, combination, clamped)
        e_low, f_low, k_low = (v[combination] for v in self._edge(self.lower, -1.0))
        depth = (lower - x).clamp(min=0.0)
        below = e_low + f_low * depth + 0.5 * k_low * depth * depth
        energy = torch.where(x < lower, below, inside)
        if self.extrapolate_upper:
            e_up, f_up, k_up = (v[combination] for v in self._edge(self.upper, 1.0))
            height = (x - upper).clamp(min=0.0)
            above = e_up + f_up * height + 0.5 * k_up * height * height
            energy = torch.where(x > upper, above, energy)
        return energy

    def _types_tensor(self, types) -> Tensor:
        types = tuple(int(t) for t in types)
        if len(types) != self.arity or not all(0 <= t < self.n_types for t in types):
            raise ValueError(
                f"{type(self).__name__} needs {self.arity} bead-type indices in "
                f"[0, {self.n_types}), got {types}"
            )
        return torch.tensor([types], dtype=torch.int64, device=self.coefficients.device)

    def evaluate(self, x, types) -> tuple[np.ndarray, np.ndarray]:
        """Energy and force of one type combination at coordinates ``x`` (for plots and tables).

        Parameters
        ----------
        x : (n,) array_like, Å (pair, bond) or rad (angle, dihedral)
        types : tuple of int
            Bead-type indices (``arity`` of them, in the model's ``bead_type_names`` order).

        Returns
        -------
        energy : (n,) float64, eV
        force : (n,) float64, eV/Å or eV/rad
            ``−dV/dx`` (positive pushes ``x`` up: repulsive for distances).
        """
        combination = self.combination_index(self._types_tensor(types))
        x = torch.as_tensor(np.asarray(x, dtype=np.float64), device=self.coefficients.device)
        x = x.to(self.coefficients.dtype).reshape(-1).detach().requires_grad_(True)
        with torch.enable_grad():
            energy = self.energy(x, combination.expand(x.shape[0]))
            (derivative,) = torch.autograd.grad(energy.sum(), x)
        return (
            energy.detach().cpu().numpy().astype(np.float64),
            -derivative.cpu().numpy().astype(np.float64),
        )

    def default_range(self, types) -> tuple[float, float]:
        """``(start, stop)`` that :meth:`tabulate` uses when not told (see the subclasses)."""
        raise NotImplementedError

    def tabulate(
        self, types, n_points: int = 2000, start: float | None = None, stop: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energy and force of one type combination on a uniform grid, for LAMMPS tables.

        Parameters
        ----------
        types : tuple of int
            Bead-type indices (2 for pair/bond, 3 for angle with the vertex in the middle, 4 for
            dihedral), in the model's ``bead_type_names`` order; a tuple and its reverse give
            the same function.
        n_points : int
            Number of grid points (both ends included).
        start, stop : float, optional
            Grid ends in Å (pair, bond) or rad (angle, dihedral); defaults from
            :meth:`default_range`.

        Returns
        -------
        x : (n_points,) float64, Å or rad
        energy : (n_points,) float64, eV
        force : (n_points,) float64, eV/Å or eV/rad
            ``−dV/dx``, the sign LAMMPS's ``pair/bond/angle/dihedral_style table`` expect. The
            caller converts units (``units real``: kcal/mol, degrees) and, for angles and
            dihedrals, the per-radian force to per-degree.
        """
        default_start, default_stop = self.default_range(types)
        start = default_start if start is None else float(start)
        stop = default_stop if stop is None else float(stop)
        if not stop > start or n_points < 2:
            raise ValueError(f"tabulate needs stop > start and n_points >= 2, got {start}, {stop}")
        x = np.linspace(start, stop, int(n_points))
        energy, force = self.evaluate(x, types)
        return x, energy, force

    def _sampled_range(self, types) -> tuple[float, float]:
        combination = int(self.combination_index(self._types_tensor(types))[0])
        return float(self.lower[combination]), float(self.upper[combination])


@register_term
class PairSpline(SplineTerm):
    """Non-bonded pair energy ``φ_ab(r)`` per unordered bead-type pair, zero beyond ``stop``.

    Parameters
    ----------
    n_types : int
    start : float, Å
        Start of the spline grid (at or below the closest sampled approach).
    stop : float, Å
        The cutoff: ``φ``, ``φ'`` and ``φ''`` are zero there (last three coefficients are 0).
    n_intervals : int
    force_floor, stiffness_floor : float
        See :class:`SplineTerm`.
    """

    kind = "pair"
    fixed_tail = 3
    extrapolate_upper = False

    @property
    def cutoff(self) -> float:
        return self.grid.stop

    def coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor]:
        r = torch.linalg.norm(graph.pair_vectors, dim=-1)
        types = torch.stack([graph.bead_types[graph.pair_i], graph.bead_types[graph.pair_j]], 1)
        return r, types

    def forward(self, graph: CGGraph) -> Tensor:
        r, types = self.coordinates(graph)
        energy = self.energy(r, self.combination_index(types))
        keep = (~graph.pair_excluded) & (r < self.grid.stop)
        return pair_energies_to_beads(graph, torch.where(keep, energy, torch.zeros_like(energy)))

    def design_coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # Each undirected pair appears as i→j and j→i: keep i < j and act on both beads. A bead's
        # pairs with its own periodic images (i == j) exert no net force on it and are left out.
        keep = (~graph.pair_excluded) & (graph.pair_i < graph.pair_j)
        vectors = graph.pair_vectors[keep].detach()
        r = torch.linalg.norm(vectors, dim=-1)
        keep_r = r < self.grid.stop
        vectors, r = vectors[keep_r], r[keep_r]
        i, j = graph.pair_i[keep][keep_r], graph.pair_j[keep][keep_r]
        types = torch.stack([graph.bead_types[i], graph.bead_types[j]], 1)
        unit = _safe_unit(vectors, r)
        gradients = torch.stack([-unit, unit], dim=1)  # ∂r/∂x_i, ∂r/∂x_j
        return r, self.combination_index(types), torch.stack([i, j], 1), gradients

    def default_range(self, types) -> tuple[float, float]:
        """From half the lower end of the sampled range to the cutoff, Å."""
        lower, _ = self._sampled_range(types)
        return 0.5 * lower, self.grid.stop

    def pair_energy(self, r: Tensor, type_i: Tensor, type_j: Tensor) -> Tensor:
        """φ(r) in eV for pairs of bead types (no exclusions, zero beyond the cutoff)."""
        combination = self.combination_index(torch.stack([type_i, type_j], 1))
        energy = self.energy(r, combination)
        return torch.where(r < self.grid.stop, energy, torch.zeros_like(energy))


@register_term
class BondSpline(SplineTerm):
    """Bond energy ``V_ab(r)`` per unordered bead-type pair of the bond.

    Parameters
    ----------
    n_types : int
    start, stop : float, Å
        Spline grid covering the sampled bond lengths.
    n_intervals : int
    force_floor, stiffness_floor : float
        See :class:`SplineTerm`.
    """

    kind = "bond"

    def coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor]:
        return torch.linalg.norm(graph.bond_vectors, dim=-1), graph.bead_types[graph.bonds]

    def forward(self, graph: CGGraph) -> Tensor:
        r, types = self.coordinates(graph)
        energy = self.energy(r, self.combination_index(types))
        return tuple_energies_to_beads(graph, graph.bonds, energy)

    def design_coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        vectors = graph.bond_vectors.detach()
        r = torch.linalg.norm(vectors, dim=-1)
        unit = _safe_unit(vectors, r)
        gradients = torch.stack([-unit, unit], dim=1)  # vector = x_b − x_a
        combination = self.combination_index(graph.bead_types[graph.bonds])
        return r, combination, graph.bonds, gradients

    def default_range(self, types) -> tuple[float, float]:
        """From half the lower end to 1.5 times the upper end of the sampled range, Å."""
        lower, upper = self._sampled_range(types)
        return 0.5 * lower, 1.5 * upper


@register_term
class AngleSpline(SplineTerm):
    """Angle energy ``V_abc(θ)`` per bead-type triple (vertex b), ``θ`` in rad.

    Parameters
    ----------
    n_types : int
    start, stop : float, rad
        Spline grid within ``[0, π]``.
    n_intervals : int
    force_floor, stiffness_floor : float
        See :class:`SplineTerm` (eV/rad, eV/rad²).
    """

    kind = "angle"
    arity = 3

    def coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor]:
        return bond_angles(graph.angle_vectors), graph.bead_types[graph.angles]

    def forward(self, graph: CGGraph) -> Tensor:
        theta, types = self.coordinates(graph)
        energy = self.energy(theta, self.combination_index(types))
        return tuple_energies_to_beads(graph, graph.angles, energy)

    def design_coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        vectors = graph.angle_vectors.detach()
        theta, gradients = _angle_gradients(vectors[:, 0], vectors[:, 1])
        combination = self.combination_index(graph.bead_types[graph.angles])
        return theta, combination, graph.angles, gradients

    def default_range(self, types) -> tuple[float, float]:
        """``(0, π)``."""
        return 0.0, math.pi


@register_term
class DihedralSpline(SplineTerm):
    """Dihedral energy ``V_abcd(φ)`` per bead-type quadruple, periodic in ``φ ∈ [−π, π)``.

    Parameters
    ----------
    n_types : int
    n_intervals : int
        Grid intervals over the full turn (spacing ``2π / n_intervals``).
    force_floor, stiffness_floor : float
        Unused (a periodic term needs no extrapolation); kept for a uniform config.
    """

    kind = "dihedral"
    arity = 4
    periodic = True

    def __init__(
        self,
        n_types: int,
        n_intervals: int,
        *,
        force_floor: float = 0.1,
        stiffness_floor: float = 1.0,
    ) -> None:
        super().__init__(
            n_types,
            -math.pi,
            math.pi,
            n_intervals,
            force_floor=force_floor,
            stiffness_floor=stiffness_floor,
        )

    def config(self) -> dict:
        return {
            "n_types": self.n_types,
            "n_intervals": self.grid.n_intervals,
            "force_floor": self.force_floor,
            "stiffness_floor": self.stiffness_floor,
        }

    def coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor]:
        return dihedral_angles(graph.dihedral_vectors), graph.bead_types[graph.dihedrals]

    def forward(self, graph: CGGraph) -> Tensor:
        phi, types = self.coordinates(graph)
        energy = self.energy(phi, self.combination_index(types))
        return tuple_energies_to_beads(graph, graph.dihedrals, energy)

    def design_coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        vectors = graph.dihedral_vectors.detach()
        b1, b2, b3 = vectors[:, 0], vectors[:, 1], vectors[:, 2]
        phi = dihedral_angles(vectors)
        m = torch.linalg.cross(b1, b2)
        n = torch.linalg.cross(b2, b3)
        len_b2 = torch.linalg.norm(b2, dim=-1)
        m2, n2 = (m * m).sum(-1), (n * n).sum(-1)
        ok = (m2 > 1e-24) & (n2 > 1e-24)
        grad_a = torch.where(ok, -len_b2 / m2.clamp(min=1e-24), 0.0).unsqueeze(-1) * m
        grad_d = torch.where(ok, len_b2 / n2.clamp(min=1e-24), 0.0).unsqueeze(-1) * n
        inv_b2 = 1.0 / (len_b2 * len_b2).clamp(min=1e-300)
        p = ((b1 * b2).sum(-1) * inv_b2).unsqueeze(-1)
        q = ((b3 * b2).sum(-1) * inv_b2).unsqueeze(-1)
        grad_b = (-p - 1.0) * grad_a + q * grad_d
        grad_c = (-q - 1.0) * grad_d + p * grad_a
        gradients = torch.stack([grad_a, grad_b, grad_c, grad_d], dim=1)
        combination = self.combination_index(graph.bead_types[graph.dihedrals])
        return phi, combination, graph.dihedrals, gradients

    def default_range(self, types) -> tuple[float, float]:
        """``(−π, π)``."""
        return -math.pi, math.pi


@register_term
class ThreeBodySpline(SplineTerm):
    r"""Stillinger–Weber-type three-body energy with a spline angular function.

    .. math::

        E = \sum_i \sum_{j \ne i} \sum_{k > j}
            f_{t_j t_i t_k}(\theta_{jik})\, g(r_{ij})\, g(r_{ik}), \qquad
        g(r) = \exp\!\Big(\frac{\ell}{r - r_c}\Big) \text{ for } r < r_c, \text{ else } 0,

    over the non-excluded neighbours j, k of every bead i within ``cutoff`` ``r_c``
    (Stillinger & Weber, Phys. Rev. B 31, 5262 (1985), with ``r_c = aσ`` and ``ℓ = γσ``);
    ``f`` is a cubic B-spline in θ (rad) per type triple, vertex type in the middle, and g and
    all its derivatives vanish at ``r_c``. This is LAMMPS's ``pair_style sw/angle/table`` (its
    two-body part off), so the term exports as a table. The energy is linear in the spline
    coefficients, so force matching fits ``f`` together with the pair splines. Defaults for
    ``cutoff`` and ``screening`` are those of the one-site mW water model (σ = 2.3925 Å,
    a = 1.8, γ = 1.2: r_c = 4.3065 Å, ℓ = 2.871 Å; Molinero & Moore, J. Phys. Chem. B 113,
    4008 (2009)).

    Parameters
    ----------
    n_types : int
    start, stop : float, rad
        Spline grid within ``[0, π]``.
    n_intervals : int
    cutoff : float, Å
        ``r_c``: neighbours beyond it do not count.
    screening : float, Å
        ``ℓ``: how fast g falls towards the cutoff (g(r_c − ℓ) = 1/e).
    force_floor, stiffness_floor : float
        See :class:`SplineTerm` (eV/rad, eV/rad²).
    """

    kind = "threebody"
    arity = 3

    def __init__(
        self,
        n_types: int,
        start: float,
        stop: float,
        n_intervals: int,
        *,
        cutoff: float = 4.3065,
        screening: float = 2.871,
        force_floor: float = 0.1,
        stiffness_floor: float = 1.0,
    ) -> None:
        super().__init__(
            n_types, start, stop, n_intervals, force_floor=force_floor,
            stiffness_floor=stiffness_floor,
        )  # fmt: skip
        if not (cutoff > 0 and screening > 0):
            raise ValueError(f"cutoff and screening must be > 0 Å, got {cutoff}, {screening}")
        self.range = float(cutoff)
        self.screening = float(screening)

    def config(self) -> dict:
        return {**super().config(), "cutoff": self.range, "screening": self.screening}

    @property
    def cutoff(self) -> float:
        return self.range

    def screen(self, r: Tensor) -> tuple[Tensor, Tensor]:
        """g(r) and dg/dr (n,) of distances r (n,), Å; zero at and beyond the cutoff."""
        inside = r < self.range
        gap = torch.where(inside, r - self.range, torch.full_like(r, -1.0))  # < 0 inside
        g = torch.where(inside, torch.exp(self.screening / gap), torch.zeros_like(r))
        return g, -g * self.screening / (gap * gap)

    def triplets(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor]:
        """Bead triples and the two pair vectors of every counted (j, i, k).

        Returns
        -------
        beads : (n, 3) int64
            ``(j, i, k)``, vertex i in the middle.
        vector_j, vector_k : (n, 3) float, Å
            ``x_j − x_i`` and ``x_k − x_i`` (differentiable, periodic shifts included).
        """
        r = torch.linalg.norm(graph.pair_vectors.detach(), dim=-1)
        listed = torch.nonzero((~graph.pair_excluded) & (r < self.range)).squeeze(1)
        listed = listed[torch.argsort(graph.pair_i[listed], stable=True)]
        centre = graph.pair_i[listed]
        counts = torch.bincount(centre, minlength=graph.n_beads)
        first = torch.cumsum(counts, 0) - counts
        position = torch.arange(len(listed), device=r.device) - first[centre]
        after = counts[centre] - position - 1  # neighbours of the same bead listed later
        a = torch.repeat_interleave(torch.arange(len(listed), device=r.device), after)
        run_start = torch.repeat_interleave(torch.cumsum(after, 0) - after, after)
        b = a + 1 + torch.arange(len(a), device=r.device) - run_start
        pair_j, pair_k = listed[a], listed[b]
        beads = torch.stack([graph.pair_j[pair_j], graph.pair_i[pair_j], graph.pair_j[pair_k]], 1)
        return beads, graph.pair_vectors[pair_j], graph.pair_vectors[pair_k]

    def coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor]:
        beads, vector_j, vector_k = self.triplets(graph)
        return bond_angles(torch.stack([vector_j, vector_k], 1)), graph.bead_types[beads]

    def forward(self, graph: CGGraph) -> Tensor:
        beads, vector_j, vector_k = self.triplets(graph)
        theta = bond_angles(torch.stack([vector_j, vector_k], 1))
        g_j = self.screen(torch.linalg.norm(vector_j, dim=-1))[0]
        g_k = self.screen(torch.linalg.norm(vector_k, dim=-1))[0]
        energy = self.energy(theta, self.combination_index(graph.bead_types[beads])) * g_j * g_k
        return _scatter_to_vertex(graph, beads[:, 1], energy)

    def design_coordinates(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        beads, vector_j, vector_k = self.triplets(graph)
        theta, gradients = _angle_gradients(vector_j.detach(), vector_k.detach())
        return theta, self.combination_index(graph.bead_types[beads]), beads, gradients

    def design_screening(self, graph: CGGraph) -> tuple[Tensor, Tensor, Tensor]:
        """The factor ``w = g(r_ij) g(r_ik)`` of :meth:`design_coordinates`' instances.

        Returns
        -------
        w : (n,) float
        gradients : (n, 3, 3) float, 1/Å
            ``∂w/∂x`` of the beads ``(j, i, k)``.
        dilation : (n,) float
            ``r_ij ∂w/∂r_ij + r_ik ∂w/∂r_ik``: what a uniform dilation does to w (virial).
        """
        _, vector_j, vector_k = self.triplets(graph)
        vector_j, vector_k = vector_j.detach(), vector_k.detach()
        r_j, r_k = torch.linalg.norm(vector_j, dim=-1), torch.linalg.norm(vector_k, dim=-1)
        (g_j, dg_j), (g_k, dg_k) = self.screen(r_j), self.screen(r_k)
        grad_j = (dg_j * g_k).unsqueeze(-1) * _safe_unit(vector_j, r_j)
        grad_k = (g_j * dg_k).unsqueeze(-1) * _safe_unit(vector_k, r_k)
        gradients = torch.stack([grad_j, -grad_j - grad_k, grad_k], dim=1)
        return g_j * g_k, gradients, r_j * dg_j * g_k + r_k * g_j * dg_k

    def default_range(self, types) -> tuple[float, float]:
        """``(0, π)``."""
        return 0.0, math.pi


def _scatter_to_vertex(graph: CGGraph, vertex: Tensor, energy: Tensor) -> Tensor:
    """Per-bead energies: each three-body energy to its vertex bead (as LAMMPS's sw does)."""
    out = torch.zeros(graph.n_beads, dtype=energy.dtype, device=energy.device)
    return out.index_add(0, vertex, energy)


SPLINE_TERMS: dict[str, type[SplineTerm]] = {
    "pair": PairSpline,
    "bond": BondSpline,
    "angle": AngleSpline,
    "dihedral": DihedralSpline,
    "threebody": ThreeBodySpline,
}
