"""H5MD writer and lazy reader (ase_cg.io): round trips, layout, MDAnalysis both ways."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from ase_cg.io import H5MDTrajectory, H5MDWriter, info, read_h5md, write_h5md

KJ_MOL = units.kJ / units.mol


def ethane_liquid(rng, n_molecules=4, n_frames=5, cell=(10.0, 11.0, 12.0)):
    """Frames of a few ethane molecules with random forces, velocities, energies."""
    system = Atoms(cell=cell, pbc=True)
    for _ in range(n_molecules):
        one = molecule("C2H6")
        one.translate(rng.random(3) * 8.0)
        system += one
    system.new_array("mol-id", np.repeat(np.arange(n_molecules), 8))
    images = []
    for i in range(n_frames):
        atoms = system.copy()
        atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
        atoms.set_velocities(rng.normal(scale=0.01, size=atoms.positions.shape))
        forces = rng.normal(size=atoms.positions.shape)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.5 + 0.25 * i, forces=forces)
        atoms.info["step"] = 10 * i
        images.append(atoms)
    return images


def test_round_trip_atoms(rng):
    images = ethane_liquid(rng)
    write_h5md("a.h5", images, time_step=0.5, bonds=[[0, 1], [0, 2]])
    back = read_h5md("a.h5")
    assert len(back) == len(images)
    for a, b in zip(images, back, strict=True):
        # float32 storage: ~1e-7 relative
        np.testing.assert_allclose(b.positions, a.positions, atol=2e-6)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), atol=2e-6)
        np.testing.assert_allclose(b.get_velocities(), a.get_velocities(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(b.get_potential_energy(), a.get_potential_energy(), rtol=1e-12)
        np.testing.assert_allclose(b.cell.array, a.cell.array, atol=1e-6)
        np.testing.assert_array_equal(b.numbers, a.numbers)
        np.testing.assert_allclose(b.get_masses(), a.get_masses())
        np.testing.assert_array_equal(b.arrays["mol-id"], a.arrays["mol-id"])
        assert b.arrays["mol-id"].dtype.kind == "i"
        assert b.pbc.all()
        assert b.info["step"] == a.info["step"]
        assert b.info["time"] == pytest.approx(0.5 * a.info["step"])
    with H5MDTrajectory("a.h5") as t:
        np.testing.assert_array_equal(t.bonds, [[0, 1], [0, 2]])
        assert t.time_step == 0.5
        assert t.steps.tolist() == [0, 10, 20, 30, 40]


def test_index_like_ase_read(rng):
    images = ethane_liquid(rng)
    write_h5md("a.h5", images)
    one = read_h5md("a.h5", index=-1)
    assert isinstance(one, Atoms) and one.info["step"] == 40
    assert [a.info["step"] for a in read_h5md("a.h5", index="1:4:2")] == [10, 30]
    assert [a.info["step"] for a in read_h5md("a.h5", index=slice(None, None, -2))] == [40, 20, 0]
    # without time information no times are stored or invented
    assert "time" not in one.info
    with H5MDTrajectory("a.h5") as t:
        assert t.times is None and t.time_step is None


def test_lazy_array_access(rng):
    images = ethane_liquid(rng, n_frames=7)
    write_h5md("a.h5", images, time_step=1.0)
    expected = np.array([a.positions for a in images])
    with H5MDTrajectory("a.h5") as t:
        assert (len(t), t.n_frames, t.n_atoms) == (7, 7, 32)
        x = t.positions(slice(1, 5))
        assert x.shape == (4, 32, 3) and x.dtype == np.float64
        np.testing.assert_allclose(x, expected[1:5], atol=2e-6)
        np.testing.assert_allclose(t.positions(3), expected[3], atol=2e-6)
        # an index array in any order, with repeats, comes back in that order
        np.testing.assert_allclose(t.positions([5, 0, 5, 2]), expected[[5, 0, 5, 2]], atol=2e-6)
        np.testing.assert_allclose(t.positions(np.array([6, 1])), expected[[6, 1]], atol=2e-6)
        f = t.forces(slice(None))
        np.testing.assert_allclose(f, [a.get_forces() for a in images], atol=2e-6)
        cells = t.cells([0, 6])
        assert cells.shape == (2, 3, 3)
        np.testing.assert_allclose(cells[1], np.diag([10.0, 11.0, 12.0]), atol=1e-6)
        np.testing.assert_allclose(t.energies(), [a.get_potential_energy() for a in images])
        chunks = list(t.iter_chunks(3))
        assert chunks == [slice(0, 3), slice(3, 6), slice(6, 7)]
        assert np.concatenate([t.positions(c) for c in chunks]).shape == (7, 32, 3)
        assert [a.info["step"] for a in t] == [a.info["step"] for a in images]
        assert len(t[2:4]) == 2
        np.testing.assert_array_equal(t.numbers, images[0].numbers)
        assert t.bead_types is None and t.bonds is None
        assert t.has_forces and t.has_velocities and t.has_energies
        assert t.positions([]).shape == (0, 32, 3)
        with pytest.raises(IndexError):
            t.positions(7)


def test_positions_read_one_hyperslab_not_whole_file(rng, monkeypatch):
    """A slice is one h5py read of just those frames (lazy, training-friendly)."""
    write_h5md("a.h5", ethane_liquid(rng, n_frames=6))
    with H5MDTrajectory("a.h5") as t:
        dataset = t._value["position"]
        calls = []

        class Spy:
            shape = dataset.shape

            def __getitem__(self, selection):
                calls.append(selection)
                return dataset[selection]

        t._value["position"] = Spy()
        t.positions(slice(2, 5))
        assert calls == [slice(2, 5, 1)]


def test_streaming_writer_chunks_and_atomic_replace(rng, tmp_path):
    path = tmp_path / "stream.h5"
    path.write_bytes(b"old contents")
    n_atoms = 50
    masses = np.full(n_atoms, 12.0)
    with H5MDWriter(path, species=np.full(n_atoms, 6), masses=masses, time_step=2.0) as w:
        for i in range(300):
            w.append(rng.random((n_atoms, 3)) * 10, np.eye(3) * 10, forces=np.ones((n_atoms, 3)))
            # buffered frames never exceed one chunk: memory does not grow with frames
            assert len(w._buffers["position"]) < w._chunk
            if i == 0:
                assert path.read_bytes() == b"old contents"  # nothing replaced yet
    with h5py.File(path) as f:
        value = f["particles/all/position/value"]
        assert value.shape == (300, n_atoms, 3) and value.maxshape[0] is None
        assert value.chunks[0] > 1 and value.compression == "gzip"
        assert f["particles/all/force/step"] == f["particles/all/position/step"]  # hard link
    assert [p.name for p in tmp_path.iterdir()] == ["stream.h5"]
    with H5MDTrajectory(path) as t:
        assert t.times[-1] == pytest.approx(299 * 2.0)


def test_crash_leaves_old_file_intact(rng, tmp_path):
    path = tmp_path / "keep.h5"
    images = ethane_liquid(rng, n_frames=2)
    write_h5md(path, images)
    before = path.read_bytes()
    writer = H5MDWriter(path, masses=images[0].get_masses(), species=images[0].numbers)
    with pytest.raises(RuntimeError, match="simulated crash"), writer:
        writer.append_atoms(images[0])
        raise RuntimeError("simulated crash")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]


def test_layout_is_h5md_1_1(rng):
    write_h5md("a.h5", ethane_liquid(rng, n_frames=2), bonds=[[0, 1]], time_step=1.0)
    with h5py.File("a.h5") as f:
        assert f["h5md"].attrs["version"].tolist() == [1, 1]
        assert "name" in f["h5md/author"].attrs
        assert f["h5md/creator"].attrs["name"] == "ase_cg"
        g = f["particles/all"]
        assert g["box"].attrs["dimension"] == 3
        assert [b.decode() if isinstance(b, bytes) else b for b in g["box"].attrs["boundary"]] == [
            "periodic"
        ] * 3
        assert g["box/edges/value"].shape == (2, 3)
        for name in ("position", "force", "velocity"):
            assert set(g[name]) == {"value", "step", "time"}
        assert g["position/value"].attrs["unit"] == "Angstrom"
        assert g["force/value"].attrs["unit"] == "kJ mol-1 Angstrom-1"
        assert g["mass"].shape == (32,) and g["species"].shape == (32,)
        assert g["molecule_id"].shape == (32,)
        bonds = f["connectivity/all_bonds"]
        assert f[bonds.attrs["particles_group"]] == g
        assert f["observables/potential_energy/value"].attrs["unit"] == "kJ mol-1"


def test_cg_beads_and_triclinic_box(rng):
    cell = np.array([[10.0, 0.0, 0.0], [2.0, 9.0, 0.0], [1.0, -1.5, 8.0]])
    beads = Atoms(numbers=[0] * 4, positions=rng.random((4, 3)) * 5, cell=cell, pbc=True)
    beads.set_masses([15.035] * 4)
    beads.new_array("bead-type", np.array(["CH3", "CH3", "CH2", "CH2"]))
    beads.new_array("mol-id", np.array([0, 0, 1, 1]))
    beads.calc = SinglePointCalculator(beads, forces=rng.normal(size=(4, 3)))
    write_h5md("cg.h5", [beads])
    back = read_h5md("cg.h5", index=0)
    assert back.get_chemical_symbols() == ["X"] * 4
    assert back.arrays["bead-type"].tolist() == ["CH3", "CH3", "CH2", "CH2"]
    assert back.arrays["bead-type"].dtype.kind == "U"
    np.testing.assert_allclose(back.cell.array, cell, atol=1e-6)
    np.testing.assert_allclose(back.get_masses(), 15.035)
    np.testing.assert_allclose(back.get_forces(), beads.get_forces(), atol=1e-5)
    summary = info("cg.h5")
    assert "CG beads, types ['CH2', 'CH3']" in summary
    assert "molecules:   2: 1 × [2×CH2], 1 × [2×CH3]" in summary
    assert "triclinic" in summary


def test_run_parameters_are_stored_and_shown(rng):
    images = ethane_liquid(rng, n_frames=2)
    with H5MDWriter("p.h5", species=images[0].numbers, masses=images[0].get_masses()) as w:
        for atoms in images:
            w.append_atoms(atoms)
        w.parameters["reference"] = {"temperature_K": 180.0, "seed": 3, "force_field": "OPLS-AA"}
    with H5MDTrajectory("p.h5") as t:
        assert t.parameters == {
            "reference": {"temperature_K": 180.0, "seed": 3, "force_field": "OPLS-AA"}
        }
    summary = info("p.h5")
    assert "parameters:  reference: force_field=OPLS-AA, seed=3, temperature_K=180" in summary


def test_non_periodic_system_has_no_edges(rng):
    atoms = molecule("C2H6")
    atoms.calc = SinglePointCalculator(atoms, forces=np.zeros((8, 3)))
    write_h5md("gas.h5", [atoms])
    with h5py.File("gas.h5") as f:
        assert "edges" not in f["particles/all/box"]
    back = read_h5md("gas.h5", index=0)
    assert not back.pbc.any() and not back.cell.any()


def test_trajectory_pickles_by_path(rng):
    import pickle

    write_h5md("a.h5", ethane_liquid(rng, n_frames=3))
    with H5MDTrajectory("a.h5") as t:
        clone = pickle.loads(pickle.dumps(t))
    np.testing.assert_array_equal(clone.positions(2), H5MDTrajectory("a.h5").positions(2))
    clone.close()


# -- MDAnalysis, both ways ---------------------------------------------------------------
def test_mdanalysis_reads_ours(rng):
    from MDAnalysis.coordinates.H5MD import H5MDReader

    images = ethane_liquid(rng)
    write_h5md("ours.h5", images, time_step=0.5)
    reader = H5MDReader("ours.h5")  # convert_units=True: MDAnalysis units Å, ps, kJ/(mol Å)
    assert reader.n_frames == len(images)
    for ts, atoms in zip(reader, images, strict=True):
        np.testing.assert_allclose(ts.positions, atoms.positions, atol=2e-5)
        np.testing.assert_allclose(ts.forces * KJ_MOL, atoms.get_forces(), atol=2e-6)
        # MDAnalysis velocities are Å/ps
        np.testing.assert_allclose(
            ts.velocities, atoms.get_velocities() * 1000 * units.fs, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(ts.dimensions, [10, 11, 12, 90, 90, 90], atol=1e-5)
        assert ts.time == pytest.approx(0.5 * atoms.info["step"] / 1000)
    reader.close()


def test_we_read_mdanalysis(rng, tmp_path):
    import MDAnalysis as mda
    from MDAnalysis.coordinates.H5MD import H5MDWriter as MDAWriter
    from MDAnalysis.coordinates.memory import MemoryReader

    n_frames, n_atoms = 4, 9
    positions = rng.random((n_frames, n_atoms, 3)).astype(np.float32) * 20  # Å
    forces = rng.normal(size=(n_frames, n_atoms, 3)).astype(np.float32)  # kJ/(mol Å)
    velocities = rng.normal(size=(n_frames, n_atoms, 3)).astype(np.float32)  # Å/ps
    boxes = np.tile(np.array([20.0, 21.0, 22.0, 90, 90, 90], dtype=np.float32), (n_frames, 1))
    boxes[:, 0] += np.arange(n_frames)  # a box that changes
    universe = mda.Universe.empty(n_atoms, trajectory=True, velocities=True, forces=True)
    universe.load_new(
        positions,
        format=MemoryReader,
        velocities=velocities,
        forces=forces,
        dimensions=boxes,
        dt=0.002,  # ps
    )
    path = tmp_path / "mda.h5"
    with MDAWriter(
        str(path),
        n_atoms,
        lengthunit="nm",
        velocityunit="nm/ps",
        forceunit="kJ/(mol*nm)",
        timeunit="ps",
        velocities=True,
        forces=True,
    ) as writer:
        for _ in universe.trajectory:
            writer.write(universe)
    with h5py.File(path) as f:  # the file really is in nm and kJ/(mol nm)
        assert f["particles/trajectory/position/value"].attrs["unit"] == "nm"
        np.testing.assert_allclose(
            f["particles/trajectory/position/value"][0], positions[0] / 10, rtol=1e-6
        )
    with H5MDTrajectory(path) as t:
        assert t.units["length"] == "nm" and t.units["force"] == "kJ mol-1 nm-1"
        np.testing.assert_allclose(t.positions(), positions, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(t.forces(), forces * KJ_MOL, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(t.velocities(), velocities / (1000 * units.fs), rtol=1e-6)
        np.testing.assert_allclose(t.cells()[:, 0, 0], boxes[:, 0], rtol=1e-6)
        np.testing.assert_allclose(t.times, np.arange(n_frames) * 2.0, atol=1e-4)  # fs
        assert t.box_changes and t.mol_ids is None and not t.has_masses
    atoms = read_h5md(path, index=1)
    np.testing.assert_allclose(atoms.positions, positions[1], atol=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), forces[1] * KJ_MOL, atol=1e-9)
    assert atoms.info["time"] == pytest.approx(2.0, abs=1e-4)
    assert "mol-id" not in atoms.arrays
    summary = info(path)
    assert "group:       particles/trajectory" in summary
    assert "length='nm'" in summary and "force='kJ mol-1 nm-1'" in summary
    assert "time='ps'" in summary and "time step:   2 fs" in summary
    assert "masses:      missing" in summary and "changes" in summary


def test_mdanalysis_reads_our_triclinic_box(rng):
    from MDAnalysis.coordinates.H5MD import H5MDReader

    cell = np.array([[10.0, 0.0, 0.0], [2.0, 9.0, 0.0], [1.0, -1.5, 8.0]])
    atoms = Atoms("CH4", positions=rng.random((5, 3)) * 5, cell=cell, pbc=True)
    atoms.calc = SinglePointCalculator(atoms, forces=rng.normal(size=(5, 3)))
    write_h5md("tri.h5", [atoms], time_step=1.0)
    with h5py.File("tri.h5") as f:
        assert f["particles/all/box/edges/value"].shape == (1, 3, 3)
    reader = H5MDReader("tri.h5")
    np.testing.assert_allclose(reader.ts.dimensions, atoms.cell.cellpar(), rtol=1e-5)
    np.testing.assert_allclose(reader.ts.positions, atoms.positions, atol=1e-5)
    reader.close()


def test_reads_h5md_variants_fixed_box_and_scalar_sampling(rng, tmp_path):
    """Other H5MD writers: fixed-interval step/time scalars, a time-independent box,
    scalar mass/species, a value without unit attribute (read as ASE units)."""
    path = tmp_path / "variant.h5"
    positions = rng.random((3, 4, 3))
    with h5py.File(path, "w") as f:
        g = f.create_group("particles/fluid")
        g["position/value"] = positions  # no unit attribute: Å
        g["position/step"] = 10
        g["position/step"].attrs["offset"] = 5
        g["position/time"] = 0.02
        g["position/time"].attrs["unit"] = "ps"
        g.create_group("box").attrs["dimension"] = 3
        g["box"].attrs["boundary"] = np.array([b"periodic", b"periodic", b"none"])
        g["box/edges"] = np.array([2.0, 3.0, 4.0])
        g["box/edges"].attrs["unit"] = "nm"
        g["mass"] = 39.948
        g["species"] = 18
    with H5MDTrajectory(path) as t:
        assert t.steps.tolist() == [5, 15, 25]
        np.testing.assert_allclose(t.times, [0.0, 20.0, 40.0])
        assert t.time_step == pytest.approx(2.0)
        np.testing.assert_allclose(t.cells(), np.tile(np.diag([20.0, 30.0, 40.0]), (3, 1, 1)))
        assert t.pbc.tolist() == [True, True, False] and not t.box_changes
        np.testing.assert_allclose(t.masses, 39.948)
        assert t.units["length"] is None and t.units["box"] == "nm"
    atoms = read_h5md(path, index=2)
    assert atoms.get_chemical_symbols() == ["Ar"] * 4
    np.testing.assert_allclose(atoms.positions, positions[2])
    assert atoms.calc is None and atoms.info == {"step": 25, "time": pytest.approx(40.0)}
