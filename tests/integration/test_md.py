"""CG MD with ASE: start boxes, energy conservation, bond constraints, blow-up detection, output."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase import units
from ase.build import molecule
from ase.geometry import find_mic

from ase_cg import _keys as K
from ase_cg.analysis import density
from ase_cg.calculator import CGCalculator
from ase_cg.cli import main as cli_main
from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, read_h5md
from ase_cg.mapping import CGMapping
from ase_cg.md import MDBlowUpError, build_cg_box, run_md
from ase_cg.model import save_model
from ase_cg.pipeline import simulate
from ase_cg.potentials import CGModel, HarmonicAngles, HarmonicBonds, Repulsion

torch.set_num_threads(1)


def bond_lengths(atoms, model):
    bonds = model.topology(atoms).bonds
    vectors = atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]]
    return np.linalg.norm(find_mic(vectors, atoms.cell, atoms.pbc)[0], axis=1)


def test_build_cg_box(prior_model, ethane_mapping):
    atoms = build_cg_box(prior_model, 50, 0.55, seed=3, min_distance=2.0)
    assert len(atoms) == 100
    assert density(atoms)[0] == pytest.approx(0.55, rel=1e-12)
    assert np.all(atoms.pbc)
    np.testing.assert_array_equal(atoms.arrays[K.MOL_ID], np.repeat(np.arange(50), 2))
    assert set(atoms.arrays[K.BEAD_TYPE]) == {"CH3"}
    np.testing.assert_allclose(atoms.get_masses(), ethane_mapping.bead_masses["CH3"])
    frac = atoms.get_scaled_positions(wrap=False)
    assert np.all((frac >= 0) & (frac < 1))
    # every molecule is the mapped template: the bead–bead distance of the rigid template
    template_beads = ethane_mapping.position_matrix("ethane") @ molecule("C2H6").positions
    expected = np.linalg.norm(template_beads[1] - template_beads[0])
    np.testing.assert_allclose(bond_lengths(atoms, prior_model), expected, atol=1e-10)
    # no beads of different molecules closer than min_distance
    distances = atoms.get_all_distances(mic=True)
    other = atoms.arrays[K.MOL_ID][:, None] != atoms.arrays[K.MOL_ID][None, :]
    assert distances[other].min() >= 2.0
    again = build_cg_box(ethane_mapping, 50, 0.55, seed=3, min_distance=2.0)
    np.testing.assert_array_equal(again.positions, atoms.positions)


def test_build_cg_box_bad_input(prior_model):
    with pytest.raises(InputError, match="density"):
        build_cg_box(prior_model, 10, -1.0, seed=0)
    with pytest.raises(InputError, match="not in the mapping"):
        build_cg_box(prior_model, {"propane": 3}, 0.5, seed=0)
    with pytest.raises(InputError, match="could not place"):
        build_cg_box(prior_model, 30, 5.0, seed=0, min_distance=3.0, max_tries=10)
    no_mapping = CGModel(["CH3"], [Repulsion(1, sigma=3.4)])
    with pytest.raises(InputError, match="templates"):
        build_cg_box(no_mapping, 10, 0.5, seed=0)


def equilibrated(prior_model, n_molecules=27, seed=5, steps=200):
    atoms = build_cg_box(prior_model, n_molecules, 0.55, seed=seed)
    calc = CGCalculator(prior_model)
    run_md(
        atoms,
        calc,
        ensemble="nvt",
        thermostat="langevin",
        steps=steps,
        time_step_fs=2.0,
        friction=0.05,
        seed=seed,
    )
    return atoms, calc


def test_nve_conserves_energy(prior_model):
    """54 beads, 1 fs, 1000 steps: |ΔE_total| < 5e-5 eV per bead (≈ 0.003 k_B·180 K)."""
    atoms, calc = equilibrated(prior_model)
    summary = run_md(atoms, calc, ensemble="nve", steps=1000, time_step_fs=1.0, interval=10)
    assert summary.steps == 1000
    assert abs(summary.total_energy_drift_eV_per_bead) < 5e-5
    assert summary.temperature_K > 50.0  # the beads move: the bound is not vacuous


@pytest.mark.slow
def test_nve_energy_drift_over_thousands_of_steps(prior_model):
    """54 beads, 1 fs, 5000 steps: |ΔE_total| < 5e-5 eV per bead (5e-6 seen at 3000 steps)."""
    atoms, calc = equilibrated(prior_model)
    summary = run_md(atoms, calc, ensemble="nve", steps=5000, time_step_fs=1.0, interval=50)
    assert summary.steps == 5000
    assert abs(summary.total_energy_drift_eV_per_bead) < 5e-5


def test_bond_constraints_hold_and_allow_a_large_time_step(prior_model, tmp_path):
    atoms = build_cg_box(prior_model, 27, 0.55, seed=8)
    before = bond_lengths(atoms, prior_model)
    calc = CGCalculator(prior_model)
    summary = run_md(
        atoms, calc, ensemble="nvt", steps=150, time_step_fs=8.0, constrain_bonds=True, seed=1
    )
    assert summary.steps == 150
    np.testing.assert_allclose(bond_lengths(atoms, prior_model), before.mean(), atol=1e-8)
    # bond velocities are constrained too: no relative velocity along any bond
    bonds = prior_model.topology(atoms).bonds
    d = find_mic(atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], atoms.cell, True)[0]
    v = atoms.get_velocities()
    along = np.einsum("ij,ij->i", v[bonds[:, 1]] - v[bonds[:, 0]], d)
    assert np.abs(along).max() < 1e-8
    # without constraints the same step blows up (the stiff bond limits the time step)
    atoms = build_cg_box(prior_model, 27, 0.55, seed=8)
    with pytest.raises(MDBlowUpError):
        run_md(atoms, CGCalculator(prior_model), ensemble="nve", steps=150, time_step_fs=16.0)


def test_huge_time_step_stops_with_step_and_bead(prior_model, tmp_path):
    atoms, calc = equilibrated(prior_model, steps=50)
    path = tmp_path / "blow.h5"
    with pytest.raises(MDBlowUpError, match=r"blew up at step \d+.*bead \d+") as info:
        run_md(atoms, calc, steps=500, time_step_fs=60.0, trajectory=path, interval=1, seed=2)
    error = info.value
    assert 0 < error.step <= 500
    assert 0 <= error.bead < len(atoms)
    assert error.summary.steps == error.step - 1
    frames = read_h5md(path)  # the frames before the failure are a valid file
    assert len(frames) == error.step
    assert all(np.isfinite(f.positions).all() for f in frames)


def test_overlapping_beads_are_named(prior_model):
    atoms = build_cg_box(prior_model, 8, 0.3, seed=1)
    atoms.positions[7] = atoms.positions[12] + [0.1, 0.0, 0.0]
    with pytest.raises(MDBlowUpError, match=r"step 0.*bead (7|12) .* 0.100 Å from bead (7|12)"):
        run_md(atoms, CGCalculator(prior_model), steps=10)


def test_trajectory_and_npt(prior_model, tmp_path):
    atoms, calc = equilibrated(prior_model, steps=50)
    path = tmp_path / "npt.h5"
    summary = run_md(
        atoms, calc, ensemble="npt", pressure=1.0, steps=100, interval=20, trajectory=path
    )
    assert summary.n_frames == 6
    with H5MDTrajectory(path) as trajectory:
        assert trajectory.n_frames == 6
        np.testing.assert_array_equal(trajectory.steps, np.arange(0, 101, 20))
        assert list(trajectory.bead_types[:2]) == ["CH3", "CH3"]
        np.testing.assert_array_equal(trajectory.mol_ids, atoms.arrays[K.MOL_ID])
        assert len(trajectory.bonds) == 27
        volumes = np.abs(np.linalg.det(trajectory.cells()))
        assert np.ptp(volumes) > 0  # the barostat moves the box
        np.testing.assert_allclose(trajectory.positions(-1), atoms.positions, atol=1e-4)
    assert summary.density_g_cm3 != pytest.approx(0.55, rel=1e-9)


def test_run_md_bad_arguments(prior_model):
    atoms = build_cg_box(prior_model, 8, 0.3, seed=1)
    calc = CGCalculator(prior_model)
    with pytest.raises(InputError, match="ensemble"):
        run_md(atoms, calc, ensemble="nph")
    with pytest.raises(InputError, match="time_step_fs"):
        run_md(atoms, calc, time_step_fs=0.0)
    no_bonds = CGModel(["CH3"], [Repulsion(1, sigma=3.4)]).double()
    with pytest.raises(InputError, match="no bonds"):
        run_md(atoms, CGCalculator(no_bonds), constrain_bonds=True)


def test_simulate_and_cli(prior_model, ethane_mapping, tmp_path, capsys):
    model_path = save_model(prior_model, tmp_path / "prior.pt")
    out = tmp_path / "box.h5"
    code = cli_main(
        ["simulate", str(model_path), "--n-molecules", "20", "--density", "0.5", "--steps", "40"]
        + ["--interval", "10", "-o", str(out), "--seed", "4", "--time-step", "1"]
    )
    assert code == 0
    assert "NVT: 40 steps" in capsys.readouterr().out
    assert len(read_h5md(out)) == 5
    # restart from the last CG frame
    summary = simulate(model_path, start=out, output=tmp_path / "next.h5", steps=20, interval=10)
    assert summary.n_beads == 40 and summary.n_frames == 3
    # start from an all-atom frame: mapped with the model's mapping
    aa = ethane_mapping.templates["ethane"].repeat((1, 1, 1))
    aa.center(vacuum=6.0)
    aa.pbc = True
    aa.arrays[K.MOL_ID] = np.zeros(len(aa), dtype=int)
    aa.write(tmp_path / "aa.extxyz")
    summary = simulate(
        prior_model, start=tmp_path / "aa.extxyz", output=tmp_path / "aa_cg.h5", steps=5
    )
    assert summary.n_beads == 2
    with pytest.raises(InputError, match="cannot be combined"):
        simulate(prior_model, start=out, n_molecules=3, density=0.5)
    with pytest.raises(InputError, match="n_molecules and density"):
        simulate(prior_model)
    assert cli_main(["simulate", str(model_path), "--start", str(tmp_path / "nope.h5")]) == 1


def test_constraints_on_chains_sharing_beads():
    """Propane CH3–CH2–CH3: two bonds share the middle bead (two colour groups of bonds)."""
    template = molecule("C3H8")
    distances = template.get_all_distances()
    carbons = [i for i, z in enumerate(template.numbers) if z == 6]
    hydrogens = [i for i, z in enumerate(template.numbers) if z == 1]
    groups = [[c] + [h for h in hydrogens if distances[c, h] < 1.2] for c in carbons]
    mapping = CGMapping.from_groups(template, groups, name="propane")
    n = len(mapping.bead_types)
    model = CGModel(
        mapping.bead_types,
        [
            Repulsion(n, sigma=3.4, epsilon=0.01, cutoff=5.0),
            HarmonicBonds(n, k=20.0, r0=1.7),
            HarmonicAngles(n, k=2.0, theta0=1.95),
        ],
        mapping=mapping,
    ).double()
    atoms = build_cg_box(mapping, 12, 0.45, seed=2)
    before = bond_lengths(atoms, model)
    run_md(atoms, CGCalculator(model), steps=60, time_step_fs=6.0, constrain_bonds=True, seed=3)
    np.testing.assert_allclose(bond_lengths(atoms, model), before, atol=1e-8)


def test_npt_with_bond_constraints(prior_model):
    """Constrained bonds under NPT (Berendsen: ASE's MTK barostat takes no constraints)."""
    atoms = build_cg_box(prior_model, 27, 0.5, seed=9)
    before = bond_lengths(atoms, prior_model)
    volume = atoms.get_volume()
    summary = run_md(
        atoms,
        CGCalculator(prior_model),
        ensemble="npt",
        pressure=1000.0,
        steps=60,
        time_step_fs=4.0,
        constrain_bonds=True,
        seed=4,
    )
    assert summary.steps == 60
    assert atoms.get_volume() != pytest.approx(volume, rel=1e-6)
    np.testing.assert_allclose(bond_lengths(atoms, prior_model), before.mean(), atol=1e-6)


def test_non_finite_start_velocities_are_refused(prior_model):
    atoms = build_cg_box(prior_model, 8, 0.3, seed=1)
    velocities = np.zeros((len(atoms), 3))
    velocities[3, 1] = np.nan
    atoms.set_velocities(velocities)
    with pytest.raises(InputError, match="bead 3 starts with a non-finite velocity"):
        run_md(atoms, CGCalculator(prior_model), ensemble="nve", steps=5)


def test_langevin_holds_the_temperature(prior_model):
    """⟨T⟩ of 54 beads over 600 Langevin steps within 10 % of the target (σ of the mean ≈ 2 %)."""
    atoms = build_cg_box(prior_model, 27, 0.55, seed=12)
    calc = CGCalculator(prior_model)
    langevin = {"thermostat": "langevin", "friction": 0.05}
    run_md(atoms, calc, steps=200, time_step_fs=2.0, temperature=150.0, seed=1, **langevin)
    summary = run_md(
        atoms,
        calc,
        steps=600,
        time_step_fs=2.0,
        **langevin,
        temperature=150.0,
        interval=10,
        seed=2,
    )
    assert summary.temperature_K == pytest.approx(150.0, rel=0.1)


def test_repeated_box_has_the_same_energy_per_bead_and_whole_bonds(data_dir):
    """A mapped all-atom frame (beads wrapped one by one, so bonds cross the boundary) repeated
    2×1×3: bonds keep their lengths without the minimum image, molecule ids stay unique, and
    for the periodic model E(repeated) = 6 E(original), forces tile."""
    from ase_cg.md import repeat_molecules
    from ase_cg.model import load_model

    model = load_model(data_dir / "ethane_classical.pt")
    atoms = model.mapping.map(read_h5md(data_dir / "ethane_aa.h5", index=0))
    bonds = model.topology(atoms).bonds
    direct = np.linalg.norm(atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], axis=1)
    assert direct.max() > 5.0  # the frame has bonds across the boundary
    repeated = repeat_molecules(atoms, (2, 1, 3), bonds)
    assert len(repeated) == 6 * len(atoms)
    mol_ids = repeated.arrays[K.MOL_ID]
    assert len(np.unique(mol_ids)) == 6 * len(np.unique(atoms.arrays[K.MOL_ID]))
    repeated_bonds = model.topology(repeated).bonds
    vectors = repeated.positions[repeated_bonds[:, 1]] - repeated.positions[repeated_bonds[:, 0]]
    mic, _ = find_mic(vectors, repeated.cell, True)
    lengths = np.linalg.norm(mic, axis=1)
    original = np.linalg.norm(
        find_mic(atoms.positions[bonds[:, 1]] - atoms.positions[bonds[:, 0]], atoms.cell, True)[0],
        axis=1,
    )
    np.testing.assert_allclose(np.sort(lengths), np.sort(np.tile(original, 6)), atol=1e-9)
    atoms.calc = CGCalculator(model)
    repeated.calc = CGCalculator(model)
    assert repeated.get_potential_energy() == pytest.approx(
        6 * atoms.get_potential_energy(), rel=1e-10
    )
    np.testing.assert_allclose(repeated.get_forces()[: len(atoms)], atoms.get_forces(), atol=1e-9)
    with pytest.raises(InputError, match="three positive integers"):
        repeat_molecules(atoms, (2, 0, 1), bonds)


def test_default_nvt_is_bussi_and_holds_the_temperature(prior_model):
    """From a cold start (30 K) the default thermostat brings 54 beads to 150 K: ⟨T⟩ within 10 %."""
    atoms = build_cg_box(prior_model, 27, 0.55, seed=12)
    calc = CGCalculator(prior_model)
    run_md(atoms, calc, steps=1, temperature=30.0, seed=1)
    summary = run_md(atoms, calc, steps=1000, time_step_fs=2.0, temperature=150.0, seed=2)
    assert summary.thermostat == "bussi"
    late = run_md(atoms, calc, steps=600, time_step_fs=2.0, temperature=150.0, interval=10, seed=3)
    assert late.temperature_K == pytest.approx(150.0, rel=0.1)
    assert summary.temperature_K < late.temperature_K  # it did heat up from 30 K


def test_bussi_keeps_the_dynamics(prior_model):
    """Bussi rescales all velocities by one factor: E_total minus the energy the thermostat
    transferred is conserved as in NVE, while E_total itself changes by much more."""
    from ase_cg.md import _make_dynamics

    atoms, calc = equilibrated(prior_model)
    atoms.set_momenta(0.5 * atoms.get_momenta())  # away from 180 K: the thermostat must work
    dyn = _make_dynamics(
        atoms, "nvt", "bussi", 1.0 * units.fs, 180.0, None, None, np.random.default_rng(4), False
    )
    start = atoms.get_total_energy()
    dyn.run(500)
    total = atoms.get_total_energy()
    effective = total - dyn.transferred_energy
    assert abs(total - start) / len(atoms) > 20 * abs(effective - start) / len(atoms)
    assert abs(effective - start) / len(atoms) < 1e-4  # eV per bead, as NVE at 1 fs


def test_simulate_defaults_to_the_models_state_point(prior_model, tmp_path):
    """No temperature or density given: the new box has the model's training density and the
    start velocities its temperature (200 beads: σ_T ≈ 7 %), not some fixed default."""
    model = copy.deepcopy(prior_model)
    model.provenance["reference_state"] = {"temperature_K": 120.0, "density_g_cm3": 0.45}
    simulate(model, n_molecules=100, output=tmp_path / "run.h5", steps=1, interval=1, seed=4)
    first = read_h5md(tmp_path / "run.h5", index=0)
    assert density(first)[0] == pytest.approx(0.45, rel=1e-6)  # box stored as float32
    kinetic = 0.5 * (first.get_masses()[:, None] * first.get_velocities() ** 2).sum()
    temperature = 2 * kinetic / (3 * len(first) - 3) / units.kB
    assert temperature == pytest.approx(120.0, rel=0.25)
