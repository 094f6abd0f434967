"""``ase-cg simulate`` stopped by SIGTERM, SIGINT or SIGKILL keeps its frames and resumes.

The command runs in a child process on 8 CG ethane molecules; once its trajectory holds a
few frames the parent sends the signal. TERM and INT: exit status 128 + signal, a message
naming the file and ``--resume``, the file readable with every frame from step 0 on and
``complete`` = False. KILL: the frames flushed before it stay readable. ``--resume`` then
continues from the last frame to the requested step count, and the file ends ``complete``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from _paths import REPO_ROOT

from ase_cg.cli import main
from ase_cg.io import H5MDTrajectory, IncompleteTrajectoryWarning
from ase_cg.model import save_model

ROOT = REPO_ROOT
INTERVAL = 10
RUN = ["--n-molecules", "8", "--density", "0.3", "--time-step", "1", "--seed", "1"]


@pytest.fixture(scope="module")
def model_file(prior_model, tmp_path_factory) -> Path:
    return save_model(prior_model, tmp_path_factory.mktemp("model") / "prior.pt")


def frames_on_disk(path: Path) -> int:
    """Frames in a trajectory another process is writing (0 while it cannot be read)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return len(f["particles/all/position/step"])
    except (OSError, KeyError):
        return 0


def start_and_signal(model_file: Path, output: Path, signum: int, engine: str, at_least: int):
    """Start ``ase-cg simulate`` (far more steps than it will run), send ``signum`` once the
    output holds ``at_least`` frames; returns (exit status, stderr, frames seen before)."""
    command = [sys.executable, "-m", "ase_cg.cli", "simulate", str(model_file), *RUN]
    command += ["--engine", engine, "--steps", "10000000", "--interval", str(INTERVAL)]
    command += ["-o", str(output)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while (seen := frames_on_disk(output)) < at_least:
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline, "no frames written"
            time.sleep(0.1)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err, seen


def read_run(path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """Steps, positions and the ``complete`` attribute of a trajectory (no warning shown)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteTrajectoryWarning)
        with H5MDTrajectory(path) as trajectory:
            steps, positions = trajectory.steps.copy(), trajectory.positions()
            assert np.isfinite(trajectory.velocities()).all()
    with h5py.File(path, "r") as f:
        return steps, positions, bool(f.attrs["complete"])


def check_stopped_run(path: Path, seen: int) -> np.ndarray:
    steps, positions, complete = read_run(path)
    assert not complete
    assert len(steps) >= seen  # every frame written before the signal is there …
    np.testing.assert_array_equal(steps, INTERVAL * np.arange(len(steps)))  # … from step 0 on
    assert np.isfinite(positions).all()
    with pytest.warns(IncompleteTrajectoryWarning, match="incomplete"):
        H5MDTrajectory(path).close()
    return steps


def resume_and_check(model_file: Path, path: Path, engine: str, capsys) -> None:
    steps_before, positions_before, _ = read_run(path)
    target = int(steps_before[-1]) + 4 * INTERVAL
    argv = ["simulate", str(model_file), "--engine", engine, "--steps", str(target)]
    argv += ["--interval", str(INTERVAL), "--time-step", "1", "--seed", "1"]
    assert main([*argv, "-o", str(path), "--resume"]) == 0, capsys.readouterr().err
    steps, positions, complete = read_run(path)
    assert complete
    np.testing.assert_array_equal(steps, INTERVAL * np.arange(target // INTERVAL + 1))
    np.testing.assert_array_equal(positions[: len(steps_before)], positions_before)
    # the run continues from the last frame: the next frame is 10 fs later, not a new box
    with H5MDTrajectory(path) as trajectory:
        box = np.diag(trajectory.cells(0))
    moved = positions[len(steps_before)] - positions_before[-1]
    moved -= np.round(moved / box) * box  # LAMMPS restarts from wrapped positions
    assert np.abs(moved).max() < 0.5, np.abs(moved).max()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stop_signal_closes_the_file_and_resume_finishes_the_run(
    model_file, tmp_path, capsys, signum
):
    output = tmp_path / "run.h5"
    code, err, seen = start_and_signal(model_file, output, signum, "ase", at_least=4)
    assert code == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert str(output) in err and "--resume" in err
    assert "Traceback" not in err
    check_stopped_run(output, seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]  # no partial files
    resume_and_check(model_file, output, "ase", capsys)


def test_sigkill_keeps_the_flushed_frames_and_resume_finishes_the_run(model_file, tmp_path, capsys):
    output = tmp_path / "run.h5"
    code, _, seen = start_and_signal(model_file, output, signal.SIGKILL, "ase", at_least=4)
    assert code == -signal.SIGKILL
    check_stopped_run(output, seen)
    resume_and_check(model_file, output, "ase", capsys)


def processes_in(folder: Path) -> list[int]:
    """Ids of the processes whose working folder is ``folder`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "cwd").resolve() == folder.resolve():
                found.append(int(entry.name))
    return found


def test_lammps_engine_stopped_by_sigterm_resumes(model_file, tmp_path, capsys):
    output = tmp_path / "run.h5"
    code, err, seen = start_and_signal(model_file, output, signal.SIGTERM, "lammps", at_least=3)
    assert code == 128 + signal.SIGTERM, err
    assert processes_in(tmp_path / "run_lammps") == []  # lmp stopped too, not only its launcher
    check_stopped_run(output, seen)
    resume_and_check(model_file, output, "lammps", capsys)
