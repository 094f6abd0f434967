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
from ase_cg.potentials.build import NeuralConfig, build_neural_model
from ase_cg.potentials.classical import (
    AngleSpline,
    BondSpline,
    DihedralSpline,
    PairSpline,
    ThreeBodySpline,
)
from ase_cg.potentials.neural import NeuralPotential, NeuralTerm
from ase_cg.potentials.painn import PaiNNPotential
from ase_cg.potentials.prior import HarmonicAngles, HarmonicBonds, Repulsion

__all__ = [
    "TERM_TYPES",
    "AngleSpline",
    "BondSpline",
    "DihedralSpline",
    "PairSpline",
    "CGGraph",
    "CGModel",
    "EnergyTerm",
    "HarmonicAngles",
    "HarmonicBonds",
    "NeuralConfig",
    "NeuralPotential",
    "NeuralTerm",
    "PaiNNPotential",
    "Repulsion",
    "SystemTopology",
    "ThreeBodySpline",
    "build_neural_model",
    "make_batch",
    "register_term",
]
