"""All-atom reference liquids: molecule templates, packing, OPLS-AA (and SPC/E water) in LAMMPS,
H5MD output.

>>> from ase_cg.reference import MOLECULES, generate_reference
>>> sorted(MOLECULES)
['ethane', 'propane', 'water']

``generate_reference("ethane", output="ethane.h5")`` packs 216 molecules at the template's
liquid state point (180 K, 0.5495 g/cm³), minimises, equilibrates and writes the production
run to H5MD (see :mod:`ase_cg.reference.simulation`).
"""

from ase_cg.reference.builder import PackingError, box_length, pack_molecules
from ase_cg.reference.lammps import compute_energy_forces, compute_pressure, write_lammps_data
from ase_cg.reference.molecules import (
    ETHANE,
    MOLECULES,
    PROPANE,
    WATER,
    Angle,
    Bond,
    Dihedral,
    MoleculeTemplate,
    MoleculeTemplateError,
)
from ase_cg.reference.simulation import ReferenceSettings, generate_reference

__all__ = [
    "ETHANE",
    "MOLECULES",
    "PROPANE",
    "WATER",
    "Angle",
    "Bond",
    "Dihedral",
    "MoleculeTemplate",
    "MoleculeTemplateError",
    "PackingError",
    "ReferenceSettings",
    "box_length",
    "compute_energy_forces",
    "compute_pressure",
    "generate_reference",
    "pack_molecules",
    "write_lammps_data",
]
