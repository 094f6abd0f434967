r"""Force maps: the instantaneous CG force from the atom forces.

A *force map* is a matrix ``b`` of shape ``(n_beads, n_atoms)`` giving the instantaneous CG force
:math:`F_I = \sum_j b_{Ij} f_j`. It is consistent with the position map when

.. math::

    b\,E^{\mathsf T} = I_{n_\mathrm{beads}},

which :func:`check_force_map` verifies. Two maps are offered: the bead sum
(:func:`bead_sum_force_map`, :math:`b_{Ij} = 1` for :math:`j \in I`, which conserves the total
force) and the paper's pseudo-inverse (:func:`pseudo_inverse_force_map`,
:math:`b = (E E^{\mathsf T})^{-1} E`, the transpose of the Moore–Penrose pseudo-inverse
:math:`E^+ = E^{\mathsf T}(E E^{\mathsf T})^{-1}`; written :math:`\nabla E^{\mathsf T}(\nabla E
\nabla E^{\mathsf T})^{-1}` in Wang & Gómez-Bombarelli 2019 with the column convention). The
latter is differentiable in ``E`` and works on NumPy arrays and on torch tensors.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from ase_cg.mapping._base import MappingError


def _is_torch(array) -> bool:
    return type(array).__module__.startswith("torch")


def bead_sum_force_map(E):
    r"""Bead-sum force map: :math:`b_{Ij} = 1` if atom ``j`` is in bead ``I``, else 0.

    :math:`F_I = \sum_{j \in I} f_j`. Consistent (:math:`b E^{\mathsf T} = I`) only when each atom
    is in at most one bead and the rows of ``E`` sum to one.

    Parameters
    ----------
    E : (..., n_beads, n_atoms) numpy array or torch tensor
        Position map.

    Returns
    -------
    b : same shape and kind as ``E``
    """
    if _is_torch(E):
        return (E != 0).to(E.dtype)
    if scipy.sparse.issparse(E):
        b = scipy.sparse.csr_matrix(E, copy=True)
        b.data = (b.data != 0).astype(np.float64)
        return b
    E = np.asarray(E)
    return (E != 0).astype(E.dtype if np.issubdtype(E.dtype, np.floating) else np.float64)


def pseudo_inverse_force_map(E):
    r"""The paper's force map :math:`b = (E E^{\mathsf T})^{-1} E`.

    ``b`` is the transpose of the Moore–Penrose pseudo-inverse of ``E`` and satisfies
    :math:`b E^{\mathsf T} = I` for any ``E`` of full row rank, also for soft (overlapping)
    assignments. On torch tensors the result is differentiable in ``E`` (the auto-encoder uses
    this while learning the mapping).

    Parameters
    ----------
    E : (..., n_beads, n_atoms) numpy array or torch tensor
        Position map, full row rank.

    Returns
    -------
    b : (..., n_beads, n_atoms), same kind as ``E``
    """
    if _is_torch(E):
        import torch  # heavy: only for tensor input, not needed to map with NumPy

        return torch.linalg.solve(E @ E.mT, E)
    if scipy.sparse.issparse(E):
        E = E.toarray()
    E = np.asarray(E, dtype=np.float64)
    try:
        return np.linalg.solve(E @ np.swapaxes(E, -1, -2), E)
    except np.linalg.LinAlgError as error:
        raise MappingError(
            "the pseudo-inverse force map needs E·Eᵀ invertible (no empty beads, no two beads "
            f"with proportional rows): {error}"
        ) from error


def check_force_map(b, E, atol: float = 1e-8) -> float:
    r"""Check that a force map is consistent with a position map: :math:`b E^{\mathsf T} = I`.

    Convention: ``E`` and ``b`` both have shape ``(n_beads, n_atoms)``; bead positions are
    ``z = E @ x`` and bead forces ``F = b @ f``.

    Parameters
    ----------
    b, E : (n_beads, n_atoms) numpy arrays, scipy sparse matrices or torch tensors
        Force map and position map.
    atol : float
        Largest allowed absolute deviation of any element of :math:`b E^{\mathsf T}` from the
        identity.

    Returns
    -------
    float
        The largest absolute deviation found.

    Raises
    ------
    MappingError
        Shapes differ, or the deviation exceeds ``atol`` (the message names the bead pair).
    """
    if _is_torch(b) or _is_torch(E):
        b = b.detach().cpu().numpy() if _is_torch(b) else b
        E = E.detach().cpu().numpy() if _is_torch(E) else E
    if tuple(b.shape) != tuple(E.shape):
        raise MappingError(f"force map shape {tuple(b.shape)} differs from E's {tuple(E.shape)}")
    product = b @ E.T
    if scipy.sparse.issparse(product):
        product = product.toarray()
    deviation = np.abs(np.asarray(product) - np.eye(E.shape[0]))
    worst = float(deviation.max()) if deviation.size else 0.0
    if worst > atol:
        i, j = np.unravel_index(np.argmax(deviation), deviation.shape)
        raise MappingError(
            f"force map inconsistent with the position map: (b·Eᵀ)[{i}, {j}] = "
            f"{product[i, j]:.6g}, expected {float(i == j)} (|b·Eᵀ − I| max {worst:.3g} > "
            f"atol {atol:g}); the bead sum needs each atom in at most one bead"
        )
    return worst
