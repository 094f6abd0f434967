"""CGCalculator: ASE contract, finite-difference forces and stress, invariances, neighbour reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import CalculatorSetupError, PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces

from ase_cg import _keys as K
from ase_cg.calculator import CGAtomsError, CGCalculator
from ase_cg.model import save_model
from ase_cg.potentials import CGModel, Repulsion, make_batch
from ase_cg.testing import check_forces, check_rigid_motion, check_stress


def repulsion_model(cutoff=6.0):
    """A two-type prior model without bonds (no mapping): a soft repulsive liquid."""
    term = Repulsion(2, sigma=[[3.2, 3.0], [3.0, 2.8]], epsilon=0.02, power=12, cutoff=cutoff)
    return CGModel(["A", "B"], [term]).double()


def bead_liquid(rng, n_side=4, spacing=3.6, jitter=0.25, triclinic=True):
    """Periodic liquid of single beads of types A and B on a jittered lattice (no overlaps)."""
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cell = np.eye(3) * n_side * spacing
    if triclinic:
        cell[1, 0], cell[2, 0], cell[2, 1] = 1.1, -0.8, 0.6
    fractional = (grid + 0.5 + rng.normal(0, jitter / spacing, grid.shape)) / n_side
    atoms = Atoms(
        numbers=np.zeros(len(grid), int), positions=fractional @ cell, cell=cell, pbc=True
    )
    atoms.arrays[K.BEAD_TYPE] = np.array(rng.choice(["A", "B"], len(atoms)))
    atoms.set_masses(np.full(len(atoms), 15.0))
    return atoms


def test_forces_equal_finite_differences(rng):
    atoms = bead_liquid(rng)
    atoms.calc = CGCalculator(repulsion_model())
    check_forces(atoms, indices=rng.choice(len(atoms), 8, replace=False))
    assert np.abs(atoms.get_forces()).max() > 1e-2  # the check is not vacuous


def test_stress_equals_strain_derivative(rng):
    atoms = bead_liquid(rng)
    atoms.calc = CGCalculator(repulsion_model())
    check_stress(atoms)
    stress = atoms.get_stress()
    assert stress.shape == (6,)
    assert np.abs(stress[:3]).max() > 1e-5


def test_results_follow_the_ase_contract(rng):
    atoms = bead_liquid(rng)
    calc = CGCalculator(repulsion_model())
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    assert calc.implemented_properties is CGCalculator.implemented_properties
    assert set(calc.results) == {"energy", "free_energy", "forces", "stress", "energies"}
    assert isinstance(energy, float)
    assert atoms.get_potential_energy(force_consistent=True) == energy
    for name in ("forces", "stress", "energies"):
        assert calc.results[name].dtype == np.float64
    assert atoms.get_potential_energies().sum() == pytest.approx(energy, rel=1e-12)
    # cached: asking again without a change evaluates nothing new
    calc.results["energy"] = 123.0
    assert atoms.get_potential_energy() == 123.0
    atoms.positions[0, 0] += 0.01
    assert atoms.get_potential_energy() != 123.0


def test_forces_equal_the_models_batched_forces(rng):
    atoms = bead_liquid(rng)
    model = repulsion_model()
    atoms.calc = CGCalculator(model, skin=1.5)
    topology = model.topology(atoms)
    batch = make_batch(atoms.positions, atoms.cell.array, topology, model.cutoff)
    out = model(batch, compute_stress=True)
    np.testing.assert_allclose(atoms.get_forces(), out[K.FORCES].detach().numpy(), atol=1e-12)
    assert atoms.get_potential_energy() == pytest.approx(out[K.ENERGY].item(), rel=1e-12)
    np.testing.assert_allclose(
        atoms.get_stress(voigt=False), out[K.STRESS][0].detach().numpy(), atol=1e-14
    )


def test_results_unchanged_by_translation_and_rewrapping(rng):
    atoms = bead_liquid(rng)
    check_rigid_motion(atoms, lambda: CGCalculator(repulsion_model()), atol=1e-11)
    moved = atoms.copy()
    moved.positions += rng.integers(-2, 3, (len(moved), 1)) * moved.cell[1]
    moved.wrap()
    check_rigid_motion(moved, lambda: CGCalculator(repulsion_model()), atol=1e-11)


def test_neighbour_list_is_reused_within_half_the_skin(rng):
    atoms = bead_liquid(rng)
    calc = CGCalculator(repulsion_model(), skin=1.0)
    atoms.calc = calc
    atoms.get_forces()
    assert calc.neighbor_list_builds == 1
    for _ in range(3):  # small moves: below skin/2 in total
        atoms.positions += rng.uniform(-0.14, 0.14, atoms.positions.shape)
        reused = atoms.get_forces()
        fresh = CGCalculator(repulsion_model(), skin=0.0).get_forces(atoms)
        np.testing.assert_allclose(reused, fresh, atol=1e-12)
    assert calc.neighbor_list_builds == 1
    atoms.positions[5] += [0.0, 0.0, 0.6]  # one bead beyond skin/2 of where the list was built
    moved = atoms.get_forces()
    assert calc.neighbor_list_builds == 2
    np.testing.assert_allclose(moved, CGCalculator(repulsion_model()).get_forces(atoms), atol=1e-12)
    atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
    atoms.get_forces()
    assert calc.neighbor_list_builds == 3


def test_stale_neighbour_list_would_be_wrong(rng):
    """A pair from beyond cutoff + skin moving into the cutoff is found: the list was rebuilt."""
    atoms = bead_liquid(rng, jitter=0.0, triclinic=False)  # 3.6 Å lattice, nothing within 3.5 Å
    calc = CGCalculator(repulsion_model(cutoff=3.3), skin=0.2)
    atoms.calc = calc
    assert atoms.get_potential_energy() == 0.0
    atoms.positions[0] += [0.4, 0.0, 0.0]  # now 3.2 Å from its +x neighbour
    after = atoms.get_potential_energy()
    assert calc.neighbor_list_builds == 2
    assert after > 0.0  # a stale list (pairs within 3.5 Å at the start) would give exactly 0
    fresh = CGCalculator(repulsion_model(cutoff=3.3), skin=0.0).get_potential_energy(atoms)
    assert after == pytest.approx(fresh, rel=1e-12)


def test_bead_type_change_alone_gives_new_results(rng):
    atoms = bead_liquid(rng)
    atoms.calc = CGCalculator(repulsion_model())
    before = atoms.get_potential_energy()
    atoms.arrays[K.BEAD_TYPE][:] = "A"
    after = atoms.get_potential_energy()
    assert after != before
    assert after == pytest.approx(
        CGCalculator(repulsion_model()).get_potential_energy(atoms), rel=1e-12
    )


def test_model_file_float32_and_device_options(rng, tmp_path):
    atoms = bead_liquid(rng)
    model = repulsion_model()
    path = save_model(model, tmp_path / "model.pt")
    from_file = CGCalculator(path)
    reference = CGCalculator(model)
    np.testing.assert_allclose(from_file.get_forces(atoms), reference.get_forces(atoms), atol=1e-14)
    single = CGCalculator(model, dtype="float32")
    assert single.model.dtype == torch.float32
    assert model.dtype == torch.float64  # the caller's model is not changed
    forces = single.get_forces(atoms)
    assert forces.dtype == np.float64
    np.testing.assert_allclose(forces, reference.get_forces(atoms), rtol=1e-4, atol=1e-5)
    assert all(not p.requires_grad for p in from_file.model.parameters())


def test_isolated_beads_have_no_stress(rng):
    atoms = bead_liquid(rng, n_side=2)
    atoms.pbc = False
    atoms.cell = None
    atoms.calc = CGCalculator(repulsion_model())
    forces = atoms.get_forces()
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-12)
    numeric = calculate_numerical_forces(atoms, eps=1e-5, iatoms=[0, 3])
    np.testing.assert_allclose(forces[[0, 3]], numeric, rtol=1e-6, atol=1e-8)
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        atoms.get_stress()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda a: a.arrays.pop(K.BEAD_TYPE), "bead-type"),
        (lambda a: a.arrays[K.BEAD_TYPE].__setitem__(3, "C"), "bead 3 has type 'C'"),
        (lambda a: a.set_pbc([True, True, False]), "pbc"),
        (lambda a: a.set_cell(np.zeros((3, 3))), "no volume"),
        (lambda a: a.positions.__setitem__((2, 1), np.nan), "bead 2"),
    ],
)
def test_bad_atoms_give_clear_errors(rng, damage, message):
    atoms = bead_liquid(rng, n_side=2)
    atoms.arrays[K.BEAD_TYPE] = atoms.arrays[K.BEAD_TYPE].astype("<U2")
    damage(atoms)
    calc = CGCalculator(repulsion_model())
    with pytest.raises(CGAtomsError, match=message) as info:
        calc.get_forces(atoms)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CalculatorSetupError)


def test_bad_arguments():
    with pytest.raises(TypeError, match="CGModel or the path"):
        CGCalculator(42)
    with pytest.raises(ValueError, match="skin"):
        CGCalculator(repulsion_model(), skin=-1.0)
    with pytest.raises(ValueError, match="dtype"):
        CGCalculator(repulsion_model(), dtype="float16")


def test_switching_periodicity_rebuilds_the_list(rng):
    atoms = bead_liquid(rng, n_side=3)
    calc = CGCalculator(repulsion_model())
    periodic = calc.get_potential_energy(atoms)
    atoms.pbc = False
    isolated = calc.get_potential_energy(atoms)
    assert calc.neighbor_list_builds == 2
    assert isolated < periodic  # fewer pairs without the periodic images
    assert isolated == pytest.approx(
        CGCalculator(repulsion_model()).get_potential_energy(atoms), rel=1e-12
    )


def test_an_error_leaves_no_stale_topology(rng):
    good = bead_liquid(rng, n_side=2)
    calc = CGCalculator(repulsion_model())
    calc.get_potential_energy(good)
    bad = good.copy()
    bad.arrays[K.BEAD_TYPE] = np.array(["C"] * len(bad))
    for _ in range(2):  # asking again must fail again, not reuse the good atoms' bead types
        with pytest.raises(CGAtomsError, match="type 'C'"):
            calc.get_potential_energy(bad)


def test_compiled_neural_term_equals_eager(rng, tmp_path):
    """``compile=True`` (torch.compile of the SchNet network) gives the eager results, also
    after a neighbour-list rebuild changes the number of pairs, and leaves the model savable."""
    from torch._dynamo.utils import counters

    from ase_cg.potentials import NeuralPotential

    torch.manual_seed(3)
    schnet = NeuralPotential(2, n_atom_basis=8, n_filters=8, n_interactions=2, n_rbf=6, cutoff=5.0)
    with torch.no_grad():
        for parameter in schnet.parameters():
            parameter.normal_(0.0, 0.3)
    model = CGModel(["A", "B"], [*repulsion_model().terms, schnet]).double()
    eager, compiled = CGCalculator(model, skin=0.0), CGCalculator(model, skin=0.0, compile=True)
    atoms = bead_liquid(rng)
    for _ in range(2):  # skin 0: the second call builds a new list with other pair counts
        atoms.positions += rng.normal(0, 0.2, atoms.positions.shape)
        for name in ("forces", "stress", "energies"):
            np.testing.assert_allclose(
                compiled.get_property(name, atoms),
                eager.get_property(name, atoms),
                rtol=1e-10,
                atol=1e-12,
            )
    assert compiled.neighbor_list_builds == 2
    assert counters["stats"]["unique_graphs"] >= 1  # TorchDynamo did compile the network
    assert set(compiled.model.state_dict()) == set(model.state_dict())
    save_model(compiled.model, tmp_path / "compiled.pt")
