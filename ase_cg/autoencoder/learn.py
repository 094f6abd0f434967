r"""Learned CG mappings: the coarse-graining auto-encoder (Wang & Gómez-Bombarelli 2019).

Given an all-atom trajectory with forces, learn per molecule type which atoms form which bead,
together with a decoder and a small CG potential, and return the result as an ordinary
:class:`~ase_cg.mapping.CGMapping` (same JSON as hand-made mappings).

Physics
-------
Per molecule type an encoder holds assignment logits :math:`\theta` of shape
``(n_atoms_in_molecule, n_beads)``. Each training step draws a Gumbel-softmax assignment

.. math::

    A_{jI} = \mathrm{softmax}_I\big((\theta_{jI} + g_{jI}) / \tau\big), \qquad
    \tau(\mathrm{epoch}) = \tau_0\, e^{-\mathrm{epoch} / (0.4\, n_\mathrm{epochs})} + \tau_\min ,

with Gumbel noise :math:`g`; in the last epochs the assignment is made hard (one-hot argmax)
with the straight-through estimator, so each atom ends in exactly one bead. Bead positions are
mass-weighted means of the assigned atoms of the (whole) molecule,

.. math::

    z_I = \sum_j E_{Ij} x_j, \qquad E_{Ij} = \frac{m_j A_{jI}}{\sum_k m_k A_{kI}},
    \qquad M_I = \sum_j m_j A_{jI}.

The decoder is linear and works in the molecular frame: atom positions are rebuilt from the
bead offsets to the molecule's centre of mass :math:`c = \sum_I M_I z_I / \sum_I M_I`,

.. math::

    \hat x_j = c + \sum_I D_{jI} (z_I - c),

so it is equivariant to translations (and rotations) of the molecule. The loss is

.. math::

    L = \big\langle |x - \hat x|^2 \big\rangle
        + \rho\, \frac{\big\langle |b f + \nabla_z V_\mathrm{CG}(z)|^2 \big\rangle}
                      {\langle |f|^2 \rangle}
        + \lambda \sum_I \max(0, 1 - n_I)^2
        + \kappa\, \mathrm{cut}(A) + \beta\, \frac{1}{n_\mathrm{beads}}
          \sum_I \Big(\frac{M_I}{\bar M} - 1\Big)^2 ,

with the instantaneous mapped force :math:`b f`, :math:`b = (E E^{\mathsf T})^{-1} E` (the
paper's pseudo-inverse, differentiable in ``E``; the bead sum is an option), the soft bead
occupancy :math:`n_I = \sum_j A_{jI}` (guard against empty beads), and the force term switched
on after a warm-up. The last two terms carry the chemistry the first three miss. The bond cut

.. math::

    \mathrm{cut}(A) = \frac{1}{n_\mathrm{bonds}} \sum_{(a, b)} \Big(1 - \sum_I A_{aI} A_{bI}\Big)

runs over the covalent bonds of the molecule's template; :math:`\sum_I A_{aI} A_{bI}` is the
probability that a and b share a bead, so the term is the expected fraction of bonds cut. A
bead should be a bonded fragment: in propane the reconstruction and force terms alone leave
one or two hydrogens on the neighbouring carbon's bead (the decoder sees only mean positions,
and rotating methyl groups make hydrogens of neighbouring carbons look alike). Minimum cut
alone is degenerate: a bead of one hydrogen cuts one bond, as few as a CH3 bead behind a C–C
bond. The balance term (spread of the soft bead masses :math:`M_I` around their mean
:math:`\bar M`) breaks that tie against hydrogen-only beads. Both weights ramp up over the
first epochs (``bond_warmup``) so that the reconstruction term separates the heavy atoms
first. After training, a run whose hard
beads are not all connected subgraphs of the bond graph is flagged (``"connected": false``).
The CG potential :math:`V_\mathrm{CG}` is trained in the same backward pass:
harmonic springs between the beads of a molecule plus a Gaussian-basis pair potential between
beads of different molecules (minimum image, smooth cosine cutoff). Molecules of one type share
the encoder, so each frame contributes a random sample of ``molecules_per_frame`` molecules
(all of a small box); their CG forces need only the molecules within the pair cutoff of them,
which are encoded too. The cost per frame then does not grow with the box. Several restarts (seeds)
are run; among the connected ones, the one with the lowest validation loss (hard assignment,
held-out frames at the end of the trajectory) is kept (among all when none is connected). A
run whose final hard assignment leaves a bead empty counts as failed.

Usage::

    result = learn_mapping("ethane_aa.h5", 2, config=AutoencoderConfig(epochs=60))
    result.mapping.save("learned_mapping.json")   # CGMapping JSON
    result.report["runs"]                         # per seed: groups, losses, hardness
    learn_mapping("mix.h5", {"ethane": 2, "propane": 3}, output_dir="learned/")  # + report
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from torch import nn
from tqdm.auto import tqdm

from ase_cg.errors import InputError
from ase_cg.mapping import CGMapping
from ase_cg.molecules import MoleculeError, TemplateMatcher, find_molecules, formula_of
from ase_cg.trajectory import open_trajectory

__all__ = [
    "AutoencoderConfig",
    "AutoencoderError",
    "CGAutoencoder",
    "LearnedMapping",
    "bond_cut_fraction",
    "groups_connected",
    "learn_mapping",
    "write_learned_report",
]

#: force maps available while learning (both differentiable in E)
LEARNING_FORCE_MAPS = ("pseudo_inverse", "bead_sum")


class AutoencoderError(InputError):
    """Input the auto-encoder cannot learn from, or a training run that cannot go on."""


@dataclass
class AutoencoderConfig:
    """Settings of :func:`learn_mapping` (lengths Å, energies eV)."""

    epochs: int = 60
    """Passes over the training frames per seed."""

    batch_frames: int = 8
    """Frames per optimiser step."""

    learning_rate: float = 0.2
    """Adam step size of all parameters (logits, decoder, CG potential)."""

    tau0: float = 4.0
    """τ0 of the Gumbel-softmax temperature τ(epoch) = τ0·exp(−epoch/(τ_decay·epochs)) + τ_min."""

    tau_min: float = 0.2
    """τ_min, the temperature the annealing approaches."""

    tau_decay: float = 0.4
    """Decay length of τ as a fraction of the epochs (0.4 in the paper)."""

    hard_fraction: float = 0.25
    """Last fraction of the epochs trained with the straight-through hard (one-hot) assignment."""

    rho: float = 5.0
    """Weight ρ of the force-matching term (force error relative to the mean |f|² of atoms)."""

    force_warmup: float = 0.2
    """Fraction of the epochs before the force term is switched on."""

    force_map: str = "pseudo_inverse"
    """Force map while learning: ``"pseudo_inverse"`` (paper's b = (EEᵀ)⁻¹E) or ``"bead_sum"``."""

    pair_cutoff: float = 8.0
    """Cutoff of the intermolecular pair potential, Å (capped below half the smallest box
    width, as the pair term uses the minimum image)."""

    n_basis: int = 12
    """Gaussian basis functions of the pair potential between 2 Å and the cutoff."""

    empty_penalty: float = 1.0
    """λ of the penalty λ·Σ_I max(0, 1 − n_I)² on beads with soft occupancy n_I below one atom."""

    bond_weight: float = 3.0
    """Weight κ of the bond-cut term κ·cut, cut = mean over the template's covalent bonds (a, b)
    of 1 − Σ_I A_aI A_bI: the expected fraction of bonds whose two atoms the assignment puts in
    different beads (0: no bond cut; 1: all cut). It pulls each hydrogen into its own heavy
    atom's bead, which the reconstruction term alone does not do once methyl groups rotate.
    0 switches it off. With the other defaults, 3 gave CH3|CH3 for ethane and CH3|CH2|CH3 for
    propane in 5 of 5 seeds each (BENCHMARKS.md, "Learned mapping"); without the warm-up
    ramp, 1 or 2 gave propane 4 of 5 with balance 2, and 3 or 5 without balance 0 of 5."""

    bond_warmup: float = 0.1
    """Fraction of the epochs over which the bond-cut and balance weights ramp up linearly
    (epoch e uses (e + 1)/(n + 1) of them, n = bond_warmup·epochs). At full weight from the
    first step, the bond cut amplifies chance asymmetries of the near-uniform assignment and
    can join the two carbons of ethane in one bead before the reconstruction term separates
    them (demo sizes, one optimiser step per epoch: 0 of 2 seeds); a hard switch after 0.2
    loses propane instead (1 of 5); the 0.1 ramp gave 2 of 2 and 5 of 5."""

    balance_weight: float = 2.0
    """Weight β of the bead-mass balance term β·Σ_I (M_I/M̄ − 1)²/n_beads (M̄ the mean bead
    mass of the molecule): the spread of the soft bead masses. The bond-cut term alone is as
    low for a bead of one hydrogen (one bond cut) as for a chemical bead; this term breaks
    that tie. 0 switches it off. A CH3|CH2|CH3 propane scores 0.001, propane with a bead of
    one or two hydrogens about 0.5; 2 with ``bond_weight`` 3 is the measured default (5 with
    ``bond_weight`` 1 gave propane 3 of 5: the bond cut must dominate)."""

    init_scale: float = 0.1
    """Standard deviation of the initial assignment logits."""

    validation_fraction: float = 0.2
    """Fraction of the selected frames held out (one block at the end) to pick the best seed."""

    max_frames: int | None = 200
    """At most this many frames (evenly spread over the trajectory) are used; None: all."""

    stride: int = 1
    """Use every ``stride``-th frame before ``max_frames`` is applied."""

    molecules_per_frame: int | None = 64
    """Molecules of each frame whose reconstruction and mapped forces enter the loss, drawn
    at random per frame and step (shared among the types in proportion to their counts, at
    least one each); None: all. Molecules of one type share the encoder, so a fixed sample
    learns the same mapping at a cost independent of the box size: the CG forces on the
    sampled beads need only the beads of molecules within the pair cutoff of them."""

    sampled_frames: int = 32
    """At most this many frames (evenly spread) when molecules are sampled (the box holds more
    than ``molecules_per_frame``): 32 frames of 64 molecules give as many molecules per epoch
    as 80 frames of a 27-molecule box, so the cost of a default run stops growing with the box
    (``max_frames`` still applies when smaller)."""

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_frames": self.batch_frames >= 1,
            "learning_rate": self.learning_rate > 0,
            "tau0": self.tau0 >= 0,
            "tau_min": self.tau_min > 0,
            "tau_decay": self.tau_decay > 0,
            "hard_fraction": 0 <= self.hard_fraction <= 1,
            "rho": self.rho >= 0,
            "force_warmup": 0 <= self.force_warmup <= 1,
            "pair_cutoff": self.pair_cutoff > 2.0,
            "n_basis": self.n_basis >= 1,
            "empty_penalty": self.empty_penalty >= 0,
            "bond_weight": self.bond_weight >= 0,
            "balance_weight": self.balance_weight >= 0,
            "bond_warmup": 0 <= self.bond_warmup <= 1,
            "init_scale": self.init_scale >= 0,
            "validation_fraction": 0 <= self.validation_fraction < 1,
            "max_frames": self.max_frames is None or self.max_frames >= 2,
            "stride": self.stride >= 1,
            "molecules_per_frame": self.molecules_per_frame is None
            or self.molecules_per_frame >= 1,
            "sampled_frames": self.sampled_frames >= 2,
        }
        for name, ok in checks.items():
            if not ok:
                raise AutoencoderError(
                    f"AutoencoderConfig.{name} = {getattr(self, name)!r} is out of range; see the "
                    "field's docstring for the allowed values"
                )
        if self.force_map not in LEARNING_FORCE_MAPS:
            raise AutoencoderError(
                f"AutoencoderConfig.force_map = {self.force_map!r}; use one of "
                f"{LEARNING_FORCE_MAPS}"
            )

    def temperature(self, epoch: int) -> float:
        """Gumbel-softmax temperature τ of an epoch (0-based)."""
        return self.tau0 * math.exp(-epoch / (self.tau_decay * self.epochs)) + self.tau_min

    def to_dict(self) -> dict:
        """JSON-able field values."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Data: whole molecules per type, in template atom order


@dataclass
class _TypeData:
    name: str
    template: Atoms  # whole molecule, masses set
    bonds: np.ndarray  # (n_bonds, 2) template bonds
    atom_index: np.ndarray  # (n_mol_t, n_atoms_t) global atom index, template order
    n_beads: int


@dataclass
class _Data:
    source: str
    types: list
    positions: list = field(default_factory=list)  # per type (n_frames, n_mol_t, n_at_t, 3)
    forces: list = field(default_factory=list)
    cells: np.ndarray | None = None  # (n_frames, 3, 3)
    pbc: np.ndarray | None = None
    frames: np.ndarray | None = None  # indices in the trajectory
    force_scale: float = 1.0  # mean |f|² of atoms over training frames, eV²/Å²


def _open(trajectory):
    """``(trajectory, owned)``: a :class:`ase_cg.trajectory.Trajectory` of all-atom frames."""
    try:
        source = open_trajectory(trajectory)
    except InputError as error:
        raise AutoencoderError(str(error)) from error
    if getattr(source, "bead_types", None) is not None:
        if source is not trajectory:
            source.close()
        raise AutoencoderError(
            f"{getattr(source, 'path', 'trajectory')}: is a CG trajectory (it has bead types); "
            "learning a mapping needs the all-atom trajectory"
        )
    return source, source is not trajectory


def _find_types(atoms: Atoms, source: str) -> list[tuple[str, Atoms, np.ndarray]]:
    """Distinct molecule types of one frame: (formula name, whole template, local bonds)."""
    molset = find_molecules(atoms)
    found: dict[str, tuple[Atoms, np.ndarray]] = {}
    matcher = None
    for members in molset.molecules:
        in_mol = np.isin(molset.bonds[:, 0], members)
        local = np.searchsorted(members, molset.bonds[in_mol])
        numbers = atoms.numbers[members]
        if matcher is not None:
            try:
                matcher.match(numbers, local)
                continue
            except MoleculeError:
                pass
        if len(members) == 1:
            raise AutoencoderError(
                f"{source}: molecule of atom {int(members[0])} ({atoms[members[0]].symbol}) has "
                "one atom; a one-atom molecule cannot be split into learned beads: remove it or "
                "map it with a fixed mapping (ase_cg.mapping.CGMapping.from_groups)"
            )
        positions = atoms.positions[members]
        if atoms.pbc.any():  # minimum image from the first atom: a whole molecule
            delta = positions - positions[0]
            fractional = delta @ np.linalg.inv(atoms.cell.array)
            fractional[:, atoms.pbc] -= np.rint(fractional[:, atoms.pbc])
            positions = positions[0] + fractional @ atoms.cell.array
        template = Atoms(numbers=numbers, positions=positions, masses=atoms.get_masses()[members])
        name = formula_of(numbers)
        if name in found:
            name = f"{name}_{sum(1 for k in found if k.split('_')[0] == name) + 1}"
        found[name] = (template, local)
        matcher = TemplateMatcher({k: (v[0].numbers, v[1]) for k, v in found.items()})
    return [(name, t, b) for name, (t, b) in found.items()]


def _resolve_beads(n_beads, found, source: str) -> dict[str, tuple[str, int]]:
    """Formula name → (molecule type name, beads); dict keys may be formulas or registry names."""
    from ase_cg.reference import MOLECULES

    formulas = [name for name, _, _ in found]
    if isinstance(n_beads, dict):
        chosen: dict[str, tuple[str, int]] = {}
        for key, value in n_beads.items():
            formula = key
            if key not in formulas and key in MOLECULES:
                formula = formula_of(MOLECULES[key].to_atoms().numbers)
            if formula not in formulas:
                raise AutoencoderError(
                    f"{source}: n_beads names molecule type {key!r}, but the trajectory has "
                    f"{formulas}; key the beads by formula or by a reference molecule name"
                )
            chosen[formula] = (key, value)
        missing = sorted(set(formulas) - set(chosen))
        if missing:
            raise AutoencoderError(
                f"{source}: no bead count for molecule types {missing}; give n_beads for every "
                f"type, e.g. {{{', '.join(repr(f) + ': 2' for f in formulas)}}}"
            )
    else:
        chosen = {f: (f, n_beads) for f in formulas}
    for formula, (name, value) in chosen.items():
        n_atoms = next(len(t) for f, t, _ in found if f == formula)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise AutoencoderError(
                f"{source}: molecule type {name!r}: n_beads must be a positive integer, got "
                f"{value!r}"
            )
        if value > n_atoms:
            raise AutoencoderError(
                f"{source}: molecule type {name!r} has {n_atoms} atoms but {value} beads were "
                f"asked for; use at most {n_atoms} beads (each bead needs at least one atom)"
            )
    return chosen


def _select_frames(
    n_frames: int, config: AutoencoderConfig, source: str, n_molecules: int
) -> np.ndarray:
    frames = np.arange(0, n_frames, config.stride)
    limit = config.max_frames
    if config.molecules_per_frame is not None and n_molecules > config.molecules_per_frame:
        limit = config.sampled_frames if limit is None else min(limit, config.sampled_frames)
    if limit is not None and len(frames) > limit:
        frames = frames[np.linspace(0, len(frames) - 1, limit).round().astype(int)]
    if len(frames) < 2:
        raise AutoencoderError(
            f"{source}: {len(frames)} frame(s) selected; learning a mapping needs at least 2 "
            "(training and validation): give a longer trajectory or a smaller stride"
        )
    return frames


def _load(trajectory, n_beads, config: AutoencoderConfig, disable) -> _Data:
    traj, owned = _open(trajectory)
    try:
        source = str(getattr(traj, "path", trajectory))
        if not traj.has_forces:
            raise AutoencoderError(
                f"{source}: the trajectory has no forces; the auto-encoder's force-matching term "
                "needs all-atom forces (write forces in the reference run: ase-cg reference)"
            )
        atoms0 = traj[0]
        found = _find_types(atoms0, source)
        chosen = _resolve_beads(n_beads, found, source)
        # One bead per atom: SystemMapping then gives whole molecules and template order.
        per_atom = CGMapping.from_groups(
            {
                formula: (
                    t,
                    [[j] for j in range(len(t))],
                    [f"{formula}:{j}" for j in range(len(t))],
                )
                for formula, t, _ in found
            }
        )
        system = per_atom.system(atoms0)
        order = system.position_matrix.tocsr()
        order.sort_indices()
        atom_of_row = order.indices  # one atom per row, rows molecule by molecule
        mol_types = np.asarray(system.molecule_types)[system.bead_mol_ids]
        types = []
        for formula, template, bonds in found:
            rows = np.flatnonzero(mol_types == formula)
            index = atom_of_row[rows].reshape(-1, len(template))
            name, beads = chosen[formula]
            types.append(_TypeData(name, template, bonds, index, int(beads)))
        frames = _select_frames(len(traj), config, source, sum(len(t.atom_index) for t in types))
        data = _Data(source=source, types=types, frames=frames, pbc=np.asarray(atoms0.pbc))
        pos_t = [[] for _ in types]
        for_t = [[] for _ in types]
        cells = []
        step = 64
        chunks = range(0, len(frames), step)
        for start in tqdm(chunks, desc="reading frames", disable=disable, leave=False):
            sel = frames[start : start + step]
            positions = traj.positions(sel)
            forces = traj.forces(sel)
            cell = traj.cells(sel)
            whole = system.unwrap(positions, cell)
            cells.append(np.broadcast_to(cell, (len(sel), 3, 3)))
            for k, t in enumerate(types):
                pos_t[k].append(whole[:, t.atom_index])
                for_t[k].append(forces[:, t.atom_index])
        data.positions = [np.concatenate(p) for p in pos_t]
        data.forces = [np.concatenate(f) for f in for_t]
        data.cells = np.concatenate(cells)
        return data
    finally:
        if owned:
            traj.close()


# --------------------------------------------------------------------------------------------
# The model


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
            Intermolecular bead pairs (:meth:`_MoleculeSampler.sample`) as indices into the
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


# --------------------------------------------------------------------------------------------
# Training


class _MoleculeSampler:
    """Per frame, a sample of molecules and the bead pairs their CG forces need.

    Bead positions are mass-weighted means of a molecule's atoms, so a bead lies within
    ``reach`` (the largest atom distance from its molecule's centre of mass) of that centre:
    two beads can be closer than the pair cutoff only when their molecules' centres are
    closer than ``cutoff + 2 reach``.  Only those molecules are encoded besides the sample.

    Parameters
    ----------
    data : _Data
    cutoff : float, Å
    budget : int or None
        Molecules sampled per frame (all types together); None: all.
    """

    def __init__(self, data: _Data, cutoff: float, budget: int | None):
        masses = [t.template.get_masses() for t in data.types]
        self.coms = [
            np.einsum("j,fmjc->fmc", m / m.sum(), p)
            for m, p in zip(masses, data.positions, strict=True)
        ]
        self.reach = max(
            float(np.linalg.norm(p - c[:, :, None], axis=-1).max())
            for p, c in zip(data.positions, self.coms, strict=True)
        )
        self.range = cutoff + 2.0 * self.reach
        self.cells = data.cells if data.pbc.any() else None
        self.pbc = data.pbc
        self.counts = [c.shape[1] for c in self.coms]
        self.n_beads = [t.n_beads for t in data.types]
        self.type_offsets = np.cumsum([0, *self.counts])
        total = sum(self.counts)
        if budget is None or budget >= total:
            self.sizes = list(self.counts)
        else:
            self.sizes = [min(n, max(1, round(budget * n / total))) for n in self.counts]

    def sample(self, frame: int, generator: torch.Generator | None):
        """``(centres, neighbours, pairs)`` of one frame.

        ``centres``/``neighbours``: per type, molecule indices; ``pairs``: (i, j, slot_i,
        slot_j) int64 tensors over the beads of the centres then the neighbours (each pair
        once, at least one bead of a centre).  ``generator=None`` draws a fixed sample per
        frame (validation).
        """
        rng = None if generator is not None else np.random.default_rng(frame)
        centres = []
        for n, size in zip(self.counts, self.sizes, strict=True):
            if size >= n:
                centres.append(np.arange(n))
            elif rng is None:
                centres.append(np.sort(torch.randperm(n, generator=generator)[:size].numpy()))
            else:
                centres.append(np.sort(rng.choice(n, size, replace=False)))
        com = np.concatenate([c[frame] for c in self.coms])  # (n_mol_total, 3)
        starts = self.type_offsets[:-1]
        chosen = np.concatenate([c + o for c, o in zip(centres, starts, strict=True)])
        near = self._near(com[chosen], com, frame)  # (n_chosen, n_mol_total)
        is_centre = np.zeros(len(com), dtype=bool)
        is_centre[chosen] = True
        wanted = near.any(0) & ~is_centre
        neighbours = [
            np.flatnonzero(wanted[a:b]) for a, b in zip(starts, self.type_offsets[1:], strict=True)
        ]
        # the sub-system: centres of every type, then neighbours of every type
        members = [c + o for c, o in zip(centres, starts, strict=True)]
        members += [c + o for c, o in zip(neighbours, starts, strict=True)]
        kind = np.concatenate(
            [np.full(len(m), k % len(self.counts)) for k, m in enumerate(members)]
        )
        order = np.concatenate(members)
        n_beads = np.asarray(self.n_beads)[kind]
        start = np.concatenate([[0], np.cumsum(n_beads)[:-1]])
        position = np.full(len(com), -1)
        position[order] = np.arange(len(order))
        a, b = np.nonzero(near)  # centre row a (position a in order), molecule b
        b = position[b]
        keep = (b >= 0) & (a != b) & ((b >= len(chosen)) | (a < b))
        a, b = a[keep], b[keep]
        most = max(self.n_beads)
        bead_a = np.arange(most)[None, :, None]
        bead_b = np.arange(most)[None, None, :]
        valid = (bead_a < n_beads[a][:, None, None]) & (bead_b < n_beads[b][:, None, None])
        shape = (len(a), most, most)
        i = np.broadcast_to(start[a][:, None, None] + bead_a, shape)[valid]
        j = np.broadcast_to(start[b][:, None, None] + bead_b, shape)[valid]
        offsets = np.cumsum([0, *self.n_beads[:-1]])
        slot_i = np.broadcast_to(offsets[kind[a]][:, None, None] + bead_a, shape)[valid]
        slot_j = np.broadcast_to(offsets[kind[b]][:, None, None] + bead_b, shape)[valid]
        pairs = tuple(torch.as_tensor(x, dtype=torch.int64) for x in (i, j, slot_i, slot_j))
        return centres, neighbours, pairs

    def _near(self, points: np.ndarray, com: np.ndarray, frame: int) -> np.ndarray:
        delta = com[None, :, :] - points[:, None, :]
        if self.cells is not None:
            cell = self.cells[frame]
            fractional = delta @ np.linalg.inv(cell)
            fractional[..., self.pbc] -= np.rint(fractional[..., self.pbc])
            delta = fractional @ cell
        return np.einsum("abc,abc->ab", delta, delta) < self.range**2


def _losses(model, data_t, frames, config, *, tau, hard, rho, generator, chemistry=1.0):
    """(total, reconstruction, force, penalty, bond cut, balance) on a batch of frames.

    Per frame, the loss covers a sample of molecules (``data_t``'s :class:`_MoleculeSampler`,
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


def _train_seed(data: _Data, config: AutoencoderConfig, seed: int, split, cutoff, bar):
    """Train one restart; ``bar`` (tqdm over all seeds' epochs) advances once per epoch."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(int(seed))
    model = CGAutoencoder(
        [t.name for t in data.types],
        [t.template.get_masses() for t in data.types],
        [t.n_beads for t in data.types],
        pair_cutoff=cutoff,
        n_basis=config.n_basis,
        init_scale=config.init_scale,
        generator=generator,
        atom_bonds=[t.bonds for t in data.types],
    )
    tensors = (
        [torch.as_tensor(p) for p in data.positions],
        [torch.as_tensor(f) for f in data.forces],
        torch.as_tensor(data.cells) if data.pbc.any() else None,
        data.force_scale,
        _MoleculeSampler(data, cutoff, config.molecules_per_frame),
    )
    _init_springs(model, data, split[0])
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    train, validation = split
    n_hard = int(round(config.hard_fraction * config.epochs))
    warmup = int(round(config.force_warmup * config.epochs))
    bond_ramp = int(round(config.bond_warmup * config.epochs))
    history = {
        k: []
        for k in ("epoch", "tau", "recon", "force", "penalty", "bond_cut", "balance", "validation")
    }
    for epoch in range(config.epochs):
        tau = config.temperature(epoch)
        hard = epoch >= config.epochs - n_hard
        rho = config.rho if epoch >= warmup else 0.0
        order = train[torch.randperm(len(train), generator=generator).numpy()]
        sums = np.zeros(5)
        for start in range(0, len(order), config.batch_frames):
            frames = torch.as_tensor(order[start : start + config.batch_frames])
            total, recon, force, penalty, cut, balance = _losses(
                model,
                tensors,
                frames,
                config,
                tau=tau,
                hard=hard,
                rho=rho,
                generator=generator,
                chemistry=min(1.0, (epoch + 1) / (bond_ramp + 1)),
            )
            if not torch.isfinite(total):
                raise AutoencoderError(
                    f"{data.source}: seed {seed}, epoch {epoch}: the loss is not finite "
                    f"(reconstruction {float(recon.detach()):.4g} Å², force "
                    f"{float(force.detach()):.4g}, penalty {float(penalty.detach()):.4g}); "
                    "check the trajectory's positions and forces for huge values, or lower "
                    "learning_rate / rho"
                )
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            values = (recon, force, penalty, cut, balance)
            sums += len(frames) * np.array([float(v.detach()) for v in values])
        sums /= len(order)
        val = _validate(model, tensors, validation, config)
        for key, value in zip(
            history,
            (epoch, tau, *sums, val["total"]),
            strict=True,
        ):
            history[key].append(float(value))
        bar.set_postfix(
            seed=seed, recon=f"{sums[0]:.3g}", force=f"{sums[1]:.3g}", val=f"{val['total']:.3g}"
        )
        bar.update(1)
    final = _validate(model, tensors, validation, config)
    groups = {t.name: model.groups(k) for k, t in enumerate(data.types)}
    empty = {name: [i for i, g in enumerate(gs) if not g] for name, gs in groups.items()}
    split_beads = {
        t.name: [
            i
            for i, ok in enumerate(groups_connected(groups[t.name], t.bonds))
            if groups[t.name][i] and not ok
        ]
        for t in data.types
    }
    run = {
        "seed": int(seed),
        "groups": groups,
        "failed": any(empty.values()),
        "empty_beads": {name: e for name, e in empty.items() if e},
        "connected": not any(empty.values()) and not any(split_beads.values()),
        "disconnected_beads": {name: b for name, b in split_beads.items() if b},
        "validation": final,
        "hardness": {t.name: model.hardness(k, config.tau_min) for k, t in enumerate(data.types)},
        "history": history,
        "seconds": time.perf_counter() - started,
    }
    return model, run


def _init_springs(model: CGAutoencoder, data: _Data, train) -> None:
    """Start the spring rest lengths at the mean bead distances of the initial assignment."""
    with torch.no_grad():
        offset = 0
        for k, _ in enumerate(data.types):
            A = torch.softmax(model.logits[k], dim=1)
            _, _, z = model.encode(k, A, torch.as_tensor(data.positions[k][train[:8]]))
            pairs = model.bond_pairs[k]
            n = pairs.shape[1]
            if n:
                r = (z[:, :, pairs[1]] - z[:, :, pairs[0]]).norm(dim=-1).mean(dim=(0, 1))
                model.bond_r0[offset : offset + n] = r
            offset += n


def _validate(model, tensors, frames, config) -> dict:
    """Losses of the hard argmax assignment on ``frames`` (force term always on).

    An argmax assignment with an empty bead has no valid E: all losses are then infinite.
    """
    if any(not g for k in range(len(model.type_names)) for g in model.groups(k)):
        keys = ("total", "reconstruction", "force", "penalty", "bond_cut", "balance")
        return dict.fromkeys(keys, math.inf)
    total, recon, force, penalty, cut, balance = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    n = 0
    for start in range(0, len(frames), config.batch_frames):
        sel = torch.as_tensor(frames[start : start + config.batch_frames])
        t, r, f, p, c, m = _losses(
            model, tensors, sel, config, tau=None, hard=True, rho=config.rho, generator=None
        )
        total += len(sel) * float(t.detach())
        recon += len(sel) * float(r.detach())
        force += len(sel) * float(f.detach())
        penalty = float(p.detach())
        cut = float(c.detach())
        balance = float(m.detach())
        n += len(sel)
    return {
        "total": total / n,
        "reconstruction": recon / n,
        "force": force / n,
        "penalty": penalty,
        "bond_cut": cut,
        "balance": balance,
    }


def _pick_best(runs: list[dict]) -> tuple[int, str]:
    """Index of the run to keep and how it was chosen (at least one run must not have failed).

    Lowest validation loss among the runs without an empty bead whose beads are all connected;
    among all runs without an empty bead when none is connected.
    """
    ok = [i for i, run in enumerate(runs) if not run["failed"]]
    connected = [i for i in ok if runs[i]["connected"]]
    if connected:
        selection = (
            f"lowest validation loss among the {len(connected)} seed(s) whose beads are all "
            "connected in the bond graph"
        )
    else:
        selection = (
            "no seed gave beads that are all connected in the bond graph: lowest validation "
            f"loss among all {len(ok)} seed(s) without an empty bead"
        )
    return min(connected or ok, key=lambda i: runs[i]["validation"]["total"]), selection


def _atom_errors(model: CGAutoencoder, data: _Data, frames) -> dict[str, list[float]]:
    """RMS reconstruction error per template atom (Å) with the hard assignment."""
    out = {}
    with torch.no_grad():
        for k, t in enumerate(data.types):
            x = torch.as_tensor(data.positions[k][frames])
            _, masses, z = model.encode(k, model.assignment(k, None, True), x)
            error = ((model.decode(k, masses, z) - x) ** 2).sum(-1)  # (F, n_mol, n_at)
            out[t.name] = error.mean(dim=(0, 1)).sqrt().tolist()
    return out


# --------------------------------------------------------------------------------------------
# Public API


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


def learn_mapping(
    trajectory,
    n_beads,
    *,
    config: AutoencoderConfig | None = None,
    seeds=(0, 1, 2, 3, 4),
    output_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> LearnedMapping:
    """Learn a CG mapping (and a decoder and CG potential) from an all-atom trajectory.

    Parameters
    ----------
    trajectory : path or ase_cg.trajectory.Trajectory
        All-atom trajectory with positions, forces, cells, masses and molecule ids (or
        molecules found from bonds / geometry): an H5MD file, a file MDAnalysis reads alone,
        or a trajectory object (e.g. :class:`ase_cg.trajectory.MDAnalysisTrajectory` for
        TRR + TPR, :class:`~ase_cg.trajectory.InMemoryTrajectory` for ``ase.Atoms``).
    n_beads : int or dict[str, int]
        Beads per molecule: one number for every type, or per type keyed by the molecule's Hill
        formula (``"C2H6"``) or a reference molecule name (``"ethane"``; the type then gets
        that name).
    config : AutoencoderConfig, optional
    seeds : sequence of int
        One restart per seed. The run kept has the lowest validation loss among the runs
        without an empty bead whose beads are all connected subgraphs of the bond graph (each
        bead's atoms joined by the molecule's covalent bonds); when no run is connected, among
        all runs without an empty bead (``report["best_connected"]`` is then False).
    output_dir : path, optional
        Also write ``mapping.json``, ``report.json``, figures and ``index.md`` there
        (:func:`write_learned_report`).
    progress : bool or None
        Progress bars (``None``: only on a terminal).

    Returns
    -------
    LearnedMapping

    Raises
    ------
    AutoencoderError
        No forces, one-atom molecules, more beads than atoms, unknown molecule types, too few
        frames, a non-finite loss, or every seed ending with an empty bead.
    """
    config = AutoencoderConfig() if config is None else config
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise AutoencoderError("learn_mapping needs at least one seed")
    disable = None if progress is None else not progress  # None: bars only on a terminal
    started = time.perf_counter()
    data = _load(trajectory, n_beads, config, disable)
    n_frames = len(data.frames)
    n_validation = max(1, int(round(config.validation_fraction * n_frames)))
    if config.validation_fraction == 0:
        n_validation = 0
    split = (np.arange(n_frames - n_validation), np.arange(n_frames - n_validation, n_frames))
    if n_validation == 0:
        split = (split[0], split[0])
    data.force_scale = float(np.mean([np.mean((f[split[0]] ** 2).sum(-1)) for f in data.forces]))
    if not math.isfinite(data.force_scale) or data.force_scale <= 0:
        raise AutoencoderError(
            f"{data.source}: the mean squared atom force is {data.force_scale!r} eV²/Å²; the "
            "forces must be finite and not all zero"
        )
    cutoff = config.pair_cutoff
    if data.pbc.any():
        cell = data.cells[0]
        volume = abs(np.linalg.det(cell))
        widths = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        cutoff = min(cutoff, 0.5 * float(widths[data.pbc].min()) - 0.01)
        if cutoff <= 2.0:
            raise AutoencoderError(
                f"{data.source}: the box is too small (half width {cutoff + 0.01:.3g} Å) for "
                "the auto-encoder's pair potential; use a larger system"
            )
    runs, models = [], []
    total = len(seeds) * config.epochs
    with tqdm(total=total, desc="learn-mapping", unit="epoch", disable=disable) as bar:
        for seed in seeds:
            model, run = _train_seed(data, config, seed, split, cutoff, bar)
            runs.append(run)
            models.append(model)
    if all(run["failed"] for run in runs):
        raise AutoencoderError(
            f"{data.source}: every seed {seeds} ended with an empty bead "
            f"({[run['empty_beads'] for run in runs]}); use fewer beads or more seeds/epochs"
        )
    best, selection = _pick_best(runs)
    model = models[best]
    templates = {}
    spec = {}
    for k, t in enumerate(data.types):
        groups = sorted(model.groups(k), key=min)
        template = t.template.copy()
        template.info["name"] = t.name
        templates[t.name] = template
        spec[t.name] = (template, groups)
    mapping = CGMapping.from_groups(spec)
    report = {
        "source": data.source,
        "best_seed": runs[best]["seed"],
        "best_connected": bool(runs[best]["connected"]),
        "selection": selection,
        "runs": runs,
        "atom_rms_error": _atom_errors(model, data, split[1]),
        "atom_symbols": {t.name: t.template.get_chemical_symbols() for t in data.types},
        "n_train_frames": int(len(split[0])),
        "n_validation_frames": int(n_validation),
        "pair_cutoff": cutoff,
        "force_scale": data.force_scale,
        "seconds": time.perf_counter() - started,
        "config": config.to_dict(),
    }
    result = LearnedMapping(mapping=mapping, autoencoder=model, report=report, templates=templates)
    if output_dir is not None:
        write_learned_report(result, output_dir)
    return result


def write_learned_report(result: LearnedMapping, folder) -> Path:
    """Write the mapping JSON, report JSON, figures and ``index.md`` of a learned mapping.

    Files: ``mapping.json`` (:meth:`CGMapping.save`), ``report.json``, ``assignment_<type>.png``
    (assignment probabilities softmax(θ/τ_min), atoms × beads in mapping bead order),
    ``losses.png``, ``atom_error.png`` and ``index.md``. Returns the path of ``index.md``.
    """
    from ase_cg.report import (
        FigureLink,
        Section,
        Table,
        new_figure,
        save_figure,
        write_json,
        write_report,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = result.report
    model = result.autoencoder
    result.mapping.save(folder / "mapping.json")
    write_json(folder / "report.json", report)
    tau = report["config"]["tau_min"]
    sections = []
    for k, name in enumerate(model.type_names):
        symbols = report["atom_symbols"][name]
        probs = torch.softmax(model.logits[k].detach() / tau, dim=1).numpy()
        probs = probs[:, sorted(range(probs.shape[1]), key=lambda i: min(model.groups(k)[i]))]
        fig, ax = new_figure(size=(1.2 + 0.6 * probs.shape[1], 1.0 + 0.3 * probs.shape[0]))
        image = ax.imshow(probs, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(symbols)), [f"{s}{j}" for j, s in enumerate(symbols)])
        ax.set_xticks(range(probs.shape[1]), [f"bead {i}" for i in range(probs.shape[1])])
        ax.set_title(f"{name}: assignment")
        fig.colorbar(image, ax=ax, label="probability")
        safe = "".join(c if c.isalnum() else "_" for c in name)
        save_figure(fig, folder / f"assignment_{safe}.png")
        groups = result.mapping.groups[name]
        rows = [
            [i, result.mapping.bead_names[name][i], " ".join(f"{symbols[j]}{j}" for j in g)]
            for i, g in enumerate(groups)
        ]
        seeds_rows = [
            [
                run["seed"],
                " | ".join(" ".join(f"{symbols[j]}{j}" for j in g) for g in run["groups"][name]),
                "failed (empty bead)" if run["failed"] else "ok",
                "yes" if run["connected"] else "no",
                run["hardness"][name],
                run["validation"]["reconstruction"],
                run["validation"]["force"],
                run["validation"]["total"],
            ]
            for run in report["runs"]
        ]
        sections.append(
            Section(
                title=f"Molecule type {name}",
                text=(
                    f"Best seed {report['best_seed']} ({report['selection']}). Connected: every "
                    "bead's atoms are joined by the molecule's covalent bonds. Hardness = "
                    "smallest largest assignment probability over atoms at τ_min = "
                    f"{tau}; the assignment is hard when it is 1 (the mapping uses the argmax "
                    "either way)."
                ),
                tables=[
                    Table(["bead", "type", "atoms"], rows),
                    Table(
                        [
                            "seed",
                            "groups",
                            "status",
                            "connected",
                            "hardness",
                            "val. recon (Å²)",
                            "val. force (rel.)",
                            "val. total",
                        ],
                        seeds_rows,
                    ),
                    Table(
                        ["atom", "RMS reconstruction error (Å)"],
                        [
                            [f"{symbols[j]}{j}", e]
                            for j, e in enumerate(report["atom_rms_error"][name])
                        ],
                    ),
                ],
                figures=[FigureLink(f"assignment_{safe}.png", f"{name}: assignment probabilities")],
            )
        )
    fig, axes = new_figure(1, 2, size=(10, 4))
    for run in report["runs"]:
        h = run["history"]
        axes[0].plot(h["epoch"], h["recon"], label=f"seed {run['seed']}")
        axes[1].plot(h["epoch"], h["validation"], label=f"seed {run['seed']}")
    axes[0].set(xlabel="epoch", ylabel="reconstruction (Å²)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="validation loss (hard assignment)", yscale="log")
    axes[1].legend()
    save_figure(fig, folder / "losses.png")
    fig, ax = new_figure()
    for name in model.type_names:
        err = report["atom_rms_error"][name]
        ax.bar(
            [f"{name}:{s}{j}" for j, s in enumerate(report["atom_symbols"][name])], err, label=name
        )
    ax.set(ylabel="RMS reconstruction error (Å)")
    ax.tick_params(axis="x", rotation=90)
    save_figure(fig, folder / "atom_error.png")
    sections.append(
        Section(
            title="Training",
            text=(
                f"{report['n_train_frames']} training and {report['n_validation_frames']} "
                f"validation frames from `{report['source']}`; {len(report['runs'])} seeds in "
                f"{report['seconds']:.1f} s; pair cutoff {report['pair_cutoff']:.3g} Å."
            ),
            figures=[
                FigureLink("losses.png", "reconstruction loss and validation loss per epoch"),
                FigureLink("atom_error.png", "RMS reconstruction error per atom"),
            ],
        )
    )
    return write_report(folder, "Learned CG mapping", sections, intro="Mapping: `mapping.json`.")
