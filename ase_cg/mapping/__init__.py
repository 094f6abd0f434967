"""Fixed coarse-grained mappings: atoms to beads, force maps, CG trajectories, backmapping.

Modules
-------
- :mod:`~ase_cg.mapping.cgmapping`: :class:`CGMapping`, the mapping of molecule types to beads
  (position map, bead masses, bead topology, save/load).
- :mod:`~ase_cg.mapping.system`: :class:`SystemMapping`, sparse mapping matrices for one
  atomistic layout, applied to batches of frames (periodic molecules made whole).
- :mod:`~ase_cg.mapping.force_maps`: the force maps and their consistency check.
- :mod:`~ase_cg.mapping.trajectory`: :func:`map_trajectory`, whole files chunk by chunk.
- :mod:`~ase_cg.mapping.backmap`: :func:`backmap`, all-atom start structures from beads.
- ``_schema`` (the JSON mapping file), ``_molecule_type`` and ``_base`` (constants, errors)
  are internal.

Usage::

    mapping = CGMapping.from_groups(molecule("C2H6"), [[0, 2, 3, 4], [1, 5, 6, 7]],
                                    name="ethane")                  # one molecule type
    mapping = CGMapping.from_groups({"ethane": (ethane, groups),   # several types
                                     "propane": (propane, groups3, ["CH3", "CH2", "CH3"])})
    cg = mapping.map(atoms)                  # one frame → CG ase.Atoms
    system = mapping.system(atoms)           # sparse E and b, built once per layout
    z = system.map_positions(x, cells)       # (n_frames, n_atoms, 3) → (n_frames, n_beads, 3)
    map_trajectory("aa.h5", "cg.h5", mapping)   # whole files, chunk by chunk
    start = backmap(cg, mapping)             # all-atom start structure from beads
"""

from ase_cg.mapping._base import (
    FORCE_MAPS,
    MAPPING_FORMAT,
    MAPPING_UNITS,
    MAPPING_VERSION,
    WEIGHTINGS,
    MappingError,
    MappingFileError,
)
from ase_cg.mapping.backmap import backmap
from ase_cg.mapping.cgmapping import CGMapping
from ase_cg.mapping.force_maps import bead_sum_force_map, check_force_map, pseudo_inverse_force_map
from ase_cg.mapping.system import SystemMapping
from ase_cg.mapping.trajectory import map_trajectory

__all__ = [
    "FORCE_MAPS",
    "MAPPING_FORMAT",
    "MAPPING_UNITS",
    "MAPPING_VERSION",
    "WEIGHTINGS",
    "CGMapping",
    "MappingError",
    "MappingFileError",
    "SystemMapping",
    "backmap",
    "bead_sum_force_map",
    "check_force_map",
    "map_trajectory",
    "pseudo_inverse_force_map",
]
