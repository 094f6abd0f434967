"""Fixed coarse-grained mappings (being split into modules)."""

from ase_cg.mapping.cgmapping import *  # noqa: F403
from ase_cg.mapping.cgmapping import __all__  # noqa: F401
