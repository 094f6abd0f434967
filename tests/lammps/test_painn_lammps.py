"""A PaiNN term in ``pair_style cgtorch``: LAMMPS vs CGCalculator, and 1 vs 2 MPI ranks.

The plugin exchanges the packed features ``[q | μ]`` (scalar and vector) between ranks after each
layer, exactly as it does SchNet's; these tests check that nothing in it assumed SchNet's widths.
LAMMPS runs in subprocesses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _paths import DATA_DIR
from _torch import randomise
from ase import Atoms

from ase_cg.mapping import CGMapping
from ase_cg.md import build_cg_box
from ase_cg.potentials import CGModel, HarmonicBonds, PaiNNPotential, Repulsion
from ase_cg.testing import calculator_results, check_lammps_parity
from lammps_interface import export
from lammps_interface.run import evaluate

ETHANE = CGMapping.load(DATA_DIR / "ethane_mapping.json")


def painn_term(n_types: int, seed: int = 5) -> PaiNNPotential:
    """A two-layer PaiNN with random weights everywhere (the head's last layer included)."""
    term = PaiNNPotential(n_types, n_atom_basis=8, n_interactions=2, n_rbf=8, cutoff=5.0)
    randomise(term, seed=seed, scale=0.3)
    return term


def relative(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def triclinic(tmp_path_factory):
    """125 beads of two types in a tilted 18 Å cell, the PaiNN term alone (no tables)."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cell = np.array([[18.0, 0.0, 0.0], [1.1, 18.0, 0.0], [-0.8, 0.6, 18.0]])
    fractional = (grid + 0.5 + rng.normal(0, 0.07, grid.shape)) / 5
    atoms = Atoms(
        numbers=np.zeros(len(grid), int), positions=fractional @ cell, cell=cell, pbc=True
    )
    atoms.arrays["bead-type"] = np.array(rng.choice(["A", "B"], len(atoms)))
    atoms.set_masses(np.full(len(atoms), 15.0))
    model = CGModel(["A", "B"], [painn_term(2)]).double()
    files = export(
        model, tmp_path_factory.mktemp("painn"), atoms=atoms, temperature=180.0,
        neural_dtype=torch.float64,
    )  # fmt: skip
    return model, atoms, files


def test_painn_plugin_equals_calculator(triclinic):
    """Energy, forces and virial (pressure) of the plugin equal the calculator's in float64."""
    model, atoms, files = triclinic
    assert "pair_style cgtorch cgtorch.pt" in files["system"].read_text()
    lammps = evaluate(files["system"])
    energy, forces, virial = calculator_results(model, atoms)
    assert abs(energy) > 1e-2 and np.abs(forces).max() > 1e-2  # non-trivial weights
    assert lammps.energy == pytest.approx(energy, rel=1e-10)
    assert relative(lammps.forces, forces) < 1e-9
    assert relative(lammps.virial, virial) < 1e-9
    pressure = np.trace(virial) / (3 * atoms.get_volume())
    assert np.trace(lammps.virial) / (3 * atoms.get_volume()) == pytest.approx(pressure, rel=1e-9)


@pytest.mark.mpi
def test_painn_two_ranks_equal_one(triclinic):
    """The vector features cross the tilted subdomain boundary after each layer."""
    _, _, files = triclinic
    one, two = evaluate(files["system"], ranks=1), evaluate(files["system"], ranks=2)
    assert two.energy == pytest.approx(one.energy, rel=1e-10)
    assert relative(two.forces, one.forces) < 1e-10
    assert relative(two.virial, one.virial) < 1e-10


def test_painn_with_prior_tables_equals_calculator(tmp_path):
    """Ethane CH3 beads: tables for the repulsion and bonds, hybrid/overlay with the plugin."""
    terms = [
        Repulsion(1, sigma=3.3, epsilon=0.01, power=12, cutoff=8.0),
        HarmonicBonds(1, k=20.0, r0=1.69),
        painn_term(1),
    ]
    model = CGModel(["CH3"], terms, mapping=ETHANE).double()
    atoms = build_cg_box(model, 64, 0.5495, seed=1)
    deviations = check_lammps_parity(
        model, atoms, tmp_path, rtol=1e-6, neural_dtype=torch.float64, temperature=180.0
    )
    assert "cgtorch cgtorch.pt" in (tmp_path / "system.in").read_text()
    assert deviations["forces"] < 1e-6 * np.abs(calculator_results(model, atoms)[1]).max()
