"""Loss terms of the auto-encoder: reconstruction, force matching through a force map that is
differentiable in the assignment, bond cut and bead balance (the equations are in
:mod:`ase_cg.autoencoder.learn`).
"""

from __future__ import annotations

import numpy as np
import torch


def batch_losses(model, data_t, frames, config, *, tau, hard, rho, generator, chemistry=1.0):
    """(total, reconstruction, force, penalty, bond cut, balance) on a batch of frames.

    Per frame, the loss covers a sample of molecules (``data_t``'s :class:`MoleculeSampler`,
    ``config.molecules_per_frame``). ``chemistry`` scales the bond-cut and balance weights
    (their warm-up ramp).
    """
    positions, forces, cells, force_scale, sampler = data_t
    n_types = len(model.type_names)
    recon_sum, recon_n, penalty, cut, balance = 0.0, 0, 0.0, 0.0, 0.0
    residual, n_force = 0.0, 0
    encoded = []
    for k in range(n_types):
        A = model.assignment(k, tau, hard, generator)
        weighted = model.atom_masses(k)[:, None] * A
        masses = weighted.sum(0)
        E = (weighted / masses.clamp_min(1e-12)).T
        b = None
        if rho > 0:
            b = (
                regularised_pseudo_inverse(E)
                if config.force_map == "pseudo_inverse"
                else bead_sum_force_map_soft(A)
            )
        encoded.append((E, masses, b))
        penalty = penalty + (torch.relu(1.0 - A.sum(0)) ** 2).sum()
        cut = cut + bond_cut_fraction(A, model.atom_bonds(k)) / n_types
        balance = balance + ((masses / masses.mean() - 1.0) ** 2).mean() / n_types
    for frame in np.asarray(frames).tolist():
        centres, neighbours, pairs = sampler.sample(frame, generator)
        centre_z, neighbour_z, mapped = [], [], []
        for k, (E, masses, b) in enumerate(encoded):
            x = positions[k][frame, centres[k]]  # (n_mol, n_at, 3)
            z = torch.einsum("ij,mjc->mic", E, x)
            if rho > 0 and not z.requires_grad:  # fixed assignment: forces still need ∂V/∂z
                z.requires_grad_(True)
            x_hat = model.decode(k, masses, z[None])[0]
            error = ((x_hat - x) ** 2).sum(-1)
            recon_sum = recon_sum + error.sum()
            recon_n += error.numel()
            centre_z.append(z)
            if rho > 0:
                mapped.append(torch.einsum("ij,mjc->mic", b, forces[k][frame, centres[k]]))
                neighbour_z.append(
                    torch.einsum("ij,mjc->mic", E, positions[k][frame, neighbours[k]])
                )
        if rho > 0:
            cell = None if cells is None else cells[frame]
            energy = model.energy(centre_z, neighbour_z, pairs, cell)
            grads = torch.autograd.grad(energy, centre_z, create_graph=True, allow_unused=True)
            for m, g in zip(mapped, grads, strict=True):
                residual = residual + ((m if g is None else m + g) ** 2).sum()
                n_force += m.numel()
    recon = recon_sum / recon_n
    force_term = torch.zeros((), dtype=recon.dtype)
    if rho > 0:
        force_term = residual / n_force / force_scale
    total = (
        recon
        + rho * force_term
        + config.empty_penalty * penalty
        + chemistry * config.bond_weight * cut
        + chemistry * config.balance_weight * balance
    )
    return total, recon, force_term, penalty, cut, balance


def bond_cut_fraction(assignment: torch.Tensor, bonds) -> torch.Tensor:
    r"""Expected fraction of covalent bonds cut by an assignment (0-d tensor, in [0, 1]).

    .. math:: \mathrm{cut} = \frac{1}{n_\mathrm{bonds}} \sum_{(a, b)}
              \Big(1 - \sum_I A_{aI} A_{bI}\Big)

    :math:`\sum_I A_{aI} A_{bI}` is the probability that atoms a and b, placed independently
    with the probabilities of their rows, share a bead; for a hard (one-hot) assignment the
    term is the fraction of bonds between different beads. Zero without bonds.

    Parameters
    ----------
    assignment : (n_atoms, n_beads) tensor, rows sum to one
    bonds : (n_bonds, 2) int, atom indices
    """
    bonds = torch.as_tensor(bonds, dtype=torch.int64).reshape(-1, 2)
    if len(bonds) == 0:
        return torch.zeros((), dtype=assignment.dtype)
    shared = (assignment[bonds[:, 0]] * assignment[bonds[:, 1]]).sum(dim=1)
    return (1.0 - shared).mean()


def groups_connected(groups, bonds) -> list[bool]:
    """Per group: is it a non-empty connected subgraph of the bond graph?

    Parameters
    ----------
    groups : list of list of int
        Atom indices of each bead.
    bonds : (n_bonds, 2) int, atom indices

    Returns
    -------
    list of bool, one per group (an empty group is not connected).
    """
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    out = []
    for group in groups:
        members = {int(j) for j in group}
        if not members:
            out.append(False)
            continue
        inside = [(int(a), int(b)) for a, b in bonds if a in members and b in members]
        seen, todo = set(), [min(members)]
        while todo:
            atom = todo.pop()
            if atom in seen:
                continue
            seen.add(atom)
            todo += [b for a, b in inside if a == atom] + [a for a, b in inside if b == atom]
        out.append(seen == members)
    return out


#: ε of the regularised pseudo-inverse (relative to diag(E Eᵀ) ≥ 1/n_atoms of a real bead)
PSEUDO_INVERSE_EPSILON = 1e-8


def regularised_pseudo_inverse(E: torch.Tensor) -> torch.Tensor:
    r"""The paper's force map, regularised: :math:`b = (E E^{\mathsf T} + \varepsilon I)^{-1} E`.

    Shape (n_beads, n_atoms), like ``E``.

    Equal to :func:`ase_cg.mapping.pseudo_inverse_force_map` to ~1e-8 for any E with occupied
    beads; the small ε keeps it finite while a bead is (nearly) empty during learning.
    """
    eye = torch.eye(E.shape[-2], dtype=E.dtype, device=E.device)
    return torch.linalg.solve(E @ E.mT + PSEUDO_INVERSE_EPSILON * eye, E)


def bead_sum_force_map_soft(assignment: torch.Tensor) -> torch.Tensor:
    """Bead-sum force map of a (soft or hard) assignment: b_Ij = A_jI, (n_beads, n_atoms).

    For a hard assignment this is :func:`ase_cg.mapping.bead_sum_force_map` of E.
    """
    return assignment.T
