"""Settings and errors of the auto-encoder (:class:`AutoencoderConfig`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ase_cg.errors import InputError

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
    0 switches it off. It works together with ``bond_warmup`` and ``balance_weight``, which
    it must outweigh; the defaults give CH3|CH3 for ethane and CH3|CH2|CH3 for propane."""

    bond_warmup: float = 0.1
    """Fraction of the epochs over which the bond-cut and balance weights ramp up linearly
    (epoch e uses (e + 1)/(n + 1) of them, n = bond_warmup·epochs), so that the reconstruction
    term separates the heavy atoms first. At full weight from the first step, the bond cut
    amplifies chance asymmetries of the near-uniform assignment and can join the two carbons
    of ethane in one bead; a late hard switch instead leaves hydrogens on the wrong bead."""

    balance_weight: float = 2.0
    """Weight β of the bead-mass balance term β·Σ_I (M_I/M̄ − 1)²/n_beads (M̄ the mean bead
    mass of the molecule): the spread of the soft bead masses. The bond-cut term alone is as
    low for a bead of one hydrogen (one bond cut) as for a chemical bead; this term breaks
    that tie. 0 switches it off. A CH3|CH2|CH3 propane scores 0.001, propane with a bead of
    one or two hydrogens about 0.5. Keep it below ``bond_weight``: the bond cut must
    dominate."""

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
