"""GROMACS TRR + TPR through MDAnalysis: read, map, force-match (fixture: tests/data/README.md).

The fixture is 64 OPLS-AA ethane molecules from GROMACS 2022.5 with C–H bonds constrained
(LINCS); the TRR holds positions, velocities and forces (without constraint forces) of 16
frames.  No GROMACS is needed to run these tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _paths import TEST_DATA

from ase_cg import _keys as K
from ase_cg.errors import InputError
from ase_cg.fitting import ClassicalConfig, fit_classical
from ase_cg.io import H5MDTrajectory
from ase_cg.mapping import CGMapping, map_trajectory
from ase_cg.potentials.base import SystemTopology, make_batch
from ase_cg.trajectory import (
    ConstraintWarning,
    MappedTrajectory,
    MDAnalysisTrajectory,
    cg_trajectory,
    open_trajectory,
)

HERE = TEST_DATA
TPR, TRR = HERE / "ethane_gmx.tpr", HERE / "ethane_gmx.trr"
N_FRAMES, N_ATOMS = 16, 512
EV_PER_KJ_MOL = 1.0 / 96.48533212331


@pytest.fixture(scope="module")
def trajectory():
    with MDAnalysisTrajectory(TPR, TRR) as t:
        yield t


@pytest.fixture(scope="module")
def mapping(data_dir):
    return CGMapping.load(data_dir / "ethane_mapping.json")


def test_reads_topology_and_units(trajectory):
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile

    t = trajectory
    assert (t.n_frames, t.n_atoms) == (N_FRAMES, N_ATOMS)
    assert t.numbers.tolist() == ([6, 1, 1, 1] * 2) * 64
    np.testing.assert_allclose(t.masses[:2], [12.011, 1.008], atol=1e-5)
    assert len(t.bonds) == 7 * 64 and np.unique(t.mol_ids).size == 64
    assert t.has_forces and t.has_velocities
    np.testing.assert_allclose(t.times, 100.0 * np.arange(N_FRAMES), atol=1e-3)  # fs
    assert t.steps.tolist() == list(range(0, 800, 50))
    # the raw file is nm, kJ mol-1 nm-1, nm ps-1: convert independently
    with TRRFile(str(TRR)) as raw:
        frames = [raw.read() for _ in range(3)]
    frame = frames[2]
    np.testing.assert_allclose(t.positions(2), 10.0 * frame.x, rtol=1e-6)
    np.testing.assert_allclose(t.forces(2), frame.f * EV_PER_KJ_MOL / 10.0, rtol=1e-6, atol=1e-9)
    ase_time_in_ps = 1e-3 * 10.1805054836529  # Å sqrt(amu/eV) in ps
    np.testing.assert_allclose(t.velocities(2), 10.0 * frame.v * ase_time_in_ps, rtol=1e-5)
    np.testing.assert_allclose(t.cells(2), 10.0 * frame.box, rtol=1e-6)
    atoms = t[2]
    assert atoms.get_chemical_formula() == "C128H384"
    np.testing.assert_allclose(atoms.get_forces(), t.forces(2))


def test_xtc_like_without_forces_is_refused_for_forces(tmp_path, trajectory):
    import MDAnalysis as mda

    u = mda.Universe(str(TPR), str(TRR))
    with mda.Writer(str(tmp_path / "positions.xtc"), N_ATOMS) as writer:
        for _ in u.trajectory[:3]:
            writer.write(u.atoms)
    with open_trajectory(tmp_path / "positions.xtc", topology=TPR) as xtc:
        assert xtc.n_frames == 3 and not xtc.has_forces
        np.testing.assert_allclose(xtc.positions(1), trajectory.positions(1), atol=2e-2)
        with pytest.raises(InputError, match="holds no forces.*nstfout"):
            xtc.forces(0)


def test_constrained_bonds_split_by_a_mapping_are_named(trajectory, mapping):
    template = mapping.templates["ethane"]  # C C H H H H H H
    split = CGMapping.from_groups(template, [[0, 2, 3], [1, 4, 5, 6, 7]], name="ethane")
    # one C–H bond per molecule (LINCS-constrained) now joins the two beads
    with pytest.warns(ConstraintWarning, match=r"64 constrained bond.*atoms \d+-\d+ \(C-H\)"):
        MappedTrajectory(trajectory, split)
    with pytest.raises(InputError, match=r"\(C-H\).*split_constraints='allow'"):
        MappedTrajectory(trajectory, split, split_constraints="error")
    # the C–C bond is flexible: splitting it is what CH3|CH3 does, silently
    assert (
        MappedTrajectory(trajectory, mapping, split_constraints="error").split_constrained.size == 0
    )


def test_convert_command_writes_h5md(tmp_path, trajectory):
    from ase_cg.cli import main

    assert main(["convert", str(TRR), "--topology", str(TPR), str(tmp_path / "out.h5")]) == 0
    with H5MDTrajectory(tmp_path / "out.h5") as h5:
        assert h5.n_frames == N_FRAMES
        assert np.array_equal(h5.numbers, trajectory.numbers)
        assert np.array_equal(h5.bonds, trajectory.bonds)
        np.testing.assert_allclose(h5.forces(5), trajectory.forces(5), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h5.times, trajectory.times)


def _design_matrix(model, positions, cells, topology) -> np.ndarray:
    """Forces of the fitted model's basis, one coefficient at a time (the model is linear in
    its coefficients): column k = model forces with coefficient k = 1, all others 0."""
    columns = []
    batch = make_batch(positions, cells, topology, model.cutoff)
    saved = [term.coefficients.detach().clone() for term in model.terms]
    with torch.no_grad():
        for term in model.terms:
            term.coefficients.zero_()
    for term in model.terms:
        for combination in range(term.coefficients.shape[0]):
            for j in range(term.n_free):
                with torch.no_grad():
                    term.coefficients[combination, j] = 1.0
                columns.append(model(batch)[K.FORCES].detach().numpy().ravel())
                with torch.no_grad():
                    term.coefficients[combination, j] = 0.0
    with torch.no_grad():
        for term, values in zip(model.terms, saved, strict=True):
            term.coefficients.copy_(values)
    return np.stack(columns, axis=1)


def test_force_matching_residual_equals_numpy_least_squares(trajectory, mapping):
    cg = cg_trajectory(trajectory, mapping, what="GROMACS ethane")
    assert isinstance(cg, MappedTrajectory) and cg.split_constrained.size == 0
    config = ClassicalConfig(
        pair_cutoff=8.0,  # the box is 18 Å
        validation_fraction=0.0,
        ridge=1e-6,
        smoothness=0.0,
        min_samples=0,
        terms=("pair", "bond"),
    )
    model, report = fit_classical(cg, mapping, config=config, progress=False)
    positions, cells, forces = cg.positions(), cg.cells(), cg.forces()
    # the mapped forces are bead sums of the GROMACS forces
    atoms_forces = trajectory.forces()
    methyl = [0, 1, 2, 3] if cg.system.position_matrix[0, 0] > 0 else [4, 5, 6, 7]
    np.testing.assert_allclose(forces[:, 0], atoms_forces[:, methyl].sum(1), atol=1e-9)

    names = list(model.bead_type_names)
    topology = SystemTopology(
        np.array([names.index(t) for t in cg.bead_types]),
        cg.topology["bonds"],
        cg.topology["angles"],
        cg.topology["dihedrals"],
        config.exclusion_bonds,
    )
    design = _design_matrix(model, positions, cells, topology)
    target = forces.ravel()
    # min |G c - F|² / n_rows + ridge |c|²: least squares on G stacked over sqrt(ridge) I
    n_rows = len(target)
    stacked = np.vstack([design / np.sqrt(n_rows), np.sqrt(config.ridge) * np.eye(design.shape[1])])
    rhs = np.concatenate([target / np.sqrt(n_rows), np.zeros(design.shape[1])])
    coefficients, *_ = np.linalg.lstsq(stacked, rhs, rcond=None)
    numpy_mse = float(np.sum((design @ coefficients - target) ** 2)) / (N_FRAMES * cg.n_atoms)
    assert report["train"]["all"]["force_mse"] == pytest.approx(numpy_mse, rel=1e-6)
    # and the fitted model's own forces reach that residual
    predicted = model(make_batch(positions, cells, topology, model.cutoff))[K.FORCES]
    model_mse = float(np.sum((predicted.detach().numpy().ravel() - target) ** 2))
    assert model_mse / (N_FRAMES * cg.n_atoms) == pytest.approx(numpy_mse, rel=1e-6)
    assert 0.1 < report["train"]["all"]["fraction_unexplained"] < 0.9


def test_map_trajectory_from_trr(tmp_path, trajectory, mapping):
    map_trajectory(TRR, tmp_path / "cg.h5", mapping, topology=TPR, progress=False)
    with H5MDTrajectory(tmp_path / "cg.h5") as cg:
        assert cg.n_frames == N_FRAMES and cg.n_atoms == 128
        mapped = MappedTrajectory(trajectory, mapping)
        np.testing.assert_allclose(cg.forces(3), mapped.forces(3), rtol=1e-5, atol=1e-6)


def test_map_and_compare_commands_read_trr(tmp_path, data_dir):
    from ase_cg.cli import main

    mapping = str(data_dir / "ethane_mapping.json")
    out = str(tmp_path / "cg.h5")
    argv = ["map", "--mapping", mapping, str(TRR), out, "--topology", str(TPR)]
    assert main([*argv, "--split-constraints", "error", "--no-progress"]) == 0
    report = tmp_path / "report"
    argv = ["compare", str(TRR), out, "--topology", str(TPR), "--mapping", mapping]
    assert main([*argv, "-o", str(report), "--r-max", "8"]) == 0
    import json

    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["rdf"]["CH3-CH3"]["max_abs_difference"] < 1e-6  # the same frames
    assert metrics["inputs"]["reference"]["source"] == str(TRR)


def test_compare_takes_a_mapped_reference_as_it_is(tmp_path, trajectory, mapping):
    from ase_cg.analysis import compare

    cg = MappedTrajectory(trajectory, mapping)
    metrics = compare(cg, cg, mapping=mapping, output_dir=tmp_path / "r", r_max=8.0)
    assert metrics["rdf"]["CH3-CH3"]["max_abs_difference"] == 0.0
    assert metrics["density"]["relative_difference"] == 0.0


def test_train_command_reads_trr(tmp_path, data_dir):
    from ase_cg.cli import main
    from ase_cg.model import load_model

    config = tmp_path / "fit.yaml"
    config.write_text("classical:\n  pair_cutoff: 8.0\n  terms: [pair, bond]\n")
    argv = ["train", str(TRR), "--topology", str(TPR), "--kind", "classical"]
    argv += ["--mapping", str(data_dir / "ethane_mapping.json"), "--config", str(config)]
    assert main([*argv, "-o", str(tmp_path / "model")]) == 0
    model = load_model(tmp_path / "model" / "model.pt")
    assert model.bead_type_names == ["CH3"]
    with H5MDTrajectory(tmp_path / "model" / "mapped.h5") as mapped:
        assert mapped.n_frames == N_FRAMES and mapped.n_atoms == 128


def test_info_summarises_a_gromacs_trajectory(capsys):
    from ase_cg.cli import main

    assert main(["info", str(TRR), "--topology", str(TPR)]) == 0
    out = capsys.readouterr().out
    assert "frames:      16" in out and "512 (atoms, C128H384)" in out
    assert "molecules:   64" in out and "bonds:       448" in out
    assert "forces, velocities" in out
