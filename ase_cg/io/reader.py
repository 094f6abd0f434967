"""H5MD trajectories: streaming writer, lazy reader, unit conversion at the boundary.

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
    │   └── <name>                        attrs: one per setting (H5MDWriter.parameters)
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
in ASE units already (Å, eV/Å, Å/ASE-time; times in fs), and :attr:`H5MDTrajectory.units`
shows ``None`` for it.  Also read: time-independent ``box/edges`` (a plain dataset),
scalar ``step``/``time`` datasets (fixed sampling interval, H5MD's ``offset`` attribute),
scalar ``mass``/``species``, files without species, masses, molecule ids or bonds.
Any ``observables/<name>`` element sampled at the frames' steps is read by
:meth:`H5MDTrajectory.observable` (converted to ASE units when its unit string names a
quantity of :data:`ase_cg.units.QUANTITIES`, e.g. pressures in bar → eV/Å³).

Files from other writers: their ``species`` are ids (H5MD allows any integers), so the
elements come from VMD's ``parameters/vmd_structure`` (``atomicnumber``, ``name``, ``type``
per species in ``indexOfSpecies`` order; ``resid`` per particle as molecule ids;
``bond_from``/``bond_to`` as 1-based bonds), else from the masses; and the lengths are
checked against covalent radii, so a file labelled nm that holds Å is refused with the
unit attribute named (:mod:`ase_cg.chemistry`).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import secrets
import signal
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from ase_cg import __version__
from ase_cg._paths import atomic_path
from ase_cg.beads import set_bead_types
from ase_cg.chemistry import identify_elements, implausible_lengths
from ase_cg.errors import InputError
from ase_cg.units import ASE_UNITS, QUANTITIES, to_ase_factor

__all__ = [
    "OBSERVABLE_QUANTITIES",
    "H5MDTrajectory",
    "H5MDWriter",
    "read_h5md",
    "write_h5md",
    "write_frames",
    "write_observables",
    "info",
    "convert",
]

_LOG = logging.getLogger(__name__)
_FS_PER_ASE_TIME = 1.0 / to_ase_factor("fs", "time")
#: Factors from the units we write (ASE_UNITS) to ASE units.
_TO_ASE = {quantity: to_ase_factor(unit, quantity) for quantity, unit in ASE_UNITS.items()}
#: Target size of one compressed chunk of a per-frame dataset, bytes.
_CHUNK_BYTES = 1 << 18
#: Quantities of ``particles/<group>`` stored as time-dependent per-particle vectors.
_VECTORS = {"position": "length", "force": "force", "velocity": "velocity"}
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


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def _open_h5(path: Path) -> h5py.File:
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


def _read_attr_str(obj, name: str) -> str | None:
    value = obj.attrs.get(name)
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
        return value.decode() if isinstance(value, bytes) else str(value)
    return str(value)


class H5MDTrajectory:
    """Lazy reader of an H5MD trajectory: arrays by frame selection, in ASE units.

    Opening checks the layout (datasets present, shapes consistent, unit strings known,
    steps increasing) without reading per-frame data; values are read on request, one
    hyperslab per call, converted to ASE units as float64, and checked for NaN/inf.

    Parameters
    ----------
    path : str or Path
        H5MD file.
    group : str, optional
        Name of the group in ``particles/``; default: the only one there.

    Attributes
    ----------
    path : Path
    n_frames, n_atoms : int
    numbers : (n_atoms,) int64
        Atomic numbers (0 for CG beads or when nothing identifies the elements).
    element_rule : str
        One line saying how the elements were found: species as atomic numbers (files
        written by ase_cg), else the first of VMD's ``parameters/vmd_structure``
        ``atomicnumber``/``name``/``type``, the masses (nearest standard atomic weight) and
        species as atomic numbers (:func:`ase_cg.chemistry.identify_elements`); also logged.
    bead_types : (n_atoms,) str array or None
        CG bead-type names, ``None`` for all-atom files.
    mol_ids : (n_atoms,) int64 or None
        Molecule index of each particle (``molecule_id``, else VMD's ``resid`` unless bonds
        join residues), ``None`` when the file has none.
    bonds : (n_bonds, 2) int64 or None
        Bonded particle index pairs, 0-based (``connectivity/<group>_bonds``, else VMD's
        1-based ``bond_from``/``bond_to`` minus one), ``None`` when the file has none.
    has_forces, has_velocities, has_masses, has_energies : bool
    observable_names : tuple of str
        Names in ``observables/`` (read with :meth:`observable`).
    parameters : dict[str, dict]
        Attributes of each group in ``parameters/`` (run settings), possibly empty.
    steps : (n_frames,) int64
        MD step of each frame.
    times : (n_frames,) float64, fs, or None
    time_step : float or None
        Integrator time step, fs.
    units : dict[str, str or None]
        The unit strings stored in the file, by quantity.

    Examples
    --------
    >>> with H5MDTrajectory("ethane.h5") as trajectory:           # doctest: +SKIP
    ...     for frames in trajectory.iter_chunks(100):
    ...         x = trajectory.positions(frames)   # (n, n_atoms, 3) Å
    ...         f = trajectory.forces(frames)      # (n, n_atoms, 3) eV/Å
    """

    def __init__(self, path: str | os.PathLike, group: str | None = None):
        self.path = Path(path)
        self._group_name = group
        self._file = _open_h5(self.path)
        try:
            self._setup()
            complete = bool(self._file.attrs.get("complete", True))
        except InputError:
            self._file.close()
            raise
        except (KeyError, OSError, RuntimeError, TypeError, ValueError, AttributeError) as error:
            self._file.close()
            raise InputError(
                f"{self.path}: malformed H5MD file ({type(error).__name__}: {error}). "
                "Check it with `h5ls -r` against the layout in ase_cg.io's docstring."
            ) from error
        if not complete:
            warnings.warn(
                f"{self.path}: incomplete trajectory (the run writing it was stopped or is "
                "still running); it holds the frames written so far",
                IncompleteTrajectoryWarning,
                stacklevel=2,
            )

    # -- setup and validation ----------------------------------------------------------
    def _where(self, name: str) -> str:
        return f"{self.path}: dataset '{name}'"

    def _get(self, parent, name: str, full: str, kind=h5py.Dataset, required=True):
        obj = parent.get(name)
        if obj is None:
            if required:
                raise InputError(
                    f"{self.path}: missing '{full}'. An H5MD trajectory for ase_cg needs "
                    f"'{full}' (see the layout in ase_cg.io's docstring)."
                )
            return None
        if not isinstance(obj, kind):
            what = "dataset" if kind is h5py.Dataset else "group"
            raise InputError(f"{self.path}: '{full}' is not an HDF5 {what}.")
        return obj

    def _unit_factor(self, dataset, quantity: str, full: str) -> tuple[float, str | None]:
        unit = _read_attr_str(dataset, "unit")
        if unit is None:
            return (to_ase_factor("fs", "time") if quantity == "time" else 1.0), None
        try:
            return to_ase_factor(unit, quantity), unit
        except InputError as error:
            raise InputError(f"{self.path}: attribute 'unit' of '{full}': {error}") from None

    def _setup(self) -> None:
        f = self._file
        particles = self._get(f, "particles", "particles", h5py.Group)
        names = list(particles)
        if self._group_name is None:
            if len(names) != 1:
                raise InputError(
                    f"{self.path}: 'particles' holds {len(names)} groups {names}; choose one "
                    "with group=NAME."
                    if names
                    else f"{self.path}: 'particles' is empty."
                )
            self._group_name = names[0]
        elif self._group_name not in particles:
            raise InputError(
                f"{self.path}: no group 'particles/{self._group_name}'; the file has {names}."
            )
        g_path = f"particles/{self._group_name}"
        g = self._get(particles, self._group_name, g_path, h5py.Group)
        self._g = g
        self._g_path = g_path
        self.units: dict[str, str | None] = {}
        self._factor: dict[str, float] = {}
        self._value: dict[str, h5py.Dataset] = {}

        # position (required), force and velocity (optional)
        for name, quantity in _VECTORS.items():
            element = self._get(
                g, name, f"{g_path}/{name}", h5py.Group, required=name == "position"
            )
            if element is None:
                continue
            value = self._get(element, "value", f"{g_path}/{name}/value")
            if value.ndim != 3 or value.shape[2] != 3:
                raise InputError(
                    f"{self._where(f'{g_path}/{name}/value')} has shape {value.shape}; "
                    "expected (n_frames, n_atoms, 3)."
                )
            if name != "position" and value.shape != self._value["position"].shape:
                raise InputError(
                    f"{self._where(f'{g_path}/{name}/value')} has shape {value.shape}, but "
                    f"'{g_path}/position/value' has {self._value['position'].shape}; every "
                    "per-frame quantity needs the same frames and atoms."
                )
            if not np.issubdtype(value.dtype, np.number):
                raise InputError(f"{self._where(f'{g_path}/{name}/value')} is not numeric.")
            self._value[name] = value
            self._factor[quantity], self.units[quantity] = self._unit_factor(
                value, quantity, f"{g_path}/{name}/value"
            )
        self.n_frames, self.n_atoms = (int(n) for n in self._value["position"].shape[:2])
        if self.n_frames == 0:
            raise InputError(f"{self._where(f'{g_path}/position/value')} has no frames.")
        self.has_forces = "force" in self._value
        self.has_velocities = "velocity" in self._value

        # step and time of the positions; the other elements must be sampled alike
        self.steps, times, time_element = self._read_step_time(f"{g_path}/position")
        for name in ("force", "velocity"):
            if name in self._value:
                self._check_same_steps(g[name], f"{g_path}/{name}")
        self.times = None
        self.time_step = None
        if times is not None:
            factor, self.units["time"] = self._unit_factor(
                time_element, "time", f"{g_path}/position/time"
            )
            self.times = times * factor * _FS_PER_ASE_TIME
            if "time_step" in time_element.attrs:
                self.time_step = float(
                    np.asarray(time_element.attrs["time_step"]) * factor * _FS_PER_ASE_TIME
                )
            elif self.n_frames > 1 and np.all(np.isfinite(self.times[:2])):
                self.time_step = float(
                    (self.times[1] - self.times[0]) / (self.steps[1] - self.steps[0])
                )

        self._setup_box(g, g_path)
        self._setup_particles(g, g_path)
        self._setup_bonds()
        self._setup_energy()
        observables = self._file.get("observables")
        self.observable_names = tuple(
            sorted(
                name
                for name, element in (observables.items() if observables is not None else ())
                # a name that is not UTF-8 (h5py gives bytes: a damaged file) names nothing
                if isinstance(name, str) and isinstance(element, h5py.Group) and "value" in element
            )
        )
        self.parameters = self._read_parameters()

    def _read_step_time(self, element_path: str):
        element = self._file[element_path]
        step_ds = self._get(element, "step", f"{element_path}/step")
        steps = self._expand_sampling(step_ds, f"{element_path}/step").astype(np.int64)
        if steps.size > 1:
            bad = np.flatnonzero(np.diff(steps) <= 0)
            if bad.size:
                i = int(bad[0])
                raise InputError(
                    f"{self._where(f'{element_path}/step')}: steps do not increase "
                    f"(frame {i} has step {steps[i]}, frame {i + 1} has step {steps[i + 1]}). "
                    "Frames must be in time order without repeats: remove duplicated frames "
                    "(e.g. from restarted runs) before converting."
                )
        time_ds = element.get("time")
        if time_ds is None:
            return steps, None, None
        if not isinstance(time_ds, h5py.Dataset):
            raise InputError(f"{self.path}: '{element_path}/time' is not an HDF5 dataset.")
        times = self._expand_sampling(time_ds, f"{element_path}/time").astype(np.float64)
        return steps, times, time_ds

    def _expand_sampling(self, dataset: h5py.Dataset, full: str) -> np.ndarray:
        """Read an H5MD ``step``/``time`` dataset: per frame, or a scalar interval."""
        if dataset.shape == ():
            offset = dataset.attrs.get("offset", 0)
            return offset + dataset[()] * np.arange(self.n_frames)
        if dataset.shape != (self.n_frames,):
            raise InputError(
                f"{self._where(full)} has shape {dataset.shape}; expected ({self.n_frames},) "
                "to match the number of frames in position/value."
            )
        return dataset[()]

    def _check_same_steps(self, element: h5py.Group, element_path: str) -> None:
        step_ds = self._get(element, "step", f"{element_path}/step")
        if step_ds == self._g["position/step"]:
            return
        steps = self._expand_sampling(step_ds, f"{element_path}/step")
        if not np.array_equal(steps, self.steps):
            raise InputError(
                f"{self._where(f'{element_path}/step')} differs from "
                f"'{self._g_path}/position/step': ase_cg needs every quantity sampled at the "
                "same steps."
            )

    def _setup_box(self, g, g_path: str) -> None:
        box = self._get(g, "box", f"{g_path}/box", h5py.Group)
        dimension = box.attrs.get("dimension")
        if dimension is None or int(np.asarray(dimension)) != 3:
            raise InputError(
                f"{self.path}: attribute 'dimension' of '{g_path}/box' is {dimension!r}; "
                "ase_cg reads 3-dimensional systems only (dimension = 3)."
            )
        boundary = box.attrs.get("boundary")
        if boundary is None:
            raise InputError(
                f"{self.path}: '{g_path}/box' has no 'boundary' attribute; H5MD needs it "
                "(3 strings, 'periodic' or 'none')."
            )
        boundary = [b.decode() if isinstance(b, bytes) else str(b) for b in np.ravel(boundary)]
        if len(boundary) != 3 or any(b not in ("periodic", "none") for b in boundary):
            raise InputError(
                f"{self.path}: attribute 'boundary' of '{g_path}/box' is {boundary}; expected "
                "3 strings, each 'periodic' or 'none'."
            )
        self.pbc = np.array([b == "periodic" for b in boundary])
        self._edges = None
        self._edges_fixed = None
        edges = box.get("edges")
        edges_path = f"{g_path}/box/edges"
        if edges is None:
            if self.pbc.any():
                raise InputError(
                    f"{self.path}: '{g_path}/box' is periodic but has no 'edges'; add the box "
                    "edges or set boundary to 'none'."
                )
            self.units.setdefault("length", None)
            return
        if isinstance(edges, h5py.Group):
            value = self._get(edges, "value", f"{edges_path}/value")
            if value.shape not in ((self.n_frames, 3), (self.n_frames, 3, 3)):
                raise InputError(
                    f"{self._where(f'{edges_path}/value')} has shape {value.shape}; expected "
                    f"({self.n_frames}, 3) or ({self.n_frames}, 3, 3) (one box per frame of "
                    "position/value)."
                )
            self._check_same_steps(edges, edges_path)
            self._edges = value
            self._edges_factor, unit = self._unit_factor(value, "length", f"{edges_path}/value")
        else:
            if edges.shape not in ((3,), (3, 3)):
                raise InputError(
                    f"{self._where(edges_path)} has shape {edges.shape}; expected (3,) or (3, 3)."
                )
            self._edges_factor, unit = self._unit_factor(edges, "length", edges_path)
            cell = self._edges_to_cells(np.asarray(edges[()], dtype=np.float64)[None], edges_path)
            self._edges_fixed = cell[0]
        self.units["box"] = unit

    def _edges_to_cells(self, edges: np.ndarray, full: str, frames=None) -> np.ndarray:
        cells = edges * self._edges_factor
        if cells.ndim == 2:
            diagonal = cells
            bad = np.argwhere((diagonal < 0) & self.pbc)
            if bad.size:
                frame = self._frame_number(frames, int(bad[0, 0]))
                raise InputError(
                    f"{self._where(full)}: frame {frame} has a negative box edge "
                    f"{float(diagonal[tuple(bad[0])]):g} Å along direction {int(bad[0, 1])}; "
                    "box edges are lengths (> 0)."
                )
            cells = np.zeros((len(diagonal), 3, 3))
            cells[:, [0, 1, 2], [0, 1, 2]] = diagonal
        self._check_finite(cells, full, frames)
        lengths = np.linalg.norm(cells, axis=2)
        bad = np.argwhere((lengths <= 0) & self.pbc)
        if bad.size:
            frame = self._frame_number(frames, int(bad[0, 0]))
            raise InputError(
                f"{self._where(full)}: frame {frame} has a zero box edge along periodic "
                f"direction {int(bad[0, 1])}; periodic directions need positive edges."
            )
        return cells

    def _setup_particles(self, g, g_path: str) -> None:
        n = self.n_atoms

        def per_particle(name: str, dtype_kind: str):
            obj = g.get(name)
            if obj is None:
                return None
            full = f"{g_path}/{name}"
            if isinstance(obj, h5py.Group):
                raise InputError(
                    f"{self._where(full)} is time-dependent; ase_cg needs a fixed "
                    f"per-particle '{name}' of shape ({n},)."
                )
            if obj.shape == () and name in ("mass", "species"):
                data = np.full(n, obj[()])
            elif obj.shape == (n,):
                data = obj[()]
            else:
                raise InputError(
                    f"{self._where(full)} has shape {obj.shape}; expected ({n},), one entry per "
                    "particle of position/value."
                )
            if dtype_kind == "str":
                if obj.dtype.kind not in "SOU":
                    raise InputError(f"{self._where(full)} must hold strings, not {obj.dtype}.")
                return np.array([d.decode() if isinstance(d, bytes) else str(d) for d in data])
            if obj.dtype.kind not in dtype_kind:
                raise InputError(
                    f"{self._where(full)} has dtype {obj.dtype}; expected "
                    f"{'integers' if dtype_kind == 'iu' else 'numbers'}."
                )
            return data

        species = per_particle("species", "iu")
        self.bead_types = per_particle("bead_type", "str")
        mol_ids = per_particle("molecule_id", "iu")
        self.mol_ids = None if mol_ids is None else mol_ids.astype(np.int64)
        mass = per_particle("mass", "iuf")
        self._masses = None
        if mass is not None:
            factor, self.units["mass"] = self._unit_factor(g["mass"], "mass", f"{g_path}/mass")
            self._masses = mass.astype(np.float64) * factor
            self._mass_source = "stored"
            self._check_finite(self._masses[None, :, None], f"{g_path}/mass", None)
            if np.any(self._masses <= 0):
                i = int(np.flatnonzero(self._masses <= 0)[0])
                raise InputError(
                    f"{self._where(f'{g_path}/mass')}: particle {i} has mass "
                    f"{self._masses[i]} amu; masses must be positive."
                )
        self._setup_elements(species, g_path)
        if self._masses is None:
            if species is not None and self.bead_types is None and np.all(self.numbers > 0):
                from ase.data import atomic_masses

                self._masses = atomic_masses[self.numbers].astype(np.float64)
                self.units["mass"] = None
                self._mass_source = "from elements (ASE's atomic masses)"
            else:
                self._mass_source = "missing"
        if self.bead_types is not None and self._masses is None:
            raise InputError(
                f"{self.path}: '{g_path}' has CG bead types but no '{g_path}/mass'; bead "
                "masses cannot be guessed. Write the bead masses (amu) into that dataset."
            )
        self.has_masses = self._masses is not None

    def _setup_elements(self, species, g_path: str) -> None:
        """Atomic numbers from species, VMD structure data or masses (:attr:`element_rule`).

        Files written by ase_cg store atomic numbers as species (0 for CG beads); for other
        writers species are ids, and :func:`ase_cg.chemistry.identify_elements` decides.
        """
        n = self.n_atoms
        self._vmd = self._read_vmd_structure(species)
        creator = self._file.get("h5md/creator")
        self._own = creator is not None and _read_attr_str(creator, "name") == "ase_cg"
        if self.bead_types is not None or (self._own and species is not None):
            self.numbers = np.zeros(n, np.int64) if species is None else species.astype(np.int64)
            if self.numbers.min() < 0 or self.numbers.max() > 118:
                raise InputError(
                    f"{self._where(f'{g_path}/species')} holds {self.numbers.min()}.."
                    f"{self.numbers.max()}; ase_cg reads species as atomic numbers (0 = CG "
                    "bead). Store element numbers 1..118, or 0 with bead_type names."
                )
            self.element_rule = (
                "CG beads (bead_type names)"
                if self.bead_types is not None
                else "species are atomic numbers (file written by ase_cg)"
            )
            return
        if species is None and self._masses is None and not self._vmd:
            self.numbers = np.zeros(n, dtype=np.int64)
            self.element_rule = "unknown: no species, masses or names (particles are 'X')"
            return
        stored = next((k for k in ("atomicnumber", "name", "type") if k in self._vmd), None)
        if stored is not None:
            where = f"{self.path}: 'parameters/vmd_structure/{stored}'"
        else:
            where = f"{self.path}: '{g_path}/{'mass' if self._masses is not None else 'species'}'"
        numbers, self.element_rule = identify_elements(
            species,
            self._masses,
            numbers=self._vmd.get("atomicnumber"),
            names=None if "atomicnumber" in self._vmd else self._vmd.get(stored),
            where=where,
        )
        self.numbers = numbers
        _LOG.info("%s", self.element_rule)

    def _read_vmd_structure(self, species) -> dict:
        """Per-particle data of the VMD h5md plugin's ``parameters/vmd_structure`` group.

        Layout (the plugin's reader, ``h5mdplugin.c``): ``name``, ``type``, ``atomicnumber``
        hold one entry per species, in the order of ``indexOfSpecies`` (the species ids);
        ``resid`` one per particle; ``bond_from``/``bond_to`` the bonded pairs as 1-based
        particle indices (VMD's molfile convention; ESPResSo's writer adds 1).  Entries of
        length ``n_atoms`` without ``indexOfSpecies`` are read per particle.
        """
        group = self._file.get("parameters/vmd_structure")
        if not isinstance(group, h5py.Group):
            return {}
        n = self.n_atoms
        base = "parameters/vmd_structure"
        out: dict = {}
        index_of_species = group.get("indexOfSpecies")
        kinds = None
        if isinstance(index_of_species, h5py.Dataset) and species is not None:
            kinds = np.asarray(index_of_species[()]).astype(np.int64).ravel()
            lookup = {int(k): i for i, k in enumerate(kinds)}
            missing = sorted(set(species.tolist()) - set(lookup))
            if missing:
                raise InputError(
                    f"{self._where(f'{base}/indexOfSpecies')} lacks species {missing[:5]} of "
                    f"'{self._g_path}/species'; list every species id there."
                )
            per_kind = np.array([lookup[int(s)] for s in species])
        for key in ("atomicnumber", "name", "type"):
            dataset = group.get(key)
            if not isinstance(dataset, h5py.Dataset):
                continue
            values = np.asarray(dataset[()]).ravel()
            if values.dtype.kind in "SO":
                values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
            if kinds is not None and len(values) == len(kinds):
                out[key] = values[per_kind]
            elif len(values) == n:
                out[key] = values
            else:
                raise InputError(
                    f"{self._where(f'{base}/{key}')} has {len(values)} entries; expected one "
                    f"per species in indexOfSpecies or one per particle ({n})."
                )
        resid = group.get("resid")
        if isinstance(resid, h5py.Dataset):
            if resid.shape != (n,) or resid.dtype.kind not in "iu":
                raise InputError(
                    f"{self._where(f'{base}/resid')} has shape {resid.shape} and dtype "
                    f"{resid.dtype}; expected ({n},) integers, one residue id per particle."
                )
            out["resid"] = resid[()].astype(np.int64)
        ends = [group.get(k) for k in ("bond_from", "bond_to")]
        if all(isinstance(e, h5py.Dataset) for e in ends):
            first, second = (np.asarray(e[()]).astype(np.int64).ravel() for e in ends)
            if first.shape != second.shape:
                raise InputError(
                    f"{self.path}: '{base}/bond_from' and 'bond_to' have {first.size} and "
                    f"{second.size} entries; they must pair up."
                )
            bonds = np.stack([first, second], axis=1) - 1  # 1-based in the VMD layout
            if bonds.size and (bonds.min() < 0 or bonds.max() >= n):
                raise InputError(
                    f"{self._where(f'{base}/bond_from')}: indices must be 1..{n} (VMD's "
                    f"1-based particle numbers), found {int(bonds.min()) + 1}.."
                    f"{int(bonds.max()) + 1}."
                )
            out["bonds"] = bonds
        return out

    def _read_parameters(self) -> dict[str, dict]:
        """Attributes of each group in ``parameters/`` (H5MD's free-form run parameters)."""
        parameters = self._file.get("parameters")
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

    def _setup_bonds(self) -> None:
        self.bonds = None
        self._read_connectivity()
        if self.bonds is None and "bonds" in self._vmd:
            self.bonds = self._vmd["bonds"]
        if self.mol_ids is None and "resid" in self._vmd:
            resid = self._vmd["resid"]
            # residues are molecules unless bonds join residues (a polymer): then bonds decide
            if self.bonds is None or np.all(resid[self.bonds[:, 0]] == resid[self.bonds[:, 1]]):
                self.mol_ids = resid
        if not self._own and self.bead_types is None and np.all(self.numbers > 0):
            self._check_lengths()  # ase_cg's writer takes Å: only other writers can mislabel

    def _check_lengths(self) -> None:
        """Refuse lengths in another unit than labelled: bonded distances of frame 0 must be
        near the sum of covalent radii (:func:`ase_cg.chemistry.bond_length_ratios`)."""
        position = f"{self._g_path}/position/value"
        problem = implausible_lengths(
            self.numbers, self.positions(0), self.cells(0), self.pbc, self.bonds, self.mol_ids
        )
        if problem is None:
            return
        unit = self.units.get("length")
        label = f"attribute 'unit' = {unit!r}" if unit else "no 'unit' attribute (read as Å)"
        raise InputError(
            f"{self.path}: dataset '{position}' has {label}, but in that unit {problem}: the "
            f"positions are in another unit. Fix the 'unit' attribute of '{position}' (and of "
            "the box edges)."
        )

    def _read_connectivity(self) -> None:
        connectivity = self._file.get("connectivity")
        if connectivity is None:
            return
        name = f"{self._group_name}_bonds"
        full = f"connectivity/{name}"
        bonds = self._get(connectivity, name, full, required=False)
        if bonds is None:
            return
        if bonds.ndim != 2 or bonds.shape[1] != 2 or bonds.dtype.kind not in "iu":
            raise InputError(
                f"{self._where(full)} has shape {bonds.shape} and dtype {bonds.dtype}; "
                "expected (n_bonds, 2) integers."
            )
        data = bonds[()].astype(np.int64)
        if data.size and (data.min() < 0 or data.max() >= self.n_atoms):
            raise InputError(
                f"{self._where(full)} refers to particle {int(data.max())} (or a negative "
                f"index), but the group has {self.n_atoms} particles (0-based indices)."
            )
        self.bonds = data

    def _setup_energy(self) -> None:
        self._energy = None
        element = self._file.get("observables/potential_energy")
        if element is None:
            return
        full = "observables/potential_energy"
        if not isinstance(element, h5py.Group):
            raise InputError(f"{self.path}: '{full}' must be a group with 'value' and 'step'.")
        value = self._get(element, "value", f"{full}/value")
        if value.shape != (self.n_frames,):
            raise InputError(
                f"{self._where(f'{full}/value')} has shape {value.shape}; expected "
                f"({self.n_frames},), one energy per frame."
            )
        self._check_same_steps(element, full)
        self._energy = value
        self._factor["energy"], self.units["energy"] = self._unit_factor(
            value, "energy", f"{full}/value"
        )

    @property
    def has_energies(self) -> bool:
        """Whether the file stores a potential energy per frame."""
        return self._energy is not None

    @property
    def masses(self) -> np.ndarray:
        """(n_atoms,) float64, amu.

        Raises
        ------
        InputError
            The file has neither ``mass`` nor element ``species`` (MDAnalysis writes
            neither); the message says how to add masses.
        """
        if self._masses is None:
            raise InputError(
                f"{self.path}: no '{self._g_path}/mass' and no element 'species', so the "
                "particle masses are unknown. Add them: rewrite the file with "
                "write_h5md(...) from Atoms that have masses, or `ase-cg convert` from a "
                "format that carries elements."
            )
        return self._masses

    # -- frame selection and reading ---------------------------------------------------
    def __len__(self) -> int:
        return self.n_frames

    def _normalise(self, frames):
        """Return ``(selection for h5py, reorder or None, squeeze)``."""
        if frames is None:
            return slice(0, self.n_frames), None, False
        if isinstance(frames, slice):
            start, stop, step = frames.indices(self.n_frames)
            if step < 0:
                index = np.arange(start, stop, step)
                return self._normalise(index)
            return slice(start, max(start, stop), step), None, False
        if isinstance(frames, (int, np.integer)):
            i = int(frames)
            if not -self.n_frames <= i < self.n_frames:
                raise IndexError(f"{self.path}: frame {i} out of range (n_frames={self.n_frames})")
            i %= self.n_frames
            return slice(i, i + 1), None, True
        index = np.asarray(frames)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
            raise IndexError(
                f"frames must be an int, a slice or 1-D integer indices, got {frames!r}"
            )
        index = index.astype(np.int64)
        if index.size and (index.min() < -self.n_frames or index.max() >= self.n_frames):
            raise IndexError(f"{self.path}: frame index out of range (n_frames={self.n_frames})")
        if index.size == 0:
            return slice(0, 0), None, False
        index %= self.n_frames
        unique, inverse = np.unique(index, return_inverse=True)
        if unique.size and unique[-1] - unique[0] + 1 == unique.size:
            return slice(int(unique[0]), int(unique[-1]) + 1), inverse, False
        return unique, inverse, False

    def _frame_number(self, selection, i: int) -> int:
        if selection is None:
            return i
        if isinstance(selection, slice):
            return selection.start + i * (selection.step or 1)
        return int(selection[i])

    def _check_finite(self, data: np.ndarray, full: str, selection) -> None:
        finite = np.isfinite(data)
        if not finite.all():
            where = np.argwhere(~finite)[0]
            frame = self._frame_number(selection, int(where[0]))
            particle = f", particle {int(where[1])}" if data.ndim == 3 else ""
            raise InputError(
                f"{self._where(full)}: non-finite value (NaN or inf) at frame {frame}{particle}. "
                "The simulation that wrote it probably blew up; drop those frames."
            )

    def _read_slab(self, dataset: h5py.Dataset, selection, full: str) -> np.ndarray:
        """``dataset[selection]``, with HDF5 failures reported as :class:`InputError`."""
        try:
            return np.asarray(dataset[selection])
        except (OSError, RuntimeError, ValueError, TypeError, KeyError) as error:
            raise InputError(
                f"{self._where(full)}: cannot read ({type(error).__name__}: {error}); the "
                "file is truncated or corrupted."
            ) from error

    def _read(self, name: str, frames) -> np.ndarray:
        selection, reorder, squeeze = self._normalise(frames)
        full = f"{self._g_path}/{name}/value"
        data = self._read_slab(self._value[name], selection, full).astype(np.float64)
        data = data * self._factor[_VECTORS[name]]
        self._check_finite(data, full, selection)
        if name == "position":
            check_coordinates(
                data.reshape(-1, self.n_atoms, 3),
                f"{self._where(full)}: frame",
                lambda i: self._frame_number(selection, i),
            )
        if reorder is not None:
            data = data[reorder]
        return data[0] if squeeze else data

    def positions(self, frames=None) -> np.ndarray:
        """Positions, Å, float64: (n_atoms, 3) for an int, else (n, n_atoms, 3).

        ``frames`` is an int, a slice or an index array (default: all frames); a slice
        reads one hyperslab.
        """
        return self._read("position", frames)

    def forces(self, frames=None) -> np.ndarray:
        """Forces, eV/Å, float64, shaped like :meth:`positions`."""
        self._require("force")
        return self._read("force", frames)

    def velocities(self, frames=None) -> np.ndarray:
        """Velocities, Å per ASE time unit (as ``Atoms.get_velocities``), float64."""
        self._require("velocity")
        return self._read("velocity", frames)

    def energies(self, frames=None) -> np.ndarray:
        """Potential energies, eV, float64: a scalar for an int, else (n,)."""
        if self._energy is None:
            raise InputError(f"{self.path}: no 'observables/potential_energy' in the file.")
        selection, reorder, squeeze = self._normalise(frames)
        full = "observables/potential_energy/value"
        data = self._read_slab(self._energy, selection, full).astype(np.float64)
        data = data * self._factor["energy"]
        self._check_finite(data, "observables/potential_energy/value", selection)
        if reorder is not None:
            data = data[reorder]
        return float(data[0]) if squeeze else data

    def observable(self, name: str, frames=None) -> np.ndarray:
        """Values of ``observables/<name>`` per frame, float64, in ASE units.

        A ``unit`` attribute of a known quantity is converted (``"bar"`` → eV/Å³,
        ``"kJ mol-1"`` → eV, …); without one the values are returned as stored.

        Parameters
        ----------
        name : str
            E.g. ``"pressure"`` ((n,) eV/Å³) or ``"pressure_tensor"`` ((n, 3, 3) eV/Å³).
        frames : int, slice or index array, optional
            As for :meth:`positions` (an int drops the frame axis).

        Raises
        ------
        InputError
            No such observable (the message lists the ones there), one not sampled at the
            frames' steps, or a unit string that is not understood.
        """
        full = f"observables/{name}"
        if name not in self.observable_names:
            raise InputError(
                f"{self.path}: no '{full}' in the file (observables: "
                f"{list(self.observable_names) or 'none'})."
            )
        element = self._file[full]
        value = element["value"]
        if value.ndim < 1 or value.shape[0] != self.n_frames:
            raise InputError(
                f"{self._where(f'{full}/value')} has shape {value.shape}; expected "
                f"({self.n_frames}, ...), one value per frame."
            )
        self._check_same_steps(element, full)
        unit = _read_attr_str(value, "unit")
        factor = 1.0
        if unit is not None:
            quantities = [q for q in QUANTITIES if _unit_is(unit, q)]
            if not quantities:
                raise InputError(
                    f"{self.path}: attribute 'unit' of '{full}/value' is {unit!r}, not a unit "
                    f"of {sorted(QUANTITIES)}; fix the attribute or remove it."
                )
            factor = to_ase_factor(unit, quantities[0])
        selection, reorder, squeeze = self._normalise(frames)
        data = self._read_slab(value, selection, f"{full}/value").astype(np.float64) * factor
        self._check_finite(data.reshape(len(data), -1), f"{full}/value", selection)
        if reorder is not None:
            data = data[reorder]
        return data[0] if squeeze else data

    def cells(self, frames=None) -> np.ndarray:
        """Cell vectors (rows), Å, float64: (3, 3) for an int, else (n, 3, 3).

        Zero where the file has no box edges (non-periodic system).
        """
        selection, reorder, squeeze = self._normalise(frames)
        n = len(range(self.n_frames)[selection]) if isinstance(selection, slice) else selection.size
        if self._edges is not None:
            full = f"{self._g_path}/box/edges/value"
            raw = self._read_slab(self._edges, selection, full)
            cells = self._edges_to_cells(raw.astype(np.float64), full, selection)
        elif self._edges_fixed is not None:
            cells = np.broadcast_to(self._edges_fixed, (n, 3, 3)).copy()
        else:
            cells = np.zeros((n, 3, 3))
        if reorder is not None:
            cells = cells[reorder]
        return cells[0] if squeeze else cells

    @property
    def box_changes(self) -> bool:
        """Whether the box differs between frames (reads all box edges, small)."""
        if self._edges is None:
            return False
        edges = self._read_slab(self._edges, (), f"{self._g_path}/box/edges/value")
        return bool(np.any(edges != edges[:1]))

    def _require(self, name: str) -> None:
        if name not in self._value:
            raise InputError(
                f"{self.path}: no '{self._g_path}/{name}' in the file; this step needs "
                f"{name}s. Write them when generating the trajectory."
            )

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[slice]:
        """Yield consecutive frame slices of at most ``chunk_size`` frames.

        Default: the chunk length of ``position/value`` on disk (aligned reads).
        """
        if chunk_size is None:
            chunks = self._value["position"].chunks
            chunk_size = chunks[0] if chunks else self.n_frames
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        for start in range(0, self.n_frames, chunk_size):
            yield slice(start, min(start + chunk_size, self.n_frames))

    def _atoms(self, frame: int):
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = Atoms(
            numbers=self.numbers,
            positions=self.positions(frame),
            cell=self.cells(frame),
            pbc=self.pbc,
        )
        if self._masses is not None:
            atoms.set_masses(self._masses)
        if self.has_velocities:
            atoms.set_velocities(self.velocities(frame))
        if self.mol_ids is not None:
            atoms.new_array("mol-id", self.mol_ids.copy())
        if self.bead_types is not None:
            set_bead_types(atoms, self.bead_types)
        results = {}
        if self.has_forces:
            results["forces"] = self.forces(frame)
        if self._energy is not None:
            results["energy"] = self.energies(frame)
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["step"] = int(self.steps[frame])
        if self.times is not None:
            atoms.info["time"] = float(self.times[frame])
        return atoms

    def __getitem__(self, index):
        """``[i]`` → ``ase.Atoms``; ``[a:b]`` or an index array → list of Atoms."""
        if isinstance(index, (int, np.integer)):
            selection, _, _ = self._normalise(index)
            return self._atoms(selection.start)
        if isinstance(index, slice):
            return [self._atoms(i) for i in range(self.n_frames)[index]]
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return [self[int(i)] for i in index.ravel()]

    def __iter__(self):
        for i in range(self.n_frames):
            yield self._atoms(i)

    def close(self) -> None:
        """Close the HDF5 file (idempotent)."""
        self._file.close()

    def __enter__(self) -> H5MDTrajectory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        """Pickle by path (for data-loader worker processes): the file is reopened."""
        return {"path": self.path, "group": self._group_name}

    def __setstate__(self, state) -> None:
        self.__init__(state["path"], state["group"])

    def __repr__(self) -> str:
        return (
            f"H5MDTrajectory({str(self.path)!r}, group={self._group_name!r}: "
            f"{self.n_frames} frames × {self.n_atoms} particles)"
        )


def _unit_is(unit: str, quantity: str) -> bool:
    """Whether ``unit`` parses as a unit of ``quantity``."""
    try:
        to_ase_factor(unit, quantity)
    except InputError:
        return False
    return True


def read_h5md(path: str | os.PathLike, index=":", group: str | None = None):
    """Read frames of an H5MD file as ``ase.Atoms``, like :func:`ase.io.read`.

    Parameters
    ----------
    path : str or Path
    index : int, slice or str
        ``":"`` (all, default), ``"-1"``, ``"2:10:2"``, an int or a slice.  An int returns
        one Atoms, anything else a list.
    group : str, optional
        Group in ``particles/`` (default: the only one).

    Returns
    -------
    ase.Atoms or list of ase.Atoms
        Positions (Å), cell and pbc, masses (amu), velocities, forces (eV/Å) and energy
        (eV) through a ``SinglePointCalculator``, ``arrays["mol-id"]``,
        ``arrays["bead-type"]`` for CG files, ``info["step"]`` and ``info["time"]`` (fs).
        Files without species (MDAnalysis writes none) give atomic number 0 ("X"); files
        without masses or element species leave ASE's default masses, and
        :attr:`H5MDTrajectory.masses` raises :class:`InputError` for them.
    """
    if isinstance(index, str):
        from ase.io.formats import string2index

        index = string2index(index)
    with H5MDTrajectory(path, group) as trajectory:
        return trajectory[index]


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGTERM and SIGINT until the block ends, so that a stop signal never lands
    between the writes of one frame: their Python handlers are swapped for a recorder, and a
    signal that came is raised again once the previous handlers are back. (Blocking the
    signal mask would not do: the signal then goes to another thread, e.g. torch's, and the
    Python handler still runs in the middle of the block.)"""
    held = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.getsignal(number) for number in held}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield  # handlers can only be swapped in the main thread, and only Python's
        return
    received: list[int] = []
    for number in held:
        signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            signal.raise_signal(received[0])


class H5MDWriter:
    """Stream frames into an H5MD file, atomically or incrementally.

    Frames are buffered one chunk at a time and appended to resizable, chunked, compressed
    datasets, so memory does not grow with the number of frames.  By default everything
    goes to a temporary ``.<name>.<random>.partial`` file in the same folder, renamed over
    ``path`` when the writer closes without an exception; an exception deletes the temporary
    file and leaves any old ``path`` untouched.

    With ``incremental=True`` (simulations) frames go straight into ``path`` and each is
    flushed to disk as it is appended, under held SIGTERM/SIGINT; the root attribute
    ``complete`` stays False until :meth:`close`.  A run stopped by a signal (or killed) so
    leaves a readable file with every frame appended before; :meth:`resume` appends to it.
    (Files use HDF5's default, oldest-compatible format: newer superblocks mark a file that
    was never closed as "open for writing" and refuse to open it after a kill.)

    Parameters
    ----------
    path : str or Path
        Output file.
    species : (n_atoms,) int or str, optional
        Atomic numbers or chemical symbols (all-atom files).
    bead_types : (n_atoms,) str, optional
        CG bead-type names (CG files; species are then written as 0).
    masses : (n_atoms,) float, amu
    mol_ids : (n_atoms,) int, optional
        Molecule index of each particle.
    bonds : (n_bonds, 2) int, optional
        Bonded particle index pairs (0-based).
    group : str
        Name of the group under ``particles/``.
    time_step : float, optional
        Integrator time step, fs.  Stored, and used for frame times ``step * time_step``
        when :meth:`append` gets no ``time``.
    compression : str or None
        HDF5 filter for per-frame datasets: ``"gzip"`` (level 1 after byte shuffling:
        nearly the size of level 4 at twice the speed), ``"lzf"`` or ``None``.
    dtype : numpy dtype
        Storage type of positions, forces, velocities and box edges.
    pbc : (3,) bool
        Periodic directions (``box/boundary``).
    triclinic : bool, optional
        Store the box as (3, 3) cell vectors (True) or (3,) edge lengths (False); default:
        decided by the first frame's cell.
    parameters : dict of dict, optional
        Run parameters, ``{name: {key: value}}``, stored as attributes of
        ``parameters/<name>`` (H5MD's free-form group) when the file is closed; the
        :attr:`parameters` attribute may be filled until then.
    incremental : bool
        Write into ``path`` directly, one flushed frame at a time (see above).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        species=None,
        bead_types=None,
        masses,
        mol_ids=None,
        bonds=None,
        group: str = "all",
        time_step: float | None = None,
        compression: str | None = "gzip",
        dtype=np.float32,
        pbc=(True, True, True),
        triclinic: bool | None = None,
        parameters: dict[str, dict] | None = None,
        incremental: bool = False,
    ):
        self.path = Path(path)
        self.incremental = incremental
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory; give a file name ending in .h5.")
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: folder {self.path.parent} does not exist.")
        self.masses = np.asarray(masses, dtype=np.float64)
        if self.masses.ndim != 1 or self.masses.size == 0:
            raise InputError(
                f"masses must be a non-empty (n_atoms,) array, got {self.masses.shape}"
            )
        if not np.all(np.isfinite(self.masses) & (self.masses > 0)):
            raise InputError("masses must be positive and finite (amu)")
        self.n_atoms = self.masses.size
        self.group = group
        self.time_step = None if time_step is None else float(time_step)
        if self.time_step is not None and not (np.isfinite(self.time_step) and self.time_step > 0):
            raise InputError(f"time_step must be a positive number of fs, got {time_step!r}")
        self.compression = compression
        self.dtype = np.dtype(dtype)
        self.pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        self.triclinic = triclinic
        self.species = self._species(species, bead_types)
        self.bead_types = (
            None if bead_types is None else self._per_atom(bead_types, "bead_types", str)
        )
        self.mol_ids = None if mol_ids is None else self._per_atom(mol_ids, "mol_ids", np.int64)
        self.bonds = None
        if bonds is not None:
            self.bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
            if self.bonds.size and (self.bonds.min() < 0 or self.bonds.max() >= self.n_atoms):
                raise InputError(f"bonds refer to particle indices outside 0..{self.n_atoms - 1}")
        self._n_frames = 0
        self._buffers: dict[str, list] = {}
        self._datasets: dict[str, h5py.Dataset] = {}
        self._last_step: int | None = None
        self._layout: dict | None = None
        #: Run parameters written to ``parameters/<name>`` (attributes) on close:
        #: ``{name: {key: str | number | array}}``; fill it any time before closing.
        self.parameters: dict[str, dict] = {} if parameters is None else dict(parameters)
        if incremental:
            self._tmp = self.path
            self._file = h5py.File(self.path, "w")
        else:
            self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.partial")
            self._file = h5py.File(self._tmp, "x")
        try:
            self._file.attrs["complete"] = False
            self._write_static()
        except BaseException:  # a stop signal too: no file is left behind
            self.abort()
            raise

    def _per_atom(self, values, name: str, dtype) -> np.ndarray:
        array = np.asarray(values).astype(dtype)
        if array.shape != (self.n_atoms,):
            raise InputError(
                f"{name} has shape {array.shape}; expected ({self.n_atoms},) like masses."
            )
        return array

    def _species(self, species, bead_types) -> np.ndarray | None:
        if species is None:
            return None if bead_types is None else np.zeros(self.n_atoms, dtype=np.int32)
        array = np.asarray(species)
        if array.dtype.kind in "US":
            from ase.data import atomic_numbers

            unknown = sorted({s for s in array.tolist() if s not in atomic_numbers})
            if unknown:
                raise InputError(f"species contains unknown chemical symbols {unknown}")
            array = np.array([atomic_numbers[s] for s in array.tolist()])
        return self._per_atom(array, "species", np.int32)

    def _write_parameters(self) -> None:
        for name, values in self.parameters.items():
            group = self._file.require_group(f"parameters/{name}")
            for key, value in values.items():
                try:
                    group.attrs[key] = value
                except (TypeError, ValueError) as error:
                    raise InputError(
                        f"{self.path}: parameter {name}/{key} = {value!r} cannot be stored as "
                        f"an HDF5 attribute ({error}); give a string, number or array."
                    ) from error

    def _write_static(self) -> None:
        f = self._file
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        h5md.create_group("author").attrs["name"] = user
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "ase_cg"
        creator.attrs["version"] = __version__
        g = f.create_group(f"particles/{self.group}")
        box = g.create_group("box")
        box.attrs["dimension"] = np.int32(3)
        box.attrs["boundary"] = ["periodic" if p else "none" for p in self.pbc]
        mass = g.create_dataset("mass", data=self.masses)
        mass.attrs["unit"] = ASE_UNITS["mass"]
        if self.species is not None:
            g.create_dataset("species", data=self.species)
        if self.mol_ids is not None:
            g.create_dataset("molecule_id", data=self.mol_ids)
        if self.bead_types is not None:
            g.create_dataset(
                "bead_type", data=self.bead_types.astype(object), dtype=h5py.string_dtype()
            )
        if self.bonds is not None:
            bonds = f.create_dataset(f"connectivity/{self.group}_bonds", data=self.bonds)
            bonds.attrs["particles_group"] = g.ref

    def _chunk_frames(self, frame_bytes: int) -> int:
        return int(max(1, min(256, _CHUNK_BYTES // max(frame_bytes, 1))))

    def _create_layout(self, cell, forces, velocities, time, energy, observables) -> None:
        """Create the per-frame datasets; the first frame decides which exist."""
        g = self._file[f"particles/{self.group}"]
        has_box = cell is not None and np.any(cell != 0)
        if self.pbc.any() and not has_box:
            raise InputError(
                f"{self.path}: the system is periodic (pbc={self.pbc.tolist()}) but the first "
                "frame has no cell; give the cell or pbc=False."
            )
        if self.triclinic is None:
            self.triclinic = bool(has_box and np.any(cell[~np.eye(3, dtype=bool)] != 0))
        has_time = time is not None or self.time_step is not None
        self._layout = {
            "box": has_box,
            "force": forces is not None,
            "velocity": velocities is not None,
            "time": has_time,
            "energy": energy is not None,
            "observables": sorted(observables),
        }
        frame_bytes = self.n_atoms * 3 * self.dtype.itemsize
        k = self._chunk_frames(frame_bytes)
        opts = {}
        if self.compression:
            opts = {"compression": self.compression, "shuffle": True}
            if self.compression == "gzip":
                opts["compression_opts"] = 1
        pos = g.create_group("position")
        step = pos.create_dataset("step", (0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
        self._datasets["step"] = step
        if has_time:
            time_ds = pos.create_dataset(
                "time", (0,), maxshape=(None,), dtype=np.float64, chunks=(4096,)
            )
            time_ds.attrs["unit"] = ASE_UNITS["time"]
            if self.time_step is not None:
                time_ds.attrs["time_step"] = self.time_step
            self._datasets["time"] = time_ds
        names = ["position"] + [n for n in ("force", "velocity") if self._layout[n]]
        for name in names:
            element = pos if name == "position" else g.create_group(name)
            value = element.create_dataset(
                "value",
                (0, self.n_atoms, 3),
                maxshape=(None, self.n_atoms, 3),
                dtype=self.dtype,
                chunks=(k, self.n_atoms, 3),
                **opts,
            )
            value.attrs["unit"] = ASE_UNITS[_VECTORS[name]]
            self._datasets[name] = value
            if name != "position":
                element["step"] = step
                if has_time:
                    element["time"] = self._datasets["time"]
        if has_box:
            edges = g["box"].create_group("edges")
            shape = (3, 3) if self.triclinic else (3,)
            value = edges.create_dataset(
                "value",
                (0, *shape),
                maxshape=(None, *shape),
                dtype=self.dtype,
                chunks=(1024, *shape),
                **opts,
            )
            value.attrs["unit"] = ASE_UNITS["length"]
            self._datasets["box"] = value
            edges["step"] = step
            if has_time:
                edges["time"] = self._datasets["time"]
        per_frame = {"potential_energy": ("energy", ())} if energy is not None else {}
        per_frame.update((name, (name, np.shape(v))) for name, v in observables.items())
        for name, (key, shape) in per_frame.items():
            element = self._file.create_group(f"observables/{name}")
            value = element.create_dataset(
                "value",
                (0, *shape),
                maxshape=(None, *shape),
                dtype=np.float64,
                chunks=(max(1, 4096 // max(1, int(np.prod(shape)))), *shape),
            )
            value.attrs["unit"] = ASE_UNITS[OBSERVABLE_QUANTITIES[name]]
            self._datasets[key] = value
            element["step"] = step
            if has_time:
                element["time"] = self._datasets["time"]
        self._chunk = 1 if self.incremental else k
        self._buffers = {name: [] for name in self._datasets}

    def append(
        self,
        positions,
        cell=None,
        *,
        forces=None,
        velocities=None,
        step: int | None = None,
        time: float | None = None,
        energy: float | None = None,
        observables: dict | None = None,
    ) -> None:
        """Append one frame (ASE units).

        Parameters
        ----------
        positions : (n_atoms, 3) float, Å
        cell : (3, 3) float, Å, optional
            Cell vectors as rows; ``None`` or zeros for a non-periodic system.
        forces : (n_atoms, 3) float, eV/Å, optional
        velocities : (n_atoms, 3) float, Å per ASE time unit, optional
        step : int, optional
            MD step; default: previous step + 1 (0 for the first frame).
        time : float, fs, optional
            Default: ``step * time_step`` when the writer has a time step.
        energy : float, eV, optional
            Potential energy.
        observables : dict, optional
            More per-frame observables by name (keys of :data:`OBSERVABLE_QUANTITIES` other
            than ``"potential_energy"``), ASE units: ``{"pressure": p}`` (eV/Å³),
            ``{"pressure_tensor": (3, 3) array}`` (eV/Å³); stored in ``observables/<name>``.

        The first frame decides which of forces, velocities, box, time, energy and
        observables the file holds; later frames must give the same ones.
        """
        if self._file is None:
            raise ValueError(f"{self.path}: writer is closed")
        frame = (positions, cell, forces, velocities, step, time, energy, observables)
        if not self.incremental:
            self._append(*frame)
            return
        with _signals_deferred():
            self._append(*frame)

    def _append(self, positions, cell, forces, velocities, step, time, energy, observables):
        frame = self._n_frames
        positions = self._vector(positions, "positions", frame)
        forces = None if forces is None else self._vector(forces, "forces", frame)
        velocities = None if velocities is None else self._vector(velocities, "velocities", frame)
        if cell is not None:
            cell = np.asarray(cell, dtype=np.float64)
            if cell.shape == (3,):
                cell = np.diag(cell)
            if cell.shape != (3, 3) or not np.all(np.isfinite(cell)):
                raise InputError(f"frame {frame}: cell must be a finite (3, 3) array, Å")
        observables = {} if observables is None else dict(observables)
        for name, value in observables.items():
            if name not in OBSERVABLE_QUANTITIES or name == "potential_energy":
                raise InputError(
                    f"{self.path}: unknown observable {name!r}; the writer stores "
                    f"{sorted(set(OBSERVABLE_QUANTITIES) - {'potential_energy'})} (give the "
                    "potential energy as energy=)"
                )
            value = np.asarray(value, dtype=np.float64)
            if not np.all(np.isfinite(value)):
                raise InputError(f"{self.path}: frame {frame}: observable {name!r} is not finite")
            observables[name] = value
        if self._layout is None:
            self._create_layout(cell, forces, velocities, time, energy, observables)
        layout = self._layout
        if sorted(observables) != layout["observables"]:
            raise InputError(
                f"{self.path}: frame {frame} has observables {sorted(observables)} but the "
                f"first frame had {layout['observables']}; every frame must carry the same."
            )
        for name, value in observables.items():
            expected = self._datasets[name].shape[1:]
            if value.shape != expected:
                raise InputError(
                    f"{self.path}: frame {frame}: observable {name!r} has shape {value.shape}; "
                    f"the first frame's was {expected}."
                )
        given = {
            "box": cell is not None and np.any(cell != 0),
            "force": forces is not None,
            "velocity": velocities is not None,
            "energy": energy is not None,
        }
        for name, present in given.items():
            if present != layout[name]:
                first = "has" if layout[name] else "has no"
                raise InputError(
                    f"{self.path}: frame {frame} {'has' if present else 'has no'} {name} but "
                    f"the first frame {first}; every frame must carry the same quantities."
                )
        step = (0 if self._last_step is None else self._last_step + 1) if step is None else step
        step = int(step)
        if self._last_step is not None and step <= self._last_step:
            raise InputError(
                f"{self.path}: frame {frame} has step {step} after step {self._last_step}; "
                "steps must increase."
            )
        values = {"step": step, "position": positions / _TO_ASE["length"]}
        if layout["time"]:
            if time is None:
                if self.time_step is None:
                    raise InputError(
                        f"{self.path}: frame {frame} has no time but the first frame had one; "
                        "give every frame a time or give the writer a time_step."
                    )
                time = step * self.time_step
            values["time"] = float(time)
        if layout["force"]:
            values["force"] = forces / _TO_ASE["force"]
        if layout["velocity"]:
            values["velocity"] = velocities / _TO_ASE["velocity"]
        if layout["box"]:
            edges = cell if self.triclinic else self._diagonal(cell, frame)
            values["box"] = edges / _TO_ASE["length"]
        if layout["energy"]:
            if not np.isfinite(energy):
                raise InputError(f"{self.path}: frame {frame} has a non-finite energy")
            values["energy"] = float(energy) / _TO_ASE["energy"]
        for name, value in observables.items():
            values[name] = value / _TO_ASE[OBSERVABLE_QUANTITIES[name]]
        # every check passed: the frame goes into all buffers, or (above) into none
        self._last_step = step
        for name, value in values.items():
            self._buffers[name].append(value)
        self._n_frames += 1
        if len(self._buffers["position"]) >= self._chunk:
            self._flush()

    def _diagonal(self, cell: np.ndarray, frame: int) -> np.ndarray:
        if np.any(cell[~np.eye(3, dtype=bool)] != 0):
            raise InputError(
                f"{self.path}: frame {frame} has a triclinic cell but the file stores an "
                "orthorhombic box (decided by the first frame); pass triclinic=True."
            )
        edges = np.diag(cell)
        if np.any((edges <= 0) & self.pbc):
            raise InputError(
                f"{self.path}: frame {frame} has box edges {edges.tolist()} Å; periodic box "
                "edges must be > 0."
            )
        return edges

    def _vector(self, values, name: str, frame: int) -> np.ndarray:
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (self.n_atoms, 3):
            raise InputError(
                f"{self.path}: frame {frame}: {name} have shape {array.shape}; expected "
                f"({self.n_atoms}, 3)."
            )
        if not np.all(np.isfinite(array)):
            atom = int(np.argwhere(~np.isfinite(array))[0, 0])
            raise InputError(f"{self.path}: frame {frame}: {name} of atom {atom} are not finite.")
        if name == "positions":
            check_coordinates(array[None], f"{self.path}: frame", lambda _: frame)
        return array

    def append_atoms(self, atoms) -> None:
        """Append an ``ase.Atoms`` frame: positions, cell, velocities (if set), forces and
        energy stored in its calculator (never computed), ``info["step"]`` (or LAMMPS
        ``info["timestep"]``) and ``info["time"]`` (fs)."""
        forces = energy = None
        if atoms.calc is not None:
            forces = atoms.calc.get_property("forces", atoms, allow_calculation=False)
            energy = atoms.calc.get_property("energy", atoms, allow_calculation=False)
        velocities = atoms.get_velocities() if "momenta" in atoms.arrays else None
        step = atoms.info.get("step", atoms.info.get("timestep"))
        if len(atoms) != self.n_atoms:
            raise InputError(
                f"{self.path}: frame {self._n_frames} has {len(atoms)} atoms; expected "
                f"{self.n_atoms} (the number of atoms cannot change)."
            )
        if (
            self.bead_types is None
            and self.species is not None
            and not np.array_equal(atoms.numbers, self.species)
        ):
            raise InputError(
                f"{self.path}: frame {self._n_frames} has other elements than the first frame "
                "(or than species); atoms must keep their order and identity."
            )
        self.append(
            atoms.positions,
            atoms.cell.array,
            forces=forces,
            velocities=velocities,
            step=step,
            time=atoms.info.get("time"),
            energy=energy,
        )

    def _flush(self) -> None:
        n = len(self._buffers["step"])
        if not n:
            return
        for name, buffer in self._buffers.items():
            dataset = self._datasets[name]
            start = dataset.shape[0]
            dataset.resize(start + n, axis=0)
            dataset[start:] = np.asarray(buffer)
            buffer.clear()
        if self.incremental:
            self._file.flush()

    @property
    def n_frames(self) -> int:
        """Number of frames appended so far."""
        return self._n_frames

    @property
    def last_step(self) -> int | None:
        """MD step of the last frame appended (None before the first)."""
        return self._last_step

    def close(self, complete: bool = True) -> None:
        """Flush, close and move the file into place (idempotent).

        Parameters
        ----------
        complete : bool
            Value of the root attribute ``complete``: False for an incremental file whose
            run was stopped before its end (the frames so far stay readable and
            :meth:`resume` can continue it).
        """
        if self._file is None:
            return
        try:
            if self._n_frames == 0:
                raise InputError(f"{self.path}: no frames were appended; nothing written.")
            with _signals_deferred():
                self._flush()
                self._write_parameters()
                self._file.attrs["complete"] = bool(complete)
                self._file.close()
                self._file = None
            if not self.incremental:
                os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard everything written: an atomic writer leaves ``path`` as it was, an
        incremental one removes it."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)

    @classmethod
    def resume(cls, path: str | os.PathLike, group: str | None = None) -> H5MDWriter:
        """Reopen an incremental file written by this class to append frames to it.

        The root attribute ``complete`` is set to False until :meth:`close`.  Per-frame
        datasets cut at different lengths (a kill inside a frame's write) are cut back to the
        frames complete in all of them.

        Raises
        ------
        InputError
            If ``path`` is not an H5MD file of this writer with at least one frame.
        """
        path = Path(path)
        _open_h5(path).close()  # the reader's clear errors for missing / damaged files
        writer = cls.__new__(cls)
        writer.path = writer._tmp = path
        writer.incremental = True
        try:
            writer._file = h5py.File(path, "r+")
            writer._reopen(group)
        except InputError:
            writer._file.close()
            raise
        except (KeyError, OSError, TypeError, ValueError) as error:
            writer._file.close()
            raise InputError(
                f"{path}: cannot continue this file ({type(error).__name__}: {error}); it was "
                "not written by ase-cg simulate"
            ) from error
        return writer

    def _reopen(self, group: str | None) -> None:
        """The state of an existing file (:meth:`resume`)."""
        f = self._file
        groups = list(f["particles"])
        if group is None and len(groups) != 1:
            raise InputError(f"{self.path}: particle groups {groups}; say which to continue")
        self.group = group or groups[0]
        g = f[f"particles/{self.group}"]
        self.masses = g["mass"][()]
        self.n_atoms = self.masses.size
        position = g["position"]
        self._datasets = {"step": position["step"], "position": position["value"]}
        if "time" in position:
            self._datasets["time"] = position["time"]
        for name in ("force", "velocity"):
            if name in g:
                self._datasets[name] = g[name]["value"]
        if "edges" in g["box"]:
            self._datasets["box"] = g["box/edges/value"]
        if "observables/potential_energy" in f:
            self._datasets["energy"] = f["observables/potential_energy/value"]
        observables = sorted(
            name
            for name in f.get("observables", {})
            if name != "potential_energy" and name in OBSERVABLE_QUANTITIES
        )
        for name in observables:
            self._datasets[name] = f[f"observables/{name}/value"]
        n = min(dataset.shape[0] for dataset in self._datasets.values())
        if n == 0:
            raise InputError(f"{self.path}: has no frames to continue from")
        for dataset in self._datasets.values():
            if dataset.shape[0] != n:
                dataset.resize(n, axis=0)
        time_step = position["time"].attrs.get("time_step") if "time" in position else None
        self.time_step = None if time_step is None else float(time_step)
        self.dtype = position["value"].dtype
        self.pbc = np.array([b == "periodic" for b in g["box"].attrs["boundary"]], dtype=bool)
        self.triclinic = "box" in self._datasets and self._datasets["box"].ndim == 3
        self._layout = {
            "box": "box" in self._datasets,
            "force": "force" in self._datasets,
            "velocity": "velocity" in self._datasets,
            "time": "time" in self._datasets,
            "energy": "energy" in self._datasets,
            "observables": observables,
        }
        self._chunk = 1
        self._buffers = {name: [] for name in self._datasets}
        self._n_frames = n
        self._last_step = int(self._datasets["step"][n - 1])
        self.species = self.bead_types = self.mol_ids = self.bonds = None
        self.compression = position["value"].compression
        self.parameters = {}
        f.attrs["complete"] = False
        f.flush()

    def __enter__(self) -> H5MDWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_h5md(
    path: str | os.PathLike,
    images,
    *,
    bonds=None,
    time_step: float | None = None,
    group: str = "all",
    compression: str | None = "gzip",
) -> None:
    """Write ``ase.Atoms`` frames to an H5MD file (atomically).

    Parameters
    ----------
    path : str or Path
    images : ase.Atoms or iterable of ase.Atoms
        Same atoms in every frame.  Species, masses, ``arrays["mol-id"]`` and
        ``arrays["bead-type"]`` come from the first frame; per frame: positions, cell,
        velocities, forces and energy held by the calculator, ``info["step"]``,
        ``info["time"]`` (fs).
    bonds : (n_bonds, 2) int, optional
    time_step : float, fs, optional
    group : str
    compression : str or None
    """
    from ase import Atoms

    if isinstance(images, Atoms):
        images = [images]
    triclinic = None
    if isinstance(images, Sequence):
        if not images:
            raise InputError(f"{path}: no frames to write")
        triclinic = any(np.any(a.cell.array[~np.eye(3, dtype=bool)] != 0) for a in images)
    iterator = iter(images)
    first = next(iterator, None)
    if first is None:
        raise InputError(f"{path}: no frames to write")
    bead_types = first.arrays.get("bead-type")
    with H5MDWriter(
        path,
        species=None if bead_types is not None else first.numbers,
        bead_types=bead_types,
        masses=first.get_masses(),
        mol_ids=first.arrays.get("mol-id"),
        bonds=bonds,
        group=group,
        time_step=time_step,
        compression=compression,
        pbc=first.pbc,
        triclinic=triclinic,
    ) as writer:
        writer.append_atoms(first)
        for atoms in iterator:
            writer.append_atoms(atoms)


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
    import shutil

    path = Path(path)
    with H5MDTrajectory(path, group) as trajectory:
        n_frames, g_path = trajectory.n_frames, trajectory._g_path
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
        arrays[name] = array / _TO_ASE[OBSERVABLE_QUANTITIES[name]]
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


# --------------------------------------------------------------------------------------
# Summary and conversion
# --------------------------------------------------------------------------------------
def _composition(trajectory: H5MDTrajectory) -> str:
    if trajectory.mol_ids is None:
        return "none stored (no particles/<group>/molecule_id)"
    from ase.symbols import Symbols

    mol_ids = trajectory.mol_ids
    _, molecule = np.unique(mol_ids, return_inverse=True)
    if trajectory.bead_types is not None:
        names, kinds = np.unique(trajectory.bead_types, return_inverse=True)
    else:
        names, kinds = np.unique(trajectory.numbers, return_inverse=True)
    counts = np.zeros((molecule.max() + 1, len(names)), dtype=np.int64)
    np.add.at(counts, (molecule, kinds), 1)
    rows, n_each = np.unique(counts, axis=0, return_counts=True)
    parts = []
    for row, n in zip(rows.tolist(), n_each.tolist(), strict=True):
        if trajectory.bead_types is not None:
            label = "[" + " ".join(f"{c}×{names[k]}" for k, c in enumerate(row) if c) + "]"
        else:
            label = Symbols(np.repeat(names, row)).get_chemical_formula("hill")
        parts.append((n, label))
    parts.sort(key=lambda part: (-part[0], part[1]))
    parts = [f"{n} × {label}" for n, label in parts]
    return f"{molecule.max() + 1}: " + ", ".join(parts)


def info(path: str | os.PathLike, group: str | None = None) -> str:
    """One human-readable summary of an H5MD file (what ``ase-cg info`` prints).

    Frames, particles, molecules and their composition, box (first frame, whether it
    changes), unit strings as stored, time step, which per-frame quantities are present,
    file size.
    """
    with H5MDTrajectory(path, group) as t:
        size = t.path.stat().st_size
        cell = t.cells(0)
        kind = "triclinic" if np.any(cell[~np.eye(3, dtype=bool)] != 0) else "orthorhombic"
        if not t.pbc.any() and not np.any(cell):
            box = "none (non-periodic)"
        elif kind == "orthorhombic":
            box = f"orthorhombic {' × '.join(f'{x:.4f}' for x in np.diag(cell))} Å"
        else:
            box = "triclinic, cell vectors (Å) " + "; ".join(
                "[" + ", ".join(f"{x:.4f}" for x in row) + "]" for row in cell
            )
        box += f", pbc={t.pbc.tolist()}, {'changes' if t.box_changes else 'constant'}"
        present = ["positions"] + [
            name
            for name, flag in (
                ("forces", t.has_forces),
                ("velocities", t.has_velocities),
                ("energies", t.has_energies),
            )
            if flag
        ]
        if t.bead_types is not None:
            kinds = f"CG beads, types {sorted(set(t.bead_types.tolist()))}"
        elif t.numbers.any():
            from ase.symbols import Symbols

            kinds = f"atoms, {Symbols(t.numbers).get_chemical_formula('hill')}"
        else:
            kinds = "particles without species"
        units = ", ".join(
            f"{q}={u!r}" if u is not None else f"{q}=(none: ASE)" for q, u in t.units.items()
        )
        masses = t._mass_source
        lines = [
            f"file:        {t.path} ({size / 2**20:.2f} MiB)",
            f"group:       particles/{t._group_name}",
            f"frames:      {t.n_frames} (steps {t.steps[0]}..{t.steps[-1]})",
            f"particles:   {t.n_atoms} ({kinds})",
            f"masses:      {masses}",
            f"elements:    {t.element_rule.removeprefix(f'{t.path}: ')}",
            f"molecules:   {_composition(t)}",
            f"bonds:       {'none stored' if t.bonds is None else len(t.bonds)}",
            f"box:         {box}",
            f"present:     {', '.join(present)}",
            f"observables: {', '.join(t.observable_names) or 'none'}",
            f"units:       {units}",
            "time step:   "
            + ("unknown" if t.time_step is None else f"{t.time_step:g} fs")
            + ("" if t.times is None else f"; time {t.times[0]:g}..{t.times[-1]:g} fs"),
        ]
        for name, values in t.parameters.items():
            settings = ", ".join(f"{key}={_short(value)}" for key, value in values.items())
            lines.append(f"parameters:  {name}: {settings}")
    return "\n".join(lines)


def _short(value, width: int = 60) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = f"{value:.6g}" if isinstance(value, float) else str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _parse_types(types) -> dict[int, str]:
    """``"1=C,2=H"`` or ``{1: "C"}`` → ``{1: "C", 2: "H"}``."""
    from ase.data import atomic_numbers

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
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import iread
    from ase.io.formats import filetype

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
        from ase.data import atomic_numbers

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
    from tqdm import tqdm

    from ase_cg._paths import check_output_not_input

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


def write_frames(frames: Iterable, open_writer, append, *, empty: str) -> int:
    """Stream ``frames`` into a new H5MD file, all or nothing.

    The writer is made from the first frame (``open_writer(frame) -> H5MDWriter``, which
    fixes the particles), then ``append(writer, frame)`` writes each frame. The file appears
    only when every frame is written (:meth:`H5MDWriter.close`); on any error, interrupt
    included, the partial file is discarded (:meth:`H5MDWriter.abort`) and the error re-raised.

    Parameters
    ----------
    frames : iterable
        Anything ``open_writer`` and ``append`` understand.
    open_writer, append : callable
    empty : str
        Message of the :class:`~ase_cg.errors.InputError` raised when there are no frames.

    Returns
    -------
    int
        Number of frames written.
    """
    writer = None
    try:
        for frame in frames:
            if writer is None:
                writer = open_writer(frame)
            append(writer, frame)
        if writer is None:
            raise InputError(empty)
        n_frames = writer.n_frames
        writer.close()
        return n_frames
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


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
