"""Per-frame pressure of an existing all-atom reference file, re-evaluated with LAMMPS.

For files written before :mod:`ase_cg.reference.simulation` stored the pressure: every frame is
evaluated once with the reference force field (:func:`~ase_cg.reference.lammps.compute_pressure`,
``run 0``, kinetic part from the stored velocities) and the result written into the file's
``observables/pressure`` and ``observables/pressure_tensor`` (bar) by
:func:`ase_cg.io.write_observables`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import units
from tqdm.auto import tqdm

from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, write_observables
from ase_cg.reference.lammps import compute_pressure
from ase_cg.reference.molecules import MOLECULES

__all__ = ["add_reference_pressure"]


def add_reference_pressure(
    path: str | os.PathLike, molecule: str = "ethane", *, progress: bool | None = None
) -> np.ndarray:
    """Evaluate the pressure of every frame of ``path`` and store it in the file.

    Parameters
    ----------
    path : str or Path
        All-atom H5MD file of ``molecule`` (template atom order, orthorhombic box), with
        velocities (the kinetic part of the pressure).
    molecule : str
        Template name in :data:`ase_cg.reference.MOLECULES` (its force field is used).
    progress : bool or None
        Progress bar (``None``: only on a terminal).

    Returns
    -------
    (n_frames,) float64
        Pressure per frame, bar.

    Raises
    ------
    InputError
        Unknown or rigid molecule (its constraint virial is not in the file), no velocities.
    """
    path = Path(path)
    if molecule not in MOLECULES:
        raise InputError(f"unknown molecule {molecule!r}; known: {sorted(MOLECULES)}")
    template = MOLECULES[molecule]
    if template.rigid:
        raise InputError(
            f"{path}: {molecule!r} is rigid (SHAKE); its pressure needs the constraint virial "
            "of the run, which a re-evaluation cannot give: regenerate the reference with "
            "ase-cg reference (it stores the pressure)"
        )
    with H5MDTrajectory(path) as trajectory:
        if not trajectory.has_velocities:
            raise InputError(f"{path}: no velocities; the kinetic part of the pressure needs them")
        n_frames = trajectory.n_frames
        pressures = np.empty(n_frames)
        tensors = np.empty((n_frames, 3, 3))
        disable = None if progress is None else not progress
        for frame in tqdm(range(n_frames), desc="pressure", unit="frame", disable=disable):
            pressures[frame], tensors[frame] = compute_pressure(template, trajectory[frame])
    write_observables(path, {"pressure": pressures, "pressure_tensor": tensors})
    return pressures / units.bar
