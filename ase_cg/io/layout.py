"""The H5MD layout that ``ase_cg`` writes and reads, and what its reader and writer share.

Files follow H5MD 1.1 (https://www.nongnu.org/h5md/h5md.html).  What ``ase_cg`` writes::

    file.h5                               attrs: complete = True once the writer closed
    │                                     normally (False while a run writes, or after it
    │                                     was stopped: the frames so far are valid)
    ├── h5md                              attrs: version = [1, 1]
    │   ├── author                        attrs: name
    │   └── creator                       attrs: name = "ase_cg", version
    ├── particles
    │   └── <group>                       (default "all")
    │       ├── box                       attrs: dimension = 3,
    │       │   │                                boundary = 3 × "periodic" | "none"
    │       │   └── edges                 (absent when the system has no cell)
    │       │       ├── value             (n_frames, 3) orthorhombic | (n_frames, 3, 3)
    │       │       │                     triclinic, rows = cell vectors; attr unit
    │       │       ├── step -> position/step   (hard links: one shared dataset)
    │       │       └── time -> position/time
    │       ├── position
    │       │   ├── value                 (n_frames, n_atoms, 3) float32, attr unit
    │       │   ├── step                  (n_frames,) int64, strictly increasing
    │       │   └── time                  (n_frames,) float64, attr unit
    │       ├── force/{value, step, time}     same shapes (optional)
    │       ├── velocity/{value, step, time}  same shapes (optional)
    │       ├── species                   (n_atoms,) int32: atomic numbers, 0 for CG beads
    │       ├── mass                      (n_atoms,) float64, attr unit
    │       ├── molecule_id               (n_atoms,) int64        ← ase_cg addition
    │       └── bead_type                 (n_atoms,) UTF-8 str    ← ase_cg addition
    ├── parameters                        (optional, H5MD's free-form run parameters)
    │   └── <name>                        attrs: one per setting (ase_cg.io.H5MDWriter.parameters)
    ├── observables                       (each optional; H5MD's per-frame observables)
    │   ├── potential_energy/{value, step, time}   (n_frames,) float64, attr unit
    │   ├── pressure/{value, step, time}           (n_frames,) float64, attr unit = "bar"
    │   └── pressure_tensor/{value, step, time}    (n_frames, 3, 3) float64, attr unit = "bar"
    └── connectivity
        └── <group>_bonds                 (n_bonds, 2) int64 particle indices,
                                          attr particles_group = reference to particles/<group>

The H5MD standard has no place for molecule ids, CG bead-type names or the integrator time
step, so ``ase_cg`` adds exactly these (``parameters/`` and ``observables/`` are H5MD's own):

* ``particles/<group>/molecule_id``: molecule index of each particle (ASE's ``"mol-id"``);
* ``particles/<group>/bead_type``: type name of each CG bead (particles are beads, species 0);
* attribute ``time_step`` on ``particles/<group>/position/time``: the integrator time step,
  in that dataset's time unit.

Values are written in the units of :data:`ase_cg.units.ASE_UNITS` (Å, kJ/mol, fs, u), the
strings MDAnalysis's H5MD reader converts.  Reading accepts any unit string that
:func:`ase_cg.units.to_ase_factor` parses (files from MDAnalysis, GROMACS, LAMMPS …) and
returns ASE units as float64; a value dataset without a ``unit`` attribute is taken to be
in ASE units already (Å, eV/Å, Å/ASE-time; times in fs), and :attr:`ase_cg.io.H5MDTrajectory.units`
shows ``None`` for it.  Also read: time-independent ``box/edges`` (a plain dataset),
scalar ``step``/``time`` datasets (fixed sampling interval, H5MD's ``offset`` attribute),
scalar ``mass``/``species``, files without species, masses, molecule ids or bonds.
Any ``observables/<name>`` element sampled at the frames' steps is read by
:meth:`ase_cg.io.H5MDTrajectory.observable` (converted to ASE units when its unit string names a
quantity of :data:`ase_cg.units.QUANTITIES`, e.g. pressures in bar → eV/Å³).

Files from other writers: their ``species`` are ids (H5MD allows any integers), so the
elements come from VMD's ``parameters/vmd_structure`` (``atomicnumber``, ``name``, ``type``
per species in ``indexOfSpecies`` order; ``resid`` per particle as molecule ids;
``bond_from``/``bond_to`` as 1-based bonds), else from the masses; and the lengths are
checked against covalent radii, so a file labelled nm that holds Å is refused with the
unit attribute named (:mod:`ase_cg.chemistry`).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ase_cg.errors import InputError
from ase_cg.units import ASE_UNITS, to_ase_factor

__all__ = [
    "MAX_COORDINATE",
    "OBSERVABLE_QUANTITIES",
    "SYSTEM_OBSERVABLES",
    "IncompleteTrajectoryWarning",
    "check_coordinates",
]

#: fs per ASE time unit.
FS_PER_ASE_TIME = 1.0 / to_ase_factor("fs", "time")
#: Factors from the units we write (ASE_UNITS) to ASE units.
TO_ASE = {quantity: to_ase_factor(unit, quantity) for quantity, unit in ASE_UNITS.items()}
#: Quantities of ``particles/<group>`` stored as time-dependent per-particle vectors.
VECTORS = {"position": "length", "force": "force", "velocity": "velocity"}
#: Per-frame observables the writer stores (``observables/<name>``) → their quantity in
#: :data:`ase_cg.units.ASE_UNITS`: (n_frames,) scalars or (n_frames, 3, 3) tensors.
OBSERVABLE_QUANTITIES = {
    "potential_energy": "energy",
    "pressure": "pressure",
    "pressure_tensor": "pressure",
}
#: Observables of the whole system that do not depend on its representation: a CG view of an
#: all-atom trajectory has the same ones (the potential energy is not among them).
SYSTEM_OBSERVABLES = ("pressure", "pressure_tensor")


def open_h5(path: Path) -> h5py.File:
    """Open ``path`` read-only, turning every failure into an :class:`InputError`."""
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path (cwd is {Path.cwd()}).")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give the path of an H5MD (.h5) file in it.")
    try:
        if not h5py.is_hdf5(path):
            raise InputError(
                f"{path}: not an HDF5 file (no HDF5 signature). Give an H5MD file; convert "
                "other trajectories with `ase-cg convert`."
            )
        return h5py.File(path, "r", rdcc_nbytes=16 << 20)
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError) as error:
        raise InputError(
            f"{path}: cannot open as HDF5 ({error}); the file is truncated or corrupted. "
            "Rewrite it (an interrupted write leaves a *.partial file, not this one)."
        ) from error


#: Largest |coordinate| accepted, Å: beyond it a position is a unit or file error (1e6 Å = 0.1 mm).
MAX_COORDINATE = 1e6


def check_coordinates(positions: np.ndarray, where: str, frame_of) -> None:
    """Refuse positions (n, n_atoms, 3), Å, with a coordinate beyond ±:data:`MAX_COORDINATE`;
    the message names the frame (``frame_of(i)`` of the i-th of the n) and the atom."""
    bad = np.abs(positions) > MAX_COORDINATE
    if bad.any():
        i, atom, axis = (int(k) for k in np.argwhere(bad)[0])
        raise InputError(
            f"{where} {frame_of(i)}: atom {atom} is at {'xyz'[axis]} = "
            f"{positions[i, atom, axis]:.6g} Å, beyond ±{MAX_COORDINATE:g} Å; check the "
            "length unit of the file (or wrap the atoms into the box)."
        )


class IncompleteTrajectoryWarning(UserWarning):
    """An H5MD file whose writer has not finished (root attribute ``complete`` = False)."""


def read_attr_str(obj, name: str) -> str | None:
    value = obj.attrs.get(name)
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
        return value.decode() if isinstance(value, bytes) else str(value)
    return str(value)


def read_parameters(file: h5py.File) -> dict[str, dict]:
    """Attributes of each group in ``parameters/`` (H5MD's free-form run parameters)."""
    parameters = file.get("parameters")
    if not isinstance(parameters, h5py.Group):
        return {}
    result = {}
    for name, group in parameters.items():
        if isinstance(group, h5py.Group):
            result[name] = {
                key: value.decode() if isinstance(value, bytes) else value
                for key, value in group.attrs.items()
            }
    return result
