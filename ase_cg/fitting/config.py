"""Settings of force matching: the classical linear fit (:class:`ClassicalConfig`, errors
:class:`FitError`) and gradient training (:class:`TrainConfig`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ase_cg.config import config_from_dict
from ase_cg.errors import InputError
from ase_cg.potentials.classical import SPLINE_TERMS


class FitError(InputError):
    """Input that the classical fit cannot use (no forces, wrong sizes, bad config)."""


@dataclass
class ClassicalConfig:
    """Settings of :func:`fit_classical` (all lengths Å, angles rad, energies eV)."""

    pair_cutoff: float = 10.0
    """Cutoff of the pair splines, Å (past the first minimum of the bead RDF; 10 Å for CG
    ethane, whose first minimum is at 6.6 Å). Energy and force go smoothly to zero there."""

    pair_spacing: float = 0.1
    """Knot spacing of the pair splines, Å."""

    pair_r_min: float | None = None
    """Start of the pair grid, Å; ``None``: 0.5 Å below the closest non-excluded approach seen in
    up to 20 frames spread over the training frames. Closer pair samples are left out of the
    fit."""

    bond_spacing: float = 0.01
    """Knot spacing of the bond splines, Å (CG bonds can be stiff: ethane's fluctuates ±0.03 Å)."""

    bond_range: tuple[float, float] | None = None
    """Bond grid ``(start, stop)``, Å; ``None``: the bond lengths seen in up to 20 frames, widened
    by a quarter of their range plus two knots each side. Bonds outside are left out of the fit."""

    angle_spacing: float = 0.05
    """Knot spacing of the angle splines, rad."""

    angle_range: tuple[float, float] | None = None
    """Angle grid ``(start, stop)`` within ``[0, π]``, rad; ``None``: as for ``bond_range``."""

    dihedral_intervals: int = 36
    """Intervals of the periodic dihedral splines over 2π."""

    threebody_spacing: float = 0.05
    """Knot spacing of the three-body angular splines over ``[0, π]``, rad."""

    threebody_cutoff: float = 4.3065
    """Range r_c of the three-body term, Å (:class:`~ase_cg.potentials.ThreeBodySpline`;
    default: mW water's aσ). Use about the first minimum of g(r) plus the screening's fall."""

    threebody_screening: float = 2.871
    """Screening length ℓ = γσ of the three-body term, Å (mW water's)."""

    terms: tuple[str, ...] = ("pair", "bond", "angle", "dihedral")
    """Which term kinds to fit; bonded kinds the topology does not have are skipped. Add
    ``"threebody"`` for the Stillinger–Weber-type angular term of non-bonded neighbours."""

    smoothness: float = 1e-6
    """λ_s of the curvature-of-force penalty ``λ_s ∫ (d²F/dx²)² dx``, in (coordinate unit)³;
    relative to the mean squared force error per component (eV²/Å²). 0 switches it off."""

    ridge: float = 1e-8
    """λ_r of the ridge penalty ``λ_r |c|²`` (1/Å² relative to the force error)."""

    min_samples: int = 10
    """Samples per grid interval needed to count as sampled; outside, the terms extrapolate."""

    start: int = 0
    """First frame used."""

    stop: int | None = None
    """Frame after the last one used (``None``: to the end)."""

    stride: int = 1
    """Use every ``stride``-th frame (neighbouring MD frames are correlated)."""

    validation_fraction: float = 0.2
    """Fraction of the selected frames held out, as one block at the end (time-block split)."""

    chunk_size: int = 10
    """Frames per chunk. Peak memory ≈ chunk_size · 3 · n_beads · n_coefficients · 8 bytes."""

    temperature: float = 300.0
    """Temperature of the data, K: the extrapolation walls rise at least by k_B T per
    ``wall_width`` (force floor k_B T / wall_width, stiffness floor k_B T / wall_width²)."""

    wall_width: float = 0.1
    """Width of the extrapolation wall (Å for distances, rad for angles), see ``temperature``."""

    exclusion_bonds: int = 3
    """Pair splines skip bead pairs at most this many bonds apart (3: 1-2, 1-3, 1-4)."""

    pressure_weight: float = 0.0
    """λ_P of the pressure-matching rows (:mod:`ase_cg.fitting.linear`), (eV/Å)² per bar²; 0:
    plain force matching. The right size depends on the system: start small (about 1e-9 for a
    few hundred beads) and raise it until ``report["pressure"]["model_bar"]`` meets the
    reference. Too large a weight fits the virial's frame-to-frame fluctuation as well and
    costs force residual (``report["train"]``)."""

    pressure: float | None = None
    """Reference pressure, bar, for every frame; ``None``: the trajectory's per-frame
    ``observables/pressure`` (needed when ``pressure_weight`` > 0)."""

    def __post_init__(self) -> None:
        self.terms = tuple(self.terms)
        for name in ("bond_range", "angle_range"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, (float(value[0]), float(value[1])))
        problems = []
        unknown = sorted(set(self.terms) - set(SPLINE_TERMS))
        if unknown:
            problems.append(f"terms {unknown} unknown (choose from {sorted(SPLINE_TERMS)})")
        for name in (
            "pair_cutoff", "pair_spacing", "bond_spacing", "angle_spacing", "threebody_spacing",
            "threebody_cutoff", "threebody_screening",
        ):  # fmt: skip
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("smoothness", "ridge", "pressure_weight"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("stride", "chunk_size", "dihedral_intervals"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.validation_fraction < 1:
            problems.append(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.pressure is not None and not math.isfinite(self.pressure):
            problems.append(f"pressure must be a finite number of bar, got {self.pressure}")
        if not self.temperature > 0 or not self.wall_width > 0:
            problems.append("temperature and wall_width must be > 0")
        for name in ("bond_range", "angle_range"):
            value = getattr(self, name)
            if value is not None and not value[1] > value[0]:
                problems.append(f"{name} needs stop > start, got {value}")
        if problems:
            raise FitError("invalid ClassicalConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict) -> ClassicalConfig:
        """Build from a dict (e.g. parsed YAML); unknown keys are an error, not ignored."""
        return config_from_dict(data, cls, source="classical config", error=FitError)

    def to_dict(self) -> dict:
        """JSON-able dict (tuples as lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclass
class TrainConfig:
    """Settings of a force-matching run (loadable from YAML/TOML with
    :func:`ase_cg.config.load_config`)."""

    epochs: int = 20
    """Passes over the training frames."""
    batch_frames: int = 4
    """Frames per optimiser step (split across processes when data-parallel)."""
    learning_rate: float = 1e-3
    """Initial Adam learning rate."""
    lr_factor: float = 0.5
    """Factor applied to the learning rate when the validation loss stops improving."""
    lr_patience: int = 2
    """Epochs without improvement before the learning rate is reduced."""
    early_stopping: int = 6
    """Stop after this many epochs without a new best validation loss (0: never)."""
    validation_fraction: float = 0.2
    """Fraction of the frames, taken as the last time block, held out for validation."""
    frame_stride: int = 1
    """Use every n-th frame of the file (neighbouring frames are strongly correlated)."""
    max_frames: int | None = None
    """Use at most this many frames (after the stride); None: all."""
    dtype: str = "float32"
    """Floating-point type of the model while training: ``float32`` or ``float64``."""
    device: str = "cpu"
    """``cpu`` or ``cuda`` (``cuda:N``)."""
    seed: int = 0
    """Seed of the frame order (and of any stochastic model initialisation done by callers)."""
    checkpoint_every: int = 50
    """Write a checkpoint every this many optimiser steps (and at each epoch end)."""
    grad_clip: float | None = 10.0
    """Clip the gradient norm to this value; None: no clipping."""
    progress: bool = True
    """Show a progress bar with loss and frames/s."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} = {getattr(self, name)!r} must be >= 1"
            for name in ("batch_frames", "frame_stride", "checkpoint_every")
            if not getattr(self, name) >= 1
        ]
        if not self.epochs >= 0:  # 0: build and save the initial model only
            problems.append(f"epochs = {self.epochs!r} must be >= 0")
        if self.max_frames is not None and not self.max_frames >= 1:
            problems.append(f"max_frames = {self.max_frames!r} must be >= 1 (or None: all)")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate = {self.learning_rate!r} must be > 0")
        if not 0 <= self.validation_fraction < 1:
            problems.append(f"validation_fraction = {self.validation_fraction!r} must be in [0, 1)")
        if self.dtype not in ("float32", "float64"):
            problems.append(f"dtype = {self.dtype!r} must be 'float32' or 'float64'")
        if problems:
            raise InputError("invalid TrainConfig: " + "; ".join(problems))
