"""Recognising molecules (mol ids, bonds, geometry) and matching them to templates."""

from __future__ import annotations

import numpy as np
import pytest
from _boxes import molecule_box
from ase import Atoms
from ase.build import molecule

from ase_cg.molecules import (
    MoleculeError,
    TemplateMatcher,
    covalent_bonds,
    find_molecules,
    formula_of,
)


def test_formula_of():
    assert formula_of([6, 1, 1, 1]) == "CH3"
    assert formula_of(molecule("C2H6").numbers) == "C2H6"
    assert formula_of([8, 1, 1]) == "H2O"


def test_covalent_bonds_of_templates():
    ethane = molecule("C2H6")
    bonds = covalent_bonds(ethane.numbers, ethane.positions)
    assert bonds.tolist() == [[0, 1], [0, 2], [0, 3], [0, 4], [1, 5], [1, 6], [1, 7]]
    assert len(covalent_bonds(*_np(molecule("trans-butane")))) == 13


def _np(atoms):
    return atoms.numbers, atoms.positions


def test_covalent_bonds_across_periodic_boundary():
    ethane = molecule("C2H6")
    ethane.cell = np.eye(3) * 8.0
    ethane.pbc = True
    ethane.positions += -ethane.positions[0]  # carbon 0 at the origin: split over the faces
    ethane.wrap()
    bonds = covalent_bonds(ethane.numbers, ethane.positions, ethane.cell.array, ethane.pbc)
    assert len(bonds) == 7
    plain = covalent_bonds(ethane.numbers, ethane.positions)  # without pbc the bonds break
    assert len(plain) < 7


@pytest.mark.parametrize("source", ["mol-id", "bonds", "geometry"])
def test_find_molecules_sources_agree(source, rng):
    atoms, _ = molecule_box([molecule("C2H6"), molecule("C3H8")], rng=rng, skew=0.2)
    # shuffle the atoms: molecules become non-contiguous
    order = rng.permutation(len(atoms))
    atoms = atoms[order]
    reference = find_molecules(atoms)
    assert reference.source == "mol-id"
    kwargs = {}
    if source != "mol-id":
        mol_ids = atoms.arrays.pop("mol-id")
        if source == "bonds":
            kwargs["bonds"] = reference.bonds
    found = find_molecules(atoms, **kwargs)
    assert found.source == source
    assert found.n_molecules == 27
    assert sorted(map(tuple, found.molecules)) == sorted(map(tuple, reference.molecules))
    if source != "mol-id":
        # every molecule has one mol id; molecules numbered by lowest atom index
        for members in found.molecules:
            assert len(set(mol_ids[members])) == 1
        firsts = [m.min() for m in found.molecules]
        assert firsts == sorted(firsts)
    assert len(found.bonds) == 14 * 7 + 13 * 10


def test_mol_ids_need_not_be_contiguous():
    a = Atoms("H2H2", positions=[[0, 0, 0], [5, 5, 5], [0, 0, 0.74], [5, 5, 5.74]])
    a.arrays["mol-id"] = np.array([70, 3, 70, 3])
    found = find_molecules(a)
    assert [m.tolist() for m in found.molecules] == [[1, 3], [0, 2]]  # sorted ids: 3, then 70
    assert found.bonds.tolist() == [[0, 2], [1, 3]]


def test_bond_crossing_two_molecules_is_an_error():
    a = Atoms("H4", positions=[[0, 0, 0], [0, 0, 0.74], [3, 0, 0], [3, 0, 0.74]])
    a.arrays["mol-id"] = np.array([1, 1, 2, 2])
    with pytest.raises(MoleculeError, match="bond 1 joins atom 1 .molecule id 1. and atom 2"):
        find_molecules(a, bonds=[[0, 1], [1, 2]])
    with pytest.raises(MoleculeError, match="out of range"):
        find_molecules(a, bonds=[[0, 9]])


def test_matcher_puts_shuffled_atoms_in_template_order(rng):
    template = molecule("trans-butane")
    t_bonds = covalent_bonds(*_np(template))
    matcher = TemplateMatcher(
        {
            "ethane": (molecule("C2H6").numbers, covalent_bonds(*_np(molecule("C2H6")))),
            "butane": (template.numbers, t_bonds),
        }
    )
    name, order = matcher.match(template.numbers, t_bonds)
    assert name == "butane" and order.tolist() == list(range(14))  # identity fast path
    perm = rng.permutation(14)
    shuffled = template[perm]
    bonds = covalent_bonds(*_np(shuffled))
    name, order = matcher.match(shuffled.numbers, bonds)
    assert name == "butane"
    # order[k] is the local atom playing template atom k: species and bonds must agree
    assert (shuffled.numbers[order] == template.numbers).all()
    inverse = np.argsort(order)
    mapped = {tuple(sorted(p)) for p in inverse[bonds].tolist()}
    assert mapped == set(map(tuple, t_bonds.tolist()))


def test_matcher_rejects_unknown_molecule():
    ethane = molecule("C2H6")
    matcher = TemplateMatcher({"ethane": (ethane.numbers, covalent_bonds(*_np(ethane)))})
    methanol = molecule("CH3OH")
    with pytest.raises(MoleculeError, match=r"molecule 5 \(CH4O, 5 bonds\) matches no template"):
        matcher.match(methanol.numbers, covalent_bonds(*_np(methanol)), label="molecule 5")
    # same species, different bonds (a broken C–C bond): no match either
    bonds = covalent_bonds(*_np(ethane))[1:]
    with pytest.raises(MoleculeError, match="'ethane' \\(C2H6, 7 bonds\\)"):
        matcher.match(ethane.numbers, bonds)


def test_bonds_inside_large_and_small_molecules_from_mol_ids():
    """Molecules above the all-pairs size limit take the neighbour-list route: same bonds."""
    direction = np.array([1.0, 0.5, 0.2]) / np.linalg.norm([1.0, 0.5, 0.2])
    chain = Atoms("C70", positions=np.outer(np.arange(70) * 1.5, direction))
    ethane = molecule("C2H6")
    ethane.positions += [0.0, 12.0, 12.0]
    atoms = chain + ethane
    atoms.cell = np.eye(3) * 30.0
    atoms.pbc = True
    atoms.wrap()
    atoms.arrays["mol-id"] = np.array([5] * 70 + [2] * 8)
    found = find_molecules(atoms)
    assert [len(m) for m in found.molecules] == [8, 70]
    expected = [[k, k + 1] for k in range(69)] + (covalent_bonds(*_np(ethane)) + 70).tolist()
    assert sorted(found.bonds.tolist()) == sorted(expected)
    del atoms.arrays["mol-id"]
    assert sorted(find_molecules(atoms).bonds.tolist()) == sorted(expected)


def _ase_bonds(atoms, scale=1.2):
    """Reference implementation: ASE's neighbour list with per-atom covalent cutoffs."""
    from ase.data import covalent_radii
    from ase.neighborlist import primitive_neighbor_list

    i, j = primitive_neighbor_list(
        "ij",
        atoms.pbc,
        atoms.cell.array,
        atoms.positions,
        covalent_radii[atoms.numbers] * scale,
        self_interaction=False,
    )
    pairs = np.sort(np.stack([i, j], axis=1), axis=1)
    return np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0).tolist()


@pytest.mark.parametrize("skew", [0.0, 0.45])
def test_covalent_bonds_agree_with_ase_neighbour_list(skew, rng):
    # molecules 3.2 Å apart: many near-contacts that must not become bonds
    atoms, _ = molecule_box(
        [molecule("C2H6"), molecule("CH3OH")], rng=rng, skew=skew, spacing=3.2, jitter=0.2
    )
    got = covalent_bonds(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc)
    assert got.tolist() == _ase_bonds(atoms)


@pytest.mark.parametrize(
    ("cell", "pbc"),
    [
        (np.eye(3) * 2.5, True),  # cutoff longer than half the box: several images
        ([[2.5, 0, 0], [0, 10, 0], [0.5, 0, 2.5]], [True, False, True]),
    ],
)
def test_covalent_bonds_small_and_mixed_periodic_cells(cell, pbc):
    ethane = molecule("C2H6")
    ethane.cell = cell
    ethane.pbc = pbc
    got = covalent_bonds(ethane.numbers, ethane.positions, ethane.cell.array, ethane.pbc)
    assert got.tolist() == _ase_bonds(ethane)
    assert len(got) > 7  # images of its own atoms come within bonding distance
