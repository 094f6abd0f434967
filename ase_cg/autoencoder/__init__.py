"""Learned CG mappings (being split into modules)."""

from ase_cg.autoencoder.learn import *  # noqa: F403
from ase_cg.autoencoder.learn import __all__  # noqa: F401
