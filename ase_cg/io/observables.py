"""Per-frame observables (pressures, pressure tensors) added to an existing H5MD file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np

from ase_cg._paths import atomic_path
from ase_cg.errors import InputError
from ase_cg.io.layout import OBSERVABLE_QUANTITIES, TO_ASE
from ase_cg.io.reader import H5MDTrajectory
from ase_cg.units import ASE_UNITS

__all__ = ["write_observables"]


def write_observables(path: str | os.PathLike, values: dict, *, group: str | None = None) -> None:
    """Add per-frame observables to an existing H5MD file, atomically.

    The file is copied, ``observables/<name>/{value, step, time}`` written into the copy (step
    and time hard-linked to the particle group's), and the copy renamed over ``path``; an
    observable of the same name is replaced.

    Parameters
    ----------
    path : str or Path
        H5MD file.
    values : dict
        ``{name: (n_frames, ...) array}`` in ASE units, names from
        :data:`OBSERVABLE_QUANTITIES` (e.g. ``"pressure"`` (n_frames,) eV/Å³).
    group : str, optional
        Particle group whose frames the values belong to (default: the only one).
    """
    path = Path(path)
    with H5MDTrajectory(path, group) as trajectory:
        n_frames, g_path = trajectory.n_frames, f"particles/{trajectory.group}"
    arrays = {}
    for name, value in values.items():
        if name not in OBSERVABLE_QUANTITIES:
            raise InputError(
                f"{path}: unknown observable {name!r}; known: {sorted(OBSERVABLE_QUANTITIES)}"
            )
        array = np.asarray(value, dtype=np.float64)
        if array.ndim < 1 or array.shape[0] != n_frames or not np.all(np.isfinite(array)):
            raise InputError(
                f"{path}: observable {name!r} must be finite with one value per frame "
                f"({n_frames}, ...), got shape {array.shape}"
            )
        arrays[name] = array / TO_ASE[OBSERVABLE_QUANTITIES[name]]
    with atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as handle:
            position = handle[f"{g_path}/position"]
            for name, array in arrays.items():
                full = f"observables/{name}"
                if full in handle:
                    del handle[full]
                element = handle.create_group(full)
                element.create_dataset("value", data=array).attrs["unit"] = ASE_UNITS[
                    OBSERVABLE_QUANTITIES[name]
                ]
                element["step"] = position["step"]
                if "time" in position:
                    element["time"] = position["time"]
