"""The LAMMPS engine of CG MD: a model exported to a LAMMPS run, run, its frames in H5MD.

:func:`run_cg_md` is what :func:`ase_cg.pipeline.simulate` calls for ``engine="lammps"``: it
writes the run with :func:`lammps_interface.export` into a folder beside the output, runs it
with ``lmp`` (``mpiexec`` for several ranks) and appends every frame LAMMPS dumps to the output
H5MD file as soon as it is complete, so a stopped run keeps its frames.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
from ase import units

from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, H5MDWriter, write_observables
from ase_cg.md import MDBlowUpError, MDSummary
from lammps_interface.deck import export
from lammps_interface.run import (
    DATA_FILE,
    LammpsRunError,
    append_dump_frame,
    dump_writer,
    read_data_file,
    read_thermo,
    run_deck,
)


def _blow_up(error, directory: Path, output: Path) -> MDBlowUpError:
    """The :class:`MDBlowUpError` for a LAMMPS run that stopped with an error.

    The frames dumped before the failure are already in ``output`` (written as LAMMPS dumped
    them); ``bead`` is the bead with the largest force in the last of them (−1 when nothing
    was dumped); ``step`` is the first step after the last one LAMMPS reported (thermo or
    dump), the earliest at which it can have failed.
    """
    step, bead, kept = -1, -1, "no frame was dumped before it"
    if output.is_file():
        with contextlib.suppress(InputError, OSError, ValueError), H5MDTrajectory(output) as t:
            step = int(t.steps[-1])
            bead = int(np.argmax(np.linalg.norm(t.forces(-1), axis=1)))
            kept = f"the {t.n_frames} frames dumped up to then are in {output}"
    # the thermo output may have reached a later step than the last dump
    with contextlib.suppress(InputError, OSError, KeyError):
        step = max(step, int(read_thermo(directory / "log.lammps")["step"][-1]))
    step += 1
    return MDBlowUpError(
        f"LAMMPS stopped at or after step {step} (bead {bead} has the largest force in the "
        f"last dumped frame; {kept}): {error}",
        step=step,
        bead=bead,
    )


def run_cg_md(
    model,
    atoms,
    *,
    output,
    ensemble,
    pressure,
    constrain_bonds,
    temperature,
    time_step_fs,
    steps,
    interval,
    seed,
    ranks,
    first_step=0,
) -> MDSummary:
    """Export ``model`` with ``atoms`` to a LAMMPS run and run it, appending each frame LAMMPS
    dumps to ``output`` as soon as it is complete (``first_step`` > 0: continue the
    incomplete ``output``, from ``atoms`` with their velocities, to step ``steps``)."""
    directory = output.with_name(f"{output.stem}_lammps")
    export(
        model,
        directory,
        atoms=atoms,
        temperature=temperature,
        timestep=time_step_fs,
        steps=steps - first_step,
        dump_every=interval,
        constrain_bonds=constrain_bonds,
        ensemble=ensemble,
        pressure=pressure,
        velocities=first_step > 0,
        first_step=first_step,
    )
    topology = read_data_file(directory / DATA_FILE)
    if first_step > 0:
        writer = H5MDWriter.resume(output)
    else:
        writer = None  # made from the first frame dumped
        output.unlink(missing_ok=True)  # never leave an old run's file as this one's

    def append(frame) -> None:
        nonlocal writer
        step, types = frame[0], frame[2]
        if writer is not None and step <= writer.last_step:
            return  # the start frame of a resumed run, or a frame handed over twice
        if writer is None:
            writer = dump_writer(output, topology, types, time_step_fs, incremental=True)
        append_dump_frame(writer, frame)

    variables = {} if seed is None else {"seed": str(int(seed) % 900_000_000 + 1)}
    start = time.perf_counter()
    failure, ended = None, False  # ended: finished or stopped by LAMMPS, not interrupted
    try:
        outputs = run_deck(directory, ranks=ranks, variables=variables, h5md=None, on_frame=append)
        ended = True
    except LammpsRunError as error:
        failure, ended = error, True
    finally:
        if writer is not None:
            writer.close(complete=ended)
    if failure is not None:
        raise _blow_up(failure, directory, output) from failure
    wall = time.perf_counter() - start
    thermo = read_thermo(outputs["log"])
    with H5MDTrajectory(output) as trajectory:
        n_frames, frame_steps = trajectory.n_frames, trajectory.steps
    # thermo and dump share their interval: each frame gets the pressure LAMMPS printed for it
    # (a resumed run's log starts at the resume step: then its earlier frames have none)
    rows = {int(step): k for k, step in enumerate(thermo["step"])}
    if all(int(step) in rows for step in frame_steps):
        pressures = thermo["pressure"][[rows[int(step)] for step in frame_steps]] * units.bar
        write_observables(output, {"pressure": pressures})
    run_steps = steps - first_step
    simulated_ps = run_steps * time_step_fs / 1000.0
    total = thermo.get("total", np.array([np.nan]))
    return MDSummary(
        ensemble=ensemble,
        steps=int(run_steps),
        time_step_fs=float(time_step_fs),
        simulated_ps=simulated_ps,
        wall_s=wall,
        steps_per_s=run_steps / wall,
        ns_per_day=simulated_ps * 1e-3 / wall * 86400,
        n_beads=len(atoms),
        temperature_K=float(np.mean(thermo["temperature"])),
        potential_energy_eV=float(np.mean(thermo["energy"])),
        total_energy_drift_eV_per_bead=float((total[-1] - total[0]) / len(atoms)),
        density_g_cm3=float(np.mean(thermo["density"])),
        pressure_bar=float(np.mean(thermo["pressure"])),
        trajectory=str(output),
        n_frames=n_frames,
        thermostat="none" if ensemble == "nve" else "nose-hoover",
    )
