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
from pathlib import Path

import numpy as np
import torch

from ase_cg.fitting import ForceMatchingData, TrainConfig, train
from ase_cg.io import H5MDWriter
from ase_cg.potentials import CGModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared _lj module
from _lj import LearnableLJ, lj_train_config, write_lj_dataset  # noqa: E402

N_BEADS = 40
BOX = 12.0


def write_data(path, n_frames: int = 12, seed: int = 5) -> None:
    """The shared LJ force-matching data set (``tests/_lj.py``): 40 beads, 12 frames."""
    write_lj_dataset(path, np.random.default_rng(seed), n_frames, N_BEADS, BOX)


def start_model() -> CGModel:
    return CGModel(["B"], [LearnableLJ(0.02, 3.3)])


def train_config(epochs: int) -> TrainConfig:
    """The fault tests' training: a checkpoint after every step (mini-batches of 3 frames)."""
    return lj_train_config(epochs=epochs, batch_frames=3, checkpoint_every=1)


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
        model = CGModel(["B"], [LearnableLJ(0.01, 3.0, ballast=int(n_values))]).double()
        print("ready", flush=True)
        save_model(model, path)
        print("saved", flush=True)
    elif command == "ddp":
        from ase_cg.fitting import train_distributed

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
