"""export_aoti: the AOTInductor package gives the eager energies and pair gradients (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _torch import randomise

from ase_cg.neighbors import neighbor_pairs
from ase_cg.potentials.neural import NeuralPotential
from lammps_interface.torchscript import METADATA_FILE, export_aoti


@pytest.mark.slow
def test_aoti_package_equals_eager(rng, tmp_path):
    term = NeuralPotential(2, n_atom_basis=8, n_filters=8, n_interactions=2, n_rbf=6, cutoff=4.0)
    term = term.double()
    randomise(term, seed=11)
    path = export_aoti(term, tmp_path / "schnet.pt2", ["A", "B"])
    package = torch._inductor.aoti_load_package(str(path))
    metadata = json.loads(package.get_metadata()[METADATA_FILE])
    assert metadata["cutoff"] == 4.0 and metadata["n_interactions"] == 2
    assert metadata["dtype"] == "float64" and metadata["bead_type_names"] == ["A", "B"]

    # a configuration of another size than the one traced: shapes are dynamic
    box = 9.0
    positions = rng.uniform(0, box, (70, 3))
    cell = np.eye(3) * box
    i, j, shifts = neighbor_pairs(positions, cell, True, term.cutoff)
    types = torch.as_tensor(rng.integers(0, 2, len(positions)))
    pair_i, pair_j = torch.as_tensor(i), torch.as_tensor(j)
    vectors = torch.as_tensor(positions[j] - positions[i] + shifts @ cell)
    energies, gradient = package(types, pair_i, pair_j, vectors)

    eager_vectors = vectors.clone().requires_grad_(True)
    expected = term.network(types, pair_i, pair_j, eager_vectors)
    (expected_gradient,) = torch.autograd.grad(expected.sum(), eager_vectors)
    torch.testing.assert_close(energies, expected.detach(), rtol=1e-12, atol=1e-12)
    # forces f[i] += g, f[j] -= g agree (the split of g between i→j and j→i is free)
    forces, expected_forces = (
        torch.zeros(len(positions), 3).double().index_add(0, pair_i, g).index_add(0, pair_j, -g)
        for g in (gradient, expected_gradient)
    )
    torch.testing.assert_close(forces, expected_forces, rtol=1e-10, atol=1e-12)
    assert expected_forces.abs().max() > 1e-3
