"""Processes SIGKILLed at known points lose nothing: training, model files, H5MD trajectories.

Each child (``_worker.py``) is killed either by itself at a fixed point of its work (training:
on its N-th read of frames, i.e. between two optimiser steps) or by this process when the child
has reached a point it announces on stdout or on disk (a ``*.partial`` file being written).
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ase_cg.errors import InputError
from ase_cg.fitting import CHECKPOINT_NAME, ForceMatchingData, train
from ase_cg.io import H5MDTrajectory, H5MDWriter
from ase_cg.model import ModelFileError, load_model, save_model
from ase_cg.potentials import CGModel

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _worker  # noqa: E402

EPOCHS = 3
#: reads of frames per epoch: 4 training mini-batches (3, 3, 3, 1 frames) + 1 validation pass
READS_PER_EPOCH = 5
#: kill points: after the last step of epoch 1 before its validation, and mid-epoch 2
KILL_AT_READ = (5, 7)


def worker(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "_worker.py"), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    """The data set, an uninterrupted run, and one killed run per kill point (run at once)."""
    root = tmp_path_factory.mktemp("killed")
    data_path = root / "cg.h5"
    _worker.write_data(data_path)
    children = {k: worker("train", data_path, root / f"kill{k}", EPOCHS, k) for k in KILL_AT_READ}
    straight = train(
        _worker.start_model(),
        ForceMatchingData(data_path),
        root / "straight",
        _worker.train_config(EPOCHS),
    )
    for child in children.values():
        child.communicate(timeout=300)
    return data_path, straight, {k: (root / f"kill{k}", c.returncode) for k, c in children.items()}


@pytest.mark.parametrize("kill_at", KILL_AT_READ)
def test_training_killed_keeps_a_loadable_checkpoint_and_resumes_exactly(killed_runs, kill_at):
    data_path, straight, runs = killed_runs
    output, returncode = runs[kill_at]
    assert returncode == -signal.SIGKILL
    # the checkpoint on disk is the one written after the step before the kill
    saved = torch.load(output / CHECKPOINT_NAME, weights_only=True)
    steps_per_epoch = READS_PER_EPOCH - 1
    epoch, read = divmod(kill_at - 1, READS_PER_EPOCH)
    assert saved["state"]["step"] == epoch * steps_per_epoch + read
    assert not list(output.glob("*.partial"))  # the kill came between writes
    if (output / "model.pt").exists():  # the best model of a finished epoch stays loadable
        load_model(output / "model.pt")
    resumed = train(
        CGModel(["B"], [_worker.LearnableLJ(0.5, 1.0)]),  # overwritten by the checkpoint
        ForceMatchingData(data_path),
        output,
        _worker.train_config(EPOCHS),
        resume=True,
    )
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.steps == straight.steps
    assert [r["validation_loss"] for r in resumed.metrics] == [
        r["validation_loss"] for r in straight.metrics
    ]


@pytest.mark.parametrize("kill_at", [5, 7])
def test_resumed_metrics_equal_an_uninterrupted_run(killed_runs, kill_at, tmp_path):
    data_path, straight, runs = killed_runs
    output = tmp_path / "copy"
    output.mkdir()
    (output / CHECKPOINT_NAME).write_bytes((runs[kill_at][0] / CHECKPOINT_NAME).read_bytes())
    resumed = train(
        _worker.start_model(),
        ForceMatchingData(data_path),
        output,
        _worker.train_config(EPOCHS),
        resume=True,
    )
    got = [r["train_loss"] for r in resumed.metrics]
    assert all(math.isfinite(x) for x in got)
    np.testing.assert_allclose(got, [r["train_loss"] for r in straight.metrics], rtol=1e-12)


def test_model_file_killed_while_being_written_leaves_the_old_one(tmp_path):
    path = tmp_path / "model.pt"
    old = CGModel(["B"], [_worker.LearnableLJ(0.01, 3.0)]).double()
    save_model(old, path)
    before = path.read_bytes()
    child = worker("save", path, 16_000_000)  # a 128 MB buffer: the write takes a while
    assert child.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 120
    partial = []
    while not partial and time.monotonic() < deadline:
        partial = [p for p in tmp_path.glob(".model.pt.*.partial") if p.stat().st_size > 0]
    child.kill()
    child.wait()
    assert partial, "the child never started writing"
    assert partial[0].stat().st_size < 128_000_000  # killed in the middle of the write
    assert path.read_bytes() == before
    loaded = load_model(path)
    assert loaded.terms[0].ballast.numel() == 0
    # the leftover temporary file is never taken for a model
    with pytest.raises(ModelFileError, match="partial.*not a loadable"):
        load_model(partial[0])


def write_old_trajectory(path: Path) -> None:
    with H5MDWriter(path, bead_types=["A"] * 3, masses=[1.0] * 3) as writer:
        for step in range(4):
            writer.append(np.full((3, 3), float(step)), np.eye(3) * 9.0, step=step)


@pytest.mark.parametrize(
    "n_frames", [5, pytest.param(1500, marks=pytest.mark.slow)]
)  # inside the first chunk / after a flush of a 1024-frame chunk
def test_h5md_writer_killed_leaves_the_old_file(tmp_path, n_frames):
    path = tmp_path / "traj.h5"
    write_old_trajectory(path)
    before = path.read_bytes()
    child = worker("h5md", path, n_frames)
    for line in child.stdout:
        if line.strip() == f"appended {n_frames}":
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    with H5MDTrajectory(path) as trajectory:
        assert len(trajectory) == 4
        np.testing.assert_array_equal(trajectory.positions([3])[0], np.full((3, 3), 3.0))
    (partial,) = tmp_path.glob(".traj.h5.*.partial")
    # the unfinished temporary file is never taken for data: HDF5 metadata of a file that
    # was not closed is incomplete (even after a chunk was flushed), and the reader refuses it
    with pytest.raises(InputError, match=r"\.partial: cannot open as HDF5.*truncated"):
        H5MDTrajectory(partial)


def test_truncated_h5md_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "full.h5"
    with H5MDWriter(path, bead_types=["A"] * 50, masses=[1.0] * 50, compression=None) as writer:
        for step in range(200):
            writer.append(np.full((50, 3), float(step)), np.eye(3) * 9.0, step=step)
    data = path.read_bytes()
    for fraction in (0.1, 0.5, 0.9, 0.999):
        cut = tmp_path / f"cut{fraction}.h5"
        cut.write_bytes(data[: int(len(data) * fraction)])
        with (
            pytest.raises(InputError, match=rf"cut{fraction}\.h5.*truncated"),
            H5MDTrajectory(cut) as trajectory,
        ):
            trajectory.positions()
    assert h5py.is_hdf5(path)


@pytest.mark.slow
@pytest.mark.mpi
def test_data_parallel_training_killed_resumes_exactly(tmp_path):
    """SIGKILL to every process of a 2-process run; resuming equals an uninterrupted run."""
    import os

    from ase_cg.fitting import train_distributed
    from ase_cg.potentials.neural import NeuralPotential

    data_path, initial = tmp_path / "cg.h5", tmp_path / "initial.pt"
    _worker.write_data(data_path)
    torch.manual_seed(0)
    neural = NeuralPotential(1, n_atom_basis=4, n_filters=4, n_interactions=1, n_rbf=6, cutoff=6)
    with torch.no_grad():
        for parameter in neural.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))  # the last layer starts at zero
    save_model(CGModel(["B"], [neural]).double(), initial)
    epochs = 5
    config = _worker.train_config(epochs)
    child = worker("ddp", initial, data_path, tmp_path / "killed", epochs, start_new_session=True)
    checkpoint = tmp_path / "killed" / CHECKPOINT_NAME
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=True)["state"]["step"] >= 3:
            break
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)  # the launcher and both ranks
    child.wait()
    assert child.returncode == -signal.SIGKILL
    saved_step = torch.load(checkpoint, weights_only=True)["state"]["step"]
    assert 3 <= saved_step < epochs * (READS_PER_EPOCH - 1)
    straight = train_distributed(initial, data_path, tmp_path / "straight", config)
    resumed = train_distributed(initial, data_path, tmp_path / "killed", config, resume=True)
    moved = 0.0
    for a, b, c in zip(
        straight.parameters(), resumed.parameters(), load_model(initial).parameters(), strict=True
    ):
        assert torch.equal(a, b)
        moved = max(moved, (a - c).abs().max().item())
    assert moved > 1e-4  # training changed the weights, so the comparison means something
