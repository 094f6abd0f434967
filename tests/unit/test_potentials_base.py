"""CGModel: forces and stress by autograd equal finite differences; exclusions; model files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ase_cg import _keys as K
from ase_cg.model import ModelFileError, load_model, save_model
from ase_cg.potentials import (
    CGModel,
    HarmonicAngles,
    HarmonicBonds,
    Repulsion,
    SystemTopology,
    make_batch,
)
from ase_cg.testing import check_gradient, check_strain_derivative


def trimer_liquid(rng, n_molecules=12, box=9.0, triclinic=True):
    """Random periodic liquid of bent 3-bead molecules with 2 bead types (A-B-A)."""
    cell = np.diag([box, box * 1.1, box * 0.95])
    if triclinic:
        cell[1, 0], cell[2, 0], cell[2, 1] = 1.2, -0.7, 0.9
    centres = rng.uniform(0, 1, (n_molecules, 3)) @ cell
    positions, types, bonds, angles = [], [], [], []
    for m, centre in enumerate(centres):
        first = 3 * m
        offsets = np.array([[-1.2, 0.3, 0.0], [0.0, 0.0, 0.0], [1.1, 0.4, 0.2]])
        offsets += rng.normal(0, 0.05, offsets.shape)
        positions.extend(centre + offsets)
        types.extend([0, 1, 0])
        bonds.extend([[first, first + 1], [first + 1, first + 2]])
        angles.append([first, first + 1, first + 2])
    positions = np.array(positions)
    # wrap into the box so some molecules straddle the boundary
    fractional = np.linalg.solve(cell.T, positions.T).T
    positions = (fractional % 1.0) @ cell
    topology = SystemTopology(np.array(types), np.array(bonds), np.array(angles), np.zeros((0, 4)))
    return positions, cell, topology


def prior_model():
    terms = [
        Repulsion(2, sigma=[[3.0, 2.8], [2.8, 2.6]], epsilon=0.02, power=12, cutoff=6.0),
        HarmonicBonds(2, k=[[0.0, 8.0], [8.0, 0.0]], r0=[[0.0, 1.2], [1.2, 0.0]]),
        HarmonicAngles(2, k=1.5, theta0=2.0),
    ]
    return CGModel(["A", "B"], terms).double()


def energy_of(model, positions, cell, topology):
    batch = make_batch(positions, cell, topology, model.cutoff)
    return model(batch, compute_forces=False)[K.ENERGY].item()


def test_forces_equal_finite_differences(rng):
    positions, cell, topology = trimer_liquid(rng)
    model = prior_model()
    batch = make_batch(positions, cell, topology, model.cutoff)
    forces = model(batch)[K.FORCES].detach().numpy()
    check_gradient(
        lambda x: energy_of(model, x, cell, topology),
        positions,
        forces,
        indices=rng.choice(len(positions), 6, replace=False),
    )
    assert np.abs(forces).max() > 1e-3  # the check is not vacuous


def test_stress_equals_strain_derivative(rng):
    positions, cell, topology = trimer_liquid(rng)
    model = prior_model()
    batch = make_batch(positions, cell, topology, model.cutoff)
    stress = model(batch, compute_stress=True)[K.STRESS][0].detach().numpy()
    check_strain_derivative(lambda x, h: energy_of(model, x, h, topology), positions, cell, stress)
    assert np.allclose(stress, stress.T, atol=1e-10)


def test_energy_invariant_to_translation_and_rewrapping(rng):
    positions, cell, topology = trimer_liquid(rng)
    model = prior_model()
    reference = energy_of(model, positions, cell, topology)
    shifted = positions + np.array([3.3, -1.7, 20.0])
    assert energy_of(model, shifted, cell, topology) == pytest.approx(reference, rel=1e-12)
    images = positions + rng.integers(-2, 3, (len(positions), 1)) * cell[0]
    assert energy_of(model, images, cell, topology) == pytest.approx(reference, rel=1e-12)


def test_bonded_pairs_are_excluded_from_pair_terms(rng):
    positions, cell, topology = trimer_liquid(rng, n_molecules=1, box=30.0)
    # a single molecule: every pair is within 2 bonds, so the repulsion must give exactly zero
    model = CGModel(["A", "B"], [Repulsion(2, sigma=3.0, cutoff=6.0)]).double()
    assert energy_of(model, positions, cell, topology) == 0.0
    no_bonds = SystemTopology(
        topology.bead_type_index, np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4))
    )
    assert energy_of(model, positions, cell, no_bonds) > 0.0


def test_bead_energies_sum_to_energy(rng):
    positions, cell, topology = trimer_liquid(rng)
    model = prior_model()
    out = model(make_batch(positions, cell, topology, model.cutoff), compute_forces=False)
    assert out[K.BEAD_ENERGIES].sum().item() == pytest.approx(out[K.ENERGY].item(), rel=1e-12)


def test_batched_frames_equal_single_frames(rng):
    frames = [trimer_liquid(np.random.default_rng(seed)) for seed in (1, 2)]
    topology = frames[0][2]
    model = prior_model()
    batch = make_batch([f[0] for f in frames], [f[1] for f in frames], topology, model.cutoff)
    out = model(batch)
    for index, (positions, cell, _) in enumerate(frames):
        single = model(make_batch(positions, cell, topology, model.cutoff))
        assert out[K.ENERGY][index].item() == pytest.approx(single[K.ENERGY].item(), rel=1e-12)
        n = len(positions)
        torch.testing.assert_close(out[K.FORCES][index * n : (index + 1) * n], single[K.FORCES])


def test_model_file_round_trip(rng, tmp_path):
    positions, cell, topology = trimer_liquid(rng)
    model = prior_model()
    path = save_model(model, tmp_path / "prior.pt")
    loaded = load_model(path)
    assert loaded.cutoff == model.cutoff
    assert loaded.bead_type_names == ["A", "B"]
    assert energy_of(loaded, positions, cell, topology) == energy_of(
        model, positions, cell, topology
    )
    assert not list(tmp_path.glob("*.partial"))


def test_model_file_with_pickled_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "ase_cg-model", "version": 1, "config": Payload()}, path)
    with pytest.raises(ModelFileError, match="evil.pt"):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"format": "other"}, "not an ase_cg model file"),
        ({"format": "ase_cg-model", "version": 99, "config": "{}", "state_dict": {}}, "version 99"),
        ({"format": "ase_cg-model", "version": 1, "config": "{", "state_dict": {}}, "damaged"),
        ({"format": "ase_cg-model", "version": 1, "config": "{}", "state_dict": {}}, "lacks"),
    ],
)
def test_foreign_or_damaged_model_files_are_refused(tmp_path, payload, message):
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_truncated_model_file_is_refused(tmp_path):
    path = save_model(prior_model(), tmp_path / "model.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="model.pt"):
        load_model(path)


def test_mixed_dtype_model_keeps_each_terms_dtype(tmp_path):
    model = prior_model()
    model.terms[1].float()  # e.g. a float32 term beside float64 ones
    assert model.dtype == torch.float64
    loaded = load_model(save_model(model, tmp_path / "mixed.pt"))
    assert loaded.terms[0].sigma.dtype == torch.float64
    assert loaded.terms[1].k.dtype == torch.float32
    assert loaded.dtype == torch.float64
