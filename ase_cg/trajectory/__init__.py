"""One trajectory layer: every consumer reads frames through the same small protocol.

A :class:`Trajectory` is anything with these members (arrays in ASE units, float64)::

    n_frames, n_atoms : int               len(trajectory) == n_frames
    positions(frames) -> (n, n_atoms, 3)  Å
    forces(frames)    -> (n, n_atoms, 3)  eV/Å        (has_forces)
    velocities(frames)-> (n, n_atoms, 3)  Å/ASE time   (has_velocities)
    cells(frames)     -> (n, 3, 3)        Å, rows are cell vectors, zeros if not periodic
    iter_chunks(size) -> consecutive frame slices
    [i]               -> ase.Atoms (forces through a SinglePointCalculator)
    numbers (n_atoms,) int (0 for CG beads) | masses (n_atoms,) amu | pbc (3,) bool
    mol_ids (n_atoms,) int or None | bonds (n_bonds, 2) int or None
    bead_types (n_atoms,) str or None (None: all-atom) | steps (n_frames,) | times fs or None

``frames`` is an int (one frame: the leading axis is dropped), a slice, an index array or
``None`` (all).  Implementations:

* :class:`ase_cg.io.H5MDTrajectory`: H5MD files, lazily, one hyperslab per read;
* :class:`MDAnalysisTrajectory`: GROMACS TRR/XTC + TPR, LAMMPS data + dump, DCD … through
  MDAnalysis, frame by frame, units converted at the boundary;
* :class:`InMemoryTrajectory`: a list of ``ase.Atoms``;
* :class:`MappedTrajectory`: a CG view of an all-atom trajectory through a
  :class:`~ase_cg.mapping.CGMapping`, mapped chunk by chunk as frames are read.

:func:`open_trajectory` turns what a user gives (a path, paths, Atoms, a trajectory) into
one, and :func:`cg_trajectory` is the one place that decides whether frames are already CG
or must be mapped.
"""

from ase_cg.trajectory.base import ConstraintWarning, Trajectory, frame_indices
from ase_cg.trajectory.foreign import LAMMPS_UNITS, MDAnalysisTrajectory
from ase_cg.trajectory.mapped import MappedTrajectory
from ase_cg.trajectory.memory import InMemoryTrajectory
from ase_cg.trajectory.opening import (
    cg_trajectory,
    is_cg,
    open_trajectory,
    opened,
    summary,
    write_trajectory,
)

__all__ = [
    "ConstraintWarning",
    "LAMMPS_UNITS",
    "InMemoryTrajectory",
    "MDAnalysisTrajectory",
    "MappedTrajectory",
    "Trajectory",
    "cg_trajectory",
    "frame_indices",
    "is_cg",
    "open_trajectory",
    "opened",
    "summary",
    "write_trajectory",
]
