"""The auto-encoder module (encoder logits, linear decoder, CG potential) and its result."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ase_cg.mapping import CGMapping


class CGAutoencoder(nn.Module):
    """Encoder (assignment logits), linear decoder and CG potential for several molecule types.

    Parameters
    ----------
    type_names : list of str
        Molecule type names.
    atom_masses : list of (n_atoms_t,) float64, amu
        Template atom masses per type.
    n_beads : list of int
        Beads per type.
    pair_cutoff : float, Å
    n_basis : int
    init_scale : float
        Standard deviation of the initial logits.
    generator : torch.Generator
        Seeds the initial logits and decoder.
    atom_bonds : list of (n_bonds_t, 2) int, optional
        Covalent bonds of each type's template (atom indices in template order), for the
        bond-cut term (:func:`bond_cut_fraction`); none when not given.
    """

    def __init__(
        self,
        type_names,
        atom_masses,
        n_beads,
        *,
        pair_cutoff: float,
        n_basis: int,
        init_scale: float,
        generator: torch.Generator,
        atom_bonds=None,
    ):
        super().__init__()
        self.type_names = list(type_names)
        self.n_beads = [int(n) for n in n_beads]
        self.pair_cutoff = float(pair_cutoff)
        dtype = torch.float64
        self.logits = nn.ParameterList()
        self.decoders = nn.ParameterList()
        for k, masses in enumerate(atom_masses):
            masses = torch.as_tensor(masses, dtype=dtype)
            self.register_buffer(f"atom_masses_{k}", masses)
            bonds = np.zeros((0, 2)) if atom_bonds is None else np.asarray(atom_bonds[k])
            self.register_buffer(
                f"atom_bonds_{k}", torch.as_tensor(bonds, dtype=torch.int64).reshape(-1, 2)
            )
            shape = (len(masses), self.n_beads[k])
            self.logits.append(
                nn.Parameter(init_scale * torch.randn(shape, generator=generator, dtype=dtype))
            )
            self.decoders.append(
                nn.Parameter(0.1 * torch.randn(shape, generator=generator, dtype=dtype))
            )
        # Intramolecular springs between every bead pair of a molecule: k (eV/Å²), r0 (Å).
        self.bond_pairs = [torch.triu_indices(n, n, 1) for n in self.n_beads]
        n_bond = sum(p.shape[1] for p in self.bond_pairs)
        self.bond_raw_k = nn.Parameter(torch.zeros(n_bond, dtype=dtype))
        self.bond_r0 = nn.Parameter(torch.ones(n_bond, dtype=dtype))
        # Intermolecular Gaussian-basis pair potential per pair of bead slots.
        n_slots = sum(self.n_beads)
        self.register_buffer("centres", torch.linspace(2.0, pair_cutoff, n_basis, dtype=dtype))
        self.width = (pair_cutoff - 2.0) / max(n_basis - 1, 1)
        self.pair_weights = nn.Parameter(torch.zeros(n_slots, n_slots, n_basis, dtype=dtype))
        # Slot (bead-type position) offset of each molecule type in pair_weights.
        self.slot_offsets = [int(x) for x in np.cumsum([0, *self.n_beads[:-1]])]

    def atom_masses(self, k: int) -> torch.Tensor:
        """(n_atoms_t,) float64 template atom masses of type ``k``, amu."""
        return getattr(self, f"atom_masses_{k}")

    def atom_bonds(self, k: int) -> torch.Tensor:
        """(n_bonds_t, 2) int64 template bonds of type ``k`` (atom indices)."""
        return getattr(self, f"atom_bonds_{k}")

    def assignment(self, k: int, tau: float | None, hard: bool, generator=None) -> torch.Tensor:
        """Assignment A of type ``k``: (n_atoms_t, n_beads_t), rows sum to one.

        ``tau=None``: the deterministic one-hot argmax of the logits (the learned mapping).
        Otherwise a Gumbel-softmax sample at temperature ``tau``, made one-hot with the
        straight-through estimator when ``hard`` (a one-hot sample that would leave a bead
        empty is replaced by the soft sample, so E stays full rank).
        """
        logits = self.logits[k]
        if tau is None:
            return nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).to(logits.dtype)
        uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-12)))
        soft = torch.softmax((logits + gumbel) / tau, dim=1)
        if not hard:
            return soft
        one_hot = nn.functional.one_hot(soft.argmax(dim=1), soft.shape[1]).to(soft.dtype)
        if (one_hot.sum(0) == 0).any():  # a hard sample with an empty bead: keep it soft
            return soft
        return one_hot - soft.detach() + soft

    def encode(self, k: int, assignment: torch.Tensor, positions: torch.Tensor):
        """Position map E, bead masses and bead positions of type ``k``.

        Parameters
        ----------
        assignment : (n_atoms_t, n_beads_t)
        positions : (n_frames, n_mol_t, n_atoms_t, 3) float64, Å, whole molecules

        Returns
        -------
        E : (n_beads_t, n_atoms_t)
        bead_masses : (n_beads_t,) amu (zero for an empty bead)
        bead_positions : (n_frames, n_mol_t, n_beads_t, 3) Å
        """
        weighted = self.atom_masses(k)[:, None] * assignment  # (n_at, n_b)
        bead_masses = weighted.sum(0)
        E = (weighted / bead_masses.clamp_min(1e-12)).T
        return E, bead_masses, torch.einsum("ij,fmjc->fmic", E, positions)

    def decode(self, k: int, bead_masses: torch.Tensor, bead_positions: torch.Tensor):
        """Atom positions (n_frames, n_mol_t, n_atoms_t, 3), Å, from bead positions."""
        centre = (bead_masses[:, None] * bead_positions).sum(-2, keepdim=True) / bead_masses.sum()
        return centre + torch.einsum("ji,fmic->fmjc", self.decoders[k], bead_positions - centre)

    def energy(self, centres: list, neighbours: list, pairs, cell) -> torch.Tensor:
        """CG potential energy (0-d, eV) of the sampled molecules of one frame.

        Parameters
        ----------
        centres, neighbours : list of (n_mol, n_beads_t, 3) tensors, Å
            Per molecule type, the sampled molecules (their intramolecular springs count) and
            the other molecules within reach of them.
        pairs : (i, j, slot_i, slot_j) int64 tensors
            Intermolecular bead pairs (:meth:`MoleculeSampler.sample`) as indices into the
            beads of ``centres`` then ``neighbours``, flattened in that order, and their
            bead slots (``slot_offsets[k]`` + bead index).
        cell : (3, 3) tensor, Å, or None (minimum image when given)
        """
        z = torch.cat([b.reshape(-1, 3) for b in [*centres, *neighbours]], dim=0)
        return self.spring_energy(centres) + self.pair_energy(z, pairs, cell)

    def spring_energy(self, bead_positions: list) -> torch.Tensor:
        """Intramolecular springs of molecules (list per type of (n_mol, n_beads_t, 3)), eV."""
        energy = torch.zeros((), dtype=self.bond_r0.dtype)
        offset = 0
        k_all = nn.functional.softplus(self.bond_raw_k) * 10.0
        for k, z in enumerate(bead_positions):
            pairs = self.bond_pairs[k]
            n = pairs.shape[1]
            if n and z.shape[0]:
                r = (z[:, pairs[1]] - z[:, pairs[0]]).norm(dim=-1)  # (n_mol, n)
                spring = k_all[offset : offset + n] * (r - self.bond_r0[offset : offset + n]) ** 2
                energy = energy + spring.sum()
            offset += n
        return energy

    def pair_energy(self, z: torch.Tensor, pairs, cell: torch.Tensor | None) -> torch.Tensor:
        """Gaussian-basis pair energy of the bead ``pairs`` of beads ``z`` (n, 3), eV."""
        i, j, slot_i, slot_j = pairs
        d = z[j] - z[i]
        if cell is not None:
            fractional = d.detach() @ torch.linalg.inv(cell)
            d = d - torch.round(fractional) @ cell
        r = d.norm(dim=-1)
        inside = r < self.pair_cutoff
        cosine = 0.5 * (torch.cos(math.pi * r.clamp(max=self.pair_cutoff) / self.pair_cutoff) + 1)
        basis = torch.exp(-0.5 * ((r[..., None] - self.centres) / self.width) ** 2)
        w = self.pair_weights + self.pair_weights.transpose(0, 1)
        phi = (basis * w[slot_i, slot_j]).sum(-1) * cosine * inside
        return phi.sum()

    def groups(self, k: int) -> list[list[int]]:
        """Atom indices of each bead of type ``k`` from the argmax assignment."""
        owner = self.logits[k].argmax(dim=1).tolist()
        return [[j for j, b in enumerate(owner) if b == bead] for bead in range(self.n_beads[k])]

    def hardness(self, k: int, tau: float) -> float:
        """Smallest, over atoms, largest assignment probability softmax(θ/τ) of type ``k``."""
        probabilities = torch.softmax(self.logits[k].detach() / tau, dim=1)
        return float(probabilities.max(dim=1).values.min())


@dataclass
class LearnedMapping:
    """Result of :func:`learn_mapping`.

    Attributes
    ----------
    mapping : ase_cg.mapping.CGMapping
        The learned mapping of the best seed (centre-of-mass weighting; beads ordered by their
        lowest atom index).
    autoencoder : CGAutoencoder
        The best seed's trained encoder, decoder and CG potential.
    report : dict
        ``"best_seed"``, ``"best_connected"``, ``"selection"`` (how the seed was chosen),
        ``"runs"`` (per seed: ``"groups"``, ``"failed"``, ``"empty_beads"``, ``"connected"``,
        ``"disconnected_beads"``, ``"validation"`` losses, ``"hardness"``, ``"history"``,
        ``"seconds"``),
        ``"atom_rms_error"`` (Å per template atom, validation frames), ``"n_train_frames"``,
        ``"n_validation_frames"``, ``"pair_cutoff"``, ``"force_scale"`` (eV²/Å²),
        ``"seconds"``, ``"config"``, ``"source"``.
    templates : dict[str, ase.Atoms]
        Molecule type name → template molecule.
    """

    mapping: CGMapping
    autoencoder: CGAutoencoder
    report: dict
    templates: dict
