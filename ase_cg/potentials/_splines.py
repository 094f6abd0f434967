"""Uniform cubic B-splines: the basis of the classical CG potentials.

A function on a uniform grid ``start = x_0 < x_1 < … < x_N = stop`` (spacing ``h``) is

.. math::

    f(x) = \\sum_j c_j B_j(x), \\qquad
    B_j(x) = \\beta_3\\!\\left(\\frac{x - x_0}{h} - j + 2\\right)

with ``β₃`` the cardinal cubic B-spline (support of four intervals, C² continuous). On the
interval ``[x_i, x_{i+1})`` with ``u = (x − x_i)/h`` only ``B_i … B_{i+3}`` are non-zero, with the
weights of :func:`basis_weights`. A non-periodic grid has ``N + 3`` basis functions (``B_0`` covers
the first interval only from the right); a periodic grid has ``N``, indices taken modulo ``N``.
The weights sum to one for every ``u``, so adding a constant to all coefficients shifts ``f`` by
that constant, and the ``k``-th difference of the coefficients divided by ``h^k`` approximates
the ``k``-th derivative of ``f`` (used for the smoothness penalty of the fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


def basis_weights(u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The four non-zero cubic B-spline weights and their first two derivatives in ``u``.

    Parameters
    ----------
    u : (n,) float
        Position inside the interval, in ``[0, 1]``.

    Returns
    -------
    w, dw, d2w : (n, 4) float
        Values, ``∂/∂u`` and ``∂²/∂u²`` of the weights of ``B_i … B_{i+3}``.
    """
    v = 1.0 - u
    u2, u3 = u * u, u * u * u
    w = torch.stack(
        [v**3 / 6, (3 * u3 - 6 * u2 + 4) / 6, (-3 * u3 + 3 * u2 + 3 * u + 1) / 6, u3 / 6], dim=-1
    )
    dw = torch.stack([-0.5 * v * v, 1.5 * u2 - 2 * u, -1.5 * u2 + u + 0.5, 0.5 * u2], dim=-1)
    d2w = torch.stack([v, 3 * u - 2, 1 - 3 * u, u], dim=-1)
    return w, dw, d2w


@dataclass(frozen=True)
class SplineGrid:
    """A uniform grid of cubic B-splines on ``[start, stop]`` with ``n_intervals`` intervals.

    Attributes
    ----------
    start, stop : float
        Ends of the grid, in the unit of the coordinate (Å or rad).
    n_intervals : int
    periodic : bool
        Periodic with period ``stop − start`` (dihedrals).
    """

    start: float
    stop: float
    n_intervals: int
    periodic: bool = False

    def __post_init__(self) -> None:
        if not self.stop > self.start:
            raise ValueError(f"spline grid needs stop > start, got [{self.start}, {self.stop}]")
        if self.n_intervals < (4 if self.periodic else 1):
            raise ValueError(f"spline grid needs more intervals, got {self.n_intervals}")

    @property
    def spacing(self) -> float:
        """Knot spacing ``h``."""
        return (self.stop - self.start) / self.n_intervals

    @property
    def n_basis(self) -> int:
        """Number of basis functions (coefficients per function)."""
        return self.n_intervals if self.periodic else self.n_intervals + 3

    def knots(self) -> np.ndarray:
        """(n_intervals + 1,) grid points."""
        return np.linspace(self.start, self.stop, self.n_intervals + 1)

    def locate(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Interval, basis indices and local coordinate of each ``x``.

        Non-periodic grids clamp ``x`` to ``[start, stop]``; periodic grids wrap it.

        Returns
        -------
        interval : (n,) int64
        basis : (n, 4) int64
            Indices of the four non-zero basis functions.
        u : (n,) float
            Position inside the interval, in ``[0, 1]``.
        """
        t = (x - self.start) / self.spacing
        n = self.n_intervals
        t = torch.remainder(t, n) if self.periodic else t.clamp(0.0, n)
        interval = torch.floor(t).clamp(max=n - 1).to(torch.int64)
        u = t - interval.to(t.dtype)
        basis = interval.unsqueeze(-1) + torch.arange(4, device=x.device)
        if self.periodic:
            basis = torch.remainder(basis, n)
        return interval, basis, u

    def evaluate(
        self, coefficients: Tensor, rows: Tensor, x: Tensor, derivative: int = 0
    ) -> Tensor:
        """``f_row(x)`` or its first/second derivative, differentiable in ``x`` and coefficients.

        Parameters
        ----------
        coefficients : (n_functions, n_basis) float
        rows : (n,) int64
            Which function to evaluate for each ``x``.
        x : (n,) float
        derivative : 0, 1 or 2
        """
        _, basis, u = self.locate(x)
        weights = basis_weights(u)[derivative] / self.spacing**derivative
        return (coefficients[rows.unsqueeze(-1), basis] * weights).sum(-1)

    def difference_matrix(self, order: int) -> np.ndarray:
        """(m, n_basis) matrix of ``order``-th differences of the coefficients.

        Periodic grids wrap around (m = n_basis); non-periodic ones have m = n_basis − order.
        """
        n = self.n_basis
        stencil = np.array([1.0])
        for _ in range(order):
            stencil = np.convolve(stencil, [1.0, -1.0])
        stencil = stencil[::-1]
        rows = n if self.periodic else n - order
        matrix = np.zeros((max(rows, 0), n))
        for row in range(rows):
            for offset, value in enumerate(stencil):
                matrix[row, (row + offset) % n] += value
        return matrix
