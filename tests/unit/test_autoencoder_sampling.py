"""The auto-encoder's molecule sample: CG forces on sampled beads equal whole-box forces."""

from __future__ import annotations

import numpy as np
import torch

from ase_cg.autoencoder import AutoencoderConfig, CGAutoencoder
from ase_cg.autoencoder.data import load_training_data
from ase_cg.autoencoder.sampling import MoleculeSampler


def test_sampled_forces_equal_whole_box_forces(data_dir):
    config = AutoencoderConfig(max_frames=3)
    data = load_training_data(data_dir / "ethane_aa.h5", 2, config, disable=True)  # 216 molecules
    cutoff = 8.0
    model = CGAutoencoder(
        ["C2H6"],
        [data.types[0].template.get_masses()],
        [2],
        pair_cutoff=cutoff,
        n_basis=6,
        init_scale=1.0,
        generator=torch.Generator().manual_seed(3),
    )
    with torch.no_grad():  # a non-trivial pair potential and springs
        model.pair_weights.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(4))
        model.bond_raw_k.fill_(1.0)
    A = model.assignment(0, 1.0, False, torch.Generator().manual_seed(5))
    E, _, _ = model.encode(0, A, torch.zeros(1, 1, 8, 3, dtype=torch.float64))
    positions = torch.as_tensor(data.positions[0])
    cells = torch.as_tensor(data.cells)

    def forces(sampler, frame, generator):
        centres, neighbours, pairs = sampler.sample(frame, generator)
        z_c = torch.einsum("ij,mjc->mic", E, positions[frame, centres[0]]).requires_grad_(True)
        z_n = torch.einsum("ij,mjc->mic", E, positions[frame, neighbours[0]])
        energy = model.energy([z_c], [z_n], pairs, cells[frame])
        (grad,) = torch.autograd.grad(energy, [z_c])
        return centres[0], neighbours[0], -grad.detach().numpy()

    whole = MoleculeSampler(data, cutoff, None)
    sampled = MoleculeSampler(data, cutoff, 8)  # few, so that not every molecule is near
    for frame in range(2):
        every, none, reference = forces(whole, frame, None)
        assert len(every) == 216 and len(none) == 0
        centres, neighbours, sample = forces(sampled, frame, torch.Generator().manual_seed(frame))
        assert len(centres) == 8 and 0 < len(neighbours) < 216 - 8
        np.testing.assert_allclose(sample, reference[centres], rtol=1e-10, atol=1e-12)
        assert np.abs(reference[centres]).max() > 1e-3  # the pair forces are not trivial
