"""Force-matching fit of the classical splines: recovers LAMMPS LJ + harmonic bonds, exact
recovery of noise-free spline data, chunking invariance, extrapolation, report, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _chains import CHAIN_CONFIG, chain_liquid, random_chain_model
from _dimers import EPSILON, K_BOND, LJ_CUTOFF, R0_BOND, SIGMA, TEMPERATURE, simulate_dimers

from ase_cg import _keys as K
from ase_cg.fitting import (
    ArrayTrajectory,
    ClassicalConfig,
    FitError,
    fit_classical,
    plot_classical,
)
from ase_cg.potentials import BondSpline, PairSpline, SystemTopology, make_batch
from ase_cg.testing import check_gradient

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dimers(tmp_path_factory):
    """Positions, forces (exact, no noise), the cell and the topology of the dimer liquid."""
    positions, forces, _, _, cell, topology = simulate_dimers(tmp_path_factory.mktemp("lammps"))
    return positions, forces, cell, topology


@pytest.fixture(scope="module")
def dimer_fit(dimers):
    positions, forces, cell, topology = dimers
    config = ClassicalConfig(pair_cutoff=LJ_CUTOFF, temperature=TEMPERATURE)
    return fit_classical(ArrayTrajectory(positions, cell, forces), topology, config=config)


def lj_force(r):
    s6 = (SIGMA / r) ** 6
    return 24 * EPSILON / r * (2 * s6 * s6 - s6)


def test_fit_recovers_lammps_lj_and_harmonic_bond(dimer_fit):
    """Pair force within 0.005 eV/Å + 3 % of |F_LJ| from the first well-sampled interval to the
    cutoff (LJ forces there reach ~0.4 eV/Å); bond k within 2 %, r0 within 0.2 %."""
    model, _ = dimer_fit
    pair, bond = model.terms
    assert isinstance(pair, PairSpline) and isinstance(bond, BondSpline)
    lower = float(pair.lower[0])
    assert 2.5 < lower < 3.0  # the closest approaches of a 150 K LJ liquid, σ = 3 Å
    r = np.linspace(lower + pair.grid.spacing, LJ_CUTOFF - 0.05, 400)
    _, force = pair.evaluate(r, (0, 0))
    tolerance = 0.005 + 0.03 * np.abs(lj_force(r))
    assert np.all(np.abs(force - lj_force(r)) < tolerance), np.abs(force - lj_force(r)).max()
    assert lj_force(r).max() > 0.2  # the compared range includes the steep wall
    # bond: a parabola through the fitted energy over the sampled range
    r_bond = np.linspace(float(bond.lower[0]), float(bond.upper[0]), 200)
    energy, _ = bond.evaluate(r_bond, (0, 0))
    c2, c1, _ = np.polyfit(r_bond, energy, 2)
    assert 2 * c2 == pytest.approx(K_BOND, rel=0.02)
    assert -c1 / (2 * c2) == pytest.approx(R0_BOND, rel=0.002)


def test_fitted_extrapolation_is_repulsive(dimer_fit):
    model, _ = dimer_fit
    pair, bond = model.terms
    r = np.linspace(0.1, float(pair.lower[0]), 200)
    energy, force = pair.evaluate(r, (0, 0))
    assert np.all(np.diff(energy) < 0) and np.all(force > 0)
    r = np.linspace(0.1, float(bond.lower[0]), 200)
    energy, _ = bond.evaluate(r, (0, 0))
    assert np.all(np.diff(energy) < 0)
    r = np.linspace(float(bond.upper[0]), 5.0, 200)
    energy, _ = bond.evaluate(r, (0, 0))
    assert np.all(np.diff(energy) > 0)


def test_fit_report(dimer_fit):
    _, report = dimer_fit
    validation = report["validation"]
    assert set(validation) == {"B0", "all"}
    assert report["n_train_frames"] == 80 and report["n_validation_frames"] == 20
    # noise-free LAMMPS forces of the same functional form: almost all variance explained
    assert validation["all"]["fraction_unexplained"] < 2e-3
    assert validation["all"]["force_variance"] > 0.05
    assert report["train"]["all"]["fraction_unexplained"] < 2e-3
    assert report["samples"]["PairSpline"]["B0-B0"] > 1e5


def test_fitted_model_forces_equal_finite_differences(dimer_fit, dimers):
    """Forces through CGModel, with one pair pushed into the extrapolated wall and one bond
    stretched past the sampled range."""
    model, _ = dimer_fit
    positions, _, cell, topology = dimers
    x = positions[-1].copy()
    x[2] = x[4] + np.array([2.0, 0.3, 0.1])  # beads 2, 4: different molecules, 2.03 Å apart
    x[1] = x[0] + np.array([0.0, 0.0, 1.9])  # stretched bond of molecule 0

    def energy(y):
        return model(make_batch(y, cell, topology, model.cutoff), compute_forces=False)[
            K.ENERGY
        ].item()

    forces = model(make_batch(x, cell, topology, model.cutoff))[K.FORCES].detach().numpy()
    check_gradient(energy, x, forces, indices=(0, 1, 2, 4, 7), atol=1e-7)
    assert np.abs(forces[[0, 1, 2, 4]]).max() > 0.3


def test_chunked_accumulation_equals_one_chunk(dimers):
    positions, forces, cell, topology = dimers
    data = ArrayTrajectory(positions[:12], cell, forces[:12])
    coefficients = []
    for chunk_size in (5, 12):
        config = ClassicalConfig(
            pair_cutoff=LJ_CUTOFF, chunk_size=chunk_size, validation_fraction=0.0
        )
        model, _ = fit_classical(data, topology, config=config)
        coefficients.append([t.coefficients.clone() for t in model.terms])
    for a, b in zip(*coefficients, strict=True):  # equal up to rounding (summation order)
        assert torch.allclose(a, b, rtol=0.0, atol=1e-8 * float(b.abs().max()))


def test_noise_free_spline_data_recovers_coefficients(rng):
    """Forces of a random model with all four spline kinds, refitted without smoothing."""
    truth = random_chain_model(rng)
    frames, cells = [], []
    for _ in range(30):
        positions, cell, topology = chain_liquid(rng)
        frames.append(positions)
        cells.append(cell)
    batch = make_batch(np.array(frames), np.array(cells), topology, truth.cutoff)
    forces = truth(batch)[K.FORCES].detach().numpy().reshape(len(frames), -1, 3)
    data = ArrayTrajectory(np.array(frames), np.array(cells), forces)
    model, report = fit_classical(
        data, topology, config=CHAIN_CONFIG, bead_type_names=["A", "B"], progress=False
    )
    assert report["train"]["all"]["fraction_unexplained"] < 1e-10
    for fitted, true in zip(model.terms, truth.terms, strict=True):
        assert fitted.kind == true.kind and fitted.grid == true.grid
        sampled = true.samples > 0
        assert torch.equal(fitted.samples > 0, sampled), fitted.kind
        difference = fitted.coefficients - true.coefficients
        if fitted.kind != "pair":  # bonded energies are fitted up to a constant
            difference = difference - difference.mean(1, keepdim=True)
        scale = true.coefficients.abs().max()
        assert difference.abs().max() < 1e-6 * scale, fitted.kind
        assert torch.all(fitted.coefficients[~sampled] == 0)


def test_unsampled_type_pair_gets_zero_coefficients_and_a_wall(dimers):
    positions, forces, cell, topology = dimers
    types = np.zeros(topology.n_beads, dtype=int)
    types[0] = 1  # a single bead of type "B": B–B pairs never occur
    two_types = SystemTopology(types, topology.bonds, topology.angles, topology.dihedrals)
    data = ArrayTrajectory(positions[:10], cell, forces[:10])
    config = ClassicalConfig(pair_cutoff=LJ_CUTOFF, validation_fraction=0.0)
    model, report = fit_classical(data, two_types, config=config, bead_type_names=["A", "B"])
    pair = model.terms[0]
    bb = pair.combinations.index((1, 1))
    assert float(pair.samples[bb]) == 0 and torch.all(pair.coefficients[bb] == 0)
    assert report["samples"]["PairSpline"]["B-B"] == 0
    energy, force = pair.evaluate(np.linspace(0.5, 6.0, 100), (1, 1))
    inside = np.linspace(0.5, 6.0, 100) >= float(pair.lower[bb])
    assert np.all(energy[inside] == 0) and np.all(np.diff(energy[~inside]) < 0)
    assert float(pair.samples[pair.combinations.index((0, 1))]) > 0


def test_fit_from_cg_h5md_with_mapping(dimers, tmp_path):
    from ase import Atoms

    from ase_cg.io import H5MDWriter
    from ase_cg.mapping import CGMapping

    positions, forces, cell, topology = dimers
    template = Atoms("CC", positions=[[0, 0, 0], [R0_BOND, 0, 0]], masses=[15.0, 15.0])
    mapping = CGMapping.from_groups(template, [[0], [1]], bead_names=["C1", "C1"], name="dimer")
    n_beads = topology.n_beads
    path = tmp_path / "cg.h5"
    with H5MDWriter(
        path,
        bead_types=np.array(["C1"] * n_beads),
        masses=np.full(n_beads, 15.0),
        mol_ids=np.arange(n_beads) // 2,
        bonds=topology.bonds,
    ) as writer:
        for x, f in zip(positions[:10], forces[:10], strict=True):
            writer.append(x, cell, forces=f)
    config = ClassicalConfig(pair_cutoff=LJ_CUTOFF, temperature=TEMPERATURE)
    model, report = fit_classical(path, mapping, config=config)
    assert model.mapping is mapping and model.bead_type_names == ["C1"]
    assert [t.kind for t in model.terms] == ["pair", "bond"]
    assert set(report["validation"]) == {"C1", "all"}
    assert report["validation"]["all"]["fraction_unexplained"] < 0.02
    assert str(path) == model.provenance["data"]


def test_bad_input(dimers, tmp_path):
    from ase_cg.io import H5MDWriter

    positions, forces, cell, topology = dimers
    with pytest.raises(FitError, match="unknown keys \\['cutoff'\\] for ClassicalConfig"):
        ClassicalConfig.from_dict({"cutoff": 8.0})
    with pytest.raises(FitError, match="pair_spacing must be > 0"):
        ClassicalConfig(pair_spacing=0.0)
    with pytest.raises(FitError, match="terms \\['torsion'\\] unknown"):
        ClassicalConfig(terms=("pair", "torsion"))
    short = SystemTopology(np.zeros(10, int), np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4)))
    with pytest.raises(FitError, match="200 particles per frame but the topology has 10 beads"):
        fit_classical(ArrayTrajectory(positions[:3], cell, forces[:3]), short)
    with pytest.raises(FitError, match="forces .* must have the shape of positions"):
        ArrayTrajectory(positions[:3], cell, forces[:2])
    path = tmp_path / "no_forces.h5"
    with H5MDWriter(path, bead_types=np.array(["A"] * 200), masses=np.full(200, 15.0)) as writer:
        writer.append(positions[0], cell)
    with pytest.raises(FitError, match="no_forces.h5: the trajectory has no forces"):
        fit_classical(path, topology)
    with pytest.raises(FitError, match="no training frames"):
        fit_classical(
            ArrayTrajectory(positions[:3], cell, forces[:3]),
            topology,
            config=ClassicalConfig(start=5),
        )


def test_plot_classical_writes_png(dimer_fit, tmp_path):
    model, _ = dimer_fit
    path = plot_classical(model, tmp_path / "plots" / "classical.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    assert not [p for p in path.parent.iterdir() if p.name != "classical.png"]


def test_ibi_pair_correction_is_the_boltzmann_inverted_rdf_ratio():
    """g_cg = g_ref·exp(ΔV/kT) for a known bump ΔV: the term's energy is ΔV where sampled,
    flat below the sampled range and zero from the cutoff on; bad input names the pair."""
    from ase.units import kB

    from ase_cg.fitting import FitError, ibi_pair_correction

    r = np.arange(0.05, 13.2, 0.1)
    g_ref = np.where(r > 3.2, 1 + 0.6 * np.exp(-((r - 4.2) ** 2)), 0.0)
    bump = 0.004 * np.exp(-(((r - 5.0) / 0.6) ** 2))
    g_cg = g_ref * np.exp(bump / (kB * 180.0))
    term = ibi_pair_correction(
        ["A", "B"], {("B", "A"): (r, g_ref, g_cg)}, temperature=180.0, cutoff=10.0
    )
    x = torch.linspace(1.0, 11.0, 201, dtype=torch.float64)
    a, b = torch.zeros(len(x), dtype=torch.int64), torch.ones(len(x), dtype=torch.int64)
    energy = term.pair_energy(x, a, b).numpy()
    expected = np.interp(x.numpy(), r, bump)
    inside = (x.numpy() > 3.5) & (x.numpy() < 8.0)
    np.testing.assert_allclose(energy[inside], expected[inside], atol=2e-4)  # 5 % of the bump
    assert np.abs(energy[x.numpy() >= 10.0]).max() == 0.0
    assert np.abs(term.pair_energy(x, a, a).numpy()).max() == 0.0  # A–A was not given
    below = x.numpy() < 3.2
    assert np.ptp(energy[below]) < 1e-6  # held flat where g is not sampled: no force
    with pytest.raises(FitError, match="'C'"):
        ibi_pair_correction(["A"], {("A", "C"): (r, g_ref, g_cg)}, temperature=180, cutoff=10)
    with pytest.raises(FitError, match="cutoff 14"):
        ibi_pair_correction(["A"], {("A", "A"): (r, g_ref, g_cg)}, temperature=180, cutoff=14)


def test_structural_correction_maps_the_reference_and_adds_one_term(data_dir, tmp_path):
    """The mapped reference against itself: the correction is zero; against a run whose RDF
    differs it is not; the CLI writes a loadable model that records what it corrected."""
    from ase_cg.cli import main
    from ase_cg.fitting import structural_correction
    from ase_cg.io import read_h5md, write_h5md
    from ase_cg.model import load_model

    model = load_model(data_dir / "ethane_classical.pt")
    aa = read_h5md(data_dir / "ethane_aa.h5", index=slice(0, 12))
    mapped = [model.mapping.map(atoms) for atoms in aa]
    same = structural_correction(model, aa, mapped, temperature=180.0)
    assert len(same.terms) == len(model.terms) + 1
    r = torch.linspace(3.0, 12.0, 50, dtype=torch.float64)
    types = torch.zeros(len(r), dtype=torch.int64)
    assert same.terms[-1].pair_energy(r, types, types).abs().max() < 1e-12
    info = same.provenance["structural_correction"]
    assert info["max_abs_difference_before"] == {"CH3-CH3": 0.0} and info["cutoff_A"] == 10.0

    for atoms in mapped:  # squeeze the intermolecular contacts: a different RDF
        atoms.set_cell(atoms.cell * 0.97, scale_atoms=True)
    cg_path = tmp_path / "cg.h5"
    write_h5md(cg_path, mapped)
    out = tmp_path / "corrected.pt"
    assert (
        main(
            [
                "correct-structure",
                str(data_dir / "ethane_classical.pt"),
                str(data_dir / "ethane_aa.h5"),
                str(cg_path),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    corrected = load_model(out)
    assert corrected.terms[-1].pair_energy(r, types, types).abs().max() > 1e-4
    assert corrected.provenance["structural_correction"]["cg"] == str(cg_path)
