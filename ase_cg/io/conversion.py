"""Conversion of trajectories readable by ASE (extxyz, .traj, LAMMPS text dumps) into H5MD."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers
from ase.io import iread
from ase.io.formats import filetype
from tqdm import tqdm

from ase_cg._paths import check_output_not_input
from ase_cg.errors import InputError
from ase_cg.io.frames import write_frames
from ase_cg.io.writer import H5MDWriter

__all__ = ["convert"]


def _parse_types(types) -> dict[int, str]:
    """``"1=C,2=H"`` or ``{1: "C"}`` → ``{1: "C", 2: "H"}``."""
    if isinstance(types, str):
        mapping = {}
        for item in types.split(","):
            key, sep, symbol = item.partition("=")
            if not sep or not key.strip().isdigit():
                raise InputError(f"--types: cannot read {item!r}; write e.g. '1=C,2=H'")
            mapping[int(key)] = symbol.strip()
        types = mapping
    for symbol in types.values():
        if symbol not in atomic_numbers:
            raise InputError(f"types: {symbol!r} is not a chemical symbol (write e.g. '1=C,2=H')")
    return {int(k): v for k, v in types.items()}


def _dump_mol_ids(path: Path) -> np.ndarray | None:
    """Molecule ids from the ``mol`` column of a LAMMPS text dump's first frame.

    Sorted by the ``id`` column when there is one, as ASE sorts the atoms (``order=True``).
    """
    with open(path) as fd:
        n_atoms = None
        for line in fd:
            if line.startswith("ITEM: NUMBER OF ATOMS"):
                n_atoms = int(fd.readline())
            elif line.startswith("ITEM: ATOMS"):
                columns = line.split()[2:]
                if "mol" not in columns or n_atoms is None:
                    return None
                rows = [fd.readline().split() for _ in range(n_atoms)]
                try:
                    mol = np.array([r[columns.index("mol")] for r in rows], dtype=float)
                    if "id" in columns:
                        ids = np.array([r[columns.index("id")] for r in rows], dtype=np.int64)
                        mol = mol[np.argsort(ids)]
                except (ValueError, IndexError) as error:
                    raise InputError(f"{path}: cannot read the 'mol' column ({error})") from error
                return mol.astype(np.int64)
    return None


def _iter_frames(path: Path, format: str | None, types, lammps_units):
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a trajectory file")
    fmt = format or filetype(str(path), guess=True)
    if fmt.startswith("lammps-dump"):
        if types is None:
            raise InputError(
                f"{path}: a LAMMPS dump stores atom types, not elements; give the map, e.g. "
                "types='1=C,2=H' (--types 1=C,2=H)."
            )
        if lammps_units is None:
            raise InputError(
                f"{path}: give the LAMMPS units style of the dump (lammps_units='real', "
                "--lammps-units real): forces would be converted wrongly otherwise."
            )
        type_map = _parse_types(types)
        for atoms in iread(str(path), format=fmt, units=lammps_units, order=True):
            lammps_types = atoms.arrays.get("type", atoms.numbers)
            missing = sorted(set(lammps_types.tolist()) - set(type_map))
            if missing:
                raise InputError(f"{path}: LAMMPS atom types {missing} missing from types map")
            results = dict(atoms.calc.results) if atoms.calc is not None else {}
            results.pop("energy", None)  # ASE's dump reader stores a dummy energy of 0
            atoms.calc = None
            velocities = atoms.get_velocities() if "momenta" in atoms.arrays else None
            atoms.numbers = [atomic_numbers[type_map[t]] for t in lammps_types.tolist()]
            atoms.set_masses()  # ASE stores momenta: set the velocities again below
            if velocities is not None:
                atoms.set_velocities(velocities)
            if results:
                atoms.calc = SinglePointCalculator(atoms, **results)
            yield atoms, fmt
    else:
        yield from ((atoms, fmt) for atoms in iread(str(path), format=fmt))


def convert(
    inputs,
    output: str | os.PathLike,
    *,
    format: str | None = None,
    mol_ids=None,
    time_step: float | None = None,
    types=None,
    lammps_units: str | None = None,
    atoms_per_molecule: int | None = None,
    group: str = "all",
) -> int:
    """Convert trajectories readable by ASE (extxyz, .traj, LAMMPS text dumps) into H5MD.

    Several inputs are concatenated in order (e.g. restarted runs); their steps must keep
    increasing.  Frames stream, so memory does not grow with the trajectory.

    Parameters
    ----------
    inputs : path or list of paths
    output : path of the .h5 file (written atomically)
    format : str, optional
        ASE format name of the inputs (default: guessed per file).
    mol_ids : (n_atoms,) int, optional
        Molecule index of each atom; default: ``arrays["mol-id"]`` of the input (extxyz),
        the ``mol`` column of a LAMMPS dump, or ``atoms_per_molecule``.
    time_step : float, fs, optional
        Integrator time step; frame times are ``step * time_step``.  Without it (and
        without ``info["time"]`` in the input) no times are stored, and MDAnalysis cannot
        read the file.
    types : str or dict, optional
        LAMMPS type → element, ``"1=C,2=H"`` or ``{1: "C", 2: "H"}`` (needed for dumps).
    lammps_units : str, optional
        LAMMPS units style of a dump (``"real"``, ``"metal"`` …; needed for dumps).
    atoms_per_molecule : int, optional
        Consecutive blocks of this many atoms form one molecule.
    group : str

    Returns
    -------
    int
        Number of frames written.
    """
    paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    if not paths:
        raise InputError("convert: no input files given")
    output = Path(output)
    check_output_not_input(output, paths, option="output")
    for path in paths:
        if path.is_file() and h5py.is_hdf5(path):
            raise InputError(
                f"{path}: is already an HDF5 (H5MD) file; convert reads text and ASE "
                "trajectories (extxyz, .traj, LAMMPS dumps). Use it as it is (ase-cg info shows "
                "what it holds)."
            )

    def frames_with_forces():
        for path in paths:
            frames = _iter_frames(path, format, types, lammps_units)
            for atoms, fmt in tqdm(frames, desc=path.name, unit="frame", disable=None):
                if (
                    atoms.calc is None
                    or atoms.calc.get_property("forces", atoms, allow_calculation=False) is None
                ):
                    raise InputError(
                        f"{path}: frame has no forces; ase_cg trajectories need forces for "
                        "force matching (write them with the trajectory, e.g. dump fx fy fz)."
                    )
                yield path, atoms, fmt

    def open_writer(first) -> H5MDWriter:
        path, atoms, fmt = first
        dump_mol_ids = _dump_mol_ids(path) if fmt.startswith("lammps-dump-text") else None
        return H5MDWriter(
            output,
            species=atoms.numbers,
            masses=atoms.get_masses(),
            mol_ids=_choose_mol_ids(atoms, mol_ids, dump_mol_ids, atoms_per_molecule, path),
            group=group,
            time_step=time_step,
            pbc=atoms.pbc,
            triclinic=None,
        )

    def append(writer: H5MDWriter, frame) -> None:
        path, atoms, _ = frame
        try:
            writer.append_atoms(atoms)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None

    return write_frames(
        frames_with_forces(),
        open_writer,
        append,
        empty=f"convert: no frames in {[str(p) for p in paths]}",
    )


def _choose_mol_ids(atoms, mol_ids, dump_mol_ids, atoms_per_molecule, path: Path):
    n = len(atoms)
    if mol_ids is not None:
        return np.asarray(mol_ids, dtype=np.int64)
    if atoms_per_molecule is not None:
        if atoms_per_molecule < 1 or n % atoms_per_molecule:
            raise InputError(
                f"{path}: {n} atoms are not a whole number of molecules of "
                f"{atoms_per_molecule} atoms."
            )
        return np.arange(n) // atoms_per_molecule
    if "mol-id" in atoms.arrays:
        return atoms.arrays["mol-id"]
    return dump_mol_ids
