"""Bad input to ase_cg.io: every failure is an InputError naming the file and the field."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, H5MDWriter, info, read_h5md, write_h5md

N_ATOMS, N_FRAMES = 6, 4


def make_file(path, n_frames=N_FRAMES, **kwargs):
    rng = np.random.default_rng(7)
    images = []
    for i in range(n_frames):
        atoms = Atoms("C2H4", positions=rng.random((N_ATOMS, 3)) * 5, cell=[6, 7, 8], pbc=True)
        atoms.new_array("mol-id", np.zeros(N_ATOMS, dtype=int))
        atoms.calc = SinglePointCalculator(atoms, forces=rng.normal(size=(N_ATOMS, 3)))
        atoms.info["step"] = i
        images.append(atoms)
    write_h5md(path, images, time_step=1.0, compression=None, **kwargs)
    return path


@pytest.fixture
def good(tmp_path):
    return make_file(tmp_path / "good.h5")


def expect(path, *fields, match=None):
    """Opening and reading every frame raises InputError naming the file and fields."""
    with pytest.raises(InputError) as error:
        read_h5md(path)
    message = str(error.value)
    assert str(path) in message
    for field in fields:
        assert field in message, message
    if match:
        assert match in message, message
    return message


def test_good_file_reads(good):
    assert len(read_h5md(good)) == N_FRAMES


def test_missing_particles_group(good):
    with h5py.File(good, "a") as f:
        del f["particles"]
    expect(good, "'particles'")


def test_missing_position(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/position/value"]
    expect(good, "particles/all/position/value")


def test_force_shape_mismatch(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/force/value"]
        f["particles/all/force/value"] = np.zeros((N_FRAMES, N_ATOMS - 1, 3))
    expect(good, "particles/all/force/value", match="(4, 6, 3)")


def test_position_not_three_dimensional(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/position/value"]
        f["particles/all/position/value"] = np.zeros((N_FRAMES, N_ATOMS, 2))
    expect(good, "particles/all/position/value", match="(n_frames, n_atoms, 3)")


def test_box_shape_mismatch(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/box/edges/value"]
        f["particles/all/box/edges/value"] = np.ones((N_FRAMES - 1, 3))
    expect(good, "particles/all/box/edges/value", match="one box per frame")


def test_nan_position_names_frame_and_particle(good):
    with h5py.File(good, "a") as f:
        f["particles/all/position/value"][2, 3, 1] = np.nan
    expect(good, "particles/all/position/value", match="frame 2, particle 3")
    # frames before the bad one still read: the check is per chunk, as read
    with H5MDTrajectory(good) as t:
        assert t.positions(slice(0, 2)).shape == (2, N_ATOMS, 3)
        with pytest.raises(InputError, match="frame 2, particle 3"):
            t.positions([3, 0, 2])  # index arrays report the file's frame number
        with pytest.raises(InputError, match="frame 2, particle 3"):
            t.positions(slice(None, None, -1))


def test_inf_force(good):
    with h5py.File(good, "a") as f:
        f["particles/all/force/value"][1, 0, 0] = np.inf
    expect(good, "particles/all/force/value", match="frame 1, particle 0")


def test_nan_box(good):
    with h5py.File(good, "a") as f:
        f["particles/all/box/edges/value"][3, 0] = np.nan
    expect(good, "particles/all/box/edges/value", match="frame 3")


def test_cg_beads_without_masses(tmp_path):
    path = tmp_path / "cg.h5"
    beads = Atoms(numbers=[0, 0], positions=[[0, 0, 0], [1, 0, 0]], cell=[5, 5, 5], pbc=True)
    beads.new_array("bead-type", np.array(["A", "B"]))
    beads.set_masses([15.0, 15.0])
    write_h5md(path, [beads])
    with h5py.File(path, "a") as f:
        del f["particles/all/mass"]
    expect(path, "particles/all/mass", match="bead masses cannot be guessed")


def test_missing_masses_element_species_default_to_ase(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/mass"]
    atoms = read_h5md(good, index=0)
    np.testing.assert_allclose(atoms.get_masses()[:2], 12.011)
    assert "masses:      from elements" in info(good)


def test_no_species_no_masses_errors_where_needed(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/mass"]
        del f["particles/all/species"]
    with H5MDTrajectory(good) as t:  # MDAnalysis writes such files: they open
        assert not t.has_masses
        with pytest.raises(InputError, match="particles/all/mass"):
            _ = t.masses


def test_unknown_unit_string(good):
    with h5py.File(good, "a") as f:
        f["particles/all/force/value"].attrs["unit"] = "furlong fortnight-2"
    expect(good, "particles/all/force/value", match="'furlong fortnight-2'")


def test_unit_of_wrong_dimension(good):
    with h5py.File(good, "a") as f:
        f["particles/all/position/value"].attrs["unit"] = "kJ mol-1"
    expect(good, "particles/all/position/value", match="length was expected")


def test_non_increasing_steps(good):
    with h5py.File(good, "a") as f:
        f["particles/all/position/step"][2] = 1  # steps 0 1 1 3
    expect(good, "particles/all/position/step", match="frame 1 has step 1, frame 2 has step 1")


def test_force_sampled_at_other_steps(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/force/step"]
        f["particles/all/force/step"] = np.arange(N_FRAMES) * 2
    expect(good, "particles/all/force/step", match="same steps")


def test_truncated_file(good):
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    expect(good, match="truncated or corrupted")


def test_not_hdf5(tmp_path):
    path = tmp_path / "frames.xyz"
    path.write_text("2\n\nH 0 0 0\nH 0 0 1\n")
    expect(path, match="not an HDF5 file")


def test_directory(tmp_path):
    expect(tmp_path, match="is a directory")


def test_missing_file(tmp_path):
    expect(tmp_path / "nope.h5", match="no such file")


def test_several_groups_need_a_choice(good):
    with h5py.File(good, "a") as f:
        f.copy(f["particles/all"], "particles/other")
    expect(good, "'particles'", match="group=NAME")
    assert len(read_h5md(good, group="other")) == N_FRAMES


def test_bond_index_out_of_range(tmp_path):
    path = make_file(tmp_path / "b.h5", bonds=[[0, 1]])
    with h5py.File(path, "a") as f:
        f["connectivity/all_bonds"][0, 1] = N_ATOMS
    expect(path, "connectivity/all_bonds", match=f"{N_ATOMS} particles")


def test_molecule_id_wrong_length(good):
    with h5py.File(good, "a") as f:
        del f["particles/all/molecule_id"]
        f["particles/all/molecule_id"] = np.zeros(N_ATOMS + 2, dtype=int)
    expect(good, "particles/all/molecule_id", match=f"({N_ATOMS},)")


# -- the writer refuses bad frames --------------------------------------------------------
def test_writer_rejects_bad_frames(tmp_path):
    path = tmp_path / "w.h5"
    with pytest.raises(InputError, match="steps must increase"):  # noqa: SIM117
        with H5MDWriter(path, masses=np.ones(2), species=[1, 1]) as w:
            w.append(np.zeros((2, 3)), np.eye(3) * 5, step=5)
            w.append(np.zeros((2, 3)), np.eye(3) * 5, step=5)
    with pytest.raises(InputError, match=r"shape \(3, 3\); expected \(2, 3\)"):  # noqa: SIM117
        with H5MDWriter(path, masses=np.ones(2), species=[1, 1]) as w:
            w.append(np.zeros((3, 3)), np.eye(3) * 5)
    with pytest.raises(InputError, match="positions of atom 1 are not finite"):  # noqa: SIM117
        with H5MDWriter(path, masses=np.ones(2), species=[1, 1]) as w:
            w.append([[0, 0, 0], [np.nan, 0, 0]], np.eye(3) * 5)
    with pytest.raises(InputError, match="frame 1 has no force"):  # noqa: SIM117
        with H5MDWriter(path, masses=np.ones(2), species=[1, 1]) as w:
            w.append(np.zeros((2, 3)), np.eye(3) * 5, forces=np.zeros((2, 3)))
            w.append(np.zeros((2, 3)), np.eye(3) * 5)
    with pytest.raises(InputError, match="frame 1 has other elements"):  # noqa: SIM117
        with H5MDWriter(path, masses=np.ones(2), species=["H", "H"]) as w:
            w.append_atoms(Atoms("H2", cell=[5, 5, 5], pbc=True))
            w.append_atoms(Atoms("HeH", cell=[5, 5, 5], pbc=True))
    assert not path.exists() and list(tmp_path.iterdir()) == []


# -- fuzzing: corrupted files raise InputError, nothing else -----------------------------
@pytest.fixture(scope="module", params=[None, "gzip"])
def pristine(tmp_path_factory, request):
    """A small valid file, raw and with compressed chunks (corruption then hits gzip)."""
    path = tmp_path_factory.mktemp("fuzz") / "small.h5"
    rng = np.random.default_rng(3)
    images = []
    for i in range(3):
        atoms = Atoms("C2H4", positions=rng.random((N_ATOMS, 3)) * 5, cell=[6, 7, 8], pbc=True)
        atoms.new_array("mol-id", np.zeros(N_ATOMS, dtype=int))
        atoms.calc = SinglePointCalculator(atoms, energy=i, forces=rng.normal(size=(N_ATOMS, 3)))
        images.append(atoms)
    write_h5md(path, images, time_step=1.0, bonds=[[0, 1]], compression=request.param)
    return path.read_bytes()


@settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzz_corrupted_files_raise_input_error(pristine, tmp_path, data):
    raw = bytearray(pristine)
    kind = data.draw(st.sampled_from(["flip", "zero", "truncate"]))
    if kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        n = data.draw(st.integers(1, 16))
        positions = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=n, max_size=n))
        for p in positions:
            raw[p] = 0 if kind == "zero" else raw[p] ^ data.draw(st.integers(1, 255))
    path = tmp_path / "corrupt.h5"
    path.write_bytes(bytes(raw))
    try:
        with H5MDTrajectory(path) as t:
            t.positions()
            t.cells()
            if t.has_forces:
                t.forces()
            for atoms in t:
                assert len(atoms) == t.n_atoms
            info(path)
    except InputError as error:
        assert str(path) in str(error)
