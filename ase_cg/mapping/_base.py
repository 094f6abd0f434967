"""Constants and errors shared by the modules of :mod:`ase_cg.mapping`."""

from __future__ import annotations

from ase_cg.errors import InputError

#: str | format tag of mapping JSON files
MAPPING_FORMAT = "ase_cg.mapping"
#: int | newest mapping file version this code reads and the one it writes
MAPPING_VERSION = 1
#: dict | units of the template positions and masses in mapping files
MAPPING_UNITS = {"length": "angstrom", "mass": "amu"}
#: bead-position weightings: centre of mass ("mass"), centre of geometry ("geometry")
WEIGHTINGS = ("mass", "geometry")
#: force map names accepted by :meth:`CGMapping.system` and :func:`map_trajectory`
FORCE_MAPS = ("bead_sum", "pseudo_inverse")


class MappingError(InputError):
    """A mapping definition, or a configuration given to a mapping, is invalid."""


class MappingFileError(MappingError):
    """A mapping file or dictionary does not follow the mapping schema."""
