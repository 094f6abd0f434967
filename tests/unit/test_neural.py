"""NeuralPotential (SchNet over beads): forces, stress, invariances, model files, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ase_cg import _keys as K
from ase_cg.errors import InputError
from ase_cg.model import load_model, save_model
from ase_cg.potentials import CGModel, HarmonicBonds, Repulsion, SystemTopology, make_batch
from ase_cg.potentials.neural import (
    FilterTable,
    NeuralPotential,
    NeuralPotentialError,
    evaluate_layers,
)
from ase_cg.testing import check_gradient, check_strain_derivative
from lammps_interface.torchscript import METADATA_FILE, write_neural_term

CUTOFF = 5.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def dimer_liquid(rng, n_molecules=20, box=10.0):
    """Periodic liquid of A–B dimers in a triclinic cell, wrapped so dimers straddle the edges."""
    cell = np.diag([box, box * 1.05, box * 0.95])
    cell[1, 0], cell[2, 0], cell[2, 1] = 0.8, -0.6, 0.5
    centres = rng.uniform(0, 1, (n_molecules, 3)) @ cell
    direction = rng.normal(size=(n_molecules, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    positions = np.concatenate([centres - 0.8 * direction, centres + 0.8 * direction])
    positions = (np.linalg.solve(cell.T, positions.T).T % 1.0) @ cell
    types = np.repeat([0, 1], n_molecules)
    bonds = np.stack([np.arange(n_molecules), np.arange(n_molecules) + n_molecules], axis=1)
    topology = SystemTopology(types, bonds, np.zeros((0, 3)), np.zeros((0, 4)))
    return positions, cell, topology


def randomise(module: torch.nn.Module, seed: int = 7, scale: float = 0.3) -> None:
    """Give every parameter non-trivial random values (the untrained head starts at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_(scale * noise)


def neural_model(dtype=torch.float64, with_prior=True):
    term = NeuralPotential(
        2, n_atom_basis=16, n_filters=12, n_interactions=2, n_rbf=8, cutoff=CUTOFF
    )
    randomise(term)
    term.set_energy_shift([0.1, -0.2])
    terms = [term]
    if with_prior:
        terms += [Repulsion(2, sigma=1.5, cutoff=3.0), HarmonicBonds(2, k=5.0, r0=1.6)]
    return CGModel(["A", "B"], terms).to(dtype)


def evaluate(model, positions, cell, topology, **kwargs):
    batch = make_batch(positions, cell, topology, model.cutoff)
    return model(batch, **kwargs)


def energy(model, positions, cell, topology) -> float:
    return evaluate(model, positions, cell, topology, compute_forces=False)[K.ENERGY].item()


def test_untrained_term_adds_zero_energy(rng):
    positions, cell, topology = dimer_liquid(rng)
    term = NeuralPotential(2, cutoff=CUTOFF)
    bead_energies = evaluate(CGModel(["A", "B"], [term]), positions, cell, topology)
    assert torch.count_nonzero(bead_energies[K.BEAD_ENERGIES]) == 0
    assert term.kind == "manybody"
    assert term.cutoff == CUTOFF and term.message_passing_layers == 3


def test_forces_equal_finite_differences(rng):
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model()
    forces = evaluate(model, positions, cell, topology)[K.FORCES].detach().numpy()
    assert np.abs(forces).max() > 1e-2
    check_gradient(
        lambda x: energy(model, x, cell, topology),
        positions,
        forces,
        indices=rng.choice(len(positions), 5, replace=False),
        rtol=1e-5,
        atol=1e-7,
    )


def test_neural_term_alone_forces_equal_finite_differences(rng):
    """Without the prior, so a mistake in the SchNet gradient cannot hide behind it."""
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model(with_prior=False)
    forces = evaluate(model, positions, cell, topology)[K.FORCES].detach().numpy()
    check_gradient(lambda x: energy(model, x, cell, topology), positions, forces, indices=[3])
    assert np.abs(forces[3]).max() > 1e-3


def test_stress_equals_strain_derivative(rng):
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model(with_prior=False)
    stress = evaluate(model, positions, cell, topology, compute_stress=True)[K.STRESS][0]
    stress = stress.detach().numpy()
    check_strain_derivative(
        lambda x, h: energy(model, x, h, topology), positions, cell, stress, rtol=1e-5, atol=1e-9
    )
    assert np.abs(stress).max() > 1e-5
    np.testing.assert_allclose(stress, stress.T, atol=1e-10)


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_energy_invariant_to_rotation_translation_and_images(rng):
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model()
    reference = energy(model, positions, cell, topology)
    rotation = random_rotation(rng)
    assert energy(model, positions @ rotation.T, cell @ rotation.T, topology) == pytest.approx(
        reference, rel=1e-12
    )
    shifted = positions + np.array([3.3, -1.7, 20.0])
    assert energy(model, shifted, cell, topology) == pytest.approx(reference, rel=1e-12)
    images = positions + rng.integers(-2, 3, (len(positions), 3)) @ cell
    assert energy(model, images, cell, topology) == pytest.approx(reference, rel=1e-12)


def test_energy_invariant_to_bead_permutation(rng):
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model()
    reference = evaluate(model, positions, cell, topology)
    order = rng.permutation(len(positions))
    inverse = np.argsort(order)
    permuted = SystemTopology(
        topology.bead_type_index[order], inverse[topology.bonds], np.zeros((0, 3)), np.zeros((0, 4))
    )
    out = evaluate(model, positions[order], cell, permuted)
    assert out[K.ENERGY].item() == pytest.approx(reference[K.ENERGY].item(), rel=1e-12)
    torch.testing.assert_close(out[K.FORCES], reference[K.FORCES][order])
    torch.testing.assert_close(out[K.BEAD_ENERGIES], reference[K.BEAD_ENERGIES][order])


def test_small_box_sees_several_images_of_a_neighbour(rng):
    """A cell shorter than the cutoff: every periodic image counts, and rewrapping is harmless."""
    positions, cell, topology = dimer_liquid(rng, n_molecules=2, box=4.0)
    model = neural_model(with_prior=False)
    batch = make_batch(positions, cell, topology, model.cutoff)
    assert np.any(batch[K.PAIR_I].numpy() == batch[K.PAIR_J].numpy())  # self images present
    reference = energy(model, positions, cell, topology)
    images = positions + rng.integers(-3, 4, (len(positions), 3)) @ cell
    assert energy(model, images, cell, topology) == pytest.approx(reference, rel=1e-12)
    doubled_cell = cell.copy()
    doubled_cell[0] *= 2
    doubled = np.concatenate([positions, positions + cell[0]])
    doubled_topology = SystemTopology(
        np.tile(topology.bead_type_index, 2),
        np.zeros((0, 2)),
        np.zeros((0, 3)),
        np.zeros((0, 4)),
    )
    # the energy is extensive: a 2× supercell has twice the energy
    assert energy(model, doubled, doubled_cell, doubled_topology) == pytest.approx(
        2 * reference, rel=1e-10
    )


def test_float32_weights_take_and_return_float64(rng):
    positions, cell, topology = dimer_liquid(rng)
    model64 = neural_model(torch.float64, with_prior=False)
    model32 = neural_model(torch.float32, with_prior=False)
    assert model32.dtype == torch.float32
    out32 = evaluate(model32, positions, cell, topology)
    out64 = evaluate(model64, positions, cell, topology)
    assert out32[K.ENERGY].dtype == torch.float64
    torch.testing.assert_close(out32[K.FORCES], out64[K.FORCES], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_model_file_round_trip(rng, tmp_path, dtype):
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model(dtype)
    loaded = load_model(save_model(model, tmp_path / "neural.pt"))
    assert loaded.dtype == dtype
    assert loaded.cutoff == CUTOFF
    assert isinstance(loaded.terms[0], NeuralPotential)
    assert loaded.terms[0].config() == model.terms[0].config()
    out, reference = (evaluate(m, positions, cell, topology) for m in (loaded, model))
    assert torch.equal(out[K.ENERGY], reference[K.ENERGY])
    assert torch.equal(out[K.FORCES], reference[K.FORCES])


def test_bad_settings_raise():
    with pytest.raises(NeuralPotentialError, match="n_interactions"):
        NeuralPotential(2, n_interactions=0)
    with pytest.raises(NeuralPotentialError, match="cutoff"):
        NeuralPotential(2, cutoff=-1.0)
    with pytest.raises(NeuralPotentialError, match="head_activation"):
        NeuralPotential(2, head_activation="relu")
    with pytest.raises(NeuralPotentialError, match="one value"):
        NeuralPotential(2).set_energy_shift([1.0, 2.0, 3.0])


def pair_inputs(model, positions, cell, topology):
    """Bead types and directed pairs (as the LAMMPS plugin passes them) of one frame."""
    batch = make_batch(positions, cell, topology, model.cutoff)
    shifts = batch[K.PAIR_SHIFTS] @ batch[K.CELL][0]
    return batch, shifts


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torchscript_export_equals_eager(rng, tmp_path, dtype):
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model(dtype, with_prior=False)
    term = model.terms[0]
    path = write_neural_term(term, tmp_path / "schnet.pt", ["A", "B"], filter_spacing=None)
    extra = {METADATA_FILE: ""}
    scripted = torch.jit.load(str(path), _extra_files=extra)
    metadata = json.loads(extra[METADATA_FILE])
    assert metadata == {
        "format": "ase_cg.cgtorch",
        "version": 2,
        "bead_type_names": ["A", "B"],
        "cutoff": CUTOFF,
        "n_interactions": 2,
        "dtype": str(dtype).removeprefix("torch."),
        "units": {"energy": "eV", "length": "Angstrom"},
    }
    reference = evaluate(model, positions, cell, topology)
    batch, shifts = pair_inputs(model, positions, cell, topology)
    x = batch[K.POSITIONS].clone().requires_grad_(True)
    # the plugin passes each pair once (LAMMPS's half list): keep one direction of each
    pair_i, pair_j = batch[K.PAIR_I], batch[K.PAIR_J]
    half = pair_i < pair_j
    assert 2 * int(half.sum()) == len(pair_i)  # no bead sees its own image in this box
    pair_i, pair_j = pair_i[half], pair_j[half]
    vectors = (x[pair_j] - x[pair_i] + shifts[half]).to(dtype)
    n = len(positions)
    energies = evaluate_layers(scripted, 2, batch[K.BEAD_TYPE_INDEX], pair_i, pair_j, vectors)
    assert energies.shape == (n,) and energies.dtype == dtype
    (gradient,) = torch.autograd.grad(energies.sum(), x)
    tolerance = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
    torch.testing.assert_close(
        energies.double(), reference[K.BEAD_ENERGIES].detach().double(), **tolerance
    )
    torch.testing.assert_close(-gradient, reference[K.FORCES], **tolerance)


def half_list_inputs(model, positions, cell, topology):
    """Bead types, half-list pairs and a function of positions giving their vectors."""
    batch, shifts = pair_inputs(model, positions, cell, topology)
    half = batch[K.PAIR_I] < batch[K.PAIR_J]
    pair_i, pair_j = batch[K.PAIR_I][half], batch[K.PAIR_J][half]
    return batch[K.BEAD_TYPE_INDEX], pair_i, pair_j, lambda x: x[pair_j] - x[pair_i] + shifts[half]


def test_filter_tables_converge_as_the_spacing_squared(rng, tmp_path):
    """The plugin's filter tables: forces and energies of the exported (scripted) term approach
    the eager model's as h², and are within 1e-5 of the largest force at the default spacing."""
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model(torch.float64, with_prior=False)
    term = model.terms[0]
    reference = evaluate(model, positions, cell, topology)
    types, pair_i, pair_j, vectors_of = half_list_inputs(model, positions, cell, topology)
    force_errors, energy_errors = [], []
    for spacing in (0.004, 0.002):
        path = write_neural_term(
            term, tmp_path / f"{spacing}.pt", ["A", "B"], filter_spacing=spacing
        )
        x = torch.as_tensor(positions).requires_grad_(True)
        energies = evaluate_layers(
            torch.jit.load(str(path)), 2, types, pair_i, pair_j, vectors_of(x)
        )
        (gradient,) = torch.autograd.grad(energies.sum(), x)
        forces = reference[K.FORCES]
        force_errors.append(float((-gradient - forces).abs().max() / forces.abs().max()))
        bead_energies = reference[K.BEAD_ENERGIES].detach()
        energy_errors.append(float((energies.detach() - bead_energies).abs().max()))
    assert force_errors[1] < 1e-5 and energy_errors[1] < 1e-5 * float(bead_energies.abs().max())
    assert 3.0 < force_errors[0] / force_errors[1] < 5.0
    assert 3.0 < energy_errors[0] / energy_errors[1] < 5.0


def test_filter_table_forces_are_continuous_across_grid_points():
    """Autograd sees the interpolated exact derivative, not the slope of the interpolated
    filter (which jumps by about h·W\'\' at every grid point)."""
    model = neural_model(torch.float64, with_prior=False)
    table = FilterTable(model.terms[0].network, 0, spacing=0.01)
    weights = torch.linspace(-1.0, 1.0, table.n_filters, dtype=torch.float64)

    def slope(r):
        distance = torch.tensor([[r, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
        (gradient,) = torch.autograd.grad((table(distance) * weights).sum(), distance)
        return float(gradient[0, 0])

    node = 250 * table.spacing
    jump = abs(slope(node - 1e-9) - slope(node + 1e-9))
    scale = abs(slope(node)) + 1e-3
    assert jump < 1e-6 * scale
    assert slope(CUTOFF + 0.01) == 0.0 and slope(CUTOFF - 0.2) != 0.0


def test_export_checks_metadata(tmp_path):
    term = NeuralPotential(2, cutoff=CUTOFF)
    with pytest.raises(InputError, match="the term has 2 bead types"):
        write_neural_term(term, tmp_path / "a.pt", ["A"])
    with pytest.raises(InputError, match="all distinct"):
        write_neural_term(term, tmp_path / "a.pt", ["A", "A"])
    assert not list(tmp_path.iterdir())


def test_force_matching_loss_reaches_every_weight(rng):
    """The trainer differentiates forces (create_graph) with respect to every parameter."""
    positions, cell, topology = dimer_liquid(rng)
    model = neural_model(torch.float32, with_prior=False)
    batch = make_batch(positions, cell, topology, model.cutoff)
    out = model(batch, create_graph=True)
    loss = (out[K.FORCES] ** 2).mean()
    loss.backward()
    for name, parameter in model.named_parameters():
        if name == "terms.0.network.head.2.bias":
            assert parameter.grad is None  # a constant energy per bead exerts no force
            continue
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().max() > 0, name
