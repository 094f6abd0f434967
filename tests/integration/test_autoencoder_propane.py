"""The coarse-graining auto-encoder on propane, 3 beads (issue 6, second molecule).

A small OPLS-AA propane liquid (27 molecules, LAMMPS) is generated once per module; the
learned mapping must put each carbon with its own hydrogens (CH3 | CH2 | CH3).
"""

from __future__ import annotations

import pytest
import torch
from _small_liquids import check_five_seeds, heavy_atoms_with_their_hydrogens, small_reference

from ase_cg.autoencoder import AutoencoderConfig, groups_connected, learn_mapping

FAST = AutoencoderConfig(epochs=40, max_frames=40)


@pytest.fixture(scope="module")
def propane_h5(tmp_path_factory):
    return small_reference(tmp_path_factory, "propane")


def test_learns_propane_chemical_beads(propane_h5):
    """Two short restarts (here seed 3 chemical, seed 4 with a hydrogen on the wrong bead):
    the kept mapping is CH3 | CH2 | CH3 and the connected flags are right."""
    torch.set_num_threads(1)
    result = learn_mapping(propane_h5, 3, config=FAST, seeds=(3, 4), progress=False)
    template = result.templates["C3H8"]
    bonds = result.autoencoder.atom_bonds(0).tolist()
    assert len(bonds) == 10  # 2 C–C + 8 C–H
    groups = result.mapping.groups["C3H8"]
    assert heavy_atoms_with_their_hydrogens(template, groups), groups
    assert sorted(result.mapping.bead_masses.values()) == pytest.approx(
        [12.011 + 2 * 1.008, 12.011 + 3 * 1.008], rel=1e-3
    )
    report = result.report
    assert report["best_connected"]
    best = next(run for run in report["runs"] if run["seed"] == report["best_seed"])
    assert best["connected"] and best["validation"]["bond_cut"] == pytest.approx(0.2)
    for run in report["runs"]:  # the flag is the bond-graph check of the run's groups
        assert run["connected"] == all(groups_connected(run["groups"]["C3H8"], bonds))


@pytest.mark.slow
def test_propane_five_seeds(propane_h5):
    """Default settings, 5 seeds: most chemical, and the kept one is chemical."""
    torch.set_num_threads(1)
    result = learn_mapping(propane_h5, 3, seeds=(0, 1, 2, 3, 4), progress=False)
    check_five_seeds(result, "C3H8", at_least=3)
