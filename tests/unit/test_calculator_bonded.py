"""CGCalculator on molecules from a real CGMapping: bonds, angles, SchNet, mapped frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from ase_cg import _keys as K
from ase_cg.calculator import CGAtomsError, CGCalculator
from ase_cg.mapping import CGMapping
from ase_cg.md import build_cg_box
from ase_cg.model import load_model, save_model
from ase_cg.potentials import (
    CGModel,
    HarmonicAngles,
    HarmonicBonds,
    NeuralPotential,
    Repulsion,
    make_batch,
)

torch.set_num_threads(1)


def propane_mapping():
    """Propane → CH3–CH2–CH3."""
    return carbon_mapping("C3H8", "propane")


def propane_model(neural_dtype=torch.float64, seed=0):
    """Prior (repulsion, bonds, angles) + a small SchNet with random weights (a real many-body
    term: the last layer is set non-zero so the SchNet energy is not zero)."""
    mapping = propane_mapping()
    n = len(mapping.bead_types)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        neural = NeuralPotential(
            n, n_atom_basis=16, n_filters=16, n_interactions=2, n_rbf=8, cutoff=6.0
        )
        for parameter in neural.parameters():
            parameter.data.normal_(0.0, 0.3)
    terms = [
        Repulsion(n, sigma=3.3, epsilon=0.01, power=12, cutoff=5.0),
        HarmonicBonds(n, k=20.0, r0=1.75),
        HarmonicAngles(n, k=2.0, theta0=2.0),
        neural.to(neural_dtype),
    ]
    return CGModel(mapping.bead_types, terms, mapping=mapping).double(), mapping


@pytest.fixture(scope="module")
def liquid():
    model, mapping = propane_model()
    atoms = build_cg_box(mapping, 16, 0.45, seed=11)
    rng = np.random.default_rng(3)
    atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)  # bend bonds and angles
    atoms.translate(atoms.cell.lengths() / 6)  # lattice sites onto the faces: cut molecules
    atoms.wrap()
    return model, atoms


def test_topology_from_the_mapping(liquid):
    model, atoms = liquid
    topology = model.topology(atoms)
    assert topology.bonds.shape == (32, 2) and topology.angles.shape == (16, 3)
    assert set(atoms.arrays[K.BEAD_TYPE]) == {"CH2", "CH3"}
    # some molecules straddle the box boundary: bonded terms must use the minimum image
    raw = np.linalg.norm(
        atoms.positions[topology.bonds[:, 1]] - atoms.positions[topology.bonds[:, 0]], axis=1
    )
    assert raw.max() > 5.0


def test_forces_and_stress_equal_finite_differences(liquid):
    model, atoms = liquid
    atoms = atoms.copy()
    atoms.calc = CGCalculator(model)
    forces = atoms.get_forces()
    beads = [0, 1, 2, 17, 40]
    numeric = calculate_numerical_forces(atoms, eps=1e-5, iatoms=beads)
    np.testing.assert_allclose(forces[beads], numeric, rtol=1e-6, atol=1e-7)
    stress = atoms.get_stress()
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-6), atol=1e-9)
    assert np.abs(stress).max() > 1e-5
    # the SchNet term contributes: forces differ from the prior's alone
    prior = CGModel(model.bead_type_names, list(model.terms)[:3], mapping=model.mapping)
    assert np.abs(CGCalculator(prior).get_forces(atoms) - forces).max() > 1e-3


def test_mixed_precision_model_equals_batched_forces(liquid):
    """float32 SchNet weights next to a float64 prior, as neural models are trained."""
    _, atoms = liquid
    model, _ = propane_model(neural_dtype=torch.float32)
    calc = CGCalculator(model, skin=0.7)
    batch = make_batch(atoms.positions, atoms.cell.array, model.topology(atoms), model.cutoff)
    out = model(batch, compute_stress=True)
    np.testing.assert_allclose(calc.get_forces(atoms), out[K.FORCES].detach().numpy(), atol=1e-6)
    assert calc.get_potential_energy(atoms) == pytest.approx(out[K.ENERGY].item(), rel=1e-6)
    assert calc.results["forces"].dtype == np.float64


def test_translation_and_rewrapping_keep_results(liquid):
    model, atoms = liquid
    calc = CGCalculator(model)
    energy, forces, stress = (
        calc.get_potential_energy(atoms),
        calc.get_forces(atoms),
        calc.get_stress(atoms),
    )
    moved = atoms.copy()
    moved.translate([4.1, -7.7, 2.2])
    moved.wrap()  # cuts molecules differently at the boundary
    other = CGCalculator(model)
    assert other.get_potential_energy(moved) == pytest.approx(energy, rel=1e-11)
    np.testing.assert_allclose(other.get_forces(moved), forces, atol=1e-10)
    np.testing.assert_allclose(other.get_stress(moved), stress, atol=1e-12)


def test_model_file_round_trip(liquid, tmp_path):
    model, atoms = liquid
    path = save_model(model, tmp_path / "propane.pt")
    calc = CGCalculator(path)
    assert calc.model.mapping.molecule_types == ["propane"]
    np.testing.assert_allclose(
        calc.get_forces(atoms), CGCalculator(load_model(path)).get_forces(atoms), atol=0
    )
    np.testing.assert_allclose(
        calc.get_forces(atoms), CGCalculator(model).get_forces(atoms), atol=1e-12
    )


def test_mapped_all_atom_frame():
    model, mapping = propane_model()
    template = mapping.templates["propane"]
    aa = template.copy()
    second = template.copy()
    second.translate([5.0, 0.5, 0.0])
    aa += second
    aa.set_cell([14.0, 12.0, 12.0])
    aa.pbc = True
    aa.positions += [12.0, 1.0, 1.0]  # the first molecule crosses the boundary
    aa.arrays[K.MOL_ID] = np.repeat([0, 1], len(template))
    cg = mapping.map(aa)
    calc = CGCalculator(model)
    forces = calc.get_forces(cg)
    assert forces.shape == (6, 3)
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10)
    assert len(model.topology(cg).angles) == 2


def test_bad_molecules_give_clear_errors(liquid):
    model, atoms = liquid
    calc = CGCalculator(model)
    no_ids = atoms.copy()
    del no_ids.arrays[K.MOL_ID]
    with pytest.raises(CGAtomsError, match="molecule ids"):
        calc.get_forces(no_ids)
    wrong = atoms.copy()
    wrong.arrays[K.MOL_ID][0] = 999  # one bead cut off its molecule
    with pytest.raises(CGAtomsError, match="do not match the model's mapping"):
        CGCalculator(model).get_forces(wrong)


def carbon_mapping(name, label=None):
    """Each carbon with its hydrogens as one bead (butane → CH3–CH2–CH2–CH3)."""
    template = molecule(name)
    carbons = [i for i, z in enumerate(template.numbers) if z == 6]
    hydrogens = [i for i, z in enumerate(template.numbers) if z == 1]
    distances = template.get_all_distances()
    groups = [[c] + [h for h in hydrogens if distances[c, h] < 1.2] for c in carbons]
    return CGMapping.from_groups(template, groups, name=label or name)


def classical_butane_model():
    """Pair, bond, angle and dihedral splines with random coefficients; sampled ranges set so
    that some instances sit in the repulsive extrapolation."""
    from ase_cg.potentials.classical import AngleSpline, BondSpline, DihedralSpline, PairSpline

    mapping = carbon_mapping("trans-butane")
    n = len(mapping.bead_types)
    rng = np.random.default_rng(7)
    terms = [
        PairSpline(n, 2.0, 6.0, 16),
        BondSpline(n, 1.0, 2.4, 10),
        AngleSpline(n, 0.5, np.pi, 12),
        DihedralSpline(n, 12),
    ]
    for term in terms:
        c = term.coefficients
        c.copy_(torch.as_tensor(rng.normal(0.0, 0.02, tuple(c.shape))))
        if term.fixed_tail:
            c[:, -term.fixed_tail :] = 0.0
    terms[0].lower.fill_(3.6)  # closer pairs: repulsive extrapolation
    terms[1].lower.fill_(1.45)
    terms[1].upper.fill_(1.65)  # bonds outside [1.45, 1.65] Å: extrapolation both ways
    return CGModel(mapping.bead_types, terms, mapping=mapping).double(), mapping


def test_classical_spline_model(tmp_path):
    model, mapping = classical_butane_model()
    atoms = build_cg_box(mapping, 12, 0.5, seed=4)
    rng = np.random.default_rng(1)
    atoms.positions += rng.normal(0, 0.08, atoms.positions.shape)
    atoms.translate(atoms.cell.lengths() / 6)
    atoms.wrap()
    topology = model.topology(atoms)
    assert len(topology.dihedrals) == 12
    atoms.calc = CGCalculator(save_model(model, tmp_path / "classical.pt"))
    forces = atoms.get_forces()
    beads = [0, 1, 2, 3, 21]
    numeric = calculate_numerical_forces(atoms, eps=1e-5, iatoms=beads)
    np.testing.assert_allclose(forces[beads], numeric, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-6), atol=1e-9
    )
    batch = make_batch(atoms.positions, atoms.cell.array, topology, model.cutoff)
    np.testing.assert_allclose(forces, model(batch)[K.FORCES].detach().numpy(), atol=1e-12)
    assert np.abs(forces).max() > 1e-2
