"""File-to-file steps of the CG pipeline, for the command line and for workflow managers.

Each function reads its inputs from files and writes its results to files, so a workflow
manager can run the steps separately::

    reference  → ase_cg.reference.generate_reference(...)      all-atom H5MD
    map        → ase_cg.mapping.map_trajectory(...)             CG H5MD with mapped forces
    train      → train_model(...)                               model file (this module)
    simulate   → ase_cg.pipeline.simulate(...)                        CG H5MD
    compare    → ase_cg.analysis.compare(...)                   report folder
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms
from ase.units import kB

from ase_cg import analysis
from ase_cg._paths import check_output_not_input
from ase_cg.calculator import CGCalculator
from ase_cg.config import config_from_dict, read_config_file
from ase_cg.errors import InputError
from ase_cg.fitting import (
    ClassicalConfig,
    ForceMatchingData,
    TrainConfig,
    fit_classical,
    plot_classical,
    train,
    train_distributed,
)
from ase_cg.io import H5MDTrajectory, IncompleteTrajectoryWarning, read_h5md
from ase_cg.mapping import CGMapping, map_trajectory
from ase_cg.md import MDSummary, run_md
from ase_cg.model import REFERENCE_STATE, load_model, reference_state, save_model
from ase_cg.potentials.build import NeuralConfig, build_neural_model
from ase_cg.start import build_cg_box, read_start, repeat_molecules
from ase_cg.trajectory import is_cg, opened
from lammps_interface.engine import run_cg_md

MODEL_KINDS = ("classical", "neural")


def file_checksum(path: str | os.PathLike) -> str:
    """SHA-256 of a file (recorded in a model's provenance)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _config_sections(path) -> dict:
    """Sections ``train``, ``neural``, ``classical`` of a YAML/TOML config file."""
    if path is None:
        return {}
    values = read_config_file(path)
    unknown = sorted(set(values) - {"train", "neural", "classical"}, key=repr)
    if unknown:
        raise InputError(
            f"{path}: unknown sections {unknown}; a training config has the sections "
            "'train', 'neural' and 'classical'"
        )
    return values


def cg_temperature(trajectory, frames) -> float | None:
    """Kinetic temperature (K) of CG beads from their mapped velocities, or None.

    Centre-of-mass velocities of groups of atoms are Maxwell–Boltzmann distributed at the
    all-atom temperature, so the beads' kinetic energy gives T directly (3 dof per bead).
    """
    if not trajectory.has_velocities:
        return None
    velocities = trajectory.velocities(frames)
    kinetic = 0.5 * (trajectory.masses[None, :, None] * velocities**2).sum(axis=(1, 2))
    return float(np.mean(kinetic) / (1.5 * trajectory.n_atoms * kB))


def ensure_cg_trajectory(data_path, output_dir: Path, mapping, read_options=None) -> Path:
    """``data_path`` if it is a CG file; else map it with ``mapping`` into ``output_dir``.

    ``read_options`` (``topology``, ``lammps_units``) go to
    :func:`ase_cg.trajectory.open_trajectory` for files that are not H5MD.
    """
    read_options = {} if read_options is None else dict(read_options)
    with opened(data_path, **read_options) as trajectory:
        cg = is_cg(trajectory)
    if cg:
        return Path(data_path)
    if mapping is None:
        raise InputError(
            f"{data_path}: is an all-atom trajectory; give the mapping (--mapping FILE)"
        )
    mapped = output_dir / "mapped.h5"
    map_trajectory(data_path, mapped, mapping, **read_options)
    return mapped


def train_model(
    data_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    kind: str = "neural",
    mapping_path: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    train_overrides: dict | None = None,
    temperature: float | None = None,
    classical_overrides: dict | None = None,
    ranks: int = 1,
    resume: bool = False,
    read_options: dict | None = None,
) -> Path:
    """Fit a classical or train a neural CG model on a trajectory; returns the model file.

    Parameters
    ----------
    data_path : trajectory with forces: CG H5MD (from ``ase-cg map``) or all-atom (H5MD, or
        any file MDAnalysis reads with ``read_options``; ``mapping_path`` is then required and
        the frames are mapped first into ``output_dir``).
    output_dir : folder for ``model.pt``, metrics, plots and checkpoints.
    kind : ``"classical"`` (spline terms, linear least squares) or ``"neural"`` (prior +
        SchNet, gradient descent).
    mapping_path : CGMapping JSON; needed for all-atom data, and recorded in the model.
    config_path : YAML/TOML with optional sections ``train`` (:class:`TrainConfig`), ``neural``
        (:class:`NeuralConfig`) and ``classical`` (:class:`ClassicalConfig`).
    train_overrides : dict
        :class:`TrainConfig` fields from the command line; they win over the file.
    temperature : float, K
        For the prior (neural) or the bonded fallbacks (classical); default: the kinetic
        temperature of the mapped velocities.
    classical_overrides : dict
        :class:`ClassicalConfig` fields from the command line (e.g. ``pressure_weight``); they
        win over the file.
    ranks : int
        Data-parallel processes for neural training.
    resume : bool
        Continue a killed neural run from ``output_dir/checkpoint.pt``.
    read_options : dict, optional
        ``topology`` and ``lammps_units`` for a non-H5MD ``data_path`` (e.g. a GROMACS TRR
        with its TPR), see :func:`ase_cg.trajectory.open_trajectory`.
    """
    if kind not in MODEL_KINDS:
        raise InputError(f"model kind {kind!r}; choose one of {MODEL_KINDS}")
    output_dir = Path(output_dir)
    sections = _config_sections(config_path)
    # every setting is checked before anything is written
    neural = NeuralConfig.from_dict(sections.get("neural", {}), source=str(config_path))
    train_values = dict(sections.get("train", {}))
    train_values.update({k: v for k, v in (train_overrides or {}).items() if v is not None})
    train_config = config_from_dict(
        train_values, TrainConfig, source=f"{config_path or 'config'} [train]"
    )
    classical = {**sections.get("classical", {}), **(classical_overrides or {})}
    overrides = train_overrides or {}
    # --frame-stride and --max-frames select the frames of a classical fit too
    if overrides.get("frame_stride") is not None:
        classical["stride"] = overrides["frame_stride"]
    if overrides.get("max_frames") is not None:
        stride = classical.get("stride", 1)
        classical["stop"] = classical.get("start", 0) + overrides["max_frames"] * stride
    ClassicalConfig.from_dict(classical)
    if mapping_path is None:
        raise InputError(
            f"a {kind} model needs the mapping (--mapping FILE): for its "
            f"{'topology' if kind == 'classical' else 'prior'}"
        )
    mapping = CGMapping.load(mapping_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    cg_path = ensure_cg_trajectory(data_path, output_dir, mapping, read_options)
    provenance = {"data": str(data_path), "data_sha256": file_checksum(data_path), "kind": kind}
    with H5MDTrajectory(cg_path) as trajectory:
        if not trajectory.has_forces:
            raise InputError(f"{cg_path}: has no forces; force matching needs them")
        if temperature is None:
            temperature = cg_temperature(trajectory, slice(0, min(len(trajectory), 50)))
        if temperature is None:
            raise InputError(
                f"{cg_path}: has no velocities to measure the temperature; give --temperature"
            )
    density = float(np.mean(analysis.density(read_h5md(cg_path, slice(0, 50)))))
    provenance[REFERENCE_STATE] = {"temperature_K": float(temperature), "density_g_cm3": density}
    model_path = output_dir / "model.pt"
    if kind == "classical":
        config = ClassicalConfig.from_dict({"temperature": temperature, **classical})
        model, report = fit_classical(cg_path, mapping, config=config)
        model.provenance.update(provenance, fit_report=report)
        save_model(model, model_path)
        plot_classical(model, output_dir / "potentials.png")
        return model_path

    with H5MDTrajectory(cg_path) as trajectory:
        n_prior = min(len(trajectory), 100)
    prior_frames = read_h5md(cg_path, slice(0, n_prior))
    if not resume or not (output_dir / "initial.pt").exists():
        prior_model = None if neural.prior_model is None else load_model(neural.prior_model)
        model = build_neural_model(
            mapping, prior_frames, config=neural, temperature=temperature, prior_model=prior_model
        )
        model.provenance.update(provenance, neural=neural.to_dict(), temperature=temperature)
        save_model(model, output_dir / "initial.pt")
    if ranks > 1:
        train_distributed(
            output_dir / "initial.pt",
            cg_path,
            output_dir,
            train_config,
            world_size=ranks,
            resume=resume,
        )
    else:
        data = ForceMatchingData(cg_path)
        train(load_model(output_dir / "initial.pt"), data, output_dir, train_config, resume=resume)
    return model_path


#: engines of :func:`simulate`
ENGINES = ("ase", "lammps")


def simulate(
    model,
    *,
    engine: str = "ase",
    start: str | os.PathLike | None = None,
    frame: int = -1,
    n_molecules: int | dict[str, int] | None = None,
    density: float | None = None,
    output: str | os.PathLike = "cg_md.h5",
    ensemble: str = "nvt",
    temperature: float | None = None,
    pressure: float = 1.01325,
    time_step_fs: float = 2.0,
    steps: int = 10000,
    thermostat: str = "bussi",
    friction: float = 0.01,
    interval: int = 100,
    constrain_bonds: bool = False,
    seed: int | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    compile: bool = False,
    progress: bool | None = None,
    ranks: int = 1,
    repeat: tuple[int, int, int] = (1, 1, 1),
    resume: bool = False,
) -> MDSummary:
    """CG MD of a model from a start structure or a new box (what ``ase-cg simulate`` runs).

    Parameters
    ----------
    model : CGModel or path
        The model or its file.
    engine : {"ase", "lammps"}
        ``"ase"``: ASE integrators with :class:`~ase_cg.calculator.CGCalculator` (all
        ensembles, constraints, blow-up checks). ``"lammps"``: the model exported with
        :func:`lammps_interface.export` (tables + the ``cgtorch`` plugin for a many-body term)
        into the folder ``<output stem>_lammps/`` and run there with ``lmp`` (NVT: Nosé–Hoover
        chain, damping 100 time steps, so ``thermostat`` and ``friction`` are unused; NVE; NPT:
        isotropic Nosé–Hoover; bonds held by SHAKE, RATTLE for NVE, with
        ``constrain_bonds``); LAMMPS's dump is converted to ``output``.
    start : path, optional
        H5MD (``.h5``) or any ASE-readable file; a CG frame is used as it is, an all-atom frame
        is mapped with the model's mapping (velocities mapped too when present). Default:
        build a box with :func:`ase_cg.start.build_cg_box`.
    frame : int
        Frame of ``start`` (default the last).
    n_molecules : int or dict, optional
        Molecules of the new box (needed without ``start``).
    density : float, g/cm³, optional
        Density of the new box; default the density of the model's training data
        (:func:`ase_cg.model.reference_state`).
    output : path
        H5MD trajectory written frame by frame (root attribute ``complete`` False until the
        run ends); never one of the inputs. Periodic runs store each frame's pressure
        (kinetic + virial) in ``observables/pressure`` (LAMMPS: its thermo value at that step,
        when the log covers every frame; ASE: also the tensor, ``observables/pressure_tensor``).
    ensemble, temperature, pressure, time_step_fs, steps, thermostat, friction, interval,
    constrain_bonds,
    seed, progress
        As in :func:`ase_cg.md.run_md` (K, bar, fs, 1/fs); ``temperature`` defaults to the model's
        training temperature (:func:`ase_cg.model.reference_state`).
    device, dtype, compile
        As in :class:`~ase_cg.calculator.CGCalculator` (ASE engine).
    ranks : int
        MPI ranks of the LAMMPS engine.
    repeat : (3,) int
        Replicate the start structure (or the new box) this many times along each cell vector,
        each copy's molecules with new ids (:func:`ase_cg.start.repeat_molecules`): a larger
        system for better statistics, started from the same equilibrated frame.
    resume : bool
        Continue the interrupted run whose incomplete file is ``output``, from its last frame
        (positions, velocities, box, step), up to step ``steps`` in all; its frames are kept
        and the new ones appended. Thermostat and barostat variables and the random stream
        restart (Langevin noise is re-seeded from ``seed`` and the step). Both engines: the
        LAMMPS engine starts a new deck from that frame, with its velocities.

    Returns
    -------
    MDSummary
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
    model_file = model if isinstance(model, (str, os.PathLike)) else None
    check_output_not_input(output, [model_file, start], option="output")
    calculator = CGCalculator(model, device=device, dtype=dtype, compile=compile)
    state = reference_state(calculator.model)
    if temperature is None:
        if "temperature_K" not in state:
            raise InputError("the model file records no training temperature: give temperature")
        temperature = state["temperature_K"]
    first_step = 0
    if resume:
        if start is not None or n_molecules is not None or density is not None:
            raise InputError(
                "resume continues from the last frame of the output; do not give a start "
                "structure, n_molecules or density"
            )
        atoms, first_step = _resume_state(Path(output), steps)
        if seed is not None:
            seed = int(np.random.SeedSequence([seed, first_step]).generate_state(1)[0])
    elif start is None:
        if density is None:
            density = state.get("density_g_cm3")
        if n_molecules is None or density is None:
            raise InputError(
                "without a start structure give n_molecules and density (g/cm³) for a new box "
                "(the model file records no training density)"
            )
        atoms = build_cg_box(calculator.model, n_molecules, density, seed=seed)
    else:
        if n_molecules is not None or density is not None:
            raise InputError(
                "n_molecules and density build a new box; they cannot be combined with a start "
                "structure"
            )
        atoms = read_start(Path(start), frame, calculator.model)
    if tuple(repeat) != (1, 1, 1):
        if resume:
            raise InputError("resume continues the run as it was; do not give repeat")
        atoms = repeat_molecules(atoms, repeat, calculator.model.topology(atoms).bonds)
    if engine == "lammps":
        return run_cg_md(
            calculator.model,
            atoms,
            output=Path(output),
            ensemble=ensemble,
            pressure=pressure,
            constrain_bonds=constrain_bonds,
            temperature=temperature,
            time_step_fs=time_step_fs,
            steps=steps,
            interval=interval,
            seed=seed,
            ranks=ranks,
            first_step=first_step,
        )
    return run_md(
        atoms,
        calculator,
        ensemble=ensemble,
        temperature=temperature,
        pressure=pressure,
        time_step_fs=time_step_fs,
        thermostat=thermostat,
        friction=friction,
        trajectory=output,
        interval=interval,
        constrain_bonds=constrain_bonds,
        seed=seed,
        progress=progress,
        steps=steps - first_step,
        first_step=first_step,
    )


def _resume_state(output: Path, steps: int) -> tuple[Atoms, int]:
    """The last frame of the incomplete run ``output`` and its step.

    Raises
    ------
    InputError
        If there is no such file, it is complete, has no velocities, or already reaches
        ``steps``.
    """
    if not output.is_file():
        raise InputError(f"{output}: no such trajectory to resume; run without --resume first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteTrajectoryWarning)
        with H5MDTrajectory(output) as trajectory:
            if not trajectory.has_velocities:
                raise InputError(f"{output}: has no velocities to continue the run from")
            atoms = trajectory[-1]
    with h5py.File(output, "r") as f:
        complete = bool(f.attrs.get("complete", True))
    step = int(atoms.info["step"])
    if complete:
        raise InputError(
            f"{output}: the run that wrote it ended (attribute complete = True, last step "
            f"{step}); there is nothing to resume. Start a new run from it with --start"
        )
    if step >= steps:
        raise InputError(
            f"{output}: already at step {step} of the {steps} asked for; give more --steps"
        )
    atoms.calc = None
    return atoms, step
