"""Classical force matching (being split into modules)."""

from ase_cg.fitting.linear import *  # noqa: F403
from ase_cg.fitting.linear import __all__  # noqa: F401
