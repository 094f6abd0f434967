"""Classical CG potentials fitted by force matching, and the corrections added to them.

Modules
-------
- :mod:`~ase_cg.fitting.linear`: :func:`fit_classical`, linear least-squares force matching
  (multiscale coarse-graining) of spline potentials, with optional pressure matching.
- :mod:`~ase_cg.fitting.gradient`: :func:`train`, force matching of any :class:`CGModel`
  (neural models above all) by gradient descent, mini-batches streamed from the file, resumable,
  data-parallel (:func:`train_distributed`).
- :mod:`~ase_cg.fitting.config`: :class:`ClassicalConfig`, :class:`TrainConfig` and
  :class:`FitError`.
- :mod:`~ase_cg.fitting.frames`: :class:`ArrayTrajectory` and the shared frame handling (files,
  mapped all-atom trajectories, CG topology, chunked neighbour graphs).
- :mod:`~ase_cg.fitting.corrections`: one IBI step (:func:`structural_correction`) and a
  pressure ramp (:func:`pressure_correction`) added to a fitted model.
- :mod:`~ase_cg.fitting.plots`: :func:`plot_classical`.

Usage::

    model, report = fit_classical("cg.h5", mapping, config=ClassicalConfig(pair_cutoff=10.0))
    plot_classical(model, "terms.png")
    better = structural_correction(model, "aa.h5", "cg_run.h5", temperature=300.0)
    result = train(neural_model, ForceMatchingData("cg.h5"), "run/", TrainConfig(epochs=5))
"""

from ase_cg.fitting.config import ClassicalConfig, FitError, TrainConfig
from ase_cg.fitting.corrections import (
    ibi_pair_correction,
    pressure_correction,
    pressure_ramp,
    structural_correction,
    term_pressure,
    threebody_correction,
)
from ase_cg.fitting.frames import ArrayTrajectory
from ase_cg.fitting.gradient import (
    CHECKPOINT_NAME,
    ForceMatchingData,
    TrainingDiverged,
    TrainResult,
    evaluate,
    split_frames,
    train,
    train_distributed,
)
from ase_cg.fitting.linear import fit_classical
from ase_cg.fitting.plots import plot_classical

__all__ = [
    "CHECKPOINT_NAME",
    "ForceMatchingData",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "evaluate",
    "split_frames",
    "train",
    "train_distributed",
    "ArrayTrajectory",
    "ClassicalConfig",
    "FitError",
    "fit_classical",
    "ibi_pair_correction",
    "plot_classical",
    "pressure_correction",
    "pressure_ramp",
    "structural_correction",
    "term_pressure",
    "threebody_correction",
]
