"""The pressure LAMMPS reports for an exported model equals the pressure from CGCalculator's
stress (plus the same kinetic term) on the frames of the same run.

LAMMPS runs in a subprocess (``run_deck``); its thermo ``Press`` (kinetic Σ m v⊗v / V plus the
virial of the pair and bond tables) is compared at the dumped steps with
``Σ m v² / 3V − tr σ / 3`` from :class:`~ase_cg.calculator.CGCalculator` on the dumped positions
and velocities.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

from ase_cg.calculator import CGCalculator
from ase_cg.io import read_h5md
from ase_cg.model import load_model
from lammps_interface import export
from lammps_interface.run import read_thermo, run_deck


def test_lammps_pressure_equals_calculator_stress_pressure(data_dir, tmp_path):
    model = load_model(data_dir / "ethane_classical.pt")
    atoms = model.mapping.map(read_h5md(data_dir / "ethane_aa.h5", -1))
    atoms.calc = None
    export(model, tmp_path, atoms=atoms, temperature=180.0, timestep=2.0, steps=60, dump_every=20)
    outputs = run_deck(tmp_path, variables={"seed": "5"})
    thermo = read_thermo(outputs["log"])
    frames = read_h5md(outputs["h5md"])
    assert [int(f.info["step"]) for f in frames] == thermo["step"].astype(int).tolist()
    calculator = CGCalculator(model)
    pressures = []
    for frame in frames:
        frame.calc = calculator
        volume = frame.get_volume()
        velocities = frame.get_velocities()
        kinetic = np.einsum("i,ia,ia->", frame.get_masses(), velocities, velocities)
        virial = -np.trace(frame.get_stress(voigt=False)) / 3.0
        pressures.append((kinetic / (3.0 * volume) + virial) / units.bar)
    pressures = np.array(pressures)
    # the run moves: thermo and frames are compared step by step (σ of the pressure ≈ 300 bar)
    assert np.ptp(thermo["pressure"]) > 50.0
    np.testing.assert_allclose(pressures, thermo["pressure"], atol=0.05)


@pytest.mark.parametrize("engine", ["lammps", "ase"])
def test_runs_store_their_pressure_and_compare_reports_it(data_dir, tmp_path, engine):
    from ase_cg.analysis import compare
    from ase_cg.io import H5MDTrajectory, write_h5md, write_observables
    from ase_cg.pipeline import simulate

    model = data_dir / "ethane_classical.pt"
    steps = {"lammps": 400, "ase": 20}[engine]
    summary = simulate(model, engine=engine, start=data_dir / "ethane_aa.h5", steps=steps,
                       interval=steps // 10, temperature=180.0, seed=2,
                       output=tmp_path / "run.h5", progress=False)  # fmt: skip
    with H5MDTrajectory(tmp_path / "run.h5") as run:
        stored = run.observable("pressure") / units.bar
        assert stored.shape == (11,)
        if engine == "ase":  # the tensor too, its trace is the pressure
            tensor = run.observable("pressure_tensor") / units.bar
            np.testing.assert_allclose(np.trace(tensor, axis1=1, axis2=2) / 3, stored)
        frame = run[2]
    frame.calc = CGCalculator(model)
    velocities = frame.get_velocities()
    kinetic = np.einsum("i,ia,ia->", frame.get_masses(), velocities, velocities)
    expected = kinetic / (3 * frame.get_volume()) - np.trace(frame.get_stress(voigt=False)) / 3
    assert stored[2] == pytest.approx(expected / units.bar, abs=0.1)
    assert summary.pressure_bar == pytest.approx(stored.mean(), abs=100.0)
    # a small reference with its pressure
    aa = read_h5md(data_dir / "ethane_aa.h5", "-12:")
    write_h5md(tmp_path / "aa.h5", aa, time_step=1.0)
    with H5MDTrajectory(data_dir / "ethane_aa.h5") as shipped:
        reference = shipped.observable("pressure", slice(-12, None))
    write_observables(tmp_path / "aa.h5", {"pressure": reference})
    metrics = compare(tmp_path / "aa.h5", tmp_path / "run.h5", output_dir=tmp_path / "report",
                      mapping=data_dir / "ethane_mapping.json")  # fmt: skip
    pressure = metrics["pressure"]
    assert pressure["reference_bar"] == pytest.approx(reference.mean() / units.bar, rel=1e-9)
    assert pressure["cg_bar"] == pytest.approx(stored.mean(), rel=1e-9)
    assert "pressure (bar)" in (tmp_path / "report" / "index.md").read_text()
    without = compare(tmp_path / "run.h5", tmp_path / "run.h5", output_dir=tmp_path / "r2")
    assert without["pressure"]["difference_bar"] == 0.0
    write_h5md(tmp_path / "plain.h5", read_h5md(tmp_path / "run.h5"))
    skipped = compare(tmp_path / "plain.h5", tmp_path / "run.h5", output_dir=tmp_path / "r3")
    assert "no observables/pressure in the reference" in skipped["pressure"]["skipped"]
