"""All-atom reference: templates, packing, the LAMMPS deck, simulated trajectories, shipped data.

Small systems (8-27 molecules, a few thousand steps) run here; the statistics that need a
long run (mean temperature to 2 K) are checked on the shipped ``data/ethane_aa.h5``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from _paths import DATA_DIR
from ase import units

from ase_cg.cli import main
from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory
from ase_cg.reference import (
    ETHANE,
    MOLECULES,
    PROPANE,
    MoleculeTemplate,
    MoleculeTemplateError,
    PackingError,
    compute_energy_forces,
    compute_pressure,
    generate_reference,
    pack_molecules,
)
from ase_cg.reference.builder import G_PER_CM3
from ase_cg.reference.forcefield import KCAL_PER_MOL

SHIPPED = DATA_DIR / "ethane_aa.h5"


# -- helpers -------------------------------------------------------------------------------
def bond_lengths(positions: np.ndarray, cell: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Minimum-image distances, Å, of atom ``pairs`` in an orthorhombic ``cell``."""
    lengths = np.diag(cell)
    delta = positions[..., pairs[:, 1], :] - positions[..., pairs[:, 0], :]
    delta -= lengths * np.round(delta / lengths)
    return np.linalg.norm(delta, axis=-1)


def temperatures(velocities: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Kinetic temperature, K, per frame; 3N - 3 degrees of freedom (momentum is conserved)."""
    kinetic = 0.5 * np.einsum("i,fij,fij->f", masses, velocities, velocities)
    return 2.0 * kinetic / ((3 * len(masses) - 3) * units.kB)


def pairs_of(trajectory: H5MDTrajectory, a: str, b: str) -> np.ndarray:
    """Bonded pairs between elements ``a`` and ``b``."""
    z = {"C": 6, "H": 1}
    bonds = trajectory.bonds
    ends = trajectory.numbers[bonds]
    keep = ((ends[:, 0] == z[a]) & (ends[:, 1] == z[b])) | (
        (ends[:, 0] == z[b]) & (ends[:, 1] == z[a])
    )
    return bonds[keep]


# -- templates -----------------------------------------------------------------------------
def test_ethane_template_opls_parameters():
    assert MOLECULES["ethane"] is ETHANE
    assert ETHANE.elements == ("C", "C", "H", "H", "H", "H", "H", "H")
    assert (len(ETHANE.bonds), len(ETHANE.angles), len(ETHANE.dihedrals)) == (7, 12, 9)
    assert ETHANE.charges.sum() == pytest.approx(0.0, abs=1e-12)
    assert ETHANE.molar_mass == pytest.approx(30.07)
    carbon_carbon = next(b for b in ETHANE.bonds if {b.i, b.j} == {0, 1})
    # Jorgensen 1996: CT-CT 268 kcal/mol/Å² at 1.529 Å (LAMMPS convention, no ½)
    assert carbon_carbon.k / KCAL_PER_MOL == pytest.approx(268.0)
    assert carbon_carbon.r0 == 1.529
    assert {round(d.v[2] / KCAL_PER_MOL, 6) for d in ETHANE.dihedrals} == {0.3}
    assert ETHANE.lj_epsilon[0] / KCAL_PER_MOL == pytest.approx(0.066)
    assert ETHANE.lj_sigma.tolist() == [3.5] * 2 + [2.5] * 6


@pytest.mark.parametrize("template", [ETHANE, PROPANE], ids=lambda t: t.name)
def test_template_conformer_matches_force_field(template: MoleculeTemplate):
    # the conformer is near the force-field minimum: bonds within 0.03 Å, angles within 4°
    x = template.positions
    for bond in template.bonds:
        assert np.linalg.norm(x[bond.i] - x[bond.j]) == pytest.approx(bond.r0, abs=0.03)
    for angle in template.angles:
        u, v = x[angle.i] - x[angle.j], x[angle.k] - x[angle.j]
        theta = np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))
        assert theta == pytest.approx(angle.theta0, abs=4.0)
    atoms = template.to_atoms()
    assert atoms.get_masses().sum() == pytest.approx(template.molar_mass)
    assert atoms.arrays["mol-id"].tolist() == [1] * template.n_atoms


def test_propane_template_counts():
    assert (len(PROPANE.bonds), len(PROPANE.angles), len(PROPANE.dihedrals)) == (10, 18, 18)
    assert PROPANE.atom_types[:3] == ("opls_136", "opls_135", "opls_135")
    assert PROPANE.charges.sum() == pytest.approx(0.0, abs=1e-12)
    ccc = [a for a in PROPANE.angles if PROPANE.elements[a.i] == PROPANE.elements[a.k] == "C"]
    assert len(ccc) == 1 and ccc[0].theta0 == 112.7


def test_template_missing_parameters_is_reported():
    with pytest.raises(MoleculeTemplateError, match="opls_999"):
        MoleculeTemplate.from_opls(
            "bad", [[0, 0, 0], [1, 0, 0]], ["opls_135", "opls_999"], [(0, 1)],
            temperature=100.0, density=0.5,
        )  # fmt: skip
    with pytest.raises(MoleculeTemplateError, match="HC-HC"):
        MoleculeTemplate.from_opls(
            "h2", [[0, 0, 0], [0.74, 0, 0]], ["opls_140", "opls_140"], [(0, 1)],
            temperature=20.0, density=0.07,
        )  # fmt: skip


# -- packing -------------------------------------------------------------------------------
def test_packing_density_whole_molecules_and_no_overlaps():
    atoms = pack_molecules(ETHANE, 27, 0.5495, seed=3)
    assert len(atoms) == 27 * 8
    density = atoms.get_masses().sum() / atoms.get_volume() / G_PER_CM3
    assert density == pytest.approx(0.5495, rel=1e-12)
    x = atoms.positions.reshape(27, 8, 3)
    # rigid rotations of the template: all internal distances preserved
    reference = np.linalg.norm(ETHANE.positions[:, None] - ETHANE.positions[None], axis=-1)
    internal = np.linalg.norm(x[:, :, None] - x[:, None, :], axis=-1)
    np.testing.assert_allclose(internal, np.broadcast_to(reference, internal.shape), atol=1e-10)
    # no two atoms of different molecules closer than 1.6 Å (minimum image)
    mol = atoms.arrays["mol-id"]
    delta = atoms.positions[:, None] - atoms.positions[None]
    length = atoms.cell.lengths()[0]
    delta -= length * np.round(delta / length)
    distance = np.linalg.norm(delta, axis=-1)
    assert distance[mol[:, None] != mol[None]].min() >= 1.6
    again = pack_molecules(ETHANE, 27, 0.5495, seed=3)
    np.testing.assert_array_equal(again.positions, atoms.positions)
    assert not np.allclose(pack_molecules(ETHANE, 27, 0.5495, seed=4).positions, atoms.positions)


def test_packing_too_dense_raises():
    with pytest.raises(PackingError, match="lower the density"):
        pack_molecules(ETHANE, 27, 3.0, seed=0)


# -- the LAMMPS force field ----------------------------------------------------------------
def test_lammps_forces_are_minus_energy_gradient():
    atoms = pack_molecules(ETHANE, 8, 0.5495, seed=1)
    atoms.rattle(0.05, seed=2)  # off the rigid template geometry: bonds and angles strained
    energy, forces = compute_energy_forces(ETHANE, atoms)
    assert forces.shape == (64, 3)
    h = 1e-4
    for atom, axis in [(0, 0), (2, 1), (13, 2), (50, 0)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        slope = compute_energy_forces(ETHANE, plus)[0] - compute_energy_forces(ETHANE, minus)[0]
        numeric = -slope / (2 * h)
        # PPPM (1e-5) forces are not the exact gradient of the PPPM energy: 1e-3 eV/Å
        assert forces[atom, axis] == pytest.approx(numeric, abs=2e-3, rel=1e-3)


def isolated_ethane(positions: np.ndarray):
    """One ethane molecule in a 30 Å periodic box (its images 20 Å away)."""
    atoms = ETHANE.to_atoms()
    atoms.positions = positions + 15.0
    atoms.cell = [30.0] * 3
    atoms.pbc = True
    return atoms


def test_lammps_carbon_carbon_stiffness_has_no_half():
    # Moving the CH3 groups rigidly apart changes only the C-C bond (and weak 1-4 pairs):
    # d²E/dr² = 2 K_r for E = K_r (r - r0)², the LAMMPS convention the template uses.
    h, moving = 0.01, [1, 5, 6, 7]
    energies = []
    for shift in (-h, 0.0, h):
        positions = ETHANE.positions.copy()
        positions[moving, 2] -= shift
        energies.append(compute_energy_forces(ETHANE, isolated_ethane(positions))[0])
    curvature = (energies[0] - 2 * energies[1] + energies[2]) / h**2
    assert curvature == pytest.approx(2 * 268.0 * KCAL_PER_MOL, rel=0.03)


def test_lammps_ethane_torsion_barrier():
    # staggered -> eclipsed: 9 H-C-C-H terms of V3 = 0.3 kcal/mol plus the 1-4 pairs; OPLS-AA
    # was fit to the experimental barrier, 2.9 kcal/mol
    staggered = ETHANE.positions.copy()
    eclipsed = staggered.copy()
    c, s = np.cos(np.pi / 3), np.sin(np.pi / 3)
    eclipsed[5:8, :2] = eclipsed[5:8, :2] @ np.array([[c, s], [-s, c]])
    barrier = (
        compute_energy_forces(ETHANE, isolated_ethane(eclipsed))[0]
        - compute_energy_forces(ETHANE, isolated_ethane(staggered))[0]
    ) / KCAL_PER_MOL
    assert 2.7 < barrier < 3.3


def test_lammps_rejects_atoms_not_in_template_order():
    atoms = pack_molecules(ETHANE, 8, 0.5495, seed=1)
    with pytest.raises(InputError, match="template order"):
        compute_energy_forces(ETHANE, atoms[::-1])


# -- a small simulated trajectory ------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "ethane27.h5"
    code = main(
        ["reference", "ethane", "-o", str(path), "--molecules", "27", "--equilibration-ps",
         "1", "--frames", "60", "--stride", "20", "--seed", "5"]
    )  # fmt: skip
    assert code == 0
    return path


def test_small_run_layout_and_provenance(small_run: Path):
    with H5MDTrajectory(small_run) as trajectory:
        assert trajectory.n_frames == 60 and trajectory.n_atoms == 216
        assert trajectory.steps.tolist() == list(range(20, 1201, 20))
        assert trajectory.time_step == pytest.approx(1.0)
        assert trajectory.mol_ids.tolist() == np.repeat(np.arange(1, 28), 8).tolist()
        assert trajectory.numbers[:8].tolist() == [6, 6, 1, 1, 1, 1, 1, 1]
        assert len(trajectory.bonds) == 27 * 7
        np.testing.assert_allclose(trajectory.masses[:8], ETHANE.masses)
        assert trajectory.has_forces and trajectory.has_velocities and trajectory.has_energies
    with h5py.File(small_run) as handle:
        attrs = handle["parameters/ase_cg_reference"].attrs
        assert attrs["molecule"] == "ethane" and attrs["n_molecules"] == 27
        assert attrs["temperature_K"] == 180.0 and attrs["seed"] == 5
        assert "Jorgensen" in attrs["force_field"]


def test_small_run_geometry_density_wrapping(small_run: Path):
    with H5MDTrajectory(small_run) as trajectory:
        positions, cells = trajectory.positions(), trajectory.cells()
        cc = bond_lengths(positions, cells[0], pairs_of(trajectory, "C", "C"))
        ch = bond_lengths(positions, cells[0], pairs_of(trajectory, "C", "H"))
        density = trajectory.masses.sum() / np.linalg.det(cells) / G_PER_CM3
    assert cc.mean() == pytest.approx(1.53, abs=0.01) and cc.std() < 0.05
    assert ch.mean() == pytest.approx(1.09, abs=0.01) and ch.std() < 0.04
    np.testing.assert_allclose(density, 0.5495, rtol=1e-5)
    lengths = np.diag(cells[0])
    assert positions.min() >= 0.0 and np.all(positions <= lengths)


def test_small_run_temperature_and_total_force(small_run: Path):
    with H5MDTrajectory(small_run) as trajectory:
        t = temperatures(trajectory.velocities(), trajectory.masses)
        forces = trajectory.forces()
    # 216 atoms: ±10 K per frame, 60 correlated frames over 1.2 ps (the shipped 1728-atom
    # set is held to 2 K below)
    assert t.mean() == pytest.approx(180.0, abs=12.0)
    total = np.linalg.norm(forces.sum(axis=1), axis=-1)
    scale = np.linalg.norm(forces, axis=-1).sum(axis=1)
    assert np.all(total < 1e-5 * scale)


def test_small_run_forces_equal_lammps_reevaluation(small_run: Path):
    with H5MDTrajectory(small_run) as trajectory:
        for frame in (0, 59):
            atoms = trajectory[frame]
            energy, forces = compute_energy_forces(ETHANE, atoms)
            stored = trajectory.forces(frame)
            # float32 positions and forces in the file: agreement to ~1e-4 relative
            rms = np.sqrt(np.mean((forces - stored) ** 2)) / np.sqrt(np.mean(stored**2))
            assert rms < 1e-3
            assert energy == pytest.approx(trajectory.energies(frame), abs=2e-3)


def test_small_run_pressure_equals_lammps_reevaluation(small_run: Path):
    # stored during the run (thermo_press) vs a fresh run 0 on the stored float32 frame with
    # its stored velocities; the kinetic part alone, Σ m v⊗v / V, is checked against numpy
    with H5MDTrajectory(small_run) as trajectory:
        assert {"pressure", "pressure_tensor"} <= set(trajectory.observable_names)
        stored = trajectory.observable("pressure")
        tensors = trajectory.observable("pressure_tensor")
        np.testing.assert_allclose(np.trace(tensors, axis1=1, axis2=2) / 3, stored, atol=1e-9)
        for frame in (0, 59):
            atoms = trajectory[frame]
            pressure, tensor = compute_pressure(ETHANE, atoms)
            assert abs(pressure - stored[frame]) / units.bar < 2.0  # of σ ≈ 10³ bar per frame
            assert np.abs(tensor - tensors[frame]).max() / units.bar < 5.0
            still = atoms.copy()
            still.set_velocities(np.zeros((len(atoms), 3)))
            virial_only = compute_pressure(ETHANE, still)[1]
            v = atoms.get_velocities()
            kinetic = np.einsum("i,ia,ib->ab", atoms.get_masses(), v, v) / atoms.get_volume()
            np.testing.assert_allclose(tensor - virial_only, kinetic, atol=1e-9 * units.bar)
    with h5py.File(small_run) as handle:
        assert handle["observables/pressure/value"].attrs["unit"] == "bar"


def test_add_pressure_restores_the_stored_pressure(small_run: Path, tmp_path: Path, capsys):
    # an older file without observables/pressure: `ase-cg reference --add-pressure` re-evaluates
    # every frame and writes what the run itself stored
    old = tmp_path / "old.h5"
    old.write_bytes(small_run.read_bytes())
    with h5py.File(old, "r+") as handle:
        del handle["observables/pressure"], handle["observables/pressure_tensor"]
    assert main(["reference", "ethane", "--add-pressure", str(old)]) == 0
    assert "pressure of 60 frames stored" in capsys.readouterr().out
    with H5MDTrajectory(small_run) as run, H5MDTrajectory(old) as added:
        difference = added.observable("pressure") - run.observable("pressure")
        tensors = added.observable("pressure_tensor") - run.observable("pressure_tensor")
        np.testing.assert_allclose(added.positions(), run.positions())
    assert np.abs(difference).max() / units.bar < 2.0
    assert np.abs(tensors).max() / units.bar < 5.0
    with pytest.raises(ValueError, match="drop -o"):
        main_raising(["reference", "--add-pressure", str(old), "-o", str(tmp_path / "x.h5")])


def main_raising(argv):
    """Run a subcommand's function directly (errors raise instead of becoming exit codes)."""
    from ase_cg.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.func(args)


def test_npt_equilibration_sets_production_box(tmp_path: Path):
    path = generate_reference(
        "ethane", output=tmp_path / "npt.h5", n_molecules=27, npt=True, pressure=1.0,
        equilibration_ps=0.5, production_ps=0.2, stride=100, seed=2, progress=False,
    )  # fmt: skip
    with H5MDTrajectory(path) as trajectory:
        cells = trajectory.cells()
        density = trajectory.masses.sum() / np.linalg.det(cells) / G_PER_CM3
    with h5py.File(path) as handle:
        final = handle["parameters/ase_cg_reference"].attrs["final_density_g_cm3"]
    assert np.ptp(density) < 1e-5  # production is NVT: one box for all frames
    assert density[0] == pytest.approx(final, rel=1e-5)
    # the barostat moved the box away from the packing density (0.5 ps: a loose bound)
    assert density[0] != pytest.approx(0.5495, rel=1e-4)
    assert 0.35 < density[0] < 0.75


@pytest.mark.mpi
def test_propane_on_two_ranks(tmp_path: Path):
    path = generate_reference(
        "propane", output=tmp_path / "propane.h5", n_molecules=8, equilibration_ps=0.2,
        production_ps=0.2, stride=20, seed=1, ranks=2, progress=False,
    )  # fmt: skip
    with H5MDTrajectory(path) as trajectory:
        assert trajectory.n_frames == 10 and trajectory.n_atoms == 8 * 11
        positions, cells = trajectory.positions(), trajectory.cells()
        cc = bond_lengths(positions, cells[0], pairs_of(trajectory, "C", "C"))
        assert cc.mean() == pytest.approx(1.53, abs=0.015)
        density = trajectory.masses.sum() / np.linalg.det(cells[0]) / G_PER_CM3
        assert density == pytest.approx(0.58, rel=1e-5)
        energy, forces = compute_energy_forces(PROPANE, trajectory[9])
        stored = trajectory.forces(9)
        rms = np.sqrt(np.mean((forces - stored) ** 2)) / np.sqrt(np.mean(stored**2))
        assert rms < 1e-3
    with h5py.File(path) as handle:
        assert handle["parameters/ase_cg_reference"].attrs["ranks"] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"molecule": "benzene"}, "unknown molecule 'benzene'"),
        ({"stride": 0}, "stride must be >= 1"),
        ({"production_ps": 0.01, "stride": 100}, "gives no frame"),
        ({"n_molecules": 0}, "n_molecules must be >= 1"),
        ({"temperature": -5.0}, "temperature must be > 0"),
    ],
)
def test_bad_settings_are_rejected(tmp_path: Path, kwargs: dict, message: str):
    with pytest.raises(InputError, match=message):
        generate_reference(output=tmp_path / "x.h5", **kwargs)
    assert not (tmp_path / "x.h5").exists()


# -- the shipped reference set -------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> H5MDTrajectory:
    assert SHIPPED.exists(), f"{SHIPPED} is missing: see data/README.md to regenerate it"
    with H5MDTrajectory(SHIPPED) as trajectory:
        yield trajectory


def test_shipped_file_size_and_layout(shipped: H5MDTrajectory):
    assert SHIPPED.stat().st_size <= 25 * 1024**2
    assert shipped.n_atoms == 1728 and len(np.unique(shipped.mol_ids)) == 216
    assert shipped.n_frames >= 200
    assert shipped.has_forces and shipped.has_velocities and shipped.has_energies


def test_shipped_state_point(shipped: H5MDTrajectory):
    t = temperatures(shipped.velocities(), shipped.masses)
    assert t.mean() == pytest.approx(180.0, abs=2.0)
    assert 1.0 < t.std() < 8.0  # canonical: about 180 K * sqrt(2 / 5181) = 3.5 K
    density = shipped.masses.sum() / np.linalg.det(shipped.cells()) / G_PER_CM3
    np.testing.assert_allclose(density, 0.5495, rtol=1e-5)


def test_shipped_geometry_and_total_force(shipped: H5MDTrajectory):
    frames = slice(0, None, 10)
    positions, cell = shipped.positions(frames), shipped.cells(0)
    cc = bond_lengths(positions, cell, pairs_of(shipped, "C", "C"))
    ch = bond_lengths(positions, cell, pairs_of(shipped, "C", "H"))
    assert cc.mean() == pytest.approx(1.53, abs=0.01)
    assert ch.mean() == pytest.approx(1.09, abs=0.01)
    forces = shipped.forces(frames)
    total = np.linalg.norm(forces.sum(axis=1), axis=-1)
    assert np.all(total < 1e-5 * np.linalg.norm(forces, axis=-1).sum(axis=1))


def test_shipped_pressure(shipped: H5MDTrajectory):
    # stored by `ase-cg reference --add-pressure` (data/README.md); re-evaluated here on one
    # frame. OPLS-AA without tail correction at the saturated-liquid density of 180 K: the
    # mean, 115 ± 35 bar (block error), is near the coexistence pressure (≈ 0) on the scale of
    # the per-frame fluctuation (σ ≈ 800 bar)
    pressure = shipped.observable("pressure") / units.bar
    assert pressure.shape == (shipped.n_frames,)
    assert -100.0 < pressure.mean() < 300.0 and 300.0 < pressure.std() < 2000.0
    frame = 137
    assert compute_pressure(ETHANE, shipped[frame])[0] / units.bar == pytest.approx(
        pressure[frame], abs=2.0
    )


def test_shipped_forces_equal_lammps_reevaluation(shipped: H5MDTrajectory):
    frame = shipped.n_frames - 1
    energy, forces = compute_energy_forces(ETHANE, shipped[frame])
    stored = shipped.forces(frame)
    rms = np.sqrt(np.mean((forces - stored) ** 2)) / np.sqrt(np.mean(stored**2))
    assert rms < 1e-3
    assert energy == pytest.approx(shipped.energies(frame), abs=1e-2)
