"""CG frames for force matching: arrays in memory (:class:`ArrayTrajectory`), CG files and
all-atom trajectories mapped on the fly, the CG topology, and chunked neighbour graphs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg.fitting.config import FitError
from ase_cg.potentials.base import SystemTopology, build_graph, make_batch
from ase_cg.trajectory import cg_trajectory, is_cg, open_trajectory


@dataclass
class ArrayTrajectory:
    """CG frames held in memory, with the array interface of :class:`ase_cg.io.H5MDTrajectory`.

    Parameters
    ----------
    positions_array : (n_frames, n_beads, 3) float, Å
    cells_array : (n_frames, 3, 3) or (3, 3) float, Å
        Cell vectors as rows; zeros for a non-periodic system.
    forces_array : (n_frames, n_beads, 3) float, eV/Å
        Mapped reference forces.
    bead_types : (n_beads,) str, optional
        Bead-type names.
    pressures_array : (n_frames,) float, eV/Å³, optional
        Reference pressure of each frame (kinetic + virial), read as
        ``observable("pressure")``.
    velocities_array : (n_frames, n_beads, 3) float, Å per ASE time unit, optional
    masses : (n_beads,) float, amu, optional
        Bead masses (with velocities: the kinetic term of pressure matching).
    """

    positions_array: np.ndarray
    cells_array: np.ndarray
    forces_array: np.ndarray
    bead_types: np.ndarray | None = None
    pressures_array: np.ndarray | None = None
    velocities_array: np.ndarray | None = None
    masses: np.ndarray | None = None
    has_forces: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        self.positions_array = np.asarray(self.positions_array, dtype=np.float64)
        self.forces_array = np.asarray(self.forces_array, dtype=np.float64)
        cells = np.asarray(self.cells_array, dtype=np.float64)
        if self.positions_array.ndim != 3 or self.positions_array.shape[2] != 3:
            raise FitError(
                f"positions must be (n_frames, n_beads, 3), got {self.positions_array.shape}"
            )
        if self.forces_array.shape != self.positions_array.shape:
            raise FitError(
                f"forces {self.forces_array.shape} must have the shape of positions "
                f"{self.positions_array.shape}"
            )
        if cells.shape == (3, 3):
            cells = np.broadcast_to(cells, (self.n_frames, 3, 3))
        if cells.shape != (self.n_frames, 3, 3):
            raise FitError(f"cells must be (3, 3) or (n_frames, 3, 3), got {cells.shape}")
        self.cells_array = np.ascontiguousarray(cells)
        if self.pressures_array is not None:
            self.pressures_array = np.asarray(self.pressures_array, dtype=np.float64)
            if self.pressures_array.shape != (self.n_frames,):
                raise FitError(
                    f"pressures must be (n_frames,) = ({self.n_frames},), got "
                    f"{self.pressures_array.shape}"
                )
        if (self.velocities_array is None) != (self.masses is None):
            raise FitError("ArrayTrajectory: give velocities and masses together")
        if self.velocities_array is not None:
            self.velocities_array = np.asarray(self.velocities_array, dtype=np.float64)
            self.masses = np.asarray(self.masses, dtype=np.float64)
            if self.velocities_array.shape != self.positions_array.shape or self.masses.shape != (
                self.n_atoms,
            ):
                raise FitError(
                    f"velocities {self.velocities_array.shape} must have the shape of positions "
                    f"and masses {self.masses.shape} be (n_beads,)"
                )
        for name in ("positions_array", "forces_array", "cells_array", "pressures_array"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                raise FitError(f"ArrayTrajectory: {name.removesuffix('_array')} has NaN or inf")

    @property
    def n_frames(self) -> int:
        return self.positions_array.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.positions_array.shape[1]

    @property
    def pbc(self) -> bool:
        return bool(np.any(self.cells_array != 0))

    def positions(self, frames=None) -> np.ndarray:
        return self.positions_array[slice(None) if frames is None else frames]

    def forces(self, frames=None) -> np.ndarray:
        return self.forces_array[slice(None) if frames is None else frames]

    def cells(self, frames=None) -> np.ndarray:
        return self.cells_array[slice(None) if frames is None else frames]

    @property
    def has_velocities(self) -> bool:
        return self.velocities_array is not None

    def velocities(self, frames=None) -> np.ndarray:
        return self.velocities_array[slice(None) if frames is None else frames]

    @property
    def observable_names(self) -> tuple[str, ...]:
        return () if self.pressures_array is None else ("pressure",)

    def observable(self, name: str, frames=None) -> np.ndarray:
        if name not in self.observable_names:
            raise FitError(f"ArrayTrajectory: no observable {name!r}")
        return self.pressures_array[slice(None) if frames is None else frames]


# --- inputs --------------------------------------------------------------------------------------
def open_cg_frames(trajectory, mapping_or_topology):
    """``(source, owned)``: CG frames with the trajectory array interface; all-atom frames
    are mapped with a :class:`~ase_cg.mapping.CGMapping` (:func:`ase_cg.trajectory.cg_trajectory`).
    """
    if isinstance(trajectory, str | os.PathLike):
        source = open_trajectory(trajectory)
        owned = True
    else:
        for name in ("positions", "forces", "cells", "n_frames", "n_atoms"):
            if not hasattr(trajectory, name):
                raise FitError(
                    f"trajectory must be a trajectory file path, an ase_cg.trajectory object "
                    f"or an ArrayTrajectory; got {type(trajectory).__name__} (no {name!r})"
                )
        source, owned = trajectory, False
    if is_cg(source) or isinstance(mapping_or_topology, SystemTopology):
        return source, owned
    try:
        return cg_trajectory(source, mapping_or_topology, what="force matching"), owned
    except BaseException:
        if owned:
            source.close()
        raise


def describe_source(source) -> str:
    """The file name of a frame source for messages (its type name if it has no file)."""
    return str(getattr(source, "path", type(source).__name__))


def resolve_topology(source, mapping_or_topology, bead_type_names, exclusion_bonds):
    """``(bead_type_names, SystemTopology, mapping or None)`` for the fit."""
    where = describe_source(source)
    if isinstance(mapping_or_topology, SystemTopology):
        topology = mapping_or_topology
        if topology.exclusion_bonds != exclusion_bonds:
            topology = SystemTopology(
                topology.bead_type_index,
                topology.bonds,
                topology.angles,
                topology.dihedrals,
                exclusion_bonds,
            )
        n_types = int(topology.bead_type_index.max()) + 1 if topology.n_beads else 0
        file_types = getattr(source, "bead_types", None)
        if bead_type_names is None and file_types is not None:
            bead_type_names = sorted(set(map(str, file_types)))
            lookup = {name: i for i, name in enumerate(bead_type_names)}
            from_file = np.array([lookup[str(t)] for t in file_types])
            if not np.array_equal(from_file, topology.bead_type_index):
                raise FitError(
                    f"{where}: the bead types in the file do not match the topology's "
                    "bead_type_index (sorted type names index the types); pass bead_type_names"
                )
        if bead_type_names is None:
            bead_type_names = [f"B{i}" for i in range(n_types)]
        bead_type_names = list(map(str, bead_type_names))
        if len(bead_type_names) < n_types:
            raise FitError(
                f"topology uses {n_types} bead types but bead_type_names has only "
                f"{len(bead_type_names)}: {bead_type_names}"
            )
        return bead_type_names, topology, None
    mapping = mapping_or_topology
    if not hasattr(mapping, "topology") or not hasattr(mapping, "bead_types"):
        raise FitError(
            "mapping_or_topology must be an ase_cg.mapping.CGMapping or a SystemTopology, "
            f"got {type(mapping).__name__}"
        )
    try:
        atoms = source[0]
    except TypeError:
        raise FitError(
            f"{where}: a CGMapping needs a trajectory that yields ase.Atoms (a CG H5MD file); "
            "with arrays, pass a SystemTopology instead"
        ) from None
    names = list(mapping.bead_types)
    per_bead = atoms.arrays.get(K.BEAD_TYPE)
    if per_bead is None or K.MOL_ID not in atoms.arrays:
        raise FitError(
            f"{where}: CG frames need bead-type names and molecule ids; map the all-atom "
            "trajectory with ase_cg.mapping.map_trajectory (ase-cg map) first"
        )
    lookup = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(map(str, per_bead)) - set(lookup))
    if unknown:
        raise FitError(
            f"{where}: bead types {unknown} are not in the mapping (it has {names}); "
            "use the mapping the trajectory was made with"
        )
    topo = mapping.topology(atoms)
    topology = SystemTopology(
        np.array([lookup[str(t)] for t in per_bead]),
        topo["bonds"],
        topo["angles"],
        topo["dihedrals"],
        exclusion_bonds,
    )
    return names, topology, mapping


def frame_selections(indices: np.ndarray, chunk_size: int):
    """Chunks of frame indices as slices where contiguous (one HDF5 hyperslab each)."""
    for first in range(0, len(indices), chunk_size):
        chunk = indices[first : first + chunk_size]
        if len(chunk) > 1 and np.all(np.diff(chunk) == 1):
            yield slice(int(chunk[0]), int(chunk[-1]) + 1), len(chunk)
        elif len(chunk) == 1:
            yield slice(int(chunk[0]), int(chunk[0]) + 1), 1
        else:
            yield chunk, len(chunk)


def graph_chunks(source, indices, topology, cutoff, pbc, chunk_size, disable, description):
    """Yield ``(graph, reference_forces (n, 3), n_frames, selection)`` per chunk of frames."""
    bar = tqdm(total=len(indices), desc=description, unit="frame", disable=disable)
    try:
        for selection, n in frame_selections(indices, chunk_size):
            positions = source.positions(selection)
            cells = source.cells(selection)
            forces = source.forces(selection)
            batch = make_batch(positions, cells, topology, cutoff, pbc=pbc)
            graph = build_graph(batch, batch[K.POSITIONS], batch[K.CELL])
            yield graph, torch.as_tensor(forces.reshape(-1, 3), dtype=torch.float64), n, selection
            bar.update(n)
    finally:
        bar.close()
