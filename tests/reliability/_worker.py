"""Child processes for the fault tests: each stops at a known point, where it is SIGKILLed.

Run as ``python _worker.py COMMAND ARGS``; the commands are

``data PATH``
    Write the small force-matching data set (40 Lennard-Jones beads, 12 frames) to PATH.
``train DATA OUT EPOCHS KILL_AT_READ``
    Force-matching training into OUT; the process SIGKILLs itself when the trainer reads
    frames for the KILL_AT_READ-th time (0: never; training batches and validation passes
    both read), i.e. between two optimiser steps, after the checkpoint of the step before.
``save PATH N_VALUES``
    Print ``ready``, then ``save_model`` a model carrying a buffer of N_VALUES float64
    (so the write takes long enough for the parent to kill it in the middle).
``ddp MODEL DATA OUT EPOCHS``
    Data-parallel training (:func:`train_distributed`, 2 processes) of the model file MODEL;
    the parent kills the whole process group once a checkpoint has a few steps.
``h5md PATH N_FRAMES``
    Append N_FRAMES frames to an ``H5MDWriter`` on PATH, printing ``appended I`` after each,
    then wait (the parent kills it before the writer is closed).
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import torch
from torch import nn

from ase_cg import _keys as K
from ase_cg.io import H5MDWriter
from ase_cg.potentials import CGModel, EnergyTerm, SystemTopology, make_batch, register_term
from ase_cg.potentials.base import pair_energies_to_beads
from ase_cg.training import ForceMatchingData, TrainConfig, train

N_BEADS = 40
BOX = 12.0


@register_term
class ReliabilityLJ(EnergyTerm):
    """Lennard-Jones pair term with trainable log ε and log σ, and an optional fixed buffer."""

    kind = "pair"

    def __init__(self, epsilon: float, sigma: float, cutoff: float = 6.0, ballast: int = 0):
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


def write_data(path, n_frames: int = 12, seed: int = 5) -> None:
    """CG H5MD file of random non-overlapping beads with LJ(ε=0.01 eV, σ=3 Å) forces + noise."""
    rng = np.random.default_rng(seed)
    truth = CGModel(["B"], [ReliabilityLJ(0.01, 3.0)]).double()
    topology = SystemTopology(
        np.zeros(N_BEADS), np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4))
    )
    cell = np.eye(3) * BOX
    with H5MDWriter(
        path, bead_types=["B"] * N_BEADS, masses=np.full(N_BEADS, 15.0), dtype=np.float64
    ) as writer:
        for frame in range(n_frames):
            positions = []
            while len(positions) < N_BEADS:
                trial = rng.uniform(0, BOX, 3)
                d = np.array(positions) - trial if positions else np.zeros((0, 3))
                d -= np.round(d / BOX) * BOX
                if not len(d) or np.min(np.linalg.norm(d, axis=1)) > 2.7:
                    positions.append(trial)
            positions = np.array(positions)
            forces = truth(make_batch(positions, cell, topology, 6.0))[K.FORCES].detach().numpy()
            forces = forces + rng.normal(0, 0.02, forces.shape)
            writer.append(positions, cell, forces=forces, step=frame * 100)


def start_model() -> CGModel:
    return CGModel(["B"], [ReliabilityLJ(0.02, 3.3)])


def train_config(epochs: int) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        batch_frames=3,
        learning_rate=0.05,
        dtype="float64",
        progress=False,
        early_stopping=0,
        checkpoint_every=1,
        lr_patience=10,
    )


class KillingData(ForceMatchingData):
    """The real data set; the process kills itself on its ``kill_at``-th read."""

    def __init__(self, path, kill_at: int) -> None:
        super().__init__(path)
        self.kill_at = kill_at
        self.reads = 0

    def read(self, frames):
        self.reads += 1
        if self.reads == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().read(frames)


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    command, *args = argv
    if command == "data":
        write_data(args[0])
    elif command == "train":
        data_path, output, epochs, kill_at = args
        data = KillingData(data_path, int(kill_at))
        train(start_model(), data, output, train_config(int(epochs)))
    elif command == "save":
        from ase_cg.model import save_model

        path, n_values = args
        model = CGModel(["B"], [ReliabilityLJ(0.01, 3.0, ballast=int(n_values))]).double()
        print("ready", flush=True)
        save_model(model, path)
        print("saved", flush=True)
    elif command == "ddp":
        from ase_cg.training import train_distributed

        model_path, data_path, output, epochs = args
        train_distributed(model_path, data_path, output, train_config(int(epochs)), world_size=2)
    elif command == "h5md":
        path, n_frames = args[0], int(args[1])
        rng = np.random.default_rng(1)
        writer = H5MDWriter(path, bead_types=["B"] * N_BEADS, masses=np.full(N_BEADS, 15.0))
        for frame in range(n_frames):
            writer.append(rng.uniform(0, BOX, (N_BEADS, 3)), np.eye(3) * BOX, step=frame)
            print(f"appended {frame + 1}", flush=True)
        sys.stdin.readline()  # the parent kills us here, before the writer is closed
        writer.close()
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
