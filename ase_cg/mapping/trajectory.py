"""Whole trajectory files mapped chunk by chunk (:func:`map_trajectory`)."""

from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

from ase_cg._paths import check_output_not_input
from ase_cg.io import H5MDWriter
from ase_cg.mapping._base import MappingError
from ase_cg.mapping.cgmapping import CGMapping
from ase_cg.mapping.system import SystemMapping
from ase_cg.trajectory import MappedTrajectory, open_trajectory


def map_trajectory(
    input_h5,
    output_h5,
    mapping: CGMapping,
    *,
    chunk_size: int = 256,
    force_map: str = "bead_sum",
    compression: str | None = "gzip",
    progress: bool | None = None,
    topology=None,
    split_constraints: str = "warn",
    **read_options,
) -> SystemMapping:
    """Map an all-atom trajectory to a CG H5MD trajectory, chunk by chunk.

    Memory holds one chunk of frames at a time, so files larger than memory are fine. The CG
    file has the bead types, bead masses, molecule ids (molecule index per bead), the CG bonds
    (:attr:`SystemMapping.topology`), the mapped positions (wrapped), forces (with
    ``force_map``) and velocities where the input has them, the box, steps and times, and the
    input's ``observables/pressure`` and ``pressure_tensor`` (the system's, unchanged).

    Parameters
    ----------
    input_h5 : path or Trajectory
        All-atom trajectory: an H5MD file, any file MDAnalysis reads (with ``topology``,
        e.g. ``traj.trr`` + ``topol.tpr``), or an :mod:`ase_cg.trajectory` object. Molecules
        come from its molecule ids, else its bonds, else the first frame's geometry.
    output_h5 : path
        CG H5MD file to write (written to a temporary file and renamed when complete).
    mapping : CGMapping
    chunk_size : int
        Frames read, mapped and written at a time.
    force_map : {"bead_sum", "pseudo_inverse"}
    compression : {"gzip", "lzf", None}
        HDF5 filter of the output's per-frame datasets (gzip: smallest; lzf or None: faster).
    progress : bool or None
        Show a tqdm bar with frames/s (``None``: only on a terminal).
    topology : path, optional
        Topology for MDAnalysis inputs (``.tpr``, LAMMPS data file …).
    split_constraints : {"warn", "error", "allow"}
        What to do when the mapping splits a constrained bond between beads
        (:class:`ase_cg.trajectory.MappedTrajectory`).
    **read_options
        Passed to :func:`ase_cg.trajectory.open_trajectory` (``lammps_units`` …).

    Returns
    -------
    SystemMapping
        The mapping matrices used (built from the first frame).
    """
    if chunk_size < 1:
        raise MappingError(f"chunk_size must be ≥ 1 frame, got {chunk_size}")
    if isinstance(input_h5, (str, os.PathLike)):
        check_output_not_input(output_h5, [input_h5], option="output")
    trajectory = open_trajectory(input_h5, topology=topology, **read_options)
    try:
        if trajectory.bead_types is not None:
            raise MappingError(
                f"{input_h5}: is already a CG trajectory (it has bead types); map an all-atom "
                "trajectory"
            )
        mapped = MappedTrajectory(
            trajectory, mapping, force_map=force_map, split_constraints=split_constraints
        )
        system = mapped.system
        disable = None if progress is None else not progress
        with (
            H5MDWriter(
                output_h5,
                bead_types=system.bead_types,
                masses=system.bead_masses,
                mol_ids=system.bead_mol_ids,
                bonds=system.topology["bonds"],
                time_step=mapped.time_step,
                compression=compression,
                pbc=system.pbc,
            ) as writer,
            tqdm(total=mapped.n_frames, unit="frame", desc="map", disable=disable) as bar,
        ):
            steps = np.asarray(mapped.steps)
            times = mapped.times
            # the pressure is the whole system's, the same in either representation
            carried_observables = mapped.observable_names
            for frames in mapped.iter_chunks(chunk_size):
                cells = mapped.cells(frames)
                beads = mapped.positions(frames)
                forces = mapped.forces(frames) if mapped.has_forces else None
                velocities = mapped.velocities(frames) if mapped.has_velocities else None
                observables = {
                    name: mapped.observable(name, frames) for name in carried_observables
                }
                for k, frame in enumerate(range(*frames.indices(mapped.n_frames))):
                    writer.append(
                        beads[k],
                        cells[k],
                        forces=None if forces is None else forces[k],
                        velocities=None if velocities is None else velocities[k],
                        step=int(steps[frame]),
                        time=None if times is None else float(times[frame]),
                        observables={name: values[k] for name, values in observables.items()},
                    )
                bar.update(len(beads))
    finally:
        if trajectory is not input_h5:
            trajectory.close()
    return system
