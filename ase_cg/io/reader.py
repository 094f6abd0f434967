"""Lazy reading of H5MD trajectories: frames by selection as arrays in ASE units, or as
``ase.Atoms`` (also through ``ase.io.read``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.formats import string2index

from ase_cg.beads import set_bead_types
from ase_cg.errors import InputError
from ase_cg.io.layout import read_attr_str
from ase_cg.io.validation import H5MDLayout
from ase_cg.units import QUANTITIES, to_ase_factor

__all__ = ["H5MDTrajectory", "read_h5md"]


class H5MDTrajectory(H5MDLayout):
    """Lazy reader of an H5MD trajectory: arrays by frame selection, in ASE units.

    Opening checks the layout (datasets present, shapes consistent, unit strings known,
    steps increasing: :class:`~ase_cg.io.validation.H5MDLayout`) without reading per-frame
    data; values are read on request, one hyperslab per call, converted to ASE units as
    float64, and checked for NaN/inf.

    Parameters
    ----------
    path : str or Path
        H5MD file.
    group : str, optional
        Name of the group in ``particles/``; default: the only one there.

    Attributes
    ----------
    path : Path
    group : str
        Name of the group read in ``particles/``.
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
    mass_source : str
        Where the masses come from: ``"stored"``, ``"from elements (ASE's atomic masses)"``
        or ``"missing"``.
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

    def __len__(self) -> int:
        return self.n_frames

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
        unit = read_attr_str(value, "unit")
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
        return {"path": self.path, "group": self.group}

    def __setstate__(self, state) -> None:
        self.__init__(state["path"], state["group"])

    def __repr__(self) -> str:
        return (
            f"H5MDTrajectory({str(self.path)!r}, group={self.group!r}: "
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
        index = string2index(index)
    with H5MDTrajectory(path, group) as trajectory:
        return trajectory[index]
