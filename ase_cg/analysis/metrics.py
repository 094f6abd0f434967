"""Distances between two curves or distributions: max |Δ|, integrated absolute error,
Jensen-Shannon divergence.
"""

from __future__ import annotations

import numpy as np

from ase_cg.analysis._frames import AnalysisError

__all__ = ["integrated_absolute_error", "jensen_shannon", "max_abs_difference"]


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
