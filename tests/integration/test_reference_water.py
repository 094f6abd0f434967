"""SPC/E water reference: the rigid template, its LAMMPS deck (no dihedrals, SHAKE), and a tiny
run that keeps every molecule rigid, at the right temperature for 6 degrees of freedom per
molecule, with forces whose per-molecule sums are those of the potential; the shipped one-bead
mapping and ``compare``'s local-order section on that run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import units

from ase_cg.analysis import compare, tetrahedral_order
from ase_cg.cli import main
from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory
from ase_cg.mapping import CGMapping
from ase_cg.reference import (
    MOLECULES,
    WATER,
    compute_energy_forces,
    generate_reference,
    write_lammps_data,
)
from ase_cg.reference.builder import G_PER_CM3, pack_molecules
from ase_cg.reference.forcefield import KCAL_PER_MOL
from ase_cg.reference.lammps import constraint_commands
from ase_cg.reference.pressure import add_reference_pressure
from ase_cg.trajectory import cg_trajectory

N_MOLECULES = 64
HOH = np.radians(109.47)


def test_spce_template_parameters_and_geometry():
    assert MOLECULES["water"] is WATER and WATER.rigid and WATER.time_step_fs == 2.0
    assert WATER.elements == ("O", "H", "H")
    assert WATER.charges.tolist() == pytest.approx([-0.8476, 0.4238, 0.4238], abs=1e-12)
    assert WATER.lj_sigma[0] == 3.166 and WATER.lj_epsilon[0] / KCAL_PER_MOL == pytest.approx(
        0.1553
    )
    assert WATER.lj_epsilon[1:].tolist() == [0.0, 0.0]
    assert (WATER.temperature, WATER.density) == (300.0, 0.997)
    oh = WATER.positions[1:] - WATER.positions[0]
    np.testing.assert_allclose(np.linalg.norm(oh, axis=1), 1.0, atol=1e-12)
    assert np.arccos(oh[0] @ oh[1]) == pytest.approx(HOH, abs=1e-12)
    assert constraint_commands(WATER) == ["fix constraints all shake 1e-08 200 0 b 1 a 1"]
    assert constraint_commands(MOLECULES["ethane"]) == []


def test_data_file_has_no_empty_sections_and_forces_are_minus_the_gradient(tmp_path: Path):
    atoms = pack_molecules(WATER, 8, 0.997, seed=3)
    text = write_lammps_data(tmp_path / "w.data", WATER, atoms).read_text()
    assert "Dihedral" not in text and "0 dihedrals" in text
    atoms.rattle(0.03, seed=5)  # strain the (harmonic, minimisation-only) bonds and angle
    energy, forces = compute_energy_forces(WATER, atoms)
    step = 1e-4
    for atom, axis in ((0, 0), (1, 2), (17, 1)):
        shifted = []
        for sign in (1.0, -1.0):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * step
            shifted.append(compute_energy_forces(WATER, moved)[0])
        numeric = -(shifted[0] - shifted[1]) / (2 * step)
        # PPPM (1e-5) forces are not the exact gradient of the PPPM energy: ~1e-3 eV/Å
        assert forces[atom, axis] == pytest.approx(numeric, rel=1e-3, abs=2e-3)
    assert np.isfinite(energy)


@pytest.fixture(scope="module")
def water_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("water") / "water64.h5"
    code = main(
        ["reference", "water", "-o", str(path), "--molecules", str(N_MOLECULES),
         "--equilibration-ps", "0.4", "--frames", "10", "--stride", "20", "--seed", "4"]
    )  # fmt: skip
    assert code == 0
    return path


def test_tiny_water_run_stays_rigid_with_finite_forces(water_run: Path):
    with H5MDTrajectory(water_run) as trajectory:
        assert trajectory.n_frames == 10 and trajectory.time_step == pytest.approx(2.0)
        positions, cells = trajectory.positions(), trajectory.cells()
        forces, velocities = trajectory.forces(), trajectory.velocities()
        masses = trajectory.masses
    lengths = np.diag(cells[0])

    def mic(d):
        return d - lengths * np.round(d / lengths)

    oh = np.stack([mic(positions[:, h::3] - positions[:, 0::3]) for h in (1, 2)])
    r = np.linalg.norm(oh, axis=-1)
    angle = np.arccos(np.sum(oh[0] * oh[1], axis=-1) / (r[0] * r[1]))
    assert np.abs(r - 1.0).max() < 1e-4  # Å
    assert np.abs(angle - HOH).max() < 1e-4  # rad
    assert np.all(np.isfinite(forces)) and np.all(np.isfinite(velocities))
    density = masses.sum() / np.prod(lengths) / G_PER_CM3
    assert density == pytest.approx(0.997, rel=1e-5)
    # rigid molecules have 6 degrees of freedom: 6N − 3 in all (9N − 3 would read ~200 K)
    kinetic = 0.5 * np.einsum("i,fij,fij->f", masses, velocities, velocities)
    temperature = 2.0 * kinetic / ((6 * N_MOLECULES - 3) * units.kB)
    assert temperature.mean() == pytest.approx(300.0, abs=45.0)


def test_stored_forces_sum_per_molecule_to_the_potential_forces(water_run: Path):
    # the stored forces include SHAKE's constraint forces, which cancel within each molecule:
    # per-molecule sums (what a centre-of-mass mapping sees) are those of the bare potential
    with H5MDTrajectory(water_run) as trajectory:
        for frame in (0, 9):
            atoms = trajectory[frame]
            stored = trajectory.forces()[frame]
            _, bare = compute_energy_forces(WATER, atoms)
            per_molecule = stored.reshape(N_MOLECULES, 3, 3).sum(axis=1)
            expected = bare.reshape(N_MOLECULES, 3, 3).sum(axis=1)
            np.testing.assert_allclose(per_molecule, expected, atol=2e-4 * np.abs(expected).max())
            assert np.abs(stored - bare).max() > 0.1  # the constraint forces are there


def test_pressure_re_evaluation_refuses_rigid_water(water_run: Path):
    # the stored pressure holds SHAKE's virial; a run-0 re-evaluation would not
    with pytest.raises(InputError, match="rigid"):
        add_reference_pressure(water_run, "water")
    with H5MDTrajectory(water_run) as trajectory:
        assert "pressure" in trajectory.observable_names


def test_npt_water_keeps_shake_before_the_barostat(tmp_path: Path):
    # LAMMPS refuses SHAKE defined after a box-changing fix; the molecules stay rigid through
    # NPT, the box change and NVT
    path = generate_reference(
        "water", output=tmp_path / "npt.h5", n_molecules=N_MOLECULES, npt=True,
        equilibration_ps=0.2, production_ps=0.08, stride=20, seed=2, progress=False,
    )  # fmt: skip
    with H5MDTrajectory(path) as trajectory:
        positions, cells = trajectory.positions(), trajectory.cells()
    lengths = np.diag(cells[0])
    oh = positions[:, 1::3] - positions[:, 0::3]
    r = np.linalg.norm(oh - lengths * np.round(oh / lengths), axis=-1)
    assert np.abs(r - 1.0).max() < 1e-4
    assert lengths[0] != pytest.approx(np.cbrt(N_MOLECULES * WATER.molar_mass / 0.997 / G_PER_CM3))


def test_one_bead_mapping_and_compare_report_local_order(water_run: Path, data_dir, tmp_path):
    mapping = CGMapping.load(data_dir / "water_mapping.json")
    with H5MDTrajectory(water_run) as trajectory:
        atom_forces = trajectory.forces()
        beads = cg_trajectory(trajectory, mapping)
        frames = [beads[i] for i in range(len(beads))]
    assert len(frames[0]) == N_MOLECULES
    assert set(frames[0].arrays["bead-type"]) == {"W"}
    np.testing.assert_allclose(frames[0].get_masses(), WATER.molar_mass)
    # the bead force of a one-bead molecule is the molecule's total force
    np.testing.assert_allclose(
        frames[3].get_forces(), atom_forces[3].reshape(N_MOLECULES, 3, 3).sum(axis=1), atol=1e-6
    )
    metrics = compare(water_run, frames, mapping=mapping, output_dir=tmp_path / "report")
    order = metrics["local_order"]
    assert order["mean_q_difference"] == 0.0 and order["angle_max_abs_difference"] == 0.0
    assert order["mean_q_reference"] == pytest.approx(tetrahedral_order(frames)[2], rel=1e-12)
    assert (tmp_path / "report" / "local_order.png").exists()
