"""CG potentials: energy terms summed by :class:`CGModel` (see :mod:`ase_cg.potentials.base`)."""

from ase_cg.potentials.base import (
    TERM_TYPES,
    CGGraph,
    CGModel,
    EnergyTerm,
    SystemTopology,
    make_batch,
    register_term,
)
from ase_cg.potentials.prior import HarmonicAngles, HarmonicBonds, Repulsion

__all__ = [
    "TERM_TYPES",
    "CGGraph",
    "CGModel",
    "EnergyTerm",
    "HarmonicAngles",
    "HarmonicBonds",
    "Repulsion",
    "SystemTopology",
    "make_batch",
    "register_term",
]
