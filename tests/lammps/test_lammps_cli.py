"""``ase-cg export-lammps`` and ``ase-cg lammps build-plugin|run`` end to end."""

from __future__ import annotations

from _paths import DATA_DIR

from ase_cg.cli import main
from ase_cg.io import read_h5md
from ase_cg.mapping import CGMapping
from ase_cg.model import save_model
from ase_cg.potentials import CGModel, HarmonicBonds, Repulsion
from lammps_interface.plugin import PLUGIN_FILE

DATA = DATA_DIR


def test_export_then_run(tmp_path, capsys):
    mapping = CGMapping.load(DATA / "ethane_mapping.json")
    terms = [
        Repulsion(1, sigma=3.3, epsilon=0.01, power=12, cutoff=8.0),
        HarmonicBonds(1, k=20.0, r0=1.69),
    ]
    save_model(CGModel(["CH3"], terms, mapping=mapping).double(), tmp_path / "model.pt")
    out = tmp_path / "run"
    argv = ["export-lammps", str(tmp_path / "model.pt"), str(out), "--n-molecules", "32"]
    argv += ["--density", "0.55", "--seed", "1", "--steps", "20", "--dump-every", "10"]
    argv += ["--ensemble", "npt", "--pressure", "101.325"]
    assert main(argv) == 1  # the model records no temperature and none was given
    assert "no training temperature" in capsys.readouterr().err
    assert main([*argv, "--temperature", "180"]) == 0
    assert (out / "in.cg").exists() and (out / "pair.table").exists()
    deck = (out / "in.cg").read_text()
    assert "variable pressure index 100.0" in deck and "fix integrate all npt" in deck  # atm
    assert main(["lammps", "run", str(out), "--var", "steps", "30"]) == 0
    frames = read_h5md(out / "trajectory.h5")
    assert len(frames) == 4  # --var steps 30 overrides the exported 20: steps 0, 10, 20, 30
    assert len(frames[0]) == 64


def test_run_without_start_or_box_is_an_error(tmp_path, capsys):
    mapping = CGMapping.load(DATA / "ethane_mapping.json")
    terms = [Repulsion(1, sigma=3.3, epsilon=0.01, power=12, cutoff=8.0)]
    save_model(CGModel(["CH3"], terms, mapping=mapping).double(), tmp_path / "model.pt")
    assert main(["export-lammps", str(tmp_path / "model.pt"), str(tmp_path / "run")]) == 1
    assert "--n-molecules N --density RHO" in capsys.readouterr().err


def test_build_plugin_prints_the_cached_library(capsys):
    assert main(["lammps", "build-plugin"]) == 0
    assert capsys.readouterr().out.strip().endswith(PLUGIN_FILE)
