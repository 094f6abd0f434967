"""build_neural_model: the prior fitted from mapped frames, plus an untrained SchNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.geometry import get_distances
from ase.units import kB

from ase_cg import _keys as K
from ase_cg.mapping import CGMapping
from ase_cg.model import load_model, save_model
from ase_cg.potentials import (
    CGModel,
    HarmonicAngles,
    HarmonicBonds,
    Repulsion,
    make_batch,
)
from ase_cg.potentials.build import NeuralConfig, NeuralConfigError, build_neural_model
from ase_cg.potentials.neural import NeuralPotential
from ase_cg.potentials.prior import gaussian_boltzmann_inversion

TEMPERATURE = 180.0
SMALL = {"n_atom_basis": 8, "n_filters": 8, "n_interactions": 2, "n_rbf": 6, "cutoff": 5.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def propane_mapping():
    """Propane as CH3–CH2–CH3: bead 1 (CH2) is the vertex of the one angle."""
    return CGMapping.from_groups(
        molecule("C3H8"), [[1, 5, 7, 8], [0, 3, 4], [2, 6, 9, 10]], name="propane"
    )


def cg_frames(mapping, rng, n_frames=4, n_molecules=12, box=11.0):
    """CG propane frames with known bond lengths and angles, wrapped into a periodic box."""
    names = mapping.bead_names["propane"]
    cell = np.diag([box, box, box])
    frames, lengths, angles = [], [], []
    for _ in range(n_frames):
        positions = []
        for _ in range(n_molecules):
            centre = rng.uniform(0, box, 3)
            r1, r2 = rng.normal(2.55, 0.05, 2)
            theta = rng.normal(1.95, 0.08)
            frame, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            end1 = centre + r1 * frame[0]
            end2 = centre + r2 * (np.cos(theta) * frame[0] + np.sin(theta) * frame[1])
            positions.extend([end1, centre, end2])
            lengths.extend([r1, r2])
            angles.append(theta)
        atoms = Atoms(
            numbers=np.zeros(3 * n_molecules, dtype=int),
            positions=np.array(positions),
            cell=cell,
            pbc=True,
        )
        atoms.wrap()
        atoms.arrays[K.BEAD_TYPE] = np.array(names * n_molecules)
        atoms.arrays[K.MOL_ID] = np.repeat(np.arange(n_molecules), 3)
        frames.append(atoms)
    return frames, np.array(lengths), np.array(angles)


def test_prior_is_fitted_from_the_mapped_distributions(propane_mapping, rng):
    frames, lengths, angles = cg_frames(propane_mapping, rng)
    config = NeuralConfig(**SMALL, dtype="float64", seed=1)
    model = build_neural_model(propane_mapping, frames, config=config, temperature=TEMPERATURE)
    assert model.bead_type_names == propane_mapping.bead_types
    bonds, angle_term, repulsion, neural = model.terms
    assert isinstance(bonds, HarmonicBonds) and isinstance(angle_term, HarmonicAngles)
    assert isinstance(repulsion, Repulsion) and isinstance(neural, NeuralPotential)
    assert model.cutoff == 5.0 and model.dtype == torch.float64

    mid = propane_mapping.bead_types.index(propane_mapping.bead_names["propane"][1])
    end = propane_mapping.bead_types.index(propane_mapping.bead_names["propane"][0])
    k_bond, r0 = gaussian_boltzmann_inversion(lengths, TEMPERATURE)
    assert bonds.k[mid, end].item() == pytest.approx(k_bond, rel=1e-9)
    assert bonds.k[end, mid].item() == pytest.approx(k_bond, rel=1e-9)
    assert bonds.r0[mid, end].item() == pytest.approx(r0, rel=1e-12)
    assert bonds.k[end, end].item() == 0.0  # no CH3–CH3 bond in propane
    k_angle, theta0 = gaussian_boltzmann_inversion(angles, TEMPERATURE)
    assert angle_term.k[end, mid, end].item() == pytest.approx(k_angle, rel=1e-9)
    assert angle_term.theta0[end, mid, end].item() == pytest.approx(theta0, rel=1e-12)

    # σ: the closest approach of beads of different molecules (all intramolecular pairs are
    # within two bonds, so excluded), by brute force over minimum images
    expected = np.full((2, 2), np.inf)
    for atoms in frames:
        _, distances = get_distances(atoms.positions, cell=atoms.cell, pbc=True)
        mol = atoms.arrays[K.MOL_ID]
        types = np.array([propane_mapping.bead_types.index(n) for n in atoms.arrays[K.BEAD_TYPE]])
        other = mol[:, None] != mol[None, :]
        for a in range(2):
            for b in range(2):
                pairs = other & (types[:, None] == a) & (types[None, :] == b)
                expected[a, b] = min(expected[a, b], distances[pairs].min())
    np.testing.assert_allclose(repulsion.sigma.numpy(), expected, rtol=1e-12)
    assert repulsion.epsilon == pytest.approx(kB * TEMPERATURE)
    assert repulsion.cutoff == pytest.approx(1.25 * expected.max())


def test_untrained_model_is_its_prior_and_survives_a_file(propane_mapping, rng, tmp_path):
    frames, _, _ = cg_frames(propane_mapping, rng)
    config = NeuralConfig(**SMALL, dtype="float64", seed=1)
    model = build_neural_model(propane_mapping, frames, config=config, temperature=TEMPERATURE)
    prior_only = CGModel(model.bead_type_names, list(model.terms[:3]), mapping=propane_mapping)
    atoms = frames[0]
    topology = model.topology(atoms)
    assert len(topology.angles) == 12
    batch = make_batch(atoms.positions, atoms.cell[:], topology, model.cutoff)
    out = model(batch)
    assert out[K.ENERGY].item() == pytest.approx(prior_only(batch)[K.ENERGY].item(), rel=1e-12)
    assert out[K.ENERGY].item() != 0.0

    loaded = load_model(save_model(model, tmp_path / "neural.pt"))
    assert loaded.provenance["neural_config"] == config.to_dict()
    assert loaded.provenance["temperature_K"] == TEMPERATURE
    assert torch.equal(loaded(batch)[K.FORCES], out[K.FORCES])


def test_seed_makes_initialisation_reproducible_without_touching_global_rng(propane_mapping, rng):
    frames, _, _ = cg_frames(propane_mapping, rng, n_frames=1)
    config = NeuralConfig(**SMALL, seed=5)
    before = torch.random.get_rng_state()
    first = build_neural_model(propane_mapping, frames, config=config, temperature=TEMPERATURE)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = build_neural_model(propane_mapping, frames, config=config, temperature=TEMPERATURE)
    for (name, a), (_, b) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert first.dtype == torch.float32


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(NeuralConfigError, match="n_layer"):
        NeuralConfig.from_dict({"n_layer": 3})
    with pytest.raises(NeuralConfigError, match="dtype"):
        NeuralConfig(dtype="float16")
    assert NeuralConfig.from_dict({"cutoff": 9.0}).cutoff == 9.0


def test_frames_of_another_mapping_are_refused(propane_mapping, rng):
    frames, _, _ = cg_frames(propane_mapping, rng, n_frames=1)
    frames[0].arrays[K.BEAD_TYPE] = np.array(["X"] * len(frames[0]))
    with pytest.raises(ValueError, match="X"):
        build_neural_model(propane_mapping, frames, config=NeuralConfig(), temperature=180.0)


def test_classical_model_as_prior(data_dir, propane_mapping):
    """With prior_model the untrained model is the classical model: same energy and forces,
    the classical bonded exclusions kept; a prior with other bead types is refused."""
    from ase_cg.calculator import CGCalculator
    from ase_cg.io import read_h5md

    classical = load_model(data_dir / "ethane_classical.pt")
    atoms = classical.mapping.map(read_h5md(data_dir / "ethane_aa.h5", index=0))
    config = NeuralConfig(**SMALL, dtype="float64", seed=1)
    model = build_neural_model(
        classical.mapping, [atoms], config=config, temperature=TEMPERATURE, prior_model=classical
    )
    assert isinstance(model.terms[-1], NeuralPotential)
    assert len(model.terms) == len(classical.terms) + 1
    assert model.exclusion_bonds == classical.exclusion_bonds
    expected = CGCalculator(classical).get_forces(atoms)
    energy = CGCalculator(classical).get_potential_energy(atoms)
    calculator = CGCalculator(model)
    np.testing.assert_allclose(calculator.get_forces(atoms), expected, rtol=1e-10, atol=1e-10)
    assert calculator.get_potential_energy(atoms) == pytest.approx(energy, rel=1e-10)
    with pytest.raises(NeuralConfigError, match="bead types"):
        build_neural_model(
            propane_mapping, [atoms], config=config, temperature=TEMPERATURE, prior_model=classical
        )
    # a file name in the config is loaded by the caller, not silently ignored here
    by_path = NeuralConfig(**SMALL, prior_model=str(data_dir / "ethane_classical.pt"))
    with pytest.raises(NeuralConfigError, match="load it with ase_cg.model.load_model"):
        build_neural_model(classical.mapping, [atoms], config=by_path, temperature=TEMPERATURE)
