"""H5MD files from other writers: species ids, the VMD structure layout, mislabelled units."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, info, read_h5md
from ase_cg.mapping import CGMapping, map_trajectory

N_FRAMES = 4


@pytest.fixture(scope="module")
def reference(data_dir):
    """Frames, masses, elements, molecule ids and bonds of the shipped ethane file (Å, eV)."""
    with H5MDTrajectory(data_dir / "ethane_aa.h5") as t:
        frames = slice(0, N_FRAMES)
        return {
            "positions": t.positions(frames),
            "forces": t.forces(frames),
            "cells": t.cells(frames),
            "numbers": t.numbers.copy(),
            "masses": t.masses.copy(),
            "mol_ids": t.mol_ids.copy(),
            "bonds": t.bonds.copy(),
            "steps": t.steps[frames].copy(),
        }


def write_foreign(path, ref, *, length="nm", scale=0.1, species=None, masses=True, vmd=None):
    """An H5MD file as a small h5py script of another program writes it: nm and kJ/mol/nm,
    species ids, no ase_cg additions (no creator 'ase_cg', no molecule_id)."""
    kj_mol_nm = 96.48533212331 * 10.0  # eV/Å → kJ mol-1 nm-1
    with h5py.File(path, "w") as f:
        f.create_group("h5md/creator").attrs["name"] = "my_script"
        g = f.create_group("particles/all")
        box = g.create_group("box")
        box.attrs["dimension"] = 3
        box.attrs["boundary"] = ["periodic"] * 3
        edges = box.create_dataset("edges", data=np.diag(ref["cells"][0]) * scale)
        edges.attrs["unit"] = length
        for name, data, unit in (
            ("position", ref["positions"] * scale, length),
            ("force", ref["forces"] * kj_mol_nm, "kJ mol-1 nm-1"),
        ):
            element = g.create_group(name)
            element.create_dataset("value", data=data.astype(np.float32)).attrs["unit"] = unit
            element.create_dataset("step", data=ref["steps"])
            element.create_dataset("time", data=ref["steps"] * 1e-3).attrs["unit"] = "ps"
        if species is None:
            species = (ref["numbers"] == 1).astype(np.int32)  # 0 = C, 1 = H
        g.create_dataset("species", data=species)
        if masses:
            g.create_dataset("mass", data=np.where(species == 0, 12.011, 1.008))
        if vmd is not None:
            for key, value in vmd.items():
                f.create_dataset(f"parameters/vmd_structure/{key}", data=value)
    return path


def test_species_ids_with_masses_read_as_elements(tmp_path, reference, data_dir):
    path = write_foreign(tmp_path / "ids.h5", reference)
    with H5MDTrajectory(path) as t:
        assert np.array_equal(t.numbers, reference["numbers"])
        assert "masses" in t.element_rule
        np.testing.assert_allclose(t.positions(), reference["positions"], atol=1e-5)
        np.testing.assert_allclose(t.forces(), reference["forces"], rtol=1e-5, atol=1e-6)
    assert "C432H1296" in info(path) and "from their masses" in info(path)
    # the shipped ethane mapping maps it, to the beads of the original file
    mapping = CGMapping.load(data_dir / "ethane_mapping.json")
    map_trajectory(path, tmp_path / "cg.h5", mapping)
    cg = read_h5md(tmp_path / "cg.h5")
    expected = mapping.map(read_h5md(data_dir / "ethane_aa.h5", index=0))
    assert len(cg) == N_FRAMES and len(cg[0]) == 432
    np.testing.assert_allclose(cg[0].positions, expected.positions, atol=1e-4)
    np.testing.assert_allclose(cg[0].get_forces(), expected.get_forces(), rtol=1e-4, atol=1e-5)


def test_vmd_layout_gives_elements_molecules_and_bonds(tmp_path, reference):
    ref = reference
    vmd = {
        "indexOfSpecies": np.array([0, 1]),
        "name": np.array([b"C", b"H"]),
        "type": np.array([b"opls_135", b"opls_140"]),
        "atomicnumber": np.array([6, 1]),
        "resid": ref["mol_ids"] + 1,
        "bond_from": ref["bonds"][:, 0] + 1,  # VMD numbers particles from 1
        "bond_to": ref["bonds"][:, 1] + 1,
    }
    path = write_foreign(tmp_path / "vmd.h5", ref, masses=False, vmd=vmd)
    with H5MDTrajectory(path) as t:
        assert np.array_equal(t.numbers, ref["numbers"])
        assert "atomicnumber" in t.element_rule
        assert np.array_equal(t.mol_ids, ref["mol_ids"] + 1)
        assert np.array_equal(t.bonds, ref["bonds"])
        np.testing.assert_allclose(t.masses, ref["masses"], atol=1e-3)


def test_vmd_names_checked_against_masses(tmp_path, reference):
    vmd = {"indexOfSpecies": np.array([0, 1]), "name": np.array([b"H", b"C"])}  # swapped
    path = write_foreign(tmp_path / "swapped.h5", reference, vmd=vmd)
    with pytest.raises(InputError, match="parameters/vmd_structure/name.*particle 0"):
        H5MDTrajectory(path)


def test_vmd_bonds_out_of_range(tmp_path, reference):
    n = len(reference["numbers"])
    vmd = {"bond_from": np.array([1, 2]), "bond_to": np.array([2, n + 1])}
    path = write_foreign(tmp_path / "bonds.h5", reference, vmd=vmd)
    with pytest.raises(InputError, match=f"bond_from.*1..{n}"):
        H5MDTrajectory(path)


def test_nm_label_on_angstrom_values_is_refused(tmp_path, reference):
    path = write_foreign(tmp_path / "mislabelled.h5", reference, length="nm", scale=1.0)
    with pytest.raises(InputError) as error:
        H5MDTrajectory(path)
    message = str(error.value)
    assert "'particles/all/position/value'" in message and "'unit' = 'nm'" in message
    assert str(path) in message


def test_angstrom_values_labelled_angstrom_read(tmp_path, reference):
    path = write_foreign(tmp_path / "angstrom.h5", reference, length="Angstrom", scale=1.0)
    with H5MDTrajectory(path) as t:
        np.testing.assert_allclose(t.positions(0), reference["positions"][0], atol=1e-4)


def test_masses_of_no_element_are_refused(tmp_path, reference):
    path = write_foreign(tmp_path / "ua.h5", reference)
    with h5py.File(path, "a") as f:  # united-atom CH3 masses
        mass = f["particles/all/mass"][()]
        mass[mass > 12] = 15.035
        f["particles/all/mass"][...] = mass
    with pytest.raises(InputError, match="particle 0 has mass 15.035"):
        H5MDTrajectory(path)


def test_species_ids_without_masses_or_names_are_refused(tmp_path, reference):
    path = write_foreign(tmp_path / "bare.h5", reference, masses=False)
    with pytest.raises(InputError, match="are ids, not atomic numbers"):
        H5MDTrajectory(path)


def test_cli_prints_the_element_rule_unless_quiet(tmp_path, reference, capsys):
    from ase_cg.cli import main

    path = write_foreign(tmp_path / "ids.h5", reference)
    assert main(["info", str(path)]) == 0
    assert "note:" in capsys.readouterr().err  # which rule gave the elements
    assert main(["--quiet", "info", str(path)]) == 0
    assert "note:" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # one or the other
        main(["-q", "-v", "info", str(path)])
    assert refused.value.code == 2
