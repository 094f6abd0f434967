"""All-atom reference trajectories: pack, minimise, equilibrate and sample a liquid with LAMMPS.

The run, in LAMMPS ``units real`` with the deck of :mod:`ase_cg.reference.lammps` (OPLS-AA, or
SPC/E water; rigid templates held by SHAKE from the minimisation on):

1. pack ``n_molecules`` randomly oriented molecules on a lattice at the target density
   (:func:`~ase_cg.reference.builder.pack_molecules`);
2. minimise (conjugate gradient);
3. NVT equilibration with a Langevin thermostat (damping 100 fs), velocities drawn from
   Maxwell–Boltzmann, total momentum zero;
4. optionally NPT equilibration (Nosé–Hoover, isotropic, ``pressure`` atm) for as long again;
   the box is then set to the mean volume of the second half and the system re-equilibrated
   in NVT for 2 ps (or ``equilibration_ps`` if shorter);
5. production NVT with a Nosé–Hoover thermostat (which adds no force to the atoms, so the
   stored forces are exactly −∇V; for rigid templates they also hold SHAKE's constraint
   forces, which cancel in each molecule's total force), one frame every ``stride`` steps.

Each frame is gathered by atom id and written to H5MD by :class:`ase_cg.io.H5MDWriter`:
positions wrapped into the box atom by atom (molecules may be split across the boundary;
molecule ids and bonds say which atoms belong together), velocities, forces (pair + bonded +
PPPM), box, potential energy, pressure (scalar and tensor, kinetic + virial; stored in bar),
masses, species, molecule ids and bonds, all in ASE units.
The settings of the run are stored as attributes of ``/parameters/ase_cg_reference``::

    out.h5
    ├── particles/all/{position,velocity,force,box}     (ase_cg.io layout)
    ├── observables/{potential_energy,pressure,pressure_tensor}   (ase_cg.io layout)
    └── parameters/ase_cg_reference   attrs: molecule, n_molecules, temperature_K,
                                      density_g_cm3, npt, pressure_atm, equilibration_ps,
                                      production_ps, stride, time_step_fs, seed, ranks,
                                      lammps_version, force_field, final_density_g_cm3

With ``ranks > 1`` the same run is executed under ``mpiexec -n ranks`` (LAMMPS domain
decomposition) by :mod:`ase_cg.reference._driver`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from ase_cg._lammps import import_lammps, lammps_subprocess_env
from ase_cg.errors import InputError
from ase_cg.io import H5MDWriter
from ase_cg.reference.builder import G_PER_CM3, pack_molecules
from ase_cg.reference.lammps import (
    CONSTRAINT_FIX,
    ENERGY_FROM_REAL,
    FORCE_FROM_REAL,
    VELOCITY_FROM_REAL,
    constraint_commands,
    force_field_commands,
    gather_array,
    thermo_pressure,
    write_lammps_data,
)
from ase_cg.reference.molecules import MOLECULES
from lammps_interface.run import LammpsRunError

#: Thermostat damping time, fs.
THERMOSTAT_DAMPING_FS = 100.0
#: Barostat damping time, fs.
BAROSTAT_DAMPING_FS = 1000.0
#: NVT re-equilibration after the NPT box is fixed, ps (at most ``equilibration_ps``).
SETTLE_PS = 2.0
#: Names of the settings as attributes of ``/parameters/ase_cg_reference`` (units in the name).
_ATTRIBUTE_NAMES = {
    "temperature": "temperature_K",
    "density": "density_g_cm3",
    "pressure": "pressure_atm",
}
#: Steps per ``run`` command during equilibration (progress granularity).
EQUILIBRATION_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class ReferenceSettings:
    """Everything that defines a reference run (stored in the output file).

    Attributes
    ----------
    molecule : str
        Name in :data:`~ase_cg.reference.MOLECULES`.
    n_molecules : int
    temperature : float, K
    density : float, g/cm³
        Density the molecules are packed at (and kept at, unless ``npt``).
    npt : bool
        Equilibrate at constant pressure and run production at the mean NPT volume.
    pressure : float, atm
    equilibration_ps : float, ps
    production_ps : float, ps
    stride : int
        Steps between stored frames.
    time_step_fs : float, fs
    seed : int
        Seed of the packing, the initial velocities and the Langevin thermostat.
    ranks : int
        MPI ranks.
    """

    molecule: str
    n_molecules: int
    temperature: float
    density: float
    npt: bool
    pressure: float
    equilibration_ps: float
    production_ps: float
    stride: int
    time_step_fs: float
    seed: int
    ranks: int

    def steps(self, ps: float) -> int:
        """Number of time steps in ``ps`` picoseconds."""
        return int(round(ps * 1000.0 / self.time_step_fs))

    @property
    def n_frames(self) -> int:
        """Number of production frames."""
        return self.steps(self.production_ps) // self.stride


def generate_reference(
    molecule: str = "ethane",
    *,
    output: str | os.PathLike,
    n_molecules: int = 216,
    temperature: float | None = None,
    density: float | None = None,
    npt: bool = False,
    pressure: float = 1.0,
    equilibration_ps: float = 20.0,
    production_ps: float = 20.0,
    stride: int = 100,
    time_step_fs: float | None = None,
    seed: int = 0,
    ranks: int = 1,
    progress: bool = True,
    lammps_log: str | os.PathLike | None = None,
) -> Path:
    """Simulate an all-atom liquid with LAMMPS and write the production run to H5MD.

    Parameters
    ----------
    molecule : str
        Name of a registered template (:data:`~ase_cg.reference.MOLECULES`).
    output : path
        H5MD file to write (atomically: nothing appears there unless the run completes).
    n_molecules : int
    temperature : float, K
        Default: the template's liquid state point (ethane 180 K).
    density : float, g/cm³
        Packing (and, without ``npt``, production) density. Default: the template's
        (ethane 0.5495 g/cm³).
    npt : bool
        Add an NPT equilibration at ``pressure`` and run production at its mean volume.
    pressure : float, atm
    equilibration_ps : float, ps
        NVT equilibration time (and again NPT, if ``npt``).
    production_ps : float, ps
        Production time; ``production_ps * 1000 / time_step_fs // stride`` frames are stored.
    stride : int
        Time steps between stored frames.
    time_step_fs : float, fs
        Default: the template's (1 fs; 2 fs for rigid water).
    seed : int
        Makes the run reproducible (packing, velocities, thermostat; exact on one rank).
    ranks : int
        MPI ranks; ``> 1`` runs LAMMPS under ``mpiexec -n ranks`` in a subprocess.
    progress : bool
        Show a progress bar (on a terminal) with the simulation speed in ns/day.
    lammps_log : path, optional
        Where LAMMPS writes its log (default: no log).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    InputError
        Unknown molecule or a setting out of range (the message names it).
    """
    if molecule not in MOLECULES:
        raise InputError(
            f"unknown molecule {molecule!r}; known molecule templates: {sorted(MOLECULES)} "
            "(add one in ase_cg/reference/molecules.py)"
        )
    template = MOLECULES[molecule]
    settings = ReferenceSettings(
        molecule=molecule,
        n_molecules=int(n_molecules),
        temperature=float(template.temperature if temperature is None else temperature),
        density=float(template.density if density is None else density),
        npt=bool(npt),
        pressure=float(pressure),
        equilibration_ps=float(equilibration_ps),
        production_ps=float(production_ps),
        stride=int(stride),
        time_step_fs=float(template.time_step_fs if time_step_fs is None else time_step_fs),
        seed=int(seed),
        ranks=int(ranks),
    )
    _check(settings)
    output = Path(output)
    if output.is_dir():
        raise InputError(f"output {output} is a directory; give the path of an .h5 file")
    output.parent.mkdir(parents=True, exist_ok=True)

    atoms = pack_molecules(template, settings.n_molecules, settings.density, seed=settings.seed)
    with tempfile.TemporaryDirectory(prefix="ase_cg_reference_") as tmp:
        data_file = write_lammps_data(Path(tmp) / "system.data", template, atoms)
        partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
        show = progress and sys.stderr.isatty()
        try:
            if settings.ranks == 1:
                simulate(settings, data_file, partial, progress=show, lammps_log=lammps_log)
            else:
                _simulate_mpi(settings, data_file, partial, Path(tmp), show, lammps_log)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    return output


def _check(settings: ReferenceSettings) -> None:
    problems = []
    if settings.n_molecules < 1:
        problems.append(f"n_molecules must be >= 1, got {settings.n_molecules}")
    for name in ("temperature", "density", "time_step_fs", "pressure"):
        if not getattr(settings, name) > 0:
            problems.append(f"{name} must be > 0, got {getattr(settings, name)}")
    if settings.equilibration_ps < 0:
        problems.append(f"equilibration_ps must be >= 0, got {settings.equilibration_ps}")
    if settings.stride < 1:
        problems.append(f"stride must be >= 1 step, got {settings.stride}")
    elif settings.n_frames < 1:
        problems.append(
            f"production_ps={settings.production_ps} ps gives no frame at stride "
            f"{settings.stride} x {settings.time_step_fs} fs; lengthen it or lower the stride"
        )
    if settings.ranks < 1:
        problems.append(f"ranks must be >= 1, got {settings.ranks}")
    if problems:
        raise InputError(f"reference run for {settings.molecule!r}: " + "; ".join(problems))


def _simulate_mpi(
    settings: ReferenceSettings,
    data_file: Path,
    output: Path,
    tmp: Path,
    progress: bool,
    lammps_log: str | os.PathLike | None,
) -> None:
    env = lammps_subprocess_env()
    mpiexec = shutil.which("mpiexec", path=env["PATH"])
    if mpiexec is None:
        raise InputError(
            f"ranks={settings.ranks} needs mpiexec (from the mpich wheel) on PATH; "
            "install mpich==5.0.2 or run with ranks=1"
        )
    job = tmp / "job.json"
    job.write_text(
        json.dumps(
            {
                "settings": dataclasses.asdict(settings),
                "data_file": str(data_file),
                "output": str(output),
                "progress": progress,
                "lammps_log": None if lammps_log is None else str(lammps_log),
            }
        )
    )
    command = [mpiexec, "-n", str(settings.ranks), sys.executable, "-m"]
    command += ["ase_cg.reference._driver", str(job)]
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=None, text=True)
    if result.returncode != 0:
        raise LammpsRunError(
            f"LAMMPS under {' '.join(command[:3])} failed with exit code {result.returncode}:\n"
            f"{result.stdout[-4000:]}"
        )


class _Runner:
    """Issues ``run`` commands in chunks, with setup only after the run set-up changed."""

    def __init__(self, lmp, bar: tqdm, time_step_fs: float) -> None:
        self.lmp = lmp
        self.bar = bar
        self.time_step_fs = time_step_fs
        self.setup_needed = True
        self.steps_done = 0
        self.seconds = 0.0

    @property
    def ns_per_day(self) -> float:
        """Simulation speed so far (minimisation excluded), ns/day."""
        return self.steps_done * self.time_step_fs * 1e-6 / max(self.seconds, 1e-9) * 86400.0

    def command(self, text: str) -> None:
        """A command that changes the run set-up (fixes, box)."""
        self.lmp.command(text)
        self.setup_needed = True

    def run(self, n_steps: int, chunk: int, phase: str, each: Callable[[], None] | None = None):
        """Run ``n_steps`` in chunks of ``chunk`` steps, calling ``each`` after every chunk."""
        self.bar.set_description(phase)
        done = 0
        while done < n_steps:
            n = min(chunk, n_steps - done)
            start = time.perf_counter()
            self.lmp.command(f"run {n}" if self.setup_needed else f"run {n} pre no post no")
            self.seconds += time.perf_counter() - start
            self.setup_needed = False
            done += n
            self.steps_done += n
            self.bar.update(n)
            self.bar.set_postfix_str(f"{self.ns_per_day:.2f} ns/day", refresh=False)
            if each is not None:
                each()


def simulate(
    settings: ReferenceSettings,
    data_file: str | os.PathLike,
    output: str | os.PathLike,
    *,
    progress: bool = False,
    lammps_log: str | os.PathLike | None = None,
) -> None:
    """Run the LAMMPS part of :func:`generate_reference` on a packed system (MPI-aware).

    Every MPI rank of the job calls this; rank 0 writes ``output`` (not atomically: the
    caller renames it).

    Parameters
    ----------
    settings : ReferenceSettings
    data_file : path
        LAMMPS data file from :func:`~ase_cg.reference.lammps.write_lammps_data`.
    output : path
        H5MD file to write.
    progress : bool
        Show a progress bar on rank 0.
    lammps_log : path, optional
    """
    lammps = import_lammps()
    template = MOLECULES[settings.molecule]
    log = "none" if lammps_log is None else str(lammps_log)
    lmp = lammps.lammps(cmdargs=["-log", log, "-screen", "none", "-nocite"])
    try:
        rank = lmp.extract_setting("world_rank")
        seeds = np.random.default_rng([settings.seed, 1]).integers(1, 900_000_000, size=2)
        temperature = settings.temperature
        damp = THERMOSTAT_DAMPING_FS
        lmp.commands_list(force_field_commands(data_file))
        lmp.commands_list(constraint_commands(template))  # from the minimisation on
        lmp.commands_list(
            [
                f"timestep {settings.time_step_fs}",
                "thermo_style custom step temp pe press vol density pxx pyy pzz pxy pxz pyz",
                "thermo_modify norm no",
                "thermo 0",
                "min_style cg",
                "minimize 1.0e-4 1.0e-6 2000 20000",
                f"velocity all create {temperature} {seeds[0]} mom yes rot yes dist gaussian",
            ]
        )
        n_equilibration = settings.steps(settings.equilibration_ps)
        n_settle = settings.steps(min(SETTLE_PS, settings.equilibration_ps)) if settings.npt else 0
        n_production = settings.n_frames * settings.stride
        total = n_equilibration * (2 if settings.npt else 1) + n_settle + n_production
        bar = tqdm(total=total, unit="step", disable=not (progress and rank == 0))
        runner = _Runner(lmp, bar, settings.time_step_fs)
        constraints = constraint_commands(template)

        def fixes(*commands: str, box_changing: bool = False) -> None:
            """Set fixes and (rigid templates) SHAKE again: after them (a thermostat's force
            or velocity scaling before SHAKE breaks the constraints), but before a barostat
            (LAMMPS requires it)."""
            again = [f"unfix {CONSTRAINT_FIX}", *constraints] if constraints else []
            for text in (*again, *commands) if box_changing else (*commands, *again):
                runner.command(text)

        fixes(
            "fix integrate all nve",
            f"fix thermostat all langevin {temperature} {temperature} {damp} {seeds[1]} zero yes",
        )
        runner.run(n_equilibration, EQUILIBRATION_CHUNK, "NVT equilibration")
        runner.command("unfix thermostat")
        runner.command("unfix integrate")
        if settings.npt:
            volumes: list[float] = []
            fixes(
                f"fix integrate all npt temp {temperature} {temperature} {damp} "
                f"iso {settings.pressure} {settings.pressure} {BAROSTAT_DAMPING_FS}",
                box_changing=True,
            )
            runner.run(
                n_equilibration,
                100,
                "NPT equilibration",
                lambda: volumes.append(lmp.get_thermo("vol")),
            )
            runner.command("unfix integrate")
            length = float(np.mean(volumes[len(volumes) // 2 :])) ** (1.0 / 3.0)
            runner.command(
                f"change_box all x final 0 {length!r} y final 0 {length!r} z final 0 {length!r} "
                "remap units box"
            )
        fixes(f"fix integrate all nvt temp {temperature} {temperature} {damp}")
        runner.run(n_settle, EQUILIBRATION_CHUNK, "NVT after NPT")

        n_molecules = settings.n_molecules
        offsets = template.n_atoms * np.arange(n_molecules)[:, None, None]
        bonds = np.array([(b.i, b.j) for b in template.bonds], dtype=np.int64)[None] + offsets
        step0 = lmp.extract_global("ntimestep")
        with contextlib.ExitStack() as stack:
            stack.callback(bar.close)
            writer = None
            if rank == 0:
                writer = stack.enter_context(
                    H5MDWriter(
                        output,
                        species=list(template.elements) * n_molecules,
                        masses=np.tile(template.masses, n_molecules),
                        mol_ids=np.repeat(np.arange(1, n_molecules + 1), template.n_atoms),
                        bonds=bonds.reshape(-1, 2),
                        time_step=settings.time_step_fs,
                    )
                )

            def sample() -> None:
                # gather_atoms is collective: every rank gathers, rank 0 writes.
                positions = gather_array(lmp, "x")
                velocities = gather_array(lmp, "v") * VELOCITY_FROM_REAL
                forces = gather_array(lmp, "f") * FORCE_FROM_REAL
                energy = lmp.get_thermo("pe") * ENERGY_FROM_REAL
                pressure, tensor = thermo_pressure(lmp)
                lo, hi = (np.array(v) for v in lmp.extract_box()[:2])
                if writer is not None:
                    writer.append(
                        np.mod(positions - lo, hi - lo),
                        np.diag(hi - lo),
                        forces=forces,
                        velocities=velocities,
                        step=lmp.extract_global("ntimestep") - step0,
                        energy=energy,
                        observables={"pressure": pressure, "pressure_tensor": tensor},
                    )

            runner.run(n_production, settings.stride, "production", sample)
        volume = np.prod(np.diff(np.array(lmp.extract_box()[:2]), axis=0))
        if rank == 0:
            final_density = template.molar_mass * n_molecules / volume / G_PER_CM3
            with h5py.File(output, "a") as handle:
                group = handle.require_group("parameters").require_group("ase_cg_reference")
                for key, value in dataclasses.asdict(settings).items():
                    group.attrs[_ATTRIBUTE_NAMES.get(key, key)] = value
                group.attrs["final_density_g_cm3"] = final_density
                group.attrs["lammps_version"] = str(lmp.version())
                group.attrs["force_field"] = template.references
                group.attrs["ns_per_day"] = runner.ns_per_day
    finally:
        lmp.close()
