"""Streaming H5MD writer: whole files written atomically, or simulation output flushed frame
by frame (incremental, resumable after a kill). Whole trajectories at once:
:mod:`ase_cg.io.frames`."""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import signal
import threading
from pathlib import Path

import h5py
import numpy as np
from ase.data import atomic_numbers

from ase_cg import __version__
from ase_cg.errors import InputError
from ase_cg.io.layout import OBSERVABLE_QUANTITIES, TO_ASE, VECTORS, check_coordinates, open_h5
from ase_cg.units import ASE_UNITS

__all__ = ["H5MDWriter"]

#: Target size of one compressed chunk of a per-frame dataset, bytes.
_CHUNK_BYTES = 1 << 18


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
            value.attrs["unit"] = ASE_UNITS[VECTORS[name]]
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
        values = {"step": step, "position": positions / TO_ASE["length"]}
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
            values["force"] = forces / TO_ASE["force"]
        if layout["velocity"]:
            values["velocity"] = velocities / TO_ASE["velocity"]
        if layout["box"]:
            edges = cell if self.triclinic else self._diagonal(cell, frame)
            values["box"] = edges / TO_ASE["length"]
        if layout["energy"]:
            if not np.isfinite(energy):
                raise InputError(f"{self.path}: frame {frame} has a non-finite energy")
            values["energy"] = float(energy) / TO_ASE["energy"]
        for name, value in observables.items():
            values[name] = value / TO_ASE[OBSERVABLE_QUANTITIES[name]]
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
        open_h5(path).close()  # the reader's clear errors for missing / damaged files
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
