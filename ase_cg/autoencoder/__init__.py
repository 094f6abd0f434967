"""Learned CG mappings: the coarse-graining auto-encoder (Wang & Gómez-Bombarelli 2019).

Modules
-------
- :mod:`~ase_cg.autoencoder.learn`: :func:`learn_mapping`, the training loop over seeds and the
  choice of the best run (the method and its equations are in its docstring).
- :mod:`~ase_cg.autoencoder.config`: :class:`AutoencoderConfig` and :class:`AutoencoderError`.
- :mod:`~ase_cg.autoencoder.model`: :class:`CGAutoencoder` (encoder logits, linear decoder, CG
  potential) and the result :class:`LearnedMapping`.
- :mod:`~ase_cg.autoencoder.data`: whole molecules per type read from the trajectory.
- :mod:`~ase_cg.autoencoder.sampling`: per-frame samples of molecules and their bead pairs.
- :mod:`~ase_cg.autoencoder.losses`: the loss terms (:func:`bond_cut_fraction`,
  :func:`regularised_pseudo_inverse`, …) and :func:`groups_connected`.
- :mod:`~ase_cg.autoencoder.report`: :func:`write_learned_report`.

Usage::

    result = learn_mapping("ethane_aa.h5", 2, config=AutoencoderConfig(epochs=60))
    result.mapping.save("learned_mapping.json")   # CGMapping JSON
    learn_mapping("mix.h5", {"ethane": 2, "propane": 3}, output_dir="learned/")  # + report
"""

from ase_cg.autoencoder.config import AutoencoderConfig, AutoencoderError
from ase_cg.autoencoder.learn import learn_mapping
from ase_cg.autoencoder.losses import (
    bond_cut_fraction,
    groups_connected,
    regularised_pseudo_inverse,
)
from ase_cg.autoencoder.model import CGAutoencoder, LearnedMapping
from ase_cg.autoencoder.report import write_learned_report

__all__ = [
    "AutoencoderConfig",
    "AutoencoderError",
    "CGAutoencoder",
    "LearnedMapping",
    "bond_cut_fraction",
    "groups_connected",
    "learn_mapping",
    "regularised_pseudo_inverse",
    "write_learned_report",
]
