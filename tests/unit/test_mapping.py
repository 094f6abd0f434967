"""Physics of the fixed CG mapping: positions, momenta, forces, PBC, force maps, files."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from _boxes import (
    BUTANE_GROUPS,
    ETHANE_GROUPS,
    PROPANE_GROUPS,
    ethane_mapping,
    molecule_box,
    permuted,
)
from ase.build import molecule
from hypothesis import given, settings
from hypothesis import strategies as st

from ase_cg.mapping import (
    CGMapping,
    MappingError,
    backmap,
    bead_sum_force_map,
    check_force_map,
    pseudo_inverse_force_map,
)


def _min_image(delta, cell):
    frac = delta @ np.linalg.inv(cell)
    return (frac - np.round(frac)) @ cell


def _direct_beads(atoms, whole, weighting):
    """Bead positions computed directly with NumPy from the unwrapped ethane box."""
    masses = atoms.get_masses()
    beads = []
    for start in range(0, len(atoms), 8):
        for group in ETHANE_GROUPS:
            idx = start + np.asarray(group)
            w = masses[idx] if weighting == "mass" else np.ones(len(idx))
            beads.append((w[:, None] * whole[idx]).sum(0) / w.sum())
    beads = np.asarray(beads)
    frac = beads @ np.linalg.inv(atoms.cell.array)
    return (frac - np.floor(frac)) @ atoms.cell.array


def test_ethane_bead_types_masses_topology():
    mapping = ethane_mapping()
    assert mapping.bead_types == ["CH3"]
    assert mapping.molecule_types == ["ethane"]
    assert mapping.bead_masses["CH3"] == pytest.approx(12.011 + 3 * 1.008)
    assert mapping.groups == {"ethane": ETHANE_GROUPS}
    assert mapping.template_bonds["ethane"].tolist() == [
        [0, 1],
        [0, 2],
        [0, 3],
        [0, 4],
        [1, 5],
        [1, 6],
        [1, 7],
    ]
    assert mapping.templates["ethane"].get_chemical_formula() == "C2H6"
    topo = mapping.bead_topology["ethane"]
    assert topo["bonds"].tolist() == [[0, 1]]
    assert topo["angles"].shape == (0, 3) and topo["dihedrals"].shape == (0, 4)
    E = mapping.position_matrix("ethane")
    np.testing.assert_allclose(E.sum(axis=1), 1.0)
    assert (E >= 0).all()


@pytest.mark.parametrize("weighting", ["mass", "geometry"])
@pytest.mark.parametrize("skew", [0.0, 0.3])
def test_bead_positions_equal_direct_numpy(weighting, skew, rng):
    atoms, whole = molecule_box([molecule("C2H6")], rng=rng, skew=skew)
    cg = ethane_mapping(weighting=weighting).map(atoms)
    expected = _direct_beads(atoms, whole, weighting)
    diff = _min_image(cg.positions - expected, atoms.cell.array)
    np.testing.assert_allclose(diff, 0.0, atol=1e-10)
    # wrapped into the box
    frac = cg.get_scaled_positions(wrap=False)
    assert (frac >= -1e-12).all() and (frac < 1 + 1e-12).all()
    assert (cg.numbers == 0).all()
    assert cg.arrays["bead-type"].tolist() == ["CH3"] * 54
    assert cg.arrays["mol-id"].tolist() == np.repeat(np.arange(27), 2).tolist()
    np.testing.assert_allclose(cg.get_masses(), 15.035)


def test_momentum_and_force_conserved(rng):
    atoms, _ = molecule_box([molecule("C2H6")], rng=rng)
    cg = ethane_mapping().map(atoms)
    np.testing.assert_allclose(
        cg.get_momenta().sum(0), atoms.get_momenta().sum(0), rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(
        cg.get_forces().sum(0), atoms.get_forces().sum(0), rtol=0, atol=1e-10
    )
    # bead by bead: F_I = sum of its atoms' forces
    f = atoms.get_forces()
    expected = np.array(
        [f[s + np.array(g)].sum(0) for s in range(0, 216, 8) for g in ETHANE_GROUPS]
    )
    np.testing.assert_allclose(cg.get_forces(), expected, atol=1e-12)


def test_geometry_weighting_conserves_momentum(rng):
    atoms, _ = molecule_box([molecule("C2H6")], rng=rng)
    cg = ethane_mapping(weighting="geometry").map(atoms)
    np.testing.assert_allclose(cg.get_momenta().sum(0), atoms.get_momenta().sum(0), atol=1e-10)


def test_wrapped_molecule_maps_like_unwrapped_copy(rng):
    atoms, whole = molecule_box([molecule("C2H6")], rng=rng, skew=0.3)
    mapping = ethane_mapping()
    unwrapped = atoms.copy()
    unwrapped.positions = whole
    # shift every molecule by a different lattice vector: mapping must not care
    shifts = rng.integers(-2, 3, size=(27, 3))
    shifted = atoms.copy()
    shifted.positions = atoms.positions + np.repeat(shifts @ atoms.cell.array, 8, axis=0)
    a = mapping.map(atoms).positions
    b = mapping.map(unwrapped).positions
    c = mapping.map(shifted).positions
    assert np.abs(atoms.positions - whole).max() > 1.0  # some molecules really were split
    np.testing.assert_allclose(_min_image(a - b, atoms.cell.array), 0, atol=1e-10)
    np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(a, c, atol=1e-9)


def test_molecule_straddling_a_corner():
    mapping = ethane_mapping()
    ethane = molecule("C2H6")
    ethane.cell = [[10, 0, 0], [3, 10, 0], [2, 2, 10]]
    ethane.pbc = True
    corner = ethane.cell.array.sum(0)
    ethane.positions += corner - ethane.positions[0]
    expected = mapping.map(ethane).positions
    ethane.wrap()
    got = mapping.map(ethane).positions
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_molecule_longer_than_half_the_box_is_made_whole():
    """A 20-atom chain longer than the box: bonds are unwrapped one by one along the chain."""
    from ase import Atoms

    direction = np.array([1.0, 0.5, 0.2]) / np.linalg.norm([1.0, 0.5, 0.2])
    chain = Atoms("C20", positions=np.outer(np.arange(20) * 1.5, direction))
    groups = [list(range(k, k + 5)) for k in range(0, 20, 5)]
    mapping = CGMapping.from_groups(chain, groups, name="chain")
    box = chain.copy()
    box.cell = np.eye(3) * 12.0
    box.pbc = True
    box.positions += [1.0, 2.0, 3.0]
    whole = box.positions.copy()
    box.arrays["mol-id"] = np.zeros(20, dtype=int)
    box.wrap()
    # the ends are further than half a box from the central atom
    assert np.abs(whole[0] - whole[10]).max() > 6.0
    system = mapping.system(box, bonds=[[k, k + 1] for k in range(19)])
    unwrapped = system.unwrap(box.positions, box.cell.array)
    shift = unwrapped - whole  # one lattice vector for the whole molecule
    np.testing.assert_allclose(shift, shift[:1].repeat(20, axis=0), atol=1e-10)
    expected = np.array([whole[g].mean(0) for g in groups])
    expected -= np.floor(expected / 12.0) * 12.0
    got = system.map_positions(box.positions, box.cell.array)
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_non_contiguous_shuffled_atoms_map_correctly(rng):
    atoms, _ = molecule_box([molecule("C2H6")], rng=rng)
    mapping = ethane_mapping()
    reference = mapping.map(atoms)
    order = rng.permutation(len(atoms))
    shuffled = permuted(atoms, order)
    for source in ("mol-id", "geometry"):
        if source == "geometry":
            del shuffled.arrays["mol-id"]
        cg = mapping.map(shuffled)
        assert len(cg) == len(reference)
        # molecule order may differ: compare per-molecule sets of bead centres, forces, momenta
        ref = _per_molecule(reference)
        got = _per_molecule(cg)
        assert sorted(ref) == sorted(got)


def _per_molecule(cg):
    keys = []
    for m in np.unique(cg.arrays["mol-id"]):
        beads = np.flatnonzero(cg.arrays["mol-id"] == m)
        rows = np.concatenate(
            [cg.positions[beads], cg.get_forces()[beads], cg.get_momenta()[beads]], axis=1
        )
        keys.append(tuple(map(tuple, np.round(np.sort(rows, axis=0), 8))))
    return keys


def test_molecules_from_bonds_and_geometry_agree_with_mol_ids(rng):
    atoms, _ = molecule_box([molecule("C2H6")], rng=rng)
    mapping = ethane_mapping()
    with_ids = mapping.system(atoms)
    plain = atoms.copy()
    del plain.arrays["mol-id"]
    from_geometry = mapping.system(plain)
    bonds = np.array(
        [[s + 0, s + k] for s in range(0, 216, 8) for k in (1, 2, 3, 4)]
        + [[s + 1, s + k] for s in range(0, 216, 8) for k in (5, 6, 7)]
    )
    from_bonds = mapping.system(plain, bonds=bonds)
    for other in (from_geometry, from_bonds):
        assert (other.position_matrix != with_ids.position_matrix).nnz == 0
        assert other.n_molecules == 27


def test_system_batched_matches_single_frames(rng):
    mapping = ethane_mapping()
    frames = [molecule_box([molecule("C2H6")], rng=rng, skew=0.2)[0] for _ in range(3)]
    # same layout (mol ids, species) but different positions per frame
    system = mapping.system(frames[0])
    positions = np.stack([a.positions for a in frames])
    cells = np.stack([a.cell.array for a in frames])
    forces = np.stack([a.get_forces() for a in frames])
    velocities = np.stack([a.get_velocities() for a in frames])
    beads = system.map_positions(positions, cells)
    bead_forces = system.map_forces(forces)
    bead_velocities = system.map_velocities(velocities)
    assert beads.shape == (3, 54, 3)
    for k, a in enumerate(frames):
        cg = mapping.map(a)
        np.testing.assert_allclose(beads[k], cg.positions, atol=1e-10)
        np.testing.assert_allclose(bead_forces[k], cg.get_forces(), atol=1e-12)
        np.testing.assert_allclose(bead_velocities[k], cg.get_velocities(), atol=1e-12)
    assert system.bead_type_index.tolist() == [0] * 54
    assert scipy.sparse.issparse(system.position_matrix)
    np.testing.assert_allclose(np.asarray(system.position_matrix.sum(axis=1)).ravel(), 1.0)
    assert system.topology["bonds"].tolist() == [[2 * m, 2 * m + 1] for m in range(27)]


@pytest.mark.parametrize("force_map", [bead_sum_force_map, pseudo_inverse_force_map])
@pytest.mark.parametrize("weighting", ["mass", "geometry"])
def test_force_maps_satisfy_b_Et_identity(force_map, weighting, rng):
    mapping = CGMapping.from_groups(
        {
            "ethane": (molecule("C2H6"), ETHANE_GROUPS),
            "propane": (molecule("C3H8"), PROPANE_GROUPS),
        },
        weighting=weighting,
    )
    for name in mapping.molecule_types:
        E = mapping.position_matrix(name)
        assert check_force_map(force_map(E), E, atol=1e-12) < 1e-12
    atoms, _ = molecule_box([molecule("C2H6"), molecule("C3H8")], rng=rng)
    kind = "bead_sum" if force_map is bead_sum_force_map else "pseudo_inverse"
    system = mapping.system(atoms, force_map=kind)
    check_force_map(system.force_matrix, system.position_matrix, atol=1e-12)


def test_bead_sum_is_not_a_valid_map_for_overlapping_beads():
    E = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    with pytest.raises(MappingError, match="b·Eᵀ"):
        check_force_map(bead_sum_force_map(E), E)
    check_force_map(pseudo_inverse_force_map(E), E, atol=1e-12)


def test_pseudo_inverse_force_map_torch_is_differentiable(rng):
    torch = pytest.importorskip("torch")
    logits = torch.tensor(rng.normal(size=(2, 3, 7)), requires_grad=True)

    def soft_map(logits):
        E = torch.softmax(logits, dim=-2).transpose(-1, -2)  # (2, 7, 3) -> assign atoms
        E = E.transpose(-1, -2)
        E = E / E.sum(-1, keepdim=True)
        return pseudo_inverse_force_map(E).sum(dim=(-1, -2))

    assert torch.autograd.gradcheck(soft_map, (logits,))
    E = torch.softmax(logits.detach(), dim=-2)
    E = E / E.sum(-1, keepdim=True)
    b = pseudo_inverse_force_map(E)
    for k in range(2):
        check_force_map(b[k], E[k], atol=1e-10)
    np.testing.assert_allclose(b.numpy(), pseudo_inverse_force_map(E.numpy()), atol=1e-12)


def test_json_round_trip(tmp_path, rng):
    mapping = CGMapping.from_groups(
        {
            "ethane": (molecule("C2H6"), ETHANE_GROUPS),
            "butane": (molecule("trans-butane"), BUTANE_GROUPS, ["A", "B", "B", "A"]),
        },
        weighting="geometry",
    )
    path = tmp_path / "mapping.json"
    mapping.save(path)
    loaded = CGMapping.load(path)
    assert loaded.to_dict() == mapping.to_dict()
    assert CGMapping.from_dict(mapping.to_dict()).to_dict() == mapping.to_dict()
    assert loaded.bead_types == ["A", "B", "CH3"]
    atoms, _ = molecule_box(
        [molecule("C2H6"), molecule("trans-butane")], grid=(3, 3, 2), spacing=6.0, rng=rng
    )
    a, b = mapping.map(atoms), loaded.map(atoms)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.arrays["bead-type"], b.arrays["bead-type"])


def test_shipped_ethane_mapping(data_dir):
    mapping = CGMapping.load(data_dir / "ethane_mapping.json")
    assert mapping.molecule_types == ["ethane"]
    assert mapping.bead_types == ["CH3"]
    assert mapping.groups["ethane"] == ETHANE_GROUPS
    assert mapping.to_dict() == ethane_mapping().to_dict()


def test_default_bead_names_follow_environment():
    mapping = CGMapping.combine(
        ethane_mapping(),
        CGMapping.from_groups(molecule("C3H8"), PROPANE_GROUPS, name="propane"),
    )
    assert mapping.bead_names == {"ethane": ["CH3", "CH3"], "propane": ["CH3_2", "CH2", "CH3_2"]}
    assert mapping.bead_types == ["CH2", "CH3", "CH3_2"]
    assert mapping.bead_masses["CH2"] == pytest.approx(12.011 + 2 * 1.008)


def test_topology_angles_dihedrals_and_cg_topology(rng):
    mapping = CGMapping.from_groups(
        {
            "propane": (molecule("C3H8"), PROPANE_GROUPS),
            "butane": (molecule("trans-butane"), BUTANE_GROUPS),
        }
    )
    propane = mapping.bead_topology["propane"]
    butane = mapping.bead_topology["butane"]
    assert propane["bonds"].tolist() == [[0, 1], [1, 2]]
    assert propane["angles"].tolist() == [[0, 1, 2]]
    assert butane["angles"].tolist() == [[0, 1, 2], [1, 2, 3]]
    assert butane["dihedrals"].tolist() == [[0, 1, 2, 3]]
    atoms, _ = molecule_box(
        [molecule("C3H8"), molecule("trans-butane")], grid=(2, 2, 2), spacing=7.0, rng=rng
    )
    system = mapping.system(atoms)
    cg = mapping.map(atoms)
    topo = mapping.topology(cg)
    for key in ("bonds", "angles", "dihedrals"):
        assert topo[key].dtype == np.int64
        assert sorted(map(tuple, topo[key].tolist())) == sorted(
            map(tuple, system.topology[key].tolist())
        )
    assert len(topo["bonds"]) == 4 * 2 + 4 * 3
    assert len(topo["dihedrals"]) == 4
    # molecules interleaved (beads of a molecule keep their order): the topology follows them
    order = rng.permutation(len(cg))
    mol = cg.arrays["mol-id"][order]
    for m in np.unique(mol):
        slots = np.flatnonzero(mol == m)
        order[slots] = np.sort(order[slots])
    shuffled = cg[order]
    inverse = order
    for key in ("bonds", "angles", "dihedrals"):
        got = mapping.topology(shuffled)[key]
        assert sorted(map(tuple, inverse[got].tolist())) == sorted(map(tuple, topo[key].tolist()))


def test_backmap_reproduces_rigid_three_bead_molecules(rng):
    mapping = CGMapping.from_groups(molecule("C3H8"), PROPANE_GROUPS, name="propane")
    atoms, whole = molecule_box([molecule("C3H8")], grid=(2, 2, 2), spacing=6.0, rng=rng)
    back = backmap(mapping.map(atoms), mapping)
    assert back.get_chemical_symbols() == atoms.get_chemical_symbols()
    np.testing.assert_allclose(
        _min_image(back.positions - atoms.positions, atoms.cell.array), 0, atol=1e-8
    )
    assert back.arrays["mol-id"].tolist() == np.repeat(np.arange(8), 11).tolist()


def test_backmap_ethane_start_structure(rng):
    mapping = ethane_mapping()
    atoms, _ = molecule_box([molecule("C2H6")], rng=rng)
    cg = mapping.map(atoms)
    back = backmap(cg, mapping, seed=1)
    assert back.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert (back.arrays["mol-id"] == np.repeat(np.arange(27), 8)).all()
    template = molecule("C2H6")
    again = mapping.map(back)
    distances = back.get_all_distances(mic=True)
    for m in range(27):
        atoms_m = np.flatnonzero(back.arrays["mol-id"] == m)
        d = distances[np.ix_(atoms_m, atoms_m)]
        np.testing.assert_allclose(d, template.get_all_distances(), atol=1e-8)
        beads = np.flatnonzero(cg.arrays["mol-id"] == m)
        centre = _min_image(cg.positions[beads] - again.positions[beads], atoms.cell.array)
        np.testing.assert_allclose(centre.mean(0), 0, atol=1e-8)  # same bead centroid
        axis_cg = _min_image(cg.positions[beads[1]] - cg.positions[beads[0]], atoms.cell.array)
        axis_back = _min_image(
            again.positions[beads[1]] - again.positions[beads[0]], atoms.cell.array
        )
        cos = axis_cg @ axis_back / np.linalg.norm(axis_cg) / np.linalg.norm(axis_back)
        assert cos == pytest.approx(1.0, abs=1e-10)
    # the free rotation about the axis is seeded
    np.testing.assert_array_equal(back.positions, backmap(cg, mapping, seed=1).positions)
    assert not np.allclose(back.positions, backmap(cg, mapping, seed=2).positions)


def test_pseudo_inverse_force_map_on_cuda(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    E = torch.softmax(torch.tensor(rng.normal(size=(3, 8)), device="cuda"), dim=0)
    E = E / E.sum(-1, keepdim=True)
    b = pseudo_inverse_force_map(E)
    assert b.device.type == "cuda"
    check_force_map(b, E, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(
    shift=st.lists(st.floats(-30.0, 30.0), min_size=3, max_size=3),
    rotvec=st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
)
def test_mapping_is_equivariant_under_translation_and_rotation(shift, rotvec):
    """Translating or rotating the whole periodic system moves the beads the same way."""
    from scipy.spatial.transform import Rotation

    atoms, _ = molecule_box([molecule("C2H6")], rng=np.random.default_rng(3), skew=0.3)
    mapping = ethane_mapping()
    system = mapping.system(atoms)
    cell = atoms.cell.array
    reference = system.map_positions(atoms.positions, cell)
    moved = system.map_positions(atoms.positions + shift, cell)
    np.testing.assert_allclose(_min_image(moved - reference - shift, cell), 0, atol=1e-9)
    rotation = Rotation.from_rotvec(rotvec).as_matrix()
    rotated = system.map_positions(atoms.positions @ rotation.T, cell @ rotation.T)
    np.testing.assert_allclose(rotated, reference @ rotation.T, atol=1e-9)
    forces = atoms.get_forces()
    np.testing.assert_allclose(
        system.map_forces(forces @ rotation.T), system.map_forces(forces) @ rotation.T, atol=1e-12
    )
