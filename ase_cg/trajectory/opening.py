"""Turning what a user gives into a :class:`Trajectory`, and deciding whether it is CG."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.symbols import Symbols
from tqdm import tqdm

from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, H5MDWriter
from ase_cg.trajectory.base import Trajectory, trajectory_name
from ase_cg.trajectory.foreign import MDAnalysisTrajectory
from ase_cg.trajectory.mapped import MappedTrajectory
from ase_cg.trajectory.memory import InMemoryTrajectory

#: Suffixes read by :class:`ase_cg.io.H5MDTrajectory`; every other file goes to MDAnalysis.
H5MD_SUFFIXES = (".h5", ".h5md", ".hdf5", ".hdf")


def open_trajectory(source, *, topology=None, **kwargs):
    """A :class:`Trajectory` for what a user gives.

    Parameters
    ----------
    source : path, list of paths, ase.Atoms, sequence of ase.Atoms or Trajectory
        H5MD files (``.h5``, ``.h5md``, ``.hdf5``) open as :class:`ase_cg.io.H5MDTrajectory`;
        other files through MDAnalysis (:class:`MDAnalysisTrajectory`, e.g. ``traj.trr``
        with ``topology="topol.tpr"``); Atoms as :class:`InMemoryTrajectory`; a trajectory is
        returned as it is.
    topology : path, optional
        Topology file for MDAnalysis (``.tpr``, LAMMPS data file, ``.gro``, ``.pdb`` …).
    **kwargs
        Passed to :class:`MDAnalysisTrajectory` (``lammps_units``, MDAnalysis options).

    Returns
    -------
    Trajectory
        Close it (``with`` or ``.close()``) when done with a file.
    """
    if isinstance(source, Trajectory) and not isinstance(source, Sequence):
        return source
    if isinstance(source, Atoms):
        return InMemoryTrajectory(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if topology is None and path.suffix.lower() in H5MD_SUFFIXES:
            if kwargs:
                raise InputError(f"{path}: options {sorted(kwargs)} do not apply to H5MD files")
            return H5MDTrajectory(path)
        if topology is None:
            return MDAnalysisTrajectory(path, **kwargs)
        return MDAnalysisTrajectory(topology, path, **kwargs)
    if isinstance(source, Sequence) and source and all(isinstance(a, Atoms) for a in source):
        return InMemoryTrajectory(source)
    if (
        isinstance(source, Sequence)
        and source
        and all(isinstance(p, str | os.PathLike) for p in source)
    ):
        if topology is None:
            raise InputError(
                "several trajectory files need a topology (topology=..., --topology FILE)"
            )
        return MDAnalysisTrajectory(topology, list(source), **kwargs)
    if isinstance(source, Sequence) and not source:
        raise InputError("no frames given: the trajectory is empty")
    raise InputError(
        f"expected a trajectory: an H5MD or MDAnalysis-readable file path, ase.Atoms or a list "
        f"of them, or an ase_cg trajectory object; got {type(source).__name__}"
    )


def is_cg(trajectory) -> bool:
    """Whether the frames are CG beads: they carry bead types, or no elements at all (CG
    arrays such as :class:`ase_cg.fitting.ArrayTrajectory`)."""
    if getattr(trajectory, "bead_types", None) is not None:
        return True
    numbers = getattr(trajectory, "numbers", None)
    return numbers is None or not np.any(numbers)


@contextlib.contextmanager
def opened(source, *, topology=None, **kwargs):
    """:func:`open_trajectory` as a context manager: closes what it opened (not a trajectory
    object passed in)."""
    trajectory = open_trajectory(source, topology=topology, **kwargs)
    try:
        yield trajectory
    finally:
        if trajectory is not source:
            trajectory.close()


def cg_trajectory(trajectory, mapping=None, *, what: str = "trajectory", **mapped_kwargs):
    """The CG frames of ``trajectory``: itself when it is CG, else mapped with ``mapping``.

    The one place that decides whether frames are all-atom (and must be mapped) or CG:
    CG frames carry bead types (:func:`is_cg`).

    Parameters
    ----------
    trajectory : Trajectory
    mapping : CGMapping, optional
        Needed for all-atom frames.
    what : str
        How errors name the input.
    **mapped_kwargs
        Passed to :class:`MappedTrajectory` (``force_map``, ``split_constraints``, ``chunk``).

    Raises
    ------
    InputError
        All-atom frames without a mapping.
    """
    if is_cg(trajectory):
        return trajectory
    if mapping is None:
        raise InputError(
            f"{what} ({trajectory_name(trajectory)}): is all-atom (no bead types); give the "
            "mapping (--mapping FILE) or map it first with `ase-cg map`"
        )
    return MappedTrajectory(trajectory, mapping, **mapped_kwargs)


def write_trajectory(
    trajectory,
    path,
    *,
    chunk_size: int = 256,
    group: str = "all",
    compression: str | None = "gzip",
    progress: bool | None = None,
) -> int:
    """Write any :class:`Trajectory` to an H5MD file (atomically), chunk by chunk.

    Everything the trajectory has goes in: positions, cells, forces and velocities where
    present, elements (or bead types), masses, molecule ids, bonds, steps and times.

    Parameters
    ----------
    trajectory : Trajectory
    path : path of the ``.h5`` file
    chunk_size : int
        Frames read and written at a time.
    group : str
    compression : {"gzip", "lzf", None}
    progress : bool or None
        tqdm bar (``None``: only on a terminal).

    Returns
    -------
    int
        Number of frames written.
    """
    cg = trajectory.bead_types is not None
    times = getattr(trajectory, "times", None)
    steps = getattr(trajectory, "steps", None)
    steps = np.arange(trajectory.n_frames) if steps is None else np.asarray(steps)
    with (
        H5MDWriter(
            path,
            species=None if cg else trajectory.numbers,
            bead_types=trajectory.bead_types if cg else None,
            masses=trajectory.masses,
            mol_ids=trajectory.mol_ids,
            bonds=trajectory.bonds,
            group=group,
            time_step=getattr(trajectory, "time_step", None),
            compression=compression,
            pbc=trajectory.pbc,
        ) as writer,
        tqdm(
            total=trajectory.n_frames,
            unit="frame",
            desc=Path(str(path)).name,
            disable=None if progress is None else not progress,
        ) as bar,
    ):
        for frames in trajectory.iter_chunks(chunk_size):
            positions, cells = trajectory.positions(frames), trajectory.cells(frames)
            forces = trajectory.forces(frames) if trajectory.has_forces else None
            velocities = trajectory.velocities(frames) if trajectory.has_velocities else None
            for k, frame in enumerate(range(*frames.indices(trajectory.n_frames))):
                writer.append(
                    positions[k],
                    cells[k] if np.any(cells[k]) else None,
                    forces=None if forces is None else forces[k],
                    velocities=None if velocities is None else velocities[k],
                    step=int(steps[frame]),
                    time=None if times is None else float(times[frame]),
                )
            bar.update(len(positions))
        return writer.n_frames


def summary(trajectory: Trajectory) -> str:
    """A few lines on any trajectory (what ``ase-cg info`` prints for non-H5MD files).

    Frames, particles and their composition, molecules and bonds, the first frame's box (Å)
    and which per-frame quantities can be read.
    """
    if trajectory.bead_types is not None:
        kinds = f"CG beads, types {sorted(set(np.asarray(trajectory.bead_types).tolist()))}"
    else:
        kinds = f"atoms, {Symbols(trajectory.numbers).get_chemical_formula('hill')}"
    cell = trajectory.cells(slice(0, 1))[0]
    box = " × ".join(f"{np.linalg.norm(v):.4f}" for v in cell) + " Å (cell vector lengths)"
    molecules = "none stored" if trajectory.mol_ids is None else len(set(trajectory.mol_ids))
    bonds = "none stored" if trajectory.bonds is None else len(trajectory.bonds)
    present = ["positions"]
    present += [n for n, f in (("forces", trajectory.has_forces),
                               ("velocities", trajectory.has_velocities)) if f]  # fmt: skip
    return "\n".join(
        [
            f"frames:      {trajectory.n_frames}",
            f"particles:   {trajectory.n_atoms} ({kinds})",
            f"molecules:   {molecules}",
            f"bonds:       {bonds}",
            f"box:         {box}, pbc={np.asarray(trajectory.pbc).tolist()}",
            f"present:     {', '.join(present)} (in ASE units: Å, eV/Å)",
        ]
    )
