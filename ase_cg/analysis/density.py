"""Mass density per frame."""

from __future__ import annotations

import numpy as np

from ase_cg.analysis._frames import check_periodic, frames_of, iter_frames
from ase_cg.units import AMU_PER_A3_TO_G_PER_CM3

__all__ = ["density"]


def density(images) -> np.ndarray:
    """Mass density of each frame.

    Parameters
    ----------
    images : sequence of ase.Atoms, ase.Atoms, or path of an H5MD file
        Periodic frames with masses (amu).

    Returns
    -------
    (n_frames,) float64, g/cm³
    """
    with frames_of(images, "density") as frames:
        values = []
        for frame, atoms in enumerate(iter_frames(frames)):
            _, volume = check_periodic(atoms, frame, "density")
            values.append(atoms.get_masses().sum() / volume * AMU_PER_A3_TO_G_PER_CM3)
    return np.asarray(values, dtype=np.float64)
