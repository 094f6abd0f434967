"""File-to-file steps of the CG pipeline, for the command line and for workflow managers.

Each function reads its inputs from files and writes its results to files, so a workflow
manager can run the steps separately::

    reference  → ase_cg.reference.generate_reference(...)      all-atom H5MD
    map        → ase_cg.mapping.map_trajectory(...)             CG H5MD with mapped forces
    train      → train_model(...)                               model file (this module)
    simulate   → ase_cg.md.simulate(...)                        CG H5MD
    compare    → ase_cg.analysis.compare(...)                   report folder
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ase_cg import analysis
from ase_cg.config import config_from_dict, read_config_file
from ase_cg.errors import InputError

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
    from ase.units import kB

    if not trajectory.has_velocities:
        return None
    velocities = trajectory.velocities(frames)
    kinetic = 0.5 * (trajectory.masses[None, :, None] * velocities**2).sum(axis=(1, 2))
    return float(np.mean(kinetic) / (1.5 * trajectory.n_atoms * kB))


def ensure_cg_trajectory(data_path, output_dir: Path, mapping) -> Path:
    """``data_path`` if it is a CG file; else map it with ``mapping`` into ``output_dir``."""
    from ase_cg.trajectory import is_cg, opened

    with opened(data_path) as trajectory:
        cg = is_cg(trajectory)
    if cg:
        return Path(data_path)
    if mapping is None:
        raise InputError(
            f"{data_path}: is an all-atom trajectory; give the mapping (--mapping FILE)"
        )
    from ase_cg.mapping import map_trajectory

    mapped = output_dir / "mapped.h5"
    map_trajectory(data_path, mapped, mapping)
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
) -> Path:
    """Fit a classical or train a neural CG model on a trajectory; returns the model file.

    Parameters
    ----------
    data_path : H5MD file with forces: CG (from ``ase-cg map``) or all-atom (then
        ``mapping_path`` is required and the frames are mapped first into ``output_dir``).
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
    """
    from ase_cg.io import H5MDTrajectory, read_h5md
    from ase_cg.mapping import CGMapping
    from ase_cg.model import REFERENCE_STATE, load_model, save_model

    if kind not in MODEL_KINDS:
        raise InputError(f"model kind {kind!r}; choose one of {MODEL_KINDS}")
    from ase_cg.fitting import ClassicalConfig
    from ase_cg.potentials.build import NeuralConfig
    from ase_cg.training import TrainConfig

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
    cg_path = ensure_cg_trajectory(data_path, output_dir, mapping)
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
        from ase_cg.fitting import fit_classical, plot_classical

        config = ClassicalConfig.from_dict({"temperature": temperature, **classical})
        model, report = fit_classical(cg_path, mapping, config=config)
        model.provenance.update(provenance, fit_report=report)
        save_model(model, model_path)
        plot_classical(model, output_dir / "potentials.png")
        return model_path

    from ase_cg.potentials.build import build_neural_model
    from ase_cg.training import ForceMatchingData, train, train_distributed

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
