"""The ``ase-cg`` command line on faults that are not bad arguments: options that must act,
a LAMMPS run that fails, and an unexpected internal error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _paths import DATA_DIR

from ase_cg.cli import main
from ase_cg.commands import info
from ase_cg.io import (
    H5MDTrajectory,
    H5MDWriter,
    IncompleteTrajectoryWarning,
    read_h5md,
    write_h5md,
)
from ase_cg.md import build_cg_box
from ase_cg.model import load_model
from lammps_interface import export

DATA = DATA_DIR


def test_classical_train_uses_max_frames_and_frame_stride(tmp_path, capsys):
    write_h5md(tmp_path / "aa.h5", read_h5md(DATA / "ethane_aa.h5", slice(0, 8)), time_step=1.0)
    mapping = str(DATA / "ethane_mapping.json")
    argv = ["train", str(tmp_path / "aa.h5"), "-o", str(tmp_path / "fit"), "--kind", "classical"]
    argv += ["--mapping", mapping, "--max-frames", "3", "--frame-stride", "2"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "model written to" in capsys.readouterr().out
    provenance = load_model(tmp_path / "fit" / "model.pt").provenance
    # frames 0, 2, 4 of the 8: 0 and 2 fitted, 4 held out
    report = provenance["fit_report"]
    assert (report["n_train_frames"], report["n_validation_frames"]) == (2, 1)
    assert provenance["train_frames"] == [0, 2, 2]


def test_failed_lammps_run_is_one_line_and_leaves_no_old_trajectory(prior_model, tmp_path, capsys):
    atoms = build_cg_box(prior_model, 8, 0.3, seed=1)
    atoms.positions[7] = atoms.positions[12] + [0.1, 0.0, 0.0]  # beads of different molecules
    deck = tmp_path / "deck"
    export(prior_model, deck, atoms=atoms, steps=10, dump_every=1, temperature=180.0)
    shutil.copy(DATA / "ethane_aa.h5", deck / "trajectory.h5")  # an earlier run's trajectory
    assert main(["lammps", "run", str(deck)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ase-cg lammps: error: LAMMPS failed")
    assert "ERROR on proc 0: Pair distance < table inner cutoff" in lines[0]
    assert not (deck / "trajectory.h5").exists()


def test_unexpected_error_is_one_line_with_a_hint_and_debug_shows_it(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("an internal fault")

    monkeypatch.setattr(info, "run", broken)
    assert main(["info", "x.h5"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "ase-cg info: internal error: RuntimeError: an internal fault "
        "(rerun with --debug for the traceback)"
    ]
    for argv in (["--debug", "info", "x.h5"], ["info", "x.h5", "--debug"]):
        with pytest.raises(RuntimeError, match="an internal fault"):
            main(argv)


def test_map_stopped_by_sigterm_leaves_no_partial_file(tmp_path):
    command = [sys.executable, "-m", "ase_cg.cli", "map", "--mapping"]
    command += [str(DATA / "ethane_mapping.json"), str(DATA / "ethane_aa.h5"), "cg.h5"]
    command += ["--chunk-size", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(DATA.parent), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".cg.h5.*.partial")):
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signal.SIGTERM, err
    assert err.strip().endswith("ase-cg map: stopped by SIGTERM")
    assert list(tmp_path.iterdir()) == []


def test_reading_an_incomplete_trajectory_warns_in_one_line(tmp_path, capsys):
    path = tmp_path / "stopped.h5"
    writer = H5MDWriter(path, bead_types=["B"] * 2, masses=[15.0, 15.0], incremental=True)
    for step in range(3):
        writer.append(np.eye(2, 3) * (1 + step), np.eye(3) * 10.0, step=step)
    writer.close(complete=False)
    assert main(["info", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("ase-cg info: warning: "), err
    assert "incomplete trajectory" in err[0] and str(path) in err[0]
    with pytest.warns(IncompleteTrajectoryWarning), H5MDTrajectory(path) as trajectory:
        assert trajectory.n_frames == 3


def test_stop_signal_landing_in_a_finalizer_still_stops_the_command(monkeypatch, capsys):
    """Python runs the handler inside ``__del__`` here, where its exception is dropped; the
    command must stop all the same (the signal is sent again)."""

    class SignalledWhileCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs here, inside the finalizer
                pass

    def command(args):
        SignalledWhileCollected()  # collected at once: the signal arrives in __del__
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return 0

    monkeypatch.setattr(info, "run", command)
    started = time.monotonic()
    assert main(["info", "x.h5"]) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 10
    assert capsys.readouterr().err.splitlines() == ["ase-cg info: stopped by SIGTERM"]
