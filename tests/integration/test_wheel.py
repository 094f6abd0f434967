"""The wheel holds the shipped data, and the installed package finds it outside the repository.

The wheel is built from a copy of the package sources (so no ``build/`` folder of the checkout
leaks stale files into it), installed with ``pip install --target`` into a temporary folder, and
run from a working directory outside the repository with only that folder and the environment's
own site-packages on the path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from _paths import REPO_ROOT

from ase_cg import shipped_data
from ase_cg.shipped import DATA_DIR

REPO = REPO_ROOT
SHIPPED = ("ethane_aa.h5", "ethane_mapping.json", "ethane_classical.pt", "ethane_neural.pt")
MAX_WHEEL_BYTES = 20_000_000

# Run inside the installed copy: which files it imports and what the resolver finds.
PROBE = """
import json, ase_cg, lammps_interface
from ase_cg import shipped_data
from ase_cg.io import read_h5md
from ase_cg.mapping import CGMapping
from ase_cg.model import load_model
frame = read_h5md(shipped_data("ethane_aa.h5"), -1)
beads = CGMapping.load(shipped_data("ethane_mapping.json")).map(frame)
load_model(shipped_data("ethane_classical.pt"))
print(json.dumps({
    "ase_cg": ase_cg.__file__, "lammps_interface": lammps_interface.__file__,
    "data": str(shipped_data("ethane_aa.h5")), "n_atoms": len(frame), "n_beads": len(beads),
}))
"""


def test_shipped_data_is_the_top_level_data_folder():
    for name in SHIPPED:
        assert shipped_data(name).samefile(REPO / "data" / name)


@pytest.mark.parametrize("name", ["no_such_file.h5", "../pyproject.toml", "data/ethane_aa.h5"])
def test_shipped_data_rejects_names_not_in_the_folder(name):
    with pytest.raises(FileNotFoundError, match=r"ethane_mapping\.json") as error:
        shipped_data(name)
    assert repr(name) in str(error.value)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel, built and installed into a temporary folder (not the repository)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "build")
    for name in ("ase_cg", "lammps_interface", "data"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True, cwd=source, capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("ase_cg-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    return wheel, target


def run_installed(target: Path, cwd: Path, *args: str, timeout: float = 120):
    """Run the venv's Python with the installed copy first on the path, from ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_wheel_holds_the_shipped_files_and_stays_small(installed):
    wheel, _ = installed
    assert wheel.stat().st_size < MAX_WHEEL_BYTES
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in SHIPPED:
            member = f"ase_cg/data/{name}"
            assert member in names
            # real files with the repository's bytes, not links
            assert archive.getinfo(member).file_size == (DATA_DIR / name).stat().st_size
    assert not any(name.startswith(("tests/", "bench/", "data/")) for name in names)


def test_installed_package_finds_its_data_outside_the_repository(installed, tmp_path):
    _, target = installed
    result = run_installed(target, tmp_path, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    for key in ("ase_cg", "lammps_interface", "data"):
        assert Path(found[key]).is_relative_to(target), (key, found[key])
    assert not Path(found["data"]).is_symlink()
    assert found["n_atoms"] == 1728 and found["n_beads"] == 432
    help_text = run_installed(target, tmp_path, "-m", "ase_cg.cli", "demo", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "--quick" in help_text.stdout


@pytest.mark.slow
def test_demo_runs_from_the_installed_wheel(installed, tmp_path):
    _, target = installed
    result = run_installed(target, tmp_path, "-m", "ase_cg.cli", "demo", "--quick",
                           "--no-lammps", "-o", "report", timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert sorted(metrics["runs"]) == ["classical-ase", "neural-ase"]
    # the stage header names the reference it mapped: the installed copy
    assert f"mapping {target / 'ase_cg' / 'data' / 'ethane_aa.h5'}" in result.stderr
