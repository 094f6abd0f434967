"""Backmapping: an all-atom start structure from CG beads (:func:`backmap`)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.spatial.transform import Rotation

from ase_cg import _keys as K
from ase_cg.mapping.cgmapping import CGMapping


def _kabsch(reference: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotations R (n, 3, 3) with ``R @ reference_c[i] ≈ target_c[i]`` (both centred).

    reference : (n_points, 3), target : (n, n_points, 3).
    """
    h = np.einsum("pi,npj->nij", reference, target)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nji,nkj->nik", vt, u)))
    d[d == 0] = 1.0
    correction = np.zeros((len(h), 3, 3))
    correction[:, 0, 0] = 1.0
    correction[:, 1, 1] = 1.0
    correction[:, 2, 2] = d
    return np.einsum("nji,njk,nlk->nil", vt, correction, u)


def _axis_rotations(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) about unit ``axes`` (n, 3) by ``angles`` (n,) rad."""
    return Rotation.from_rotvec(axes * angles[:, None]).as_matrix()


def backmap(cg_atoms: Atoms, mapping: CGMapping, *, seed: int | None = 0) -> Atoms:
    """All-atom configuration from a CG one: templates rigidly aligned to each molecule's beads.

    Each molecule's template is rotated (Kabsch, proper rotations only) and translated so that
    its bead centres best match the molecule's bead positions (least squares). Where the beads
    do not fix the orientation, the free part is drawn at random from ``seed``: for molecules
    whose template beads are collinear (ethane's two beads) a random rotation about the bead
    axis; for one-bead molecules a uniformly random rotation. Molecules are whole within the
    box's minimum image and atoms are then wrapped into the box.

    Parameters
    ----------
    cg_atoms : ase.Atoms
        CG configuration with ``arrays["mol-id"]`` and ``arrays["bead-type"]`` (as from
        :meth:`CGMapping.map`); positions in Å.
    mapping : CGMapping
    seed : int or None
        Seed of the random rotations (``None``: fresh randomness).

    Returns
    -------
    ase.Atoms
        Atoms molecule by molecule (CG molecule order), template atom order within a molecule;
        masses from the templates, ``arrays["mol-id"]`` the CG molecule ids, same cell and pbc.
        Rigid templates, so atoms of one molecule never overlap.
    """
    rng = np.random.default_rng(seed)
    molecules = mapping.split_molecules(cg_atoms)
    cell = cg_atoms.cell.array
    pbc = np.asarray(cg_atoms.pbc, dtype=bool)
    periodic = pbc.any() and abs(np.linalg.det(cell)) > 1e-12
    positions = cg_atoms.positions
    mol_ids = np.asarray(cg_atoms.arrays[K.MOL_ID])
    placed = [None] * len(molecules)
    by_type: dict[str, list[int]] = {}
    for k, (name, _) in enumerate(molecules):
        by_type.setdefault(name, []).append(k)
    for name, ks in by_type.items():
        t = mapping.molecule_type(name)
        beads = np.stack([molecules[k][1] for k in ks])  # (n_mol, n_beads_t)
        target = positions[beads]  # (n_mol, n_beads_t, 3)
        if periodic:
            delta = target - target[:, :1]
            shift = np.rint(delta @ np.linalg.inv(cell)) * pbc
            target = target - shift @ cell
        template_beads = t.E @ t.positions  # (n_beads_t, 3)
        ref_centre = template_beads.mean(axis=0)
        reference = template_beads - ref_centre
        centre = target.mean(axis=1)
        rank = np.linalg.matrix_rank(reference, tol=1e-6) if t.n_beads > 1 else 0
        n_mol = len(ks)
        if rank == 0:
            rotations = Rotation.random(n_mol, random_state=rng).as_matrix().reshape(n_mol, 3, 3)
        else:
            rotations = _kabsch(reference, target - centre[:, None])
            if rank == 1:
                axes = target[:, -1] - target[:, 0]
                lengths = np.linalg.norm(axes, axis=1, keepdims=True)
                axes = np.where(lengths > 0, axes / np.where(lengths > 0, lengths, 1), [0, 0, 1])
                spin = _axis_rotations(axes, rng.uniform(0, 2 * np.pi, n_mol))
                rotations = np.einsum("nij,njk->nik", spin, rotations)
        atoms_xyz = np.einsum("nij,aj->nai", rotations, t.positions - ref_centre) + centre[:, None]
        for row, k in enumerate(ks):
            placed[k] = (t, atoms_xyz[row], mol_ids[molecules[k][1][0]])
    numbers = np.concatenate([p[0].numbers for p in placed]) if placed else np.zeros(0, int)
    result = Atoms(
        numbers=numbers,
        positions=np.concatenate([p[1] for p in placed]) if placed else np.zeros((0, 3)),
        masses=np.concatenate([p[0].masses for p in placed]) if placed else np.zeros(0),
        cell=cell,
        pbc=cg_atoms.pbc,
    )
    result.arrays[K.MOL_ID] = (
        np.concatenate([np.full(p[0].n_atoms, p[2]) for p in placed]).astype(np.int64)
        if placed
        else np.zeros(0, np.int64)
    )
    if periodic:
        result.wrap()
    return result
