"""Units at the LAMMPS boundary: the model works in ASE units (eV, Å, amu), decks in ``units real``.

``units real``: energy kcal/mol, length Å, mass g/mol (= amu), time fs, force kcal/mol/Å,
pressure atm.  Every conversion between the two sides in :mod:`lammps_interface` uses these
constants (the C++ plugin receives ``EV_TO_KCAL_PER_MOL`` as a compile-time definition).
"""

from __future__ import annotations

from ase import units as _ase

#: 1 eV in kcal/mol, exactly as ASE defines it (CODATA 2014, 23.0605480...).
EV_TO_KCAL_PER_MOL: float = _ase.eV / (_ase.kcal / _ase.mol)

#: 1 fs in ASE time units.
FS_TO_ASE_TIME: float = _ase.fs

#: LAMMPS's ``nktv2p`` for ``units real``: kcal/mol/Å³ → atm (src/update.cpp).
REAL_NKTV2P: float = 68568.415

#: 1 atm (LAMMPS ``units real`` pressure) in bar, exact by definition.
ATM_TO_BAR: float = 1.01325
