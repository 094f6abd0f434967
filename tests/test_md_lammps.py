"""``simulate(engine="lammps")``: the model exported to LAMMPS, run with ``lmp``, H5MD back."""

from __future__ import annotations

import numpy as np
import pytest

from ase_cg import _keys as K
from ase_cg.calculator import CGCalculator
from ase_cg.cli import main as cli_main
from ase_cg.errors import InputError
from ase_cg.io import read_h5md
from ase_cg.md import simulate
from ase_cg.model import save_model


def test_lammps_engine_agrees_with_the_calculator(prior_model, tmp_path):
    output = tmp_path / "lmp.h5"
    summary = simulate(
        prior_model,
        engine="lammps",
        n_molecules=27,
        density=0.55,
        output=output,
        steps=200,
        interval=50,
        time_step_fs=2.0,
        seed=7,
    )
    assert summary.n_frames == 5 and summary.steps == 200
    assert (tmp_path / "lmp_lammps" / "in.cg").exists()
    frames = read_h5md(output)
    assert len(frames) == 5
    first = frames[0]
    assert list(first.arrays[K.BEAD_TYPE][:2]) == ["CH3", "CH3"]
    mol_ids = first.arrays[K.MOL_ID]  # LAMMPS numbers molecules from 1: compare the grouping
    np.testing.assert_array_equal(mol_ids[0::2], mol_ids[1::2])
    assert len(np.unique(mol_ids)) == 27
    # LAMMPS's forces on its first frame (tables) equal the calculator's on the same beads
    lammps_forces = first.get_forces()
    first.calc = CGCalculator(prior_model)
    np.testing.assert_allclose(first.get_forces(), lammps_forces, atol=2e-3)
    assert np.abs(lammps_forces).max() > 0.05
    assert 50.0 < summary.temperature_K < 400.0
    assert summary.density_g_cm3 == pytest.approx(0.55, rel=1e-3)


def test_lammps_engine_limits(prior_model, tmp_path):
    with pytest.raises(InputError, match="NVT"):
        simulate(prior_model, engine="lammps", n_molecules=8, density=0.5, ensemble="npt")
    with pytest.raises(InputError, match="engine"):
        simulate(prior_model, engine="gromacs", n_molecules=8, density=0.5)
    path = save_model(prior_model, tmp_path / "prior.pt")
    code = cli_main(
        ["simulate", str(path), "--engine", "lammps", "--n-molecules", "8", "--density", "0.5"]
        + ["--steps", "20", "--interval", "10", "-o", str(tmp_path / "cli.h5")]
    )
    assert code == 0
    assert len(read_h5md(tmp_path / "cli.h5")) == 3
