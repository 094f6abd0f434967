"""Pack molecules into a periodic cubic box at a given density.

Molecules sit on a simple cubic lattice (a random subset of its sites when ``n_molecules`` is
not a cube), each with a uniformly random orientation; an orientation is redrawn until no atom
comes closer than ``min_distance`` to an atom of a neighbouring molecule. The result depends
only on the seed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from ase import Atoms, units
from scipy.spatial.transform import Rotation

from ase_cg.errors import InputError
from ase_cg.reference.molecules import MoleculeTemplate

#: 1 g/cm³ in amu/Å³.
G_PER_CM3 = 1e-24 * units.mol


class PackingError(InputError):
    """Molecules cannot be packed at the requested density without overlaps."""


def box_length(template: MoleculeTemplate, n_molecules: int, density: float) -> float:
    """Edge of the cubic box holding ``n_molecules`` at mass density ``density``.

    Parameters
    ----------
    template : MoleculeTemplate
    n_molecules : int
    density : float, g/cm³

    Returns
    -------
    float, Å
    """
    return (n_molecules * template.molar_mass / (density * G_PER_CM3)) ** (1.0 / 3.0)


def pack_molecules(
    template: MoleculeTemplate,
    n_molecules: int,
    density: float,
    *,
    seed: int = 0,
    min_distance: float = 1.6,
    max_tries: int = 500,
) -> Atoms:
    """Place ``n_molecules`` copies of ``template`` in a cubic periodic box.

    Parameters
    ----------
    template : MoleculeTemplate
    n_molecules : int
    density : float, g/cm³
    seed : int
        Seed of the random orientations and lattice sites.
    min_distance : float, Å
        Smallest allowed distance between atoms of different molecules.
    max_tries : int
        Orientations tried per molecule before giving up.

    Returns
    -------
    ase.Atoms
        ``n_molecules * template.n_atoms`` atoms, molecule after molecule in template order,
        molecules whole (positions may lie outside the box), cubic cell, ``pbc=True``, masses
        and charges set, molecule ids (1-based) in ``arrays["mol-id"]``.

    Raises
    ------
    PackingError
        If ``n_molecules`` or ``density`` is not positive, or a molecule finds no orientation
        free of overlaps (lower the density, or equilibrate at it after packing lower).
    """
    if n_molecules < 1 or not density > 0:
        raise PackingError(
            f"packing {template.name!r}: need n_molecules >= 1 and density > 0 g/cm³, "
            f"got {n_molecules} and {density}"
        )
    length = box_length(template, n_molecules, density)
    per_side = math.ceil(round(n_molecules ** (1.0 / 3.0), 9))
    spacing = length / per_side
    local = template.positions - template.positions.mean(axis=0)
    radius = float(np.linalg.norm(local, axis=1).max())
    shells = max(1, math.ceil((2.0 * radius + min_distance) / spacing))
    if 2 * shells + 1 > per_side:
        shells = per_side // 2  # every site is a neighbour: the check below is exhaustive
    offsets = [
        np.array(o) for o in itertools.product(range(-shells, shells + 1), repeat=3) if any(o)
    ]

    rng = np.random.default_rng(seed)
    n_sites = per_side**3
    sites = np.sort(rng.choice(n_sites, size=n_molecules, replace=False))
    placed: dict[tuple[int, int, int], np.ndarray] = {}
    molecules = []
    for site in sites:
        index = np.array(np.unravel_index(site, (per_side,) * 3))
        centre = (index + 0.5) * spacing
        near = []
        for offset in offsets:
            neighbour = tuple(int(v) for v in (index + offset) % per_side)
            if neighbour in placed:
                near.append(placed[neighbour])
        near_atoms = np.concatenate(near) if near else np.empty((0, 3))
        for _ in range(max_tries):
            rotation = Rotation.random(random_state=rng)
            candidate = centre + rotation.apply(local)
            if near_atoms.size == 0:
                break
            delta = candidate[:, None, :] - near_atoms[None, :, :]
            delta -= length * np.round(delta / length)
            if np.sqrt((delta**2).sum(axis=-1)).min() >= min_distance:
                break
        else:
            raise PackingError(
                f"packing {template.name!r}: no overlap-free orientation at lattice site "
                f"{tuple(int(v) for v in index)} after {max_tries} tries ({n_molecules} molecules, "
                f"{density} g/cm³, spacing {spacing:.2f} Å); lower the density or min_distance"
            )
        placed[tuple(int(v) for v in index)] = candidate
        molecules.append(candidate)

    atoms = Atoms(
        template.elements * n_molecules,
        positions=np.concatenate(molecules),
        cell=[length] * 3,
        pbc=True,
        masses=np.tile(template.masses, n_molecules),
        charges=np.tile(template.charges, n_molecules),
    )
    atoms.arrays["mol-id"] = np.repeat(np.arange(1, n_molecules + 1), template.n_atoms)
    return atoms
