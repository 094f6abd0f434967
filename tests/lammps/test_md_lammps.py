"""``simulate(engine="lammps")``: the model exported to LAMMPS, run with ``lmp``, H5MD back."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

from ase_cg import _keys as K
from ase_cg.calculator import CGCalculator
from ase_cg.cli import main as cli_main
from ase_cg.errors import InputError
from ase_cg.io import read_h5md
from ase_cg.model import save_model
from ase_cg.pipeline import simulate
from lammps_interface.run import read_thermo


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


def test_lammps_npt_with_the_plugin_follows_the_target_pressure(data_dir, tmp_path):
    """NPT in LAMMPS with the shipped neural model (tables + cgtorch): the barostat reads the
    plugin's virial, so a box started at the liquid density and pushed at 3000 bar ends denser
    than the same box held at 1 bar; a wrong virial sign or scale breaks the ordering."""
    densities = {}
    for pressure in (1.0, 3000.0):
        summary = simulate(
            data_dir / "ethane_neural.pt",
            engine="lammps",
            ensemble="npt",
            pressure=pressure,
            n_molecules=64,
            density=0.5495,
            output=tmp_path / f"npt{pressure:.0f}.h5",
            steps=1500,
            interval=500,
            temperature=180.0,
            seed=3,
        )
        assert summary.ensemble == "npt" and summary.n_frames == 4
        frames = read_h5md(tmp_path / f"npt{pressure:.0f}.h5")
        volumes = [frame.get_volume() for frame in frames]
        assert len(set(volumes)) > 1  # the box moved
        densities[pressure] = sum(frames[-1].get_masses()) / volumes[-1] * 1.66053906660
    deck = (tmp_path / "npt3000_lammps" / "in.cg").read_text()
    assert "iso ${pressure} ${pressure}" in deck and "2960.76" in deck  # 3000 bar in atm
    assert densities[3000.0] > densities[1.0] + 0.01, densities


def test_lammps_nve_with_shake_keeps_bonds_and_energy(prior_model, tmp_path):
    summary = simulate(
        prior_model,
        engine="lammps",
        ensemble="nve",
        constrain_bonds=True,
        n_molecules=27,
        density=0.55,
        output=tmp_path / "nve.h5",
        steps=400,
        interval=100,
        time_step_fs=4.0,
        temperature=180.0,
        seed=5,
    )
    frames = read_h5md(tmp_path / "nve.h5")
    lengths = np.array(
        [[f.get_distance(2 * m, 2 * m + 1, mic=True) for m in range(27)] for f in frames]
    )
    assert np.ptp(lengths[1:]) < 1e-4  # RATTLE holds every bond at one length
    # total energy from the first constrained thermo line (step 100) on: conserved
    thermo = read_thermo(tmp_path / "nve_lammps" / "log.lammps")  # eV
    total = thermo["total"][thermo["step"] >= 100]
    assert len(total) == 4
    kt = units.kB * 180.0
    assert np.ptp(total) / 54 < 1e-4 * kt, np.ptp(total) / 54 / kt
    assert summary.ensemble == "nve"


def test_lammps_engine_limits(prior_model, tmp_path):
    with pytest.raises(InputError, match="ensemble"):
        simulate(prior_model, engine="lammps", n_molecules=8, density=0.5, ensemble="nph")
    with pytest.raises(InputError, match="engine"):
        simulate(prior_model, engine="gromacs", n_molecules=8, density=0.5)
    path = save_model(prior_model, tmp_path / "prior.pt")
    code = cli_main(
        ["simulate", str(path), "--engine", "lammps", "--n-molecules", "8", "--density", "0.5"]
        + ["--steps", "20", "--interval", "10", "-o", str(tmp_path / "cli.h5")]
    )
    assert code == 0
    assert len(read_h5md(tmp_path / "cli.h5")) == 3


def test_unknown_ensemble_writes_nothing(prior_model, tmp_path):
    from lammps_interface import export

    with pytest.raises(InputError, match="ensemble='nph'"):
        export(prior_model, tmp_path / "deck", ensemble="nph")
    assert not (tmp_path / "deck").exists()
