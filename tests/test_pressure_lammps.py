"""The pressure LAMMPS reports for an exported model equals the pressure from CGCalculator's
stress (plus the same kinetic term) on the frames of the same run.

LAMMPS runs in a subprocess (``run_deck``); its thermo ``Press`` (kinetic Σ m v⊗v / V plus the
virial of the pair and bond tables) is compared at the dumped steps with
``Σ m v² / 3V − tr σ / 3`` from :class:`~ase_cg.calculator.CGCalculator` on the dumped positions
and velocities.
"""

from __future__ import annotations

import numpy as np
from ase import units

from ase_cg.calculator import CGCalculator
from ase_cg.io import read_h5md
from ase_cg.md import _read_thermo
from ase_cg.model import load_model
from lammps_interface import export
from lammps_interface.run import run_deck


def test_lammps_pressure_equals_calculator_stress_pressure(data_dir, tmp_path):
    model = load_model(data_dir / "ethane_classical.pt")
    atoms = model.mapping.map(read_h5md(data_dir / "ethane_aa.h5", -1))
    atoms.calc = None
    export(model, tmp_path, atoms=atoms, temperature=180.0, timestep=2.0, steps=60, dump_every=20)
    outputs = run_deck(tmp_path, variables={"seed": "5"})
    thermo = _read_thermo(outputs["log"])
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
