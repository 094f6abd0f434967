"""Every example in examples/ runs (in a subprocess, with small sizes) and does what it says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _paths import REPO_ROOT
from ase.io import read

from ase_cg._lammps import lammps_subprocess_env
from ase_cg.io import H5MDTrajectory

EXAMPLES = REPO_ROOT / "examples"


def run_example(*args, cwd, timeout=600) -> str:
    """Run ``python examples/<args>`` in ``cwd``; its stdout (fails with its output)."""
    command = [sys.executable, str(EXAMPLES / args[0]), *map(str, args[1:])]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    return result.stdout


def test_ase_scripting(tmp_path, data_dir):
    output = run_example(
        "ase_scripting.py", "--model", data_dir / "ethane_classical.pt", "--molecules", 27,
        "--steps", 20, "--output", "md.extxyz", cwd=tmp_path,
    )  # fmt: skip
    assert "FIRE: energy" in output and "first RDF peak" in output
    frames = read(tmp_path / "md.extxyz", index=":")
    assert len(frames) == 21  # steps 0..20, one frame per step at this size
    assert list(np.unique(frames[-1].arrays["bead-type"])) == ["CH3"]
    # the optimisation ran first: every frame lies below the random box's energy
    before = float(output.split("FIRE: energy ")[1].split(" →")[0])
    assert max(f.get_potential_energy() for f in frames) < before


def test_workflow_steps(tmp_path):
    output = run_example(
        "workflow.py", "--workdir", "wf", "--generate", 27, "--production-ps", 0.6, "--steps", 20,
        cwd=tmp_path,
    )  # fmt: skip
    work = tmp_path / "wf"
    for name in ("aa.h5", "cg.h5", "classical/model.pt", "classical_md.h5", "report_classical"):
        assert (work / name).exists(), name
    with H5MDTrajectory(work / "classical_md.h5") as trajectory:
        assert trajectory.n_atoms == 54 and trajectory.n_frames >= 2
    assert "RDF CH3-CH3" in output
    assert (work / "report_classical" / "index.md").read_text().startswith("#")


def test_custom_molecule_propane(tmp_path):
    output = run_example(
        "custom_molecule.py", "--workdir", "propane", "--molecules", 27, "--production-ps", 0.6,
        "--steps", 20, cwd=tmp_path,
    )  # fmt: skip
    # the united-atom mapping of propane: CH3-CH2-CH3, one bond type, one angle type
    assert "11 atoms → 3 beads" in output
    assert "RDF CH2-CH3" in output and "angle CH3-CH2-CH3" in output
    mapping = (tmp_path / "propane" / "mapping.json").read_text()
    assert '"CH2"' in mapping and '"CH3"' in mapping
    assert (tmp_path / "propane" / "report" / "index.md").exists()


def assert_same_deck_file(made: Path, committed: Path, atol: float = 1e-6) -> None:
    """Same words in the same places, numbers equal to ``atol``.

    Coordinates and table values are written at full precision, so their last digits follow
    the machine's floating-point arithmetic (SIMD width, libm); the deck is the same if every
    number agrees to far below anything LAMMPS or a reader would notice.
    """
    made_lines = made.read_text().splitlines()
    committed_lines = committed.read_text().splitlines()
    assert len(made_lines) == len(committed_lines), f"{committed.name}: line count"
    for number, (a, b) in enumerate(zip(made_lines, committed_lines, strict=True), start=1):
        words_a, words_b = a.split(), b.split()
        where = f"{committed.name}:{number}: {a!r} vs {b!r}"
        assert len(words_a) == len(words_b), where
        for x, y in zip(words_a, words_b, strict=True):
            if x == y:
                continue
            try:
                assert abs(float(x) - float(y)) <= atol * max(1.0, abs(float(y))), where
            except ValueError:
                raise AssertionError(where) from None


def test_lammps_deck_is_current(tmp_path, data_dir):
    """make_deck.py regenerates the committed deck from the shipped model, file for file."""
    run_example("lammps_deck/make_deck.py", "-o", tmp_path / "deck", cwd=tmp_path)
    for name in ("in.cg", "system.in", "data.cg", "pair.table", "bond.table"):
        assert_same_deck_file(tmp_path / "deck" / name, EXAMPLES / "lammps_deck" / name)


@pytest.mark.parametrize("ranks", [1, 2])
def test_lammps_deck_runs(tmp_path, ranks):
    deck = tmp_path / "deck"
    shutil.copytree(EXAMPLES / "lammps_deck", deck)
    command = ["lmp", "-in", "in.cg", "-var", "steps", "100"]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), *command]
    env = lammps_subprocess_env()
    result = subprocess.run(command, cwd=deck, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"on {ranks} procs for 100 steps with 432 atoms" in result.stdout
    frames = (deck / "dump.cg.lammpstrj").read_text().count("ITEM: TIMESTEP")
    assert frames == 2  # steps 0 and 100
