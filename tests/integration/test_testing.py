"""ase_cg.testing: the shared checks pass on a correct model and fail on a wrong one."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

from ase_cg.calculator import CGCalculator
from ase_cg.md import build_cg_box
from ase_cg.testing import (
    check_forces,
    check_gradient,
    check_lammps_parity,
    check_rigid_motion,
    check_strain_derivative,
    check_stress,
)


class Scaled(Calculator):
    """A calculator whose forces or stress are off by a factor: the checks must notice."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, inner, force_factor=1.0, stress_factor=1.0):
        super().__init__()
        self.inner, self.force_factor, self.stress_factor = inner, force_factor, stress_factor

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        probe = atoms.copy()
        probe.calc = self.inner
        energy = probe.get_potential_energy()
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": self.force_factor * probe.get_forces(),
            "stress": self.stress_factor * probe.get_stress(),
        }


@pytest.fixture
def liquid(prior_model):
    return build_cg_box(prior_model, 27, 0.5495, seed=3)


def test_checks_pass_on_the_calculator(prior_model, liquid):
    liquid.calc = CGCalculator(prior_model)
    assert check_forces(liquid, indices=[0, 1, 17]) < 1e-6
    assert check_stress(liquid) < 1e-8
    check_rigid_motion(liquid, lambda: CGCalculator(prior_model), atol=1e-10)


def test_checks_fail_on_wrong_forces_and_stress(prior_model, liquid):
    liquid.calc = Scaled(CGCalculator(prior_model), force_factor=1.01)
    with pytest.raises(AssertionError, match="forces vs finite differences"):
        check_forces(liquid, indices=[0, 1])
    liquid.calc = Scaled(CGCalculator(prior_model), stress_factor=0.98)
    with pytest.raises(AssertionError, match="stress vs strain derivative"):
        check_stress(liquid)


def test_lammps_parity_of_a_bonded_model(prior_model, liquid, tmp_path):
    deviations = check_lammps_parity(prior_model, liquid, tmp_path)
    assert set(deviations) == {"energy", "forces", "virial"}
    assert np.isfinite(list(deviations.values())).all()


def test_energy_function_checks_pass_and_fail_on_a_harmonic_well(rng):
    """E = Σ k|x − x0|² / 2 + c V: forces −k(x − x0), stress c (x0 moves with the strain)."""
    k, c = 2.0, 0.01
    cell = np.diag([5.0, 6.0, 7.0])
    anchors = rng.random((4, 3)) @ cell
    positions = anchors + rng.normal(scale=0.2, size=anchors.shape)
    fractional = np.linalg.solve(cell.T, anchors.T).T

    def energy(x, h=cell):
        return 0.5 * k * ((x - fractional @ h) ** 2).sum() + c * abs(np.linalg.det(h))

    forces = -k * (positions - anchors)
    assert check_gradient(energy, positions, forces) < 1e-8
    with pytest.raises(AssertionError, match="forces vs finite differences"):
        check_gradient(energy, positions, 1.01 * forces, indices=[2])
    strain = k * (positions - anchors).T @ (positions - anchors) / abs(np.linalg.det(cell))
    stress = strain + c * np.eye(3)
    assert check_strain_derivative(energy, positions, cell, stress) < 1e-8
    with pytest.raises(AssertionError, match="stress vs strain derivative"):
        check_strain_derivative(energy, positions, cell, stress + 1e-4)
