"""ase_cg: machine-learned coarse-graining of molecular liquids for ASE and LAMMPS.

The science is the coarse-graining auto-encoder of Wang & Gómez-Bombarelli,
npj Comput. Mater. 5, 125 (2019). Internal units are ASE's (Å, eV, amu, ASE time).
"""

from ase_cg.shipped import shipped_data

__all__ = ["__version__", "shipped_data"]
__version__ = "0.1.0"
