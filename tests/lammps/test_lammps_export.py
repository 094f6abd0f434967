"""lammps_interface.export: LAMMPS (tables + cgtorch plugin) vs CGCalculator, same configuration.

Energies, forces and virials must agree to 1e-6 relative in float64 for a classical model
(pair and bond tables), a neural model (hybrid/overlay of tables and the plugin) and a chain
molecule with angle and dihedral tables. LAMMPS runs in subprocesses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _paths import DATA_DIR
from ase import Atoms

from ase_cg.errors import InputError
from ase_cg.io import read_h5md
from ase_cg.mapping import CGMapping
from ase_cg.md import build_cg_box
from ase_cg.potentials import CGModel, HarmonicAngles, HarmonicBonds, Repulsion
from ase_cg.potentials.classical import DihedralSpline, PairSpline, ThreeBodySpline
from ase_cg.potentials.neural import NeuralPotential
from ase_cg.testing import calculator_results
from lammps_interface import export
from lammps_interface.run import evaluate, run_deck
from lammps_interface.units import EV_TO_KCAL_PER_MOL

DATA = DATA_DIR

ETHANE = CGMapping.load(DATA / "ethane_mapping.json")


def pair_spline() -> PairSpline:
    """A repulsive wall plus a shallow well at 4.2 Å, zero at the 8 Å cutoff."""
    term = PairSpline(1, 2.5, 8.0, 40)
    knots = torch.linspace(2.5, 8.0, term.grid.n_basis, dtype=torch.float64)
    coefficients = 0.3 * torch.exp(-(knots - 2.5) / 0.4) - 0.01 * torch.exp(-((knots - 4.2) ** 2))
    coefficients[-3:] = 0.0
    term.coefficients.copy_(coefficients[None])
    term.lower.fill_(2.6)
    return term


def neural_term(n_types: int = 1) -> NeuralPotential:
    torch.manual_seed(0)
    term = NeuralPotential(
        n_types, n_atom_basis=16, n_filters=16, n_interactions=2, n_rbf=10, cutoff=5.0
    )
    with torch.no_grad():
        for parameter in term.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return term


def assert_same(lmp, ref, rtol=1e-6):
    energy, forces, virial = ref
    assert lmp.energy == pytest.approx(energy, rel=rtol)
    assert np.abs(lmp.forces - forces).max() < rtol * np.abs(forces).max()
    assert np.abs(lmp.virial - virial).max() < rtol * np.abs(virial).max()


def rep():
    return Repulsion(1, sigma=3.3, epsilon=0.01, power=12, cutoff=8.0)


@pytest.fixture(scope="module")
def neural(tmp_path_factory):
    model = CGModel(
        ["CH3"], [rep(), HarmonicBonds(1, k=20.0, r0=1.69), neural_term()], mapping=ETHANE
    ).double()
    atoms = build_cg_box(model, 64, 0.5495, seed=1)
    directory = tmp_path_factory.mktemp("neural")
    files = export(model, directory, atoms=atoms, neural_dtype=torch.float64, temperature=180.0,
                   neural_filter_spacing=None)  # fmt: skip
    return model, atoms, files


def test_classical_model_tables_equal_calculator(tmp_path):
    model = CGModel(
        ["CH3"], [rep(), pair_spline(), HarmonicBonds(1, k=20.0, r0=1.69)], mapping=ETHANE
    ).double()
    atoms = build_cg_box(model, 64, 0.5495, seed=1)
    files = export(model, tmp_path, atoms=atoms, table_points=4000, temperature=180.0)
    assert "neural" not in files
    text = files["system"].read_text()
    assert "cgtorch" not in text  # no neural code in a classical run
    assert "special_bonds lj/coul 0.0 0.0 0.0" in text
    assert_same(evaluate(files["system"]), calculator_results(model, atoms))


def test_neural_model_plugin_equals_calculator(neural):
    model, atoms, files = neural
    text = files["system"].read_text()
    assert "pair_style hybrid/overlay table" in text and "cgtorch cgtorch.pt" in text
    # features cross rank boundaries layer by layer: the default ghost shell (cutoff + skin)
    assert "comm_modify" not in text
    assert_same(evaluate(files["system"]), calculator_results(model, atoms))


def test_neural_model_with_filter_tables_equals_calculator(neural, tmp_path):
    """The default export reads the SchNet filters from 0.002 Å tables: LAMMPS forces and
    energy stay within 1e-5 of the calculator's (the exact export above: 1e-6)."""
    model, atoms, _ = neural
    files = export(model, tmp_path, atoms=atoms, neural_dtype=torch.float64, temperature=180.0)
    lammps = evaluate(files["system"])
    energy, forces, _ = calculator_results(model, atoms)
    assert abs(lammps.energy - energy) < 1e-5 * abs(energy)
    assert np.abs(lammps.forces - forces).max() < 1e-5 * np.abs(forces).max()


@pytest.mark.mpi
@pytest.mark.slow
def test_neural_model_two_ranks_equal_one(neural):
    _, _, files = neural
    one, two = evaluate(files["system"], ranks=1), evaluate(files["system"], ranks=2)
    assert two.energy == pytest.approx(one.energy, rel=1e-12)
    assert np.abs(two.forces - one.forces).max() < 1e-12 * np.abs(one.forces).max()


def test_angles_and_dihedrals_equal_calculator(tmp_path):
    """A four-bead chain A-B-B-A: bond, angle and (asymmetric) dihedral tables."""
    template = Atoms("C4", positions=[[0, 0, 0], [1.25, 0.9, 0], [2.5, 0, 0.3], [3.75, 0.9, 0.8]])
    mapping = CGMapping.from_groups(
        template,
        [[0], [1], [2], [3]],
        bead_names=["A", "B", "B", "A"],
        name="chain",
        bonds=[[0, 1], [1, 2], [2, 3]],
    )
    dihedral = DihedralSpline(2, 24)
    torch.manual_seed(1)
    with torch.no_grad():
        dihedral.coefficients.copy_(0.02 * torch.randn_like(dihedral.coefficients))
    terms = [
        Repulsion(2, sigma=3.0, epsilon=0.01, power=12, cutoff=7.0),
        HarmonicBonds(2, k=15.0, r0=1.55),
        HarmonicAngles(2, k=2.0, theta0=1.9),
        dihedral,
    ]
    model = CGModel(["A", "B"], terms, mapping=mapping).double()
    atoms = build_cg_box(model, 40, 0.6, seed=2)
    files = export(model, tmp_path, atoms=atoms, temperature=180.0)
    assert {"bond_table", "angle_table", "dihedral_table"} <= set(files)
    assert_same(evaluate(files["system"]), calculator_results(model, atoms))


def test_export_refuses_two_manybody_terms(tmp_path):
    model = CGModel(["CH3"], [neural_term(), neural_term()], mapping=ETHANE)
    with pytest.raises(InputError, match="2 many-body terms"):
        export(model, tmp_path)


def test_export_takes_the_models_temperature_or_refuses(tmp_path):
    """No hidden default: the deck's temperature is the model's training temperature, and a
    model that records none needs one given."""
    model = CGModel(["CH3"], [rep()], mapping=ETHANE)
    with pytest.raises(InputError, match="no training temperature"):
        export(model, tmp_path / "a")
    model.provenance["reference_state"] = {"temperature_K": 163.5}
    deck = export(model, tmp_path / "b")["deck"].read_text()
    assert "variable temperature index 163.5" in deck


def test_run_deck_runs_md_and_writes_a_trajectory(tmp_path):
    model = CGModel(["CH3"], [rep(), HarmonicBonds(1, k=20.0, r0=1.69)], mapping=ETHANE).double()
    atoms = build_cg_box(model, 32, 0.5495, seed=3)
    export(model, tmp_path, atoms=atoms, temperature=180.0, timestep=1.0, steps=40, dump_every=20)
    outputs = run_deck(tmp_path)
    frames = outputs["dump"].read_text().count("ITEM: TIMESTEP")
    assert frames == 3  # steps 0, 20, 40
    h5 = read_h5md(outputs["h5md"])
    assert len(h5) == 3 and list(h5[0].arrays["bead-type"]) == ["CH3"] * len(atoms)
    assert h5[0].get_masses() == pytest.approx(atoms.get_masses())
    # velocity create sets 180 K over 3N - 3 degrees of freedom (ASE counts 3N); LAMMPS and
    # ASE differ in k_B by ~1e-6
    n = len(atoms)
    assert h5[0].get_temperature() == pytest.approx(180.0 * (3 * n - 3) / (3 * n), rel=1e-5)
    first = outputs["dump"].read_text().split("ITEM: ATOMS")[1].splitlines()[1].split()
    force_real = np.array(first[-3:], dtype=float)  # kcal/mol/Å of bead 1 at step 0
    assert h5[0].get_forces()[0] == pytest.approx(force_real / EV_TO_KCAL_PER_MOL, rel=1e-8)
    assert "Loop time" in outputs["log"].read_text()
    with pytest.raises(InputError, match="no LAMMPS deck"):
        run_deck(tmp_path / "missing")


@pytest.mark.parametrize("neural", [False, True], ids=["tables", "tables+plugin"])
def test_triclinic_box_without_bonds_equals_calculator(tmp_path, neural):
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cell = np.array([[18.0, 0.0, 0.0], [1.1, 18.0, 0.0], [-0.8, 0.6, 18.0]])
    fractional = (grid + 0.5 + rng.normal(0, 0.07, grid.shape)) / 5
    atoms = Atoms(
        numbers=np.zeros(len(grid), int), positions=fractional @ cell, cell=cell, pbc=True
    )
    atoms.arrays["bead-type"] = np.array(rng.choice(["A", "B"], len(atoms)))
    atoms.set_masses(np.full(len(atoms), 15.0))
    terms = [Repulsion(2, sigma=[[3.2, 3.0], [3.0, 2.8]], epsilon=0.02, power=12, cutoff=6.0)]
    if neural:
        terms.append(neural_term(n_types=2))
    model = CGModel(["A", "B"], terms).double()
    files = export(model, tmp_path, atoms=atoms, temperature=180.0)
    assert "xy xz yz" in files["data"].read_text()
    one_rank = evaluate(files["system"])
    assert_same(one_rank, calculator_results(model, atoms))
    if neural:  # features cross the tilted subdomain boundary between the two layers
        two_ranks = evaluate(files["system"], ranks=2)
        assert (
            np.abs(two_ranks.forces - one_rank.forces).max() < 1e-12 * np.abs(one_rank.forces).max()
        )


def test_constrained_bonds_keep_their_table_minimum(tmp_path):
    model = CGModel(["CH3"], [rep(), HarmonicBonds(1, k=20.0, r0=1.69)], mapping=ETHANE).double()
    atoms = build_cg_box(model, 32, 0.5495, seed=4)
    export(
        model,
        tmp_path,
        atoms=atoms,
        temperature=180.0,
        timestep=5.0,
        steps=40,
        dump_every=20,
        constrain_bonds=True,
    )
    frames = read_h5md(run_deck(tmp_path)["h5md"])
    lengths = np.array([[a.get_distance(2 * m, 2 * m + 1) for m in range(32)] for a in frames])
    # SHAKE holds EQ = the harmonic r0 (to ~1e-5 Å with the thermostat), against a free
    # fluctuation of sqrt(k_B T / k) ≈ 0.03 Å
    assert np.abs(lengths[1:] - 1.69).max() < 1e-4


def test_threebody_term_in_sw_angle_table_equals_calculator(tmp_path):
    """Pair spline + three-body spline of two bead types: LAMMPS (table + sw/angle/table) and
    the calculator agree, on 1 and 2 ranks (the triples cross the subdomain boundary)."""
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(*[np.arange(6)] * 3, indexing="ij"), -1).reshape(-1, 3)
    box = 17.0
    positions = (grid + 0.5 + rng.normal(0, 0.08, grid.shape)) * box / 6
    atoms = Atoms(numbers=np.zeros(len(grid), int), positions=positions, cell=[box] * 3, pbc=True)
    atoms.arrays["bead-type"] = np.array(rng.choice(["A", "B"], len(atoms)))
    atoms.set_masses(np.full(len(atoms), 18.0))
    threebody = ThreeBodySpline(2, 0.0, math.pi, 40, cutoff=4.3, screening=2.9)
    knots = torch.linspace(0.0, math.pi, threebody.grid.n_basis, dtype=torch.float64)
    with torch.no_grad():
        for row in range(len(threebody.combinations)):
            threebody.coefficients[row] = (1 + 0.3 * row) * 0.5 * (torch.cos(knots) + 1 / 3) ** 2
        threebody.lower.fill_(0.5)  # the extrapolation below 0.5 rad is in the table too
    spline = pair_spline()
    pair = PairSpline(2, 2.5, 8.0, 40)
    pair.coefficients.copy_(spline.coefficients.expand(3, -1))
    pair.lower.fill_(2.6)
    model = CGModel(["A", "B"], [pair, threebody]).double()
    files = export(model, tmp_path, atoms=atoms, table_points=4000, temperature=300.0)
    text = files["system"].read_text()
    assert "pair_style hybrid/overlay table spline 4000 sw/angle/table" in text
    one_rank = evaluate(files["system"])
    energy, forces, virial = calculator_results(model, atoms)
    _, threebody_forces, _ = calculator_results(CGModel(["A", "B"], [threebody]).double(), atoms)
    assert np.abs(threebody_forces).max() > 0.1 * np.abs(forces).max()  # it matters here
    assert_same(one_rank, (energy, forces, virial), rtol=1e-5)
    two_ranks = evaluate(files["system"], ranks=2)
    assert np.abs(two_ranks.forces - one_rank.forces).max() < 1e-9 * np.abs(forces).max()


def test_threebody_export_refuses_bonded_systems(tmp_path):
    model = CGModel(
        ["CH3"], [rep(), HarmonicBonds(1, k=20.0, r0=1.69), ThreeBodySpline(1, 0.0, math.pi, 10)],
        mapping=ETHANE,
    ).double()  # fmt: skip
    atoms = build_cg_box(model, 8, 0.5495, seed=1)
    with pytest.raises(InputError, match="without bonds"):
        export(model, tmp_path, atoms=atoms, temperature=180.0)
