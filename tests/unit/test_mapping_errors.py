"""Bad input to the mapping: each error names the molecule, bead, atom or key at fault."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _boxes import ETHANE_GROUPS, ethane_mapping, molecule_box
from ase import Atoms
from ase.build import molecule

from ase_cg.errors import InputError
from ase_cg.mapping import CGMapping, MappingError, MappingFileError
from ase_cg.molecules import MoleculeError


def _groups(*groups):
    return CGMapping.from_groups(molecule("C2H6"), list(groups), name="ethane")


def test_atom_in_two_beads():
    with pytest.raises(MappingError, match="'ethane': atom 2 is in bead 1 and in bead 0"):
        _groups([0, 2, 3, 4], [1, 2, 5, 6, 7])


def test_atom_twice_in_one_bead():
    with pytest.raises(MappingError, match="atom 3 is in bead 0 and twice in that bead"):
        _groups([0, 2, 3, 3], [1, 5, 6, 7])


def test_empty_bead():
    with pytest.raises(MappingError, match="'ethane': bead 1 is empty"):
        _groups([0, 2, 3, 4], [], [1, 5, 6, 7])


def test_index_out_of_range():
    with pytest.raises(MappingError, match="bead 1 has atom index 8, out of range .* 8 atoms"):
        _groups([0, 2, 3, 4], [1, 5, 6, 8])
    with pytest.raises(MappingError, match="bead 0 has atom index -1"):
        _groups([-1, 2, 3, 4], [1, 5, 6, 7])


def test_zero_mass():
    ethane = molecule("C2H6")
    masses = ethane.get_masses()
    masses[5] = 0.0
    ethane.set_masses(masses)
    with pytest.raises(MappingError, match=r"template atom 5 \(H\) has mass 0.0"):
        CGMapping.from_groups(ethane, ETHANE_GROUPS, name="ethane")


def test_missing_mass():
    dummy = Atoms("X2", positions=[[0, 0, 0], [0, 0, 1.5]])
    with pytest.raises(MappingError, match="template atom 0 has no element .X. and no mass"):
        CGMapping.from_groups(dummy, [[0], [1]], name="dimer")
    dummy.set_masses([10.0, 10.0])
    mapping = CGMapping.from_groups(dummy, [[0], [1]], name="dimer", bonds=[[0, 1]])
    assert mapping.bead_masses == {"X": 10.0}


def test_template_trajectory_species_mismatch(rng):
    atoms, _ = molecule_box([molecule("C2H6")], rng=rng)
    numbers = atoms.numbers.copy()
    numbers[8 * 4 + 1] = 8  # molecule 4: its second carbon becomes an oxygen
    atoms.numbers = numbers
    with pytest.raises(MoleculeError, match=r"molecule 4 \(atoms 32, .*mol-id 5.*CH6O.*'ethane'"):
        ethane_mapping().map(atoms)


def test_molecule_matching_no_template(rng):
    atoms, _ = molecule_box([molecule("C2H6"), molecule("CH3OH")], rng=rng)
    with pytest.raises(MoleculeError, match=r"molecule 1 .*\(CH4O, 5 bonds\) matches no template"):
        ethane_mapping().map(atoms)


def test_trajectory_masses_differ_from_template(rng):
    atoms, _ = molecule_box([molecule("C2H6")], rng=rng)
    masses = atoms.get_masses()
    masses[8 * 3 + 6] = 2.014  # a deuterium in molecule 3
    atoms.set_masses(masses)
    with pytest.raises(
        MappingError, match=r"molecule 3 .*: atom 30, template atom 6 \(H\), has mass 2.014"
    ):
        ethane_mapping().map(atoms)


def test_shared_bead_type_with_different_masses():
    with pytest.raises(MappingError, match="bead type 'A' has mass .* beads sharing a type name"):
        CGMapping.from_groups(
            molecule("C2H6"), [[0, 2, 3, 4], [1, 5, 6]], bead_names=["A", "A"], name="ethane"
        )


def test_identical_templates_are_ambiguous():
    with pytest.raises(MappingError, match="'a' and 'b' have the same species and bond graph"):
        CGMapping.from_groups(
            {"a": (molecule("C2H6"), ETHANE_GROUPS), "b": (molecule("C2H6"), [[0, 1]])}
        )


def test_unknown_force_map(rng):
    atoms, _ = molecule_box([molecule("C2H6")], grid=(1, 1, 2), rng=rng)
    with pytest.raises(MappingError, match="force map 'sum' is not one of"):
        ethane_mapping().system(atoms, force_map="sum")


def test_cg_configuration_without_bead_types():
    cg = Atoms("X2", positions=[[0, 0, 0], [0, 0, 1.7]])
    cg.arrays["mol-id"] = np.array([0, 0])
    with pytest.raises(MappingError, match="no arrays\\['bead-type'\\]"):
        ethane_mapping().topology(cg)
    cg.arrays["bead-type"] = np.array(["CH3", "CH2"])
    with pytest.raises(MappingError, match=r"CG molecule 0 .* \['CH3', 'CH2'\], which match no"):
        ethane_mapping().topology(cg)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d.pop("format"), "'format': missing"),
        (lambda d: d.update(format="ase_cg.model"), "'format': is 'ase_cg.model'"),
        (lambda d: d.update(version=7), "'version': is 7"),
        (lambda d: d.pop("units"), "'units': missing"),
        (lambda d: d.update(weighting="charge"), "'weighting': is 'charge'"),
        (lambda d: d.update(molecule_types={}), "'molecule_types': expected list, got dict"),
        (lambda d: d["molecule_types"][0].pop("groups"), "'molecule_types\\[0\\].groups': missing"),
        (lambda d: d["molecule_types"][0].pop("masses"), "'molecule_types\\[0\\].masses': missing"),
        (
            lambda d: d["molecule_types"][0].update(species=["C", "Qq"]),
            "'molecule_types\\[0\\].species': unknown element symbols \\['Qq'\\]",
        ),
        (
            lambda d: d["molecule_types"][0].update(positions=[[0, 0, 0]]),
            "'molecule_types\\[0\\].positions': shape \\(1, 3\\), expected \\(8, 3\\)",
        ),
        (  # an index past int64 (found by the model-config fuzz test)
            lambda d: d["molecule_types"][0]["bonds"].__setitem__(0, [0, 2**63]),
            "'molecule_types\\[0\\].bonds': must be a list of \\[i, j\\] atom index pairs",
        ),
        (
            lambda d: d["molecule_types"][0]["groups"].__setitem__(1, [1, "5"]),
            "'molecule_types\\[0\\].groups\\[1\\]': must be a list of integer",
        ),
    ],
)
def test_json_of_the_wrong_schema(tmp_path, edit, key):
    data = ethane_mapping().to_dict()
    edit(data)
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MappingFileError, match=f"mapping file .*mapping.json: key {key}"):
        CGMapping.load(path)


def test_json_values_checked_like_from_groups(tmp_path):
    data = ethane_mapping().to_dict()
    data["molecule_types"][0]["groups"] = [[0, 2, 3, 4], [1, 4, 6, 7]]
    data["molecule_types"][0]["masses"][7] = -1.0
    with pytest.raises(MappingError, match="template atom 7 .H. has mass -1.0"):
        CGMapping.from_dict(data)
    data["molecule_types"][0]["masses"][7] = 1.008
    with pytest.raises(MappingError, match="atom 4 is in bead 1 and in bead 0"):
        CGMapping.from_dict(data)


def test_not_json_and_missing_file(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(MappingFileError, match="is not valid JSON"):
        CGMapping.load(tmp_path / "x.json")
    with pytest.raises(MappingFileError, match="cannot read mapping file"):
        CGMapping.load(tmp_path / "absent.json")


def test_errors_are_input_errors():
    assert issubclass(MappingError, InputError) and issubclass(MoleculeError, ValueError)
