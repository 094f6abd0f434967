"""Bead types on ``ase.Atoms``: named, and mirrored where every ASE file format keeps them.

CG beads carry their type names in ``atoms.arrays["bead-type"]``. ASE's own ``.traj`` files (and
other formats) drop string arrays, so :func:`set_bead_types` mirrors the types as integer
``tags`` (the index into ``atoms.info["bead_type_names"]``), which they keep;
:func:`bead_types_of` reads the names back from either.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ase_cg import _keys as K

#: ``atoms.info`` key of the names that the tags index: list of str
BEAD_TYPE_NAMES = "bead_type_names"


def set_bead_types(atoms: Atoms, names) -> None:
    """Give ``atoms`` one bead-type name per bead, as an array and mirrored in the tags.

    Parameters
    ----------
    atoms : ase.Atoms
    names : (n_beads,) sequence of str
    """
    names = np.asarray(names).astype(str)
    if names.shape != (len(atoms),):
        raise ValueError(f"{len(names)} bead-type names for {len(atoms)} beads")
    kinds, index = np.unique(names, return_inverse=True)
    atoms.arrays[K.BEAD_TYPE] = names
    atoms.set_tags(index)
    atoms.info[BEAD_TYPE_NAMES] = kinds.tolist()


def bead_types_of(atoms: Atoms) -> np.ndarray | None:
    """The bead-type names of ``atoms`` (``(n_beads,) str``), or ``None`` if it has none.

    From ``atoms.arrays["bead-type"]``, else from the tags and ``atoms.info["bead_type_names"]``
    that :func:`set_bead_types` wrote (what an ASE ``.traj`` file keeps).
    """
    names = atoms.arrays.get(K.BEAD_TYPE)
    if names is not None:
        return np.asarray(names).astype(str)
    kinds = atoms.info.get(BEAD_TYPE_NAMES)
    tags = atoms.get_tags()
    if kinds is None or len(tags) != len(atoms) or tags.min(initial=0) < 0:
        return None
    if tags.max(initial=-1) >= len(kinds):
        return None
    return np.asarray(kinds, dtype=str)[tags]
