"""Mapping whole H5MD trajectories (chunked) and the ``ase-cg map`` command."""

from __future__ import annotations

import numpy as np
import pytest
from _boxes import ethane_mapping, molecule_box
from ase.build import molecule

from ase_cg.cli import main
from ase_cg.io import H5MDTrajectory, H5MDWriter, read_h5md
from ase_cg.mapping import MappingError, map_trajectory


def _write_aa(path, frames, *, mol_ids=True, bonds=None, time_step=2.0):
    first = frames[0]
    with H5MDWriter(
        path,
        species=first.numbers,
        masses=first.get_masses(),
        mol_ids=first.arrays["mol-id"] if mol_ids else None,
        bonds=bonds,
        time_step=time_step,
    ) as writer:
        for k, atoms in enumerate(frames):
            writer.append(
                atoms.positions,
                atoms.cell.array,
                forces=atoms.get_forces(),
                velocities=atoms.get_velocities(),
                step=10 * k,
            )


def _frames(rng, n_frames=7, skew=0.25):
    frames = []
    for _ in range(n_frames):
        atoms, _ = molecule_box([molecule("C2H6")], rng=rng, skew=skew)
        frames.append(atoms)
    return frames


@pytest.mark.parametrize("mol_ids", [True, False])
def test_map_trajectory_matches_frame_by_frame(tmp_path, rng, mol_ids):
    frames = _frames(rng)
    _write_aa(tmp_path / "aa.h5", frames, mol_ids=mol_ids)
    mapping = ethane_mapping()
    system = map_trajectory(tmp_path / "aa.h5", tmp_path / "cg.h5", mapping, chunk_size=3)
    assert system.n_beads == 54
    with H5MDTrajectory(tmp_path / "cg.h5") as cg:
        assert cg.n_frames == 7 and cg.n_atoms == 54
        assert cg.bead_types.tolist() == ["CH3"] * 54
        np.testing.assert_allclose(cg.masses, 15.035)
        assert cg.mol_ids.tolist() == np.repeat(np.arange(27), 2).tolist()
        assert cg.bonds.tolist() == [[2 * m, 2 * m + 1] for m in range(27)]
        assert cg.steps.tolist() == [0, 10, 20, 30, 40, 50, 60]
        np.testing.assert_allclose(cg.times, 20.0 * np.arange(7))
        positions, forces = cg.positions(), cg.forces()
        velocities, cells = cg.velocities(), cg.cells()
    # the AA file stores float32: map what was stored
    stored = read_h5md(tmp_path / "aa.h5")
    for k, atoms in enumerate(stored):
        expected = mapping.map(atoms)
        np.testing.assert_allclose(cells[k], atoms.cell.array, atol=1e-5)
        delta = positions[k] - expected.positions
        frac = delta @ np.linalg.inv(cells[k])
        np.testing.assert_allclose((frac - np.round(frac)) @ cells[k], 0, atol=1e-4)
        np.testing.assert_allclose(forces[k], expected.get_forces(), atol=1e-4)
        np.testing.assert_allclose(velocities[k], expected.get_velocities(), atol=1e-5)
        # total force and momentum conserved frame by frame (bead sum)
        np.testing.assert_allclose(forces[k].sum(0), atoms.get_forces().sum(0), atol=1e-4)


def test_map_command_and_pseudo_inverse(tmp_path, rng, capsys):
    frames = _frames(rng, n_frames=3)
    _write_aa(tmp_path / "aa.h5", frames)
    ethane_mapping().save(tmp_path / "ethane.json")
    code = main(
        [
            "map",
            "--mapping",
            str(tmp_path / "ethane.json"),
            str(tmp_path / "aa.h5"),
            str(tmp_path / "cg.h5"),
            "--chunk-size",
            "2",
            "--force-map",
            "pseudo_inverse",
            "--compression",
            "none",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "216 atoms in 27 molecules → 54 beads" in capsys.readouterr().out
    cg = read_h5md(tmp_path / "cg.h5", index=0)
    atoms = read_h5md(tmp_path / "aa.h5", index=0)
    expected = ethane_mapping().map(atoms, force_map="pseudo_inverse")
    np.testing.assert_allclose(cg.get_forces(), expected.get_forces(), atol=1e-4)


def test_map_command_reports_bad_mapping_file(tmp_path, rng, capsys):
    _write_aa(tmp_path / "aa.h5", _frames(rng, n_frames=1))
    (tmp_path / "bad.json").write_text('{"format": "ase_cg.mapping", "version": 1}')
    code = main(["map", "--mapping", "bad.json", "aa.h5", "cg.h5", "--no-progress"])
    assert code == 1
    assert "'units'" in capsys.readouterr().err
    assert not (tmp_path / "cg.h5").exists()


def test_map_trajectory_refuses_a_cg_input(tmp_path, rng):
    _write_aa(tmp_path / "aa.h5", _frames(rng, n_frames=2))
    mapping = ethane_mapping()
    map_trajectory(tmp_path / "aa.h5", tmp_path / "cg.h5", mapping, progress=False)
    with pytest.raises(MappingError, match="cg.h5: is already a CG trajectory"):
        map_trajectory(tmp_path / "cg.h5", tmp_path / "cg2.h5", mapping, progress=False)


def test_shipped_reference_maps_to_the_measured_cg_bond(data_dir):
    """The OPLS-AA ethane reference mapped to CH3 beads: bond 1.688 ± 0.027 Å (as measured)."""
    reference = data_dir / "ethane_aa.h5"
    if not reference.exists():
        pytest.skip("data/ethane_aa.h5 is not in this checkout")
    with H5MDTrajectory(reference) as aa:
        frames = slice(0, min(aa.n_frames, 40))
        system = ethane_mapping().system(aa[0], bonds=aa.bonds)
        cells = aa.cells(frames)
        positions = system.map_positions(aa.positions(frames), cells)
        atom_forces = aa.forces(frames)
    bonds = system.topology["bonds"]
    assert len(bonds) == system.n_molecules
    delta = positions[:, bonds[:, 1]] - positions[:, bonds[:, 0]]
    fractional = delta @ np.linalg.inv(cells)
    lengths = np.linalg.norm((fractional - np.round(fractional)) @ cells, axis=-1)
    assert lengths.mean() == pytest.approx(1.688, abs=0.01)
    assert 0.015 < lengths.std() < 0.04
    np.testing.assert_allclose(
        system.map_forces(atom_forces).sum(axis=1), atom_forces.sum(axis=1), atol=1e-8
    )
