"""Small atomistic boxes for the mapping tests (ethane, propane, butane groups, permutations)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from scipy.spatial.transform import Rotation

from ase_cg.mapping import CGMapping

ETHANE_GROUPS = [[0, 2, 3, 4], [1, 5, 6, 7]]
PROPANE_GROUPS = [[1, 5, 7, 8], [0, 3, 4], [2, 6, 9, 10]]
BUTANE_GROUPS = [[0, 4, 6, 7], [1, 10, 11], [2, 12, 13], [3, 5, 8, 9]]


def ethane_mapping(**kwargs) -> CGMapping:
    return CGMapping.from_groups(molecule("C2H6"), ETHANE_GROUPS, name="ethane", **kwargs)


def molecule_box(
    templates,
    grid=(3, 3, 3),
    spacing=4.6,
    rng=None,
    skew=0.0,
    jitter=0.3,
    forces=True,
    velocities=True,
):
    """Rigid, randomly rotated copies of template molecules on a (skewed) grid.

    Molecules are placed on grid points (``spacing`` Å apart, so molecules never touch),
    cycling through ``templates``; atom positions are then wrapped into the cell, so many
    molecules straddle the boundary. Random forces (eV/Å) and momenta are attached.

    Returns
    -------
    atoms : ase.Atoms
        With ``arrays["mol-id"]`` (1-based ids, LAMMPS style).
    whole : (n_atoms, 3) float64
        The unwrapped positions (every molecule whole).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    grid = np.asarray(grid)
    lengths = grid * spacing
    cell = np.diag(lengths.astype(float))
    cell[1, 0] = skew * lengths[1]
    cell[2, 0] = 0.5 * skew * lengths[2]
    cell[2, 1] = skew * lengths[2]
    numbers, positions, masses, mol_ids = [], [], [], []
    points = np.stack(np.meshgrid(*[np.arange(n) for n in grid], indexing="ij"), -1).reshape(-1, 3)
    for k, point in enumerate(points):
        template = templates[k % len(templates)]
        xyz = template.positions - template.get_center_of_mass()
        xyz = Rotation.random(random_state=rng).apply(xyz)
        centre = (point / grid) @ cell + rng.uniform(-jitter, jitter, 3)
        numbers.append(template.numbers)
        positions.append(xyz + centre)
        masses.append(template.get_masses())
        mol_ids.append(np.full(len(template), k + 1))
    whole = np.concatenate(positions)
    atoms = Atoms(
        numbers=np.concatenate(numbers),
        positions=whole,
        masses=np.concatenate(masses),
        cell=cell,
        pbc=True,
    )
    atoms.arrays["mol-id"] = np.concatenate(mol_ids)
    atoms.wrap()
    if velocities:
        atoms.set_momenta(rng.normal(size=(len(atoms), 3)))
    if forces:
        atoms.calc = SinglePointCalculator(atoms, forces=rng.normal(size=(len(atoms), 3)))
    return atoms, whole


def permuted(atoms: Atoms, order) -> Atoms:
    """A copy of ``atoms`` with the atoms in ``order``, forces and momenta carried along."""
    out = atoms[order]
    forces = atoms.calc.results.get("forces") if atoms.calc is not None else None
    if forces is not None:
        out.calc = SinglePointCalculator(out, forces=forces[order])
    return out
