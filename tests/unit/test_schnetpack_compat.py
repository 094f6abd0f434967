"""schnetpack 2.1.1 SchNet weights in NeuralPotential give schnetpack's energies and forces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _torch import randomise
from ase import Atoms

from ase_cg import _keys as K
from ase_cg.potentials import CGModel, SystemTopology, make_batch
from ase_cg.potentials.neural import NeuralPotential
from ase_cg.potentials.schnetpack_compat import SchnetpackCompatError, import_schnetpack

CUTOFF = 5.5
TYPE_MAP = [6, 1]  # bead type A ↔ schnetpack's carbon row, B ↔ hydrogen row


@pytest.fixture(scope="module")
def spk():
    try:
        return import_schnetpack()
    except ImportError:
        pytest.skip("schnetpack is not installed (optional extra)")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def schnetpack_model(spk, head_activation=None, n_interactions=2):
    representation = spk.representation.SchNet(
        n_atom_basis=16,
        n_interactions=n_interactions,
        radial_basis=spk.nn.GaussianRBF(n_rbf=10, cutoff=CUTOFF),
        cutoff_fn=spk.nn.CosineCutoff(CUTOFF),
        n_filters=12,
    )
    head_kwargs = {} if head_activation is None else {"activation": head_activation}
    head = spk.atomistic.Atomwise(
        n_in=16, n_hidden=[10, 6], n_layers=3, output_key="energy", **head_kwargs
    )
    model = spk.model.NeuralNetworkPotential(
        representation=representation,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[head, spk.atomistic.Forces(energy_key="energy", force_key="forces")],
    ).double()
    randomise(model, seed=3)
    return model, representation, head


def periodic_system(rng, n_beads=48, box=9.0):
    cell = np.diag([box, box * 1.1, box * 0.9])
    cell[1, 0], cell[2, 1] = 1.0, -0.8
    positions = rng.uniform(0, 1, (n_beads, 3)) @ cell
    types = rng.integers(0, 2, n_beads)
    return positions, cell, types


@pytest.mark.parametrize("head_activation", ["silu", "shifted_softplus"])
def test_same_energies_and_forces_as_schnetpack(spk, rng, head_activation):
    activation = None if head_activation == "silu" else spk.nn.shifted_softplus
    reference, representation, head = schnetpack_model(spk, activation)
    positions, cell, types = periodic_system(rng)
    atoms = Atoms(numbers=np.array(TYPE_MAP)[types], positions=positions, cell=cell, pbc=True)
    converter = spk.interfaces.AtomsConverter(
        neighbor_list=spk.transform.ASENeighborList(cutoff=CUTOFF), dtype=torch.float64
    )
    expected = reference(converter(atoms))

    term = NeuralPotential.from_schnetpack(representation, head, type_map=TYPE_MAP)
    assert term.config()["head_hidden"] == [10, 6]
    assert term.config()["head_activation"] == head_activation
    model = CGModel(["A", "B"], [term])
    assert model.dtype == torch.float64
    topology = SystemTopology(types, np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4)))
    out = model(make_batch(positions, cell, topology, model.cutoff))

    energy = out[K.ENERGY].item()
    assert abs(energy) > 1e-2  # a non-trivial comparison
    assert energy == pytest.approx(expected["energy"].item(), rel=1e-10)
    torch.testing.assert_close(out[K.FORCES], expected["forces"], rtol=1e-10, atol=1e-12)


def test_without_head_copies_the_representation(spk, rng):
    _, representation, _ = schnetpack_model(spk)
    term = NeuralPotential.from_schnetpack(representation, type_map=TYPE_MAP)
    network = term.network
    torch.testing.assert_close(network.embedding.weight, representation.embedding.weight[TYPE_MAP])
    torch.testing.assert_close(
        network.interactions[1].filter2.weight,
        representation.interactions[1].filter_network[1].weight,
    )
    assert term.cutoff == CUTOFF and term.n_interactions == 2
    # a fresh head adds zero energy
    positions, cell, types = periodic_system(rng)
    topology = SystemTopology(types, np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4)))
    model = CGModel(["A", "B"], [term])
    energy = model(make_batch(positions, cell, topology, CUTOFF), compute_forces=False)
    assert energy[K.ENERGY].item() == 0.0


def test_unsupported_layouts_are_refused(spk):
    bessel = spk.representation.SchNet(
        n_atom_basis=8,
        n_interactions=1,
        radial_basis=spk.nn.BesselRBF(n_rbf=6, cutoff=CUTOFF),
        cutoff_fn=spk.nn.CosineCutoff(CUTOFF),
    )
    with pytest.raises(SchnetpackCompatError, match="GaussianRBF"):
        NeuralPotential.from_schnetpack(bessel, type_map=[1])
    _, representation, _ = schnetpack_model(spk)
    with pytest.raises(SchnetpackCompatError, match="embedding row"):
        NeuralPotential.from_schnetpack(representation, type_map=[1, 100])
    dipole_head = spk.atomistic.Atomwise(n_in=16, n_out=3)
    with pytest.raises(SchnetpackCompatError, match="n_out=1"):
        NeuralPotential.from_schnetpack(representation, dipole_head, type_map=[1])
