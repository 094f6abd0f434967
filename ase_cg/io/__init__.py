"""H5MD trajectories: lazy reader, streaming writer, conversion and summaries, in ASE units.

What lives where:

* :mod:`ase_cg.io.layout`: the H5MD layout written and read (drawn as a tree), the units and
  the checks the reader and writer share;
* :mod:`ase_cg.io.validation`: opening a file and checking its layout;
* :mod:`ase_cg.io.vmd`: elements, residues and bonds from VMD's structure group (files of
  other writers);
* :mod:`ase_cg.io.reader`: :class:`H5MDTrajectory` (lazy, by frame selection) and
  :func:`read_h5md` (``ase.Atoms``, also behind ``ase.io.read``);
* :mod:`ase_cg.io.writer`: :class:`H5MDWriter` (streaming, atomic or incremental);
* :mod:`ase_cg.io.frames`: :func:`write_h5md` (``ase.Atoms``, also behind ``ase.io.write``)
  and :func:`write_frames` (any frame stream), all or nothing;
* :mod:`ase_cg.io.observables`: :func:`write_observables` (pressures added to a file);
* :mod:`ase_cg.io.conversion`: :func:`convert` (extxyz, .traj, LAMMPS dumps → H5MD);
* :mod:`ase_cg.io.summary`: :func:`info` (what ``ase-cg info`` prints).
"""

from ase_cg.io.conversion import convert
from ase_cg.io.frames import write_frames, write_h5md
from ase_cg.io.layout import (
    MAX_COORDINATE,
    OBSERVABLE_QUANTITIES,
    SYSTEM_OBSERVABLES,
    IncompleteTrajectoryWarning,
    check_coordinates,
)
from ase_cg.io.observables import write_observables
from ase_cg.io.reader import H5MDTrajectory, read_h5md
from ase_cg.io.summary import info
from ase_cg.io.writer import H5MDWriter

__all__ = [
    "MAX_COORDINATE",
    "OBSERVABLE_QUANTITIES",
    "SYSTEM_OBSERVABLES",
    "H5MDTrajectory",
    "H5MDWriter",
    "IncompleteTrajectoryWarning",
    "check_coordinates",
    "convert",
    "info",
    "read_h5md",
    "write_frames",
    "write_h5md",
    "write_observables",
]
