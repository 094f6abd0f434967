"""Opening an H5MD file and checking its layout before any frame is read.

:class:`H5MDLayout` opens a file read-only, checks the layout of :mod:`ase_cg.io.layout`
(datasets present, shapes consistent, unit strings known, steps increasing) and reads the
static data: particles and their elements, box, steps and times, bonds, run parameters.
It reads one checked hyperslab of a per-frame dataset (``_read``) and the cells;
:class:`ase_cg.io.H5MDTrajectory` builds the public per-frame reads on it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import h5py
import numpy as np
from ase.data import atomic_masses

from ase_cg.chemistry import identify_elements, implausible_lengths
from ase_cg.errors import InputError
from ase_cg.io.layout import (
    FS_PER_ASE_TIME,
    VECTORS,
    IncompleteTrajectoryWarning,
    check_coordinates,
    open_h5,
    read_attr_str,
    read_parameters,
)
from ase_cg.io.vmd import read_vmd_structure
from ase_cg.units import to_ase_factor

__all__ = ["H5MDLayout"]

_LOG = logging.getLogger(__name__)


class H5MDLayout:
    """An H5MD file opened read-only, its layout checked and its static data read.

    Parameters and attributes are those of :class:`ase_cg.io.H5MDTrajectory` (documented
    there), which adds the per-frame reads.

    Raises
    ------
    InputError
        A missing, damaged or malformed file; the message names the file and the dataset.
    """

    def __init__(self, path: str | os.PathLike, group: str | None = None):
        self.path = Path(path)
        self.group = group
        self._file = open_h5(self.path)
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
                "Check it with `h5ls -r` against the layout in ase_cg.io.layout's docstring."
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
                    f"'{full}' (see the layout in ase_cg.io.layout's docstring)."
                )
            return None
        if not isinstance(obj, kind):
            what = "dataset" if kind is h5py.Dataset else "group"
            raise InputError(f"{self.path}: '{full}' is not an HDF5 {what}.")
        return obj

    def _unit_factor(self, dataset, quantity: str, full: str) -> tuple[float, str | None]:
        unit = read_attr_str(dataset, "unit")
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
        if self.group is None:
            if len(names) != 1:
                raise InputError(
                    f"{self.path}: 'particles' holds {len(names)} groups {names}; choose one "
                    "with group=NAME."
                    if names
                    else f"{self.path}: 'particles' is empty."
                )
            self.group = names[0]
        elif self.group not in particles:
            raise InputError(
                f"{self.path}: no group 'particles/{self.group}'; the file has {names}."
            )
        g_path = f"particles/{self.group}"
        g = self._get(particles, self.group, g_path, h5py.Group)
        self._g = g
        self._g_path = g_path
        self.units: dict[str, str | None] = {}
        self._factor: dict[str, float] = {}
        self._value: dict[str, h5py.Dataset] = {}

        # position (required), force and velocity (optional)
        for name, quantity in VECTORS.items():
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
            self.times = times * factor * FS_PER_ASE_TIME
            if "time_step" in time_element.attrs:
                self.time_step = float(
                    np.asarray(time_element.attrs["time_step"]) * factor * FS_PER_ASE_TIME
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
        self.parameters = read_parameters(self._file)

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
            self.mass_source = "stored"
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
                self._masses = atomic_masses[self.numbers].astype(np.float64)
                self.units["mass"] = None
                self.mass_source = "from elements (ASE's atomic masses)"
            else:
                self.mass_source = "missing"
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
        self._vmd = read_vmd_structure(self._file, species, self.n_atoms, self.path, self._g_path)
        creator = self._file.get("h5md/creator")
        self._own = creator is not None and read_attr_str(creator, "name") == "ase_cg"
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
            self.numbers,
            self._read("position", 0),
            self.cells(0),
            self.pbc,
            self.bonds,
            self.mol_ids,
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
        name = f"{self.group}_bonds"
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
        data = data * self._factor[VECTORS[name]]
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
