"""VMD's ``parameters/vmd_structure`` group: elements, names, residues and bonds of particles
in H5MD files of other writers (ESPResSo, VMD's own plugin)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ase_cg.errors import InputError

__all__ = ["read_vmd_structure"]


def read_vmd_structure(file: h5py.File, species, n_atoms: int, path: Path, group_path: str) -> dict:
    """Per-particle data of the VMD h5md plugin's ``parameters/vmd_structure`` group.

    Layout (the plugin's reader, ``h5mdplugin.c``): ``name``, ``type``, ``atomicnumber``
    hold one entry per species, in the order of ``indexOfSpecies`` (the species ids);
    ``resid`` one per particle; ``bond_from``/``bond_to`` the bonded pairs as 1-based
    particle indices (VMD's molfile convention; ESPResSo's writer adds 1).  Entries of
    length ``n_atoms`` without ``indexOfSpecies`` are read per particle.

    Parameters
    ----------
    file : h5py.File
        The open H5MD file.
    species : (n_atoms,) int or None
        ``particles/<group>/species`` (the ids that ``indexOfSpecies`` lists).
    n_atoms : int
    path : Path
        The file's path, for messages.
    group_path : str
        ``particles/<group>``, for messages.

    Returns
    -------
    dict
        The entries found: ``"atomicnumber"``, ``"name"``, ``"type"`` ((n_atoms,) per
        particle), ``"resid"`` ((n_atoms,) int64), ``"bonds"`` ((n_bonds, 2) int64, 0-based);
        empty when the file has no such group.
    """
    group = file.get("parameters/vmd_structure")
    if not isinstance(group, h5py.Group):
        return {}
    base = "parameters/vmd_structure"
    out: dict = {}
    index_of_species = group.get("indexOfSpecies")
    kinds = None
    if isinstance(index_of_species, h5py.Dataset) and species is not None:
        kinds = np.asarray(index_of_species[()]).astype(np.int64).ravel()
        lookup = {int(k): i for i, k in enumerate(kinds)}
        missing = sorted(set(species.tolist()) - set(lookup))
        if missing:
            raise InputError(
                f"{path}: dataset '{base}/indexOfSpecies' lacks species {missing[:5]} of "
                f"'{group_path}/species'; list every species id there."
            )
        per_kind = np.array([lookup[int(s)] for s in species])
    for key in ("atomicnumber", "name", "type"):
        dataset = group.get(key)
        if not isinstance(dataset, h5py.Dataset):
            continue
        values = np.asarray(dataset[()]).ravel()
        if values.dtype.kind in "SO":
            values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
        if kinds is not None and len(values) == len(kinds):
            out[key] = values[per_kind]
        elif len(values) == n_atoms:
            out[key] = values
        else:
            raise InputError(
                f"{path}: dataset '{base}/{key}' has {len(values)} entries; expected one "
                f"per species in indexOfSpecies or one per particle ({n_atoms})."
            )
    resid = group.get("resid")
    if isinstance(resid, h5py.Dataset):
        if resid.shape != (n_atoms,) or resid.dtype.kind not in "iu":
            raise InputError(
                f"{path}: dataset '{base}/resid' has shape {resid.shape} and dtype "
                f"{resid.dtype}; expected ({n_atoms},) integers, one residue id per particle."
            )
        out["resid"] = resid[()].astype(np.int64)
    ends = [group.get(k) for k in ("bond_from", "bond_to")]
    if all(isinstance(e, h5py.Dataset) for e in ends):
        first, second = (np.asarray(e[()]).astype(np.int64).ravel() for e in ends)
        if first.shape != second.shape:
            raise InputError(
                f"{path}: '{base}/bond_from' and 'bond_to' have {first.size} and "
                f"{second.size} entries; they must pair up."
            )
        bonds = np.stack([first, second], axis=1) - 1  # 1-based in the VMD layout
        if bonds.size and (bonds.min() < 0 or bonds.max() >= n_atoms):
            raise InputError(
                f"{path}: dataset '{base}/bond_from': indices must be 1..{n_atoms} (VMD's "
                f"1-based particle numbers), found {int(bonds.min()) + 1}.."
                f"{int(bonds.max()) + 1}."
            )
        out["bonds"] = bonds
    return out
