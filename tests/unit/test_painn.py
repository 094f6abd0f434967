"""PaiNNPotential (PaiNN over beads): schnetpack parity, forces, stress, invariances, files, export.

schnetpack 2.1.1's PaiNN + Atomwise with random float64 weights is the reference
implementation; the rest checks physics (finite differences, invariances) and the plugin's
layer-wise view on a half list.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import vesin
from _torch import randomise
from ase import Atoms

from ase_cg import _keys as K
from ase_cg.model import load_model, save_model
from ase_cg.potentials import (
    CGModel,
    HarmonicBonds,
    PaiNNPotential,
    Repulsion,
    SystemTopology,
    make_batch,
)
from ase_cg.potentials.build import NeuralConfig, NeuralConfigError, build_neural_model
from ase_cg.potentials.neural import NeuralPotentialError, evaluate_layers
from ase_cg.potentials.schnetpack_compat import SchnetpackCompatError, import_schnetpack
from ase_cg.testing import check_gradient, check_strain_derivative
from lammps_interface.torchscript import METADATA_FILE, write_neural_term

CUTOFF = 5.0
SPK_CUTOFF = 5.5
TYPE_MAP = [8, 1]  # bead type A ↔ schnetpack's oxygen row, B ↔ hydrogen row
NO_BONDS = (np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4)))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def spk():
    try:
        return import_schnetpack()
    except ImportError:
        pytest.skip("schnetpack is not installed (optional extra)")


def painn_term(dtype=torch.float64, seed=7, **options) -> PaiNNPotential:
    """A small two-type PaiNN with non-trivial random weights (the last head layer included)."""
    settings = {"n_atom_basis": 8, "n_interactions": 2, "n_rbf": 8, "cutoff": CUTOFF}
    term = PaiNNPotential(2, **{**settings, **options}).to(dtype)
    randomise(term, seed=seed, scale=0.3)
    term.set_energy_shift([0.1, -0.2])
    return term


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


def evaluate(model, positions, cell, topology, pbc=True, **kwargs):
    return model(make_batch(positions, cell, topology, model.cutoff, pbc=pbc), **kwargs)


def energy(model, positions, cell, topology, pbc=True) -> float:
    out = evaluate(model, positions, cell, topology, pbc=pbc, compute_forces=False)
    return out[K.ENERGY].item()


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# --- schnetpack parity -------------------------------------------------------------------------


def schnetpack_painn(spk, *, shared_filters=False, shared_interactions=False, activation=None):
    options = {} if activation is None else {"activation": activation}
    representation = spk.representation.PaiNN(
        n_atom_basis=12,
        n_interactions=3,
        radial_basis=spk.nn.GaussianRBF(n_rbf=10, cutoff=SPK_CUTOFF),
        cutoff_fn=spk.nn.CosineCutoff(SPK_CUTOFF),
        shared_filters=shared_filters,
        shared_interactions=shared_interactions,
        **options,
    )
    head = spk.atomistic.Atomwise(n_in=12, n_hidden=[10, 6], n_layers=3, output_key="energy")
    model = spk.model.NeuralNetworkPotential(
        representation=representation,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[head, spk.atomistic.Forces(energy_key="energy", force_key="forces")],
    ).double()
    randomise(model, seed=3, scale=0.2)
    return model, representation, head


def periodic_system(rng, n_beads=48, box=9.0):
    cell = np.diag([box, box * 1.1, box * 0.9])
    cell[1, 0], cell[2, 1] = 1.0, -0.8
    positions = rng.uniform(0, 1, (n_beads, 3)) @ cell
    types = rng.integers(0, 2, n_beads)
    return positions, cell, types


@pytest.mark.parametrize(
    ("shared_filters", "shared_interactions", "activation"),
    [(False, False, "silu"), (True, False, "silu"), (False, True, "shifted_softplus")],
    ids=["per-layer", "shared-filters", "shared-blocks-ssp"],
)
def test_same_energies_and_forces_as_schnetpack(
    spk, rng, shared_filters, shared_interactions, activation
):
    reference, representation, head = schnetpack_painn(
        spk,
        shared_filters=shared_filters,
        shared_interactions=shared_interactions,
        activation=None if activation == "silu" else spk.nn.shifted_softplus,
    )
    positions, cell, types = periodic_system(rng)
    atoms = Atoms(numbers=np.array(TYPE_MAP)[types], positions=positions, cell=cell, pbc=True)
    converter = spk.interfaces.AtomsConverter(
        neighbor_list=spk.transform.ASENeighborList(cutoff=SPK_CUTOFF), dtype=torch.float64
    )
    expected = reference(converter(atoms))

    term = PaiNNPotential.from_schnetpack(representation, head, type_map=TYPE_MAP)
    config = term.config()
    assert config["head_hidden"] == [10, 6] and config["activation"] == activation
    assert config["shared_filters"] == shared_filters
    assert config["shared_interactions"] == shared_interactions
    model = CGModel(["A", "B"], [term])
    assert model.dtype == torch.float64
    out = evaluate(model, positions, cell, SystemTopology(types, *NO_BONDS))

    energy_value = out[K.ENERGY].item()
    assert abs(energy_value) > 1e-1  # a non-trivial comparison
    assert energy_value == pytest.approx(expected["energy"].item(), rel=1e-10, abs=1e-10)
    assert out[K.FORCES].abs().max() > 1e-2
    torch.testing.assert_close(out[K.FORCES], expected["forces"], rtol=1e-10, atol=1e-12)


def test_without_head_copies_the_representation(spk, rng):
    _, representation, _ = schnetpack_painn(spk)
    term = PaiNNPotential.from_schnetpack(representation, type_map=TYPE_MAP)
    network = term.network
    torch.testing.assert_close(network.embedding.weight, representation.embedding.weight[TYPE_MAP])
    torch.testing.assert_close(network.filter_net.weight, representation.filter_net.weight)
    torch.testing.assert_close(
        network.mixings[2].vector_mix.weight, representation.mixing[2].mu_channel_mix.weight
    )
    assert term.cutoff == SPK_CUTOFF and term.n_interactions == 3
    assert term.message_passing_layers == 3 and term.kind == "manybody"
    positions, cell, types = periodic_system(rng)
    model = CGModel(["A", "B"], [term])
    # a fresh head adds zero energy
    assert energy(model, positions, cell, SystemTopology(types, *NO_BONDS)) == 0.0


def test_unsupported_layouts_are_refused(spk):
    bessel = spk.representation.PaiNN(
        n_atom_basis=8,
        n_interactions=1,
        radial_basis=spk.nn.BesselRBF(n_rbf=6, cutoff=SPK_CUTOFF),
        cutoff_fn=spk.nn.CosineCutoff(SPK_CUTOFF),
    )
    with pytest.raises(SchnetpackCompatError, match="GaussianRBF"):
        PaiNNPotential.from_schnetpack(bessel, type_map=[1])
    schnet = spk.representation.SchNet(
        n_atom_basis=8,
        n_interactions=1,
        radial_basis=spk.nn.GaussianRBF(n_rbf=6, cutoff=SPK_CUTOFF),
        cutoff_fn=spk.nn.CosineCutoff(SPK_CUTOFF),
    )
    with pytest.raises(SchnetpackCompatError, match="PaiNN"):
        PaiNNPotential.from_schnetpack(schnet, type_map=[1])
    _, representation, _ = schnetpack_painn(spk)
    with pytest.raises(SchnetpackCompatError, match="embedding row"):
        PaiNNPotential.from_schnetpack(representation, type_map=[1, 100])
    with pytest.raises(SchnetpackCompatError, match="n_out=1"):
        PaiNNPotential.from_schnetpack(
            representation, spk.atomistic.Atomwise(n_in=12, n_out=3), type_map=[1]
        )


# --- physics ----------------------------------------------------------------------------------


def test_untrained_term_adds_zero_energy(rng):
    positions, cell, topology = dimer_liquid(rng)
    term = PaiNNPotential(2, cutoff=CUTOFF)
    out = evaluate(CGModel(["A", "B"], [term]), positions, cell, topology)
    assert torch.count_nonzero(out[K.BEAD_ENERGIES]) == 0
    assert term.cutoff == CUTOFF and term.message_passing_layers == 3


def test_forces_equal_finite_differences(rng):
    """The term alone (no prior to hide a wrong gradient), and with the prior."""
    positions, cell, topology = dimer_liquid(rng)
    for terms in ([painn_term()], [painn_term(), HarmonicBonds(2, k=5.0, r0=1.6)]):
        model = CGModel(["A", "B"], terms)
        forces = evaluate(model, positions, cell, topology)[K.FORCES].detach().numpy()
        assert np.abs(forces).max() > 1e-2
        check_gradient(
            lambda x, model=model: energy(model, x, cell, topology),
            positions,
            forces,
            indices=rng.choice(len(positions), 4, replace=False),
            rtol=1e-6,
            atol=1e-8,
        )


def test_stress_equals_strain_derivative(rng):
    positions, cell, topology = dimer_liquid(rng)
    model = CGModel(["A", "B"], [painn_term()])
    stress = evaluate(model, positions, cell, topology, compute_stress=True)[K.STRESS][0]
    stress = stress.detach().numpy()
    check_strain_derivative(
        lambda x, h: energy(model, x, h, topology), positions, cell, stress, rtol=1e-5, atol=1e-9
    )
    assert np.abs(stress).max() > 1e-5
    np.testing.assert_allclose(stress, stress.T, atol=1e-10)


def test_cluster_energy_is_invariant_and_forces_rotate(rng):
    """A non-periodic cluster: energy invariant under rotation and translation, forces rotate
    with the cluster (PaiNN's vector features are equivariant)."""
    positions = rng.uniform(0.0, 6.0, (24, 3))
    topology = SystemTopology(rng.integers(0, 2, 24), *NO_BONDS)
    cell = np.zeros((3, 3))
    model = CGModel(["A", "B"], [painn_term()])
    reference = evaluate(model, positions, cell, topology, pbc=False)
    rotation = random_rotation(rng)
    moved = positions @ rotation.T + np.array([3.3, -1.7, 20.0])
    out = evaluate(model, moved, cell, topology, pbc=False)
    assert out[K.ENERGY].item() == pytest.approx(reference[K.ENERGY].item(), rel=1e-12)
    torch.testing.assert_close(
        out[K.FORCES], reference[K.FORCES] @ torch.as_tensor(rotation.T), rtol=1e-10, atol=1e-12
    )
    # a reflection is not a symmetry the model must break: PaiNN's energy is E(3)-invariant
    mirrored = positions * np.array([-1.0, 1.0, 1.0])
    assert energy(model, mirrored, cell, topology, pbc=False) == pytest.approx(
        reference[K.ENERGY].item(), rel=1e-12
    )


def test_periodic_energy_is_invariant_to_rotation_and_images(rng):
    positions, cell, topology = dimer_liquid(rng)
    model = CGModel(["A", "B"], [painn_term()])
    reference = energy(model, positions, cell, topology)
    rotation = random_rotation(rng)
    rotated = energy(model, positions @ rotation.T, cell @ rotation.T, topology)
    assert rotated == pytest.approx(reference, rel=1e-12)
    images = positions + rng.integers(-2, 3, (len(positions), 3)) @ cell
    assert energy(model, images, cell, topology) == pytest.approx(reference, rel=1e-12)


def test_small_box_sees_several_images_of_a_neighbour(rng):
    """A cell shorter than the cutoff: a bead's own images carry messages (their direction
    terms cancel), the energy is extensive in a supercell."""
    positions, cell, topology = dimer_liquid(rng, n_molecules=2, box=4.0)
    model = CGModel(["A", "B"], [painn_term()])
    batch = make_batch(positions, cell, topology, model.cutoff)
    assert np.any(batch[K.PAIR_I].numpy() == batch[K.PAIR_J].numpy())  # self images present
    reference = energy(model, positions, cell, topology)
    doubled_cell = cell.copy()
    doubled_cell[0] *= 2
    doubled = np.concatenate([positions, positions + cell[0]])
    doubled_topology = SystemTopology(np.tile(topology.bead_type_index, 2), *NO_BONDS)
    assert energy(model, doubled, doubled_cell, doubled_topology) == pytest.approx(
        2 * reference, rel=1e-10
    )


def test_float32_weights_take_and_return_float64(rng):
    positions, cell, topology = dimer_liquid(rng)
    out32, out64 = (
        evaluate(CGModel(["A", "B"], [painn_term(dtype)]), positions, cell, topology)
        for dtype in (torch.float32, torch.float64)
    )
    assert out32[K.ENERGY].dtype == torch.float64
    torch.testing.assert_close(out32[K.FORCES], out64[K.FORCES], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shared", [False, True], ids=["per-layer", "shared"])
def test_model_file_round_trip(rng, tmp_path, shared):
    positions, cell, topology = dimer_liquid(rng)
    term = painn_term(shared_filters=shared, shared_interactions=shared)
    model = CGModel(["A", "B"], [term, Repulsion(2, sigma=1.5, cutoff=3.0)])
    loaded = load_model(save_model(model, tmp_path / "painn.pt"))
    assert isinstance(loaded.terms[0], PaiNNPotential)
    assert loaded.terms[0].config() == term.config()
    assert loaded.cutoff == CUTOFF and loaded.dtype == torch.float64
    if shared:  # one block, not copies, after loading too
        assert loaded.terms[0].network.interactions[0] is loaded.terms[0].network.interactions[1]
    out, reference = (evaluate(m, positions, cell, topology) for m in (loaded, model))
    assert torch.equal(out[K.ENERGY], reference[K.ENERGY])
    assert torch.equal(out[K.FORCES], reference[K.FORCES])


def test_bad_settings_raise():
    with pytest.raises(NeuralPotentialError, match="n_interactions"):
        PaiNNPotential(2, n_interactions=0)
    with pytest.raises(NeuralPotentialError, match="cutoff"):
        PaiNNPotential(2, cutoff=0.0)
    with pytest.raises(NeuralPotentialError, match="activation"):
        PaiNNPotential(2, activation="relu")
    with pytest.raises(NeuralPotentialError, match="one value"):
        PaiNNPotential(2).set_energy_shift([1.0])


def test_network_scripts_and_equals_eager(rng):
    """The network on plain tensors scripts with TorchScript (shared blocks included)."""
    positions, cell, topology = dimer_liquid(rng)
    batch = make_batch(positions, cell, topology, CUTOFF)
    inputs = (batch[K.BEAD_TYPE_INDEX], batch[K.PAIR_I], batch[K.PAIR_J])
    vectors = batch[K.POSITIONS][batch[K.PAIR_J]] - batch[K.POSITIONS][batch[K.PAIR_I]]
    vectors = vectors + batch[K.PAIR_SHIFTS] @ batch[K.CELL][0]
    for shared in (False, True):
        network = painn_term(shared_interactions=shared, shared_filters=shared).network
        scripted = torch.jit.script(network)
        torch.testing.assert_close(
            scripted(*inputs, vectors), network(*inputs, vectors), rtol=1e-13, atol=1e-13
        )


# --- the plugin's layer-wise view -------------------------------------------------------------


@pytest.mark.parametrize("box", [10.0, 4.0], ids=["liquid", "self-images"])
def test_torchscript_half_list_equals_term(rng, tmp_path, box):
    """The written module, run layer by layer on a half list (as one LAMMPS rank owning every
    bead), gives the term's energies and, through autograd, its forces and virial."""
    positions, cell, topology = dimer_liquid(rng, n_molecules=20 if box > 5 else 2, box=box)
    term = painn_term()
    model = CGModel(["A", "B"], [term])
    reference = evaluate(model, positions, cell, topology, compute_stress=True)
    path = write_neural_term(term, tmp_path / "painn.pt", ["A", "B"])
    extra = {METADATA_FILE: ""}
    scripted = torch.jit.load(str(path), _extra_files=extra)
    metadata = json.loads(extra[METADATA_FILE])
    assert metadata["cutoff"] == CUTOFF and metadata["n_interactions"] == 2
    assert metadata["dtype"] == "float64"

    i, j, shifts = vesin.NeighborList(cutoff=CUTOFF, full_list=False).compute(
        positions, cell, periodic=True, quantities="ijS"
    )
    assert (box > 5) or np.any(i == j)
    x = torch.tensor(positions, requires_grad=True)
    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    deformation = torch.eye(3, dtype=torch.float64) + strain
    pair_i, pair_j = torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)
    vectors = (x @ deformation)[pair_j] - (x @ deformation)[pair_i]
    vectors = vectors + torch.as_tensor(shifts, dtype=torch.float64) @ (
        torch.as_tensor(cell) @ deformation
    )
    types = torch.as_tensor(topology.bead_type_index)
    energies = evaluate_layers(scripted, 2, types, pair_i, pair_j, vectors)
    torch.testing.assert_close(energies, reference[K.BEAD_ENERGIES], rtol=1e-12, atol=1e-12)
    gradient, strain_gradient = torch.autograd.grad(energies.sum(), [x, strain])
    torch.testing.assert_close(-gradient, reference[K.FORCES], rtol=1e-10, atol=1e-12)
    volume = abs(np.linalg.det(cell))
    torch.testing.assert_close(strain_gradient / volume, reference[K.STRESS][0])


# --- config and builder -----------------------------------------------------------------------


def test_config_selects_painn_and_refuses_unknown_representations(ethane_mapping, prior_model):
    with pytest.raises(NeuralConfigError, match="representation='foo'"):
        NeuralConfig.from_dict({"representation": "foo"})
    with pytest.raises(NeuralConfigError, match="representation"):
        NeuralConfig.from_dict({"shared_filters": True})  # SchNet has no shared filters
    config = NeuralConfig.from_dict({
        "representation": "painn", "n_atom_basis": 8, "n_interactions": 2, "n_rbf": 6,
        "cutoff": 5.0, "seed": 1, "dtype": "float64", "shared_filters": True,
    })  # fmt: skip
    model = build_neural_model(
        ethane_mapping, [], config=config, temperature=180.0, prior_model=prior_model
    )
    term = model.terms[-1]
    assert isinstance(term, PaiNNPotential) and term.shared_filters and term.n_atom_basis == 8
    assert len(model.terms) == len(prior_model.terms) + 1
    assert model.dtype == torch.float64
    assert model.provenance["neural_config"]["representation"] == "painn"
    again = build_neural_model(
        ethane_mapping, [], config=config, temperature=180.0, prior_model=prior_model
    )
    assert all(  # the seed fixes the initialisation
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_train_cli_writes_a_painn_model(data_dir, tmp_path, capsys):
    """``ase-cg train --kind neural`` with ``neural: {representation: painn}``, end to end on a
    few frames of the shipped all-atom ethane; ``representation: foo`` is refused by name."""
    from ase_cg.cli import main

    config = tmp_path / "painn.yaml"
    config.write_text(
        "train: {epochs: 1, frame_stride: 10, max_frames: 4, batch_frames: 2, progress: false}\n"
        "neural: {representation: painn, n_atom_basis: 8, n_interactions: 2, n_rbf: 8, "
        "cutoff: 6.0, seed: 1}\n"
    )
    arguments = [
        "train", str(data_dir / "ethane_aa.h5"), "--mapping", str(data_dir / "ethane_mapping.json"),
        "--kind", "neural", "--config", str(config),
    ]  # fmt: skip
    assert main([*arguments, "-o", str(tmp_path / "run")]) == 0
    model = load_model(tmp_path / "run" / "model.pt")
    term = model.terms[-1]
    assert isinstance(term, PaiNNPotential) and term.n_interactions == 2
    assert model.provenance["neural"]["representation"] == "painn"
    config.write_text("neural: {representation: foo}\n")
    capsys.readouterr()
    assert main([*arguments, "-o", str(tmp_path / "bad")]) != 0
    assert "NeuralConfig.representation='foo'" in capsys.readouterr().err
