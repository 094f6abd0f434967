"""The trajectory layer: in-memory frames, LAMMPS data + dump through MDAnalysis, one decision
on all-atom vs CG, and the same mapped frames whatever the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _paths import TEST_DATA
from ase.units import kcal, mol

from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, read_h5md
from ase_cg.mapping import CGMapping
from ase_cg.trajectory import (
    InMemoryTrajectory,
    MappedTrajectory,
    MDAnalysisTrajectory,
    Trajectory,
    cg_trajectory,
    is_cg,
    open_trajectory,
)

HERE = TEST_DATA
EV_PER_KCAL_MOL = kcal / mol


@pytest.fixture(scope="module")
def gromacs():
    with MDAnalysisTrajectory(HERE / "ethane_gmx.tpr", HERE / "ethane_gmx.trr") as t:
        yield t


def write_lammps(folder: Path, t, frames=(0, 1, 2)) -> tuple[Path, Path]:
    """A LAMMPS data file (atom_style full) and a text dump in ``units real`` of ``t``'s
    frames, written as LAMMPS writes them (types 1 = C, 2 = H; ids from 1)."""
    data, dump = folder / "ethane.data", folder / "dump.lammpstrj"
    types = np.where(t.numbers == 6, 1, 2)
    cell = t.cells(frames[0])
    positions = t.positions(frames[0])
    lines = [
        "LAMMPS data file written by a test",
        "",
        f"{t.n_atoms} atoms",
        f"{len(t.bonds)} bonds",
        "2 atom types",
        "1 bond types",
        "",
        f"0.0 {cell[0, 0]:.8f} xlo xhi",
        f"0.0 {cell[1, 1]:.8f} ylo yhi",
        f"0.0 {cell[2, 2]:.8f} zlo zhi",
        "",
        "Masses",
        "",
        "1 12.011",
        "2 1.008",
        "",
        "Atoms # full",
        "",
    ]
    for i in range(t.n_atoms):
        x, y, z = positions[i]
        lines.append(f"{i + 1} {t.mol_ids[i] + 1} {types[i]} 0.0 {x:.8f} {y:.8f} {z:.8f}")
    lines += ["", "Bonds", ""]
    lines += [f"{k + 1} 1 {a + 1} {b + 1}" for k, (a, b) in enumerate(t.bonds)]
    data.write_text("\n".join(lines) + "\n")
    fs_per_ase_time = 10.1805054836529
    out = []
    for step, frame in enumerate(frames):
        x, f = t.positions(frame), t.forces(frame) / EV_PER_KCAL_MOL
        v = t.velocities(frame) / fs_per_ase_time  # Å/fs
        box = t.cells(frame)
        out += [
            "ITEM: TIMESTEP",
            str(100 * step),
            "ITEM: NUMBER OF ATOMS",
            str(t.n_atoms),
            "ITEM: BOX BOUNDS pp pp pp",
            *(f"0.0 {box[k, k]:.8f}" for k in range(3)),
            "ITEM: ATOMS id type x y z vx vy vz fx fy fz",
        ]
        order = np.random.default_rng(step).permutation(t.n_atoms)  # dumps are unsorted
        for i in order:
            values = " ".join(f"{q:.10g}" for q in (*x[i], *v[i], *f[i]))
            out.append(f"{i + 1} {types[i]} {values}")
    dump.write_text("\n".join(out) + "\n")
    return data, dump


def test_lammps_data_and_dump(tmp_path, gromacs):
    data, dump = write_lammps(tmp_path, gromacs)
    with MDAnalysisTrajectory(data, dump, lammps_units="real") as t:
        assert isinstance(t, Trajectory) and not is_cg(t)
        assert t.n_frames == 3 and np.array_equal(t.numbers, gromacs.numbers)
        assert "masses" in t.element_rule
        assert np.array_equal(np.sort(t.bonds, axis=1), np.sort(gromacs.bonds, axis=1))
        assert np.array_equal(t.mol_ids - 1, gromacs.mol_ids)
        for frame in range(3):  # MDAnalysis keeps dump values as float32
            for name, atol in (("positions", 1e-6), ("forces", 1e-9), ("velocities", 1e-9)):
                expected = getattr(gromacs, name)(frame)
                np.testing.assert_allclose(getattr(t, name)(frame), expected, 1e-6, atol)
    with pytest.raises(InputError, match="lammps_units"):
        MDAnalysisTrajectory(data, dump)


def test_in_memory_and_h5md_give_the_same_mapped_frames(data_dir):
    mapping = CGMapping.load(data_dir / "ethane_mapping.json")
    images = read_h5md(data_dir / "ethane_aa.h5", index=slice(0, 3))
    memory = InMemoryTrajectory(images)
    assert isinstance(memory, Trajectory) and not is_cg(memory)
    with H5MDTrajectory(data_dir / "ethane_aa.h5") as h5:
        assert open_trajectory(h5) is h5
        from_file = cg_trajectory(h5, mapping)
        from_memory = cg_trajectory(memory, mapping)
        assert isinstance(from_memory, MappedTrajectory) and is_cg(from_memory)
        frames = slice(0, 3)
        np.testing.assert_allclose(from_memory.positions(), from_file.positions(frames))
        np.testing.assert_allclose(from_memory.forces(), from_file.forces(frames))
        np.testing.assert_allclose(from_memory.velocities(), from_file.velocities(frames))
        atoms = from_file[1]
        np.testing.assert_allclose(atoms.get_forces(), from_memory.forces(1))
        assert atoms.arrays["bead-type"].tolist() == ["CH3"] * 432
    assert cg_trajectory(from_memory) is from_memory  # CG stays as it is
    with pytest.raises(InputError, match="all-atom.*--mapping"):
        cg_trajectory(memory)


def test_open_trajectory_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_trajectory(tmp_path / "missing.trr", topology=tmp_path / "missing.tpr")
    with pytest.raises(InputError, match="empty"):
        open_trajectory([])
    with pytest.raises(InputError, match="expected a trajectory"):
        open_trajectory(42)
