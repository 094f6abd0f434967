"""A learnable Lennard-Jones term and a force-matching data set it can recover exactly.

Shared by the trainer tests (``test_training.py``) and the fault tests' child processes
(``reliability/_worker.py``, which runs as a script and puts this folder on ``sys.path``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ase_cg import _keys as K
from ase_cg.fitting import TrainConfig
from ase_cg.io import H5MDWriter
from ase_cg.potentials import CGModel, EnergyTerm, SystemTopology, make_batch, register_term
from ase_cg.potentials.base import pair_energies_to_beads

#: the data set's true parameters: ε (eV), σ (Å)
TRUE_EPSILON, TRUE_SIGMA = 0.01, 3.0


@register_term
class LearnableLJ(EnergyTerm):
    """Lennard-Jones pair term (one bead type) with trainable log ε and log σ.

    ``ballast`` adds a fixed float64 buffer of that many zeros (to make model files large).
    """

    kind = "pair"

    def __init__(self, epsilon: float, sigma: float, cutoff: float = 6.0, ballast: int = 0) -> None:
        super().__init__()
        self.log_epsilon = nn.Parameter(torch.tensor(float(np.log(epsilon))))
        self.log_sigma = nn.Parameter(torch.tensor(float(np.log(sigma))))
        self.register_buffer("ballast", torch.zeros(ballast, dtype=torch.float64))
        self._cutoff = cutoff
        self._ballast = ballast

    @property
    def cutoff(self) -> float:
        return self._cutoff

    def config(self) -> dict:
        return {"epsilon": 1.0, "sigma": 1.0, "cutoff": self._cutoff, "ballast": self._ballast}

    def forward(self, graph):
        r = torch.linalg.norm(graph.pair_vectors, dim=-1)
        s6 = (self.log_sigma.exp() / r) ** 6
        energy = 4 * self.log_epsilon.exp() * (s6 * s6 - s6)
        energy = torch.where(r < self._cutoff, energy, torch.zeros_like(energy))
        return pair_energies_to_beads(graph, energy)


def write_lj_dataset(path, rng, n_frames=24, n_beads=40, box=12.0, noise=0.02) -> SystemTopology:
    """CG H5MD file of random non-overlapping beads (each its own molecule) in a cubic box,
    with the forces of LJ(ε=TRUE_EPSILON, σ=TRUE_SIGMA) plus Gaussian noise (eV/Å)."""
    truth = CGModel(["B"], [LearnableLJ(TRUE_EPSILON, TRUE_SIGMA)]).double()
    topology = SystemTopology(
        np.zeros(n_beads), np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4))
    )
    cell = np.eye(3) * box
    with H5MDWriter(
        path,
        bead_types=["B"] * n_beads,
        masses=np.full(n_beads, 15.0),
        mol_ids=np.arange(n_beads),
        dtype=np.float64,
    ) as writer:
        for frame in range(n_frames):
            positions = []
            while len(positions) < n_beads:
                trial = rng.uniform(0, box, 3)
                d = np.array(positions) - trial if positions else np.zeros((0, 3))
                d -= np.round(d / box) * box
                if not len(d) or np.min(np.linalg.norm(d, axis=1)) > 2.7:
                    positions.append(trial)
            positions = np.array(positions)
            forces = truth(make_batch(positions, cell, topology, 6.0))[K.FORCES].detach().numpy()
            forces = forces + rng.normal(0, noise, forces.shape)
            writer.append(positions, cell, forces=forces, step=frame * 100)
    return topology


def lj_train_config(**overrides) -> TrainConfig:
    """A short, deterministic float64 training of :class:`LearnableLJ` (no early stopping, no
    learning-rate decay within the run); ``overrides`` replace fields."""
    values = dict(
        epochs=6,
        batch_frames=4,
        learning_rate=0.05,
        dtype="float64",
        progress=False,
        early_stopping=0,
        checkpoint_every=2,
        lr_patience=10,
    )
    values.update(overrides)
    return TrainConfig(**values)
