"""Other engines' files (GROMACS, LAMMPS, DCD …) through MDAnalysis, in ASE units."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses

from ase_cg import _keys as K
from ase_cg.chemistry import identify_elements, implausible_lengths
from ase_cg.errors import InputError
from ase_cg.io.layout import FS_PER_ASE_TIME
from ase_cg.trajectory.base import FramesMixin, frame_atoms, frame_indices
from ase_cg.units import to_ase_factor

#: LAMMPS units styles :class:`MDAnalysisTrajectory` converts (dump files carry no units).
LAMMPS_UNITS = {
    "real": {"force": "kcal mol-1 Angstrom-1", "velocity": "Angstrom fs-1", "time": "fs"},
    "metal": {"force": "eV Angstrom-1", "velocity": "Angstrom ps-1", "time": "ps"},
}


class MDAnalysisTrajectory(FramesMixin):
    """Trajectories MDAnalysis reads (GROMACS TRR/XTC + TPR, LAMMPS data + dump, DCD …).

    Frames are read on request, one at a time, and converted to ASE units: MDAnalysis gives
    Å, kJ mol⁻¹ Å⁻¹ and Å ps⁻¹ for GROMACS and the like; LAMMPS dumps hold the raw values of
    the run's units style, given by ``lammps_units``.  Elements come from the topology's
    elements (checked against its masses), else its masses
    (:func:`ase_cg.chemistry.identify_elements`); molecules from GROMACS molecule numbers
    (TPR) or LAMMPS molecule ids (data file), bonds from the topology.

    Parameters
    ----------
    topology : path
        Topology (``.tpr``, LAMMPS data file, ``.gro``/``.pdb`` …) or a file MDAnalysis reads
        alone.
    trajectory : path or list of paths, optional
        Coordinates (``.trr``, ``.xtc``, ``.dcd``, LAMMPS dump …).
    lammps_units : {"real", "metal"}, optional
        Units style of a LAMMPS dump (required for dumps, which carry no units).
    **universe_kwargs
        Passed to ``MDAnalysis.Universe`` (e.g. ``format="LAMMPSDUMP"``, ``atom_style=…``).
    """

    def __init__(self, topology, trajectory=None, *, lammps_units=None, **universe_kwargs):
        # heavy: MDAnalysis takes a second to import, and most runs read H5MD only
        import MDAnalysis as mda
        from MDAnalysis.exceptions import NoDataError

        self.path = Path(topology if trajectory is None else _first(trajectory))
        self.topology_path = Path(topology)
        paths = [Path(topology)] + ([] if trajectory is None else _as_paths(trajectory))
        for path in paths:
            if not path.is_file():
                raise InputError(f"{path}: no such file (cwd is {Path.cwd()})")
        if _is_lammps_dump(trajectory, universe_kwargs):
            universe_kwargs.setdefault("format", "LAMMPSDUMP")
        args = [str(topology)] + ([] if trajectory is None else [str(p) for p in paths[1:]])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # guessers' chatter about missing attributes
                self.universe = mda.Universe(*args, **universe_kwargs)
        except (ValueError, TypeError, OSError, NoDataError, EOFError, KeyError) as error:
            raise InputError(
                f"{', '.join(map(str, paths))}: MDAnalysis cannot read this "
                f"({type(error).__name__}: {error}); check the files and their formats."
            ) from error
        reader = self.universe.trajectory
        self.format = type(reader).__name__
        atoms = self.universe.atoms
        self.n_frames = int(reader.n_frames)
        self.n_atoms = int(atoms.n_atoms)
        self._factors = self._unit_factors(reader, lammps_units)
        first = reader[0]
        self.has_forces = bool(first.has_forces)
        self.has_velocities = bool(first.has_velocities)
        self.pbc = np.full(3, first.dimensions is not None)
        self.bead_types = None
        masses = np.asarray(atoms.masses, dtype=np.float64) if hasattr(atoms, "masses") else None
        if masses is not None and not np.all(masses > 0):
            masses = None
        elements = getattr(atoms, "elements", None) if hasattr(atoms, "elements") else None
        if elements is not None and not all(str(e).strip() for e in elements):
            elements = None
        self.numbers, self.element_rule = identify_elements(
            masses=masses,
            names=elements,
            where=f"{self.topology_path}: {'elements' if elements is not None else 'masses'}",
        )
        if masses is None:
            masses = atomic_masses[self.numbers]
        self.masses = masses
        self.bonds = None
        try:
            bonds = np.asarray(atoms.bonds.indices, dtype=np.int64).reshape(-1, 2)
            self.bonds = bonds if len(bonds) else None
        except (NoDataError, AttributeError):
            pass
        self.mol_ids = None
        if hasattr(atoms, "molnums"):
            self.mol_ids = np.asarray(atoms.molnums, dtype=np.int64)
        elif hasattr(atoms, "resids"):
            resids = np.asarray(atoms.resids, dtype=np.int64)
            if self.bonds is None or np.all(resids[self.bonds[:, 0]] == resids[self.bonds[:, 1]]):
                self.mol_ids = resids
        steps, times = [], []
        for ts in reader:
            steps.append(int(ts.data.get("step", ts.frame)))
            times.append(float(ts.time) * self._factors["time_fs"])
        self.steps = np.asarray(steps, dtype=np.int64)
        self.times = np.asarray(times, dtype=np.float64)
        self.time_step = None
        self._cache: tuple | None = None
        check_lengths(self, f"{self.path} (lengths as MDAnalysis gives them, Å)")

    def __repr__(self) -> str:
        return (
            f"MDAnalysisTrajectory({str(self.path)!r}, {self.format}: {self.n_frames} frames × "
            f"{self.n_atoms} atoms)"
        )

    @staticmethod
    def _unit_factors(reader, lammps_units) -> dict[str, float]:
        units = dict(getattr(reader, "units", {}) or {})
        if units.get("length") is None:  # LAMMPS dumps: raw values in the run's units style
            if lammps_units not in LAMMPS_UNITS:
                raise InputError(
                    f"{reader.filename}: a LAMMPS dump holds values in the run's units style; "
                    f"give it: lammps_units= one of {sorted(LAMMPS_UNITS)} (--lammps-units)."
                )
            style = LAMMPS_UNITS[lammps_units]
            return {
                "force": to_ase_factor(style["force"], "force"),
                "velocity": to_ase_factor(style["velocity"], "velocity"),
                "time_fs": to_ase_factor(style["time"], "time") * FS_PER_ASE_TIME,
            }
        # MDAnalysis converts to its base units: Å, ps, Å/ps, kJ/(mol Å)
        return {
            "force": to_ase_factor("kJ mol-1 Angstrom-1", "force"),
            "velocity": to_ase_factor("Angstrom ps-1", "velocity"),
            "time_fs": 1000.0,
        }

    def _read(self, frames) -> tuple[dict, bool]:
        indices, single = frame_indices(frames, self.n_frames, str(self.path))
        key = tuple(indices.tolist())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], single
        reader = self.universe.trajectory
        n = len(indices)
        data = {"positions": np.empty((n, self.n_atoms, 3)), "cells": np.zeros((n, 3, 3))}
        if self.has_forces:
            data["forces"] = np.empty((n, self.n_atoms, 3))
        if self.has_velocities:
            data["velocities"] = np.empty((n, self.n_atoms, 3))
        for k, i in enumerate(indices):
            ts = reader[int(i)]
            data["positions"][k] = ts.positions
            if ts.dimensions is not None:
                data["cells"][k] = ts.triclinic_dimensions
            if self.has_forces:
                data["forces"][k] = ts.forces * self._factors["force"]
            if self.has_velocities:
                data["velocities"][k] = ts.velocities * self._factors["velocity"]
        for name, values in data.items():
            if not np.all(np.isfinite(values)):
                frame = int(indices[np.argwhere(~np.isfinite(values))[0, 0]])
                raise InputError(f"{self.path}: frame {frame}: {name} are not finite")
        self._cache = (key, data)
        return data, single

    def _get(self, name: str, frames) -> np.ndarray:
        data, single = self._read(frames)
        values = data[name]
        return values[0].copy() if single else values

    def positions(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) Å ((n_atoms, 3) for an int)."""
        return self._get("positions", frames)

    def cells(self, frames=None) -> np.ndarray:
        """(n, 3, 3) Å, rows are cell vectors; zeros without a box."""
        return self._get("cells", frames)

    def forces(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) eV/Å.

        Raises
        ------
        InputError
            The trajectory holds no forces (XTC, DCD, TRR written without ``nstfout``).
        """
        if not self.has_forces:
            raise InputError(
                f"{self.path}: this {self.format} trajectory holds no forces (XTC and DCD hold "
                "positions only: fine for analysis); force matching needs forces: write a TRR "
                "with nstfout > 0 (GROMACS) or a dump with fx fy fz (LAMMPS)."
            )
        return self._get("forces", frames)

    def velocities(self, frames=None) -> np.ndarray:
        """(n, n_atoms, 3) Å per ASE time unit."""
        if not self.has_velocities:
            raise InputError(f"{self.path}: this {self.format} trajectory holds no velocities")
        return self._get("velocities", frames)

    def _frame_atoms(self, i: int) -> Atoms:
        return frame_atoms(self, i, self.masses, **{K.MOL_ID: self.mol_ids})

    def close(self) -> None:
        """Close MDAnalysis's file handles."""
        self.universe.trajectory.close()


def _as_paths(trajectory) -> list[Path]:
    if isinstance(trajectory, str | os.PathLike):
        return [Path(trajectory)]
    return [Path(p) for p in trajectory]


def _first(trajectory) -> Path:
    return _as_paths(trajectory)[0]


def _is_lammps_dump(trajectory, kwargs) -> bool:
    if trajectory is None or "format" in kwargs:
        return False
    name = _first(trajectory).name.lower()
    return name.endswith((".lammpstrj", ".dump")) or name.startswith("dump.")


def check_lengths(trajectory, label: str) -> None:
    """Refuse an all-atom trajectory whose bonded distances (frame 0) are far from the sum of
    covalent radii (:func:`ase_cg.chemistry.implausible_lengths`): its lengths are in
    another unit than ``label`` says."""
    if trajectory.bead_types is not None or not np.all(trajectory.numbers > 0):
        return
    problem = implausible_lengths(
        trajectory.numbers,
        trajectory.positions(0),
        trajectory.cells(0),
        trajectory.pbc,
        trajectory.bonds,
        trajectory.mol_ids,
    )
    if problem is not None:
        raise InputError(f"{label}: {problem}: the lengths are in another unit.")
