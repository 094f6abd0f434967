"""Recognising molecules in an atomistic configuration and matching them to templates.

A coarse-grained mapping is defined per molecule *type* on a template molecule. To apply it to
a trajectory, every molecule of the trajectory must be found and its atoms put in template
order. This module does both:

1. :func:`find_molecules` splits the atoms into molecules, from the first source available:

   - molecule ids (``atoms.arrays["mol-id"]`` or an explicit ``mol_ids`` array), as written by
     LAMMPS and by :mod:`ase_cg.io`;
   - the bond topology (connected components of an explicit ``bonds`` list);
   - the geometry: two atoms are bonded when closer than ``scale`` times the sum of their
     covalent radii (:data:`ase.data.covalent_radii`), periodic images included.

   Molecule ids need not be contiguous or sorted, and the atoms of one molecule need not be
   contiguous in the file.

2. :class:`TemplateMatcher` matches each molecule to a template by species and bond graph
   (:class:`networkx.algorithms.isomorphism.GraphMatcher`, nodes compared by atomic number), and
   returns the order that puts the molecule's atoms in template order. Molecules already in
   template order take a fast path; molecules with the same atom order and bonds share one
   isomorphism search. When a template is symmetric (ethane's two carbons), one of the equivalent
   orderings is returned; it is the identity whenever the identity is valid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from ase.data import chemical_symbols, covalent_radii
from ase.formula import Formula
from scipy.spatial import cKDTree

from ase_cg import _keys as K
from ase_cg.errors import InputError

__all__ = [
    "BOND_SCALE",
    "MoleculeError",
    "MoleculeSet",
    "TemplateMatcher",
    "covalent_bonds",
    "find_molecules",
    "formula_of",
]

#: Two atoms are bonded when closer than ``BOND_SCALE`` × (sum of covalent radii).
BOND_SCALE = 1.2


class MoleculeError(InputError):
    """A molecule cannot be found or does not match any template."""


def formula_of(numbers) -> str:
    """Hill formula of a set of atoms (``"C2H6"``, ``"CH3"``; ``"X"`` for number 0).

    Parameters
    ----------
    numbers : (n,) int
        Atomic numbers.
    """
    symbols = [chemical_symbols[int(z)] for z in numbers]
    return Formula.from_list(symbols).format("hill")


def covalent_bonds(numbers, positions, cell=None, pbc=False, *, scale: float = BOND_SCALE):
    """Bonds from geometry: pairs closer than ``scale`` × (r_cov,i + r_cov,j).

    Parameters
    ----------
    numbers : (n_atoms,) int
        Atomic numbers.
    positions : (n_atoms, 3) float64, Å
        Positions.
    cell : (3, 3) float64, Å, optional
        Cell vectors as rows; needed where ``pbc`` is true.
    pbc : bool or (3,) bool
        Periodic directions.
    scale : float
        Tolerance factor on the sum of covalent radii.

    Returns
    -------
    (n_bonds, 2) int64
        Atom index pairs, ``i < j``, sorted.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    if len(numbers) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    radii = covalent_radii[numbers] * scale
    cutoff = 2.0 * float(radii.max())
    points, index = positions, np.arange(len(numbers))
    if pbc.any():
        if abs(np.linalg.det(box)) < 1e-12:
            raise MoleculeError(
                "cannot infer bonds across periodic boundaries: the cell is degenerate "
                f"(cell = {box.tolist()}); set a full 3D cell or pbc=False"
            )
        # Wrap, then add the periodic images that lie within the cutoff of the cell (ghosts),
        # so one k-d tree over atoms + ghosts finds every pair (scipy's C k-d tree: O(N log N)).
        inverse = np.linalg.inv(box)
        fractional = positions @ inverse
        fractional[:, pbc] -= np.floor(fractional[:, pbc])
        margin = np.where(pbc, cutoff * np.linalg.norm(inverse, axis=0), np.inf)
        reach = np.where(pbc, np.ceil(margin), 0).astype(int)
        images, owners = [fractional], [index]
        for shift in itertools.product(*(range(-r, r + 1) for r in reach)):
            if any(shift):
                shifted = fractional + shift
                inside = np.all((shifted > -margin) & (shifted < 1.0 + margin), axis=1)
                images.append(shifted[inside])
                owners.append(index[inside])
        points = np.concatenate(images) @ box
        index = np.concatenate(owners)
    tree = cKDTree(points)
    pairs = tree.query_pairs(cutoff, output_type="ndarray")
    i, j = index[pairs[:, 0]], index[pairs[:, 1]]
    distance = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)
    keep = (i != j) & (distance < radii[i] + radii[j])
    pairs = np.sort(np.stack([i[keep], j[keep]], axis=1).astype(np.int64), axis=1)
    return np.unique(pairs, axis=0).reshape(-1, 2)


@dataclass(frozen=True)
class MoleculeSet:
    """Atoms split into molecules.

    Attributes
    ----------
    atom_molecule : (n_atoms,) int64
        Molecule index (0 … n_molecules − 1) of each atom. Molecules are numbered in the order
        of their sorted molecule ids (source ``"mol-id"``) or of their lowest atom index.
    molecules : list of (n_atoms_in_molecule,) int64
        Atom indices of each molecule, ascending.
    bonds : (n_bonds, 2) int64
        Bonds within molecules (global atom indices), used to match templates.
    source : str
        Where the molecules came from: ``"mol-id"``, ``"bonds"`` or ``"geometry"``.
    """

    atom_molecule: np.ndarray
    molecules: list
    bonds: np.ndarray
    source: str

    @property
    def n_molecules(self) -> int:
        """Number of molecules."""
        return len(self.molecules)


#: molecules with more atoms than this get their bonds from a neighbour list, not all pairs
_ALL_PAIRS_MAX_ATOMS = 64


def _bonds_within_molecules(atoms, atom_molecule: np.ndarray, scale: float) -> np.ndarray:
    """Covalent bonds inside each molecule (minimum image), molecules given per atom.

    Small molecules are handled all pairs at once, grouped by size (fast for liquids of
    small molecules); larger ones through :func:`covalent_bonds` on the whole configuration.
    """
    order = np.argsort(atom_molecule, kind="stable")
    sizes = np.bincount(atom_molecule)
    members = np.split(order, np.cumsum(sizes)[:-1])
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = atoms.cell.array
    periodic = pbc.any()
    if periodic:
        if abs(np.linalg.det(cell)) < 1e-12:
            raise MoleculeError(
                "cannot infer bonds across periodic boundaries: the cell is degenerate "
                f"(cell = {cell.tolist()}); set a full 3D cell or pbc=False"
            )
        inverse = np.linalg.inv(cell)
    radii = covalent_radii[atoms.numbers] * scale
    found = []
    large = False
    for size in np.unique(sizes):
        if size < 2:
            continue
        if size > _ALL_PAIRS_MAX_ATOMS:
            large = True
            continue
        idx = np.stack([m for m in members if len(m) == size])  # (n_mol, size)
        i, j = np.triu_indices(size, k=1)
        delta = atoms.positions[idx[:, j]] - atoms.positions[idx[:, i]]  # (n_mol, n_pairs, 3)
        if periodic:
            fractional = delta @ inverse
            fractional[..., pbc] -= np.rint(fractional[..., pbc])
            delta = fractional @ cell
        bonded = np.linalg.norm(delta, axis=-1) < radii[idx[:, i]] + radii[idx[:, j]]
        found.append(np.stack([idx[:, i][bonded], idx[:, j][bonded]], axis=1))
    if large:
        bonds = covalent_bonds(atoms.numbers, atoms.positions, cell, pbc, scale=scale)
        bonds = bonds[atom_molecule[bonds[:, 0]] == atom_molecule[bonds[:, 1]]]
        bonds = bonds[sizes[atom_molecule[bonds[:, 0]]] > _ALL_PAIRS_MAX_ATOMS]
        found.append(bonds)
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    bonds = np.sort(np.concatenate(found).astype(np.int64), axis=1)
    return np.unique(bonds, axis=0).reshape(-1, 2)


def _check_bonds(bonds, n_atoms: int) -> np.ndarray:
    bonds = np.asarray(bonds)
    if bonds.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if bonds.ndim != 2 or bonds.shape[1] != 2 or not np.issubdtype(bonds.dtype, np.integer):
        raise MoleculeError(
            f"bonds must be an (n_bonds, 2) integer array of atom indices, got shape "
            f"{bonds.shape} dtype {bonds.dtype}"
        )
    bad = np.flatnonzero((bonds < 0).any(axis=1) | (bonds >= n_atoms).any(axis=1))
    if len(bad):
        raise MoleculeError(
            f"bond {int(bad[0])} {bonds[bad[0]].tolist()} refers to an atom out of range "
            f"(the configuration has {n_atoms} atoms, indices 0…{n_atoms - 1})"
        )
    return np.sort(bonds.astype(np.int64), axis=1)


def find_molecules(atoms, *, mol_ids=None, bonds=None, scale: float = BOND_SCALE) -> MoleculeSet:
    """Split the atoms of a configuration into molecules.

    Sources, in order: ``mol_ids`` (else ``atoms.arrays["mol-id"]``), ``bonds``, geometry.
    With molecule ids but no bonds, the bonds inside each molecule come from the geometry (they
    are needed to match templates).

    Parameters
    ----------
    atoms : ase.Atoms
        The configuration (positions, cell, pbc are used for the geometry).
    mol_ids : (n_atoms,) int, optional
        Molecule id of each atom (any integers; need not be contiguous or sorted).
    bonds : (n_bonds, 2) int, optional
        Atomic bonds as atom index pairs.
    scale : float
        Covalent-radius tolerance used when bonds come from geometry.

    Returns
    -------
    MoleculeSet

    Raises
    ------
    MoleculeError
        Malformed ids or bonds, or a bond joining two molecules with different ids.
    """
    n_atoms = len(atoms)
    if mol_ids is None and K.MOL_ID in atoms.arrays:
        mol_ids = atoms.arrays[K.MOL_ID]
    if bonds is not None:
        bonds = _check_bonds(bonds, n_atoms)

    if mol_ids is not None:
        mol_ids = np.asarray(mol_ids)
        if mol_ids.shape != (n_atoms,) or not np.issubdtype(mol_ids.dtype, np.integer):
            raise MoleculeError(
                f"molecule ids must be an ({n_atoms},) integer array (one per atom), got "
                f"shape {mol_ids.shape} dtype {mol_ids.dtype}"
            )
        unique_ids, atom_molecule = np.unique(mol_ids, return_inverse=True)
        atom_molecule = atom_molecule.astype(np.int64)
        source = "mol-id"
        if bonds is None:
            bonds = _bonds_within_molecules(atoms, atom_molecule, scale)
        else:
            crossing = np.flatnonzero(atom_molecule[bonds[:, 0]] != atom_molecule[bonds[:, 1]])
            if len(crossing):
                a, b = bonds[crossing[0]]
                raise MoleculeError(
                    f"bond {int(crossing[0])} joins atom {a} (molecule id {mol_ids[a]}) and "
                    f"atom {b} (molecule id {mol_ids[b]}): molecule ids and bonds disagree; "
                    "fix the molecule ids or drop the bonds"
                )
    else:
        if bonds is None:
            source = "geometry"
            bonds = covalent_bonds(
                atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc, scale=scale
            )
        else:
            source = "bonds"
        graph = scipy.sparse.coo_matrix(
            (np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n_atoms, n_atoms)
        )
        _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
        # Renumber by the lowest atom index of each molecule.
        _, first = np.unique(labels, return_index=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        atom_molecule = rank[labels]

    order = np.argsort(atom_molecule, kind="stable")
    boundaries = np.flatnonzero(np.diff(atom_molecule[order])) + 1
    molecules = np.split(order, boundaries)
    return MoleculeSet(atom_molecule=atom_molecule, molecules=molecules, bonds=bonds, source=source)


def _graph(numbers, bonds) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from((k, {"z": int(z)}) for k, z in enumerate(numbers))
    graph.add_edges_from((int(a), int(b)) for a, b in bonds)
    return graph


class TemplateMatcher:
    """Match molecules to template molecules by species and bond graph.

    Parameters
    ----------
    templates : dict[str, tuple[(n,) int, (n_bonds, 2) int]]
        Molecule type name → (atomic numbers, bonds) of its template, bonds as local indices.
    """

    def __init__(self, templates: dict):
        self._templates = {}
        for name, (numbers, bonds) in templates.items():
            numbers = np.asarray(numbers, dtype=np.int64)
            bonds = np.sort(np.asarray(bonds, dtype=np.int64).reshape(-1, 2), axis=1)
            edges = frozenset(map(tuple, bonds.tolist()))
            self._templates[name] = (numbers, edges, _graph(numbers, bonds))
        self._cache: dict = {}

    def match(self, numbers, bonds, *, label="molecule") -> tuple[str, np.ndarray]:
        """Find the template a molecule is an instance of.

        Parameters
        ----------
        numbers : (n,) int
            Atomic numbers of the molecule's atoms.
        bonds : (n_bonds, 2) int
            Bonds between them, local indices 0 … n − 1.
        label : str or callable returning str
            How to name this molecule in error messages (e.g. ``"molecule 12 (atoms 96…103)"``);
            a callable is only called when there is an error.

        Returns
        -------
        name : str
            The matching molecule type.
        order : (n,) int64
            ``order[k]`` is the local index of the atom that plays template atom ``k``.

        Raises
        ------
        MoleculeError
            No template has the molecule's species and bond graph.
        """
        numbers = np.asarray(numbers, dtype=np.int64)
        bonds = np.sort(np.asarray(bonds, dtype=np.int64).reshape(-1, 2), axis=1)
        edges = frozenset(map(tuple, bonds.tolist()))
        key = (numbers.tobytes(), edges)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = self._search(numbers, bonds, edges, label)
        self._cache[key] = result
        return result

    def _search(self, numbers, bonds, edges, label):
        for name, (t_numbers, t_edges, _) in self._templates.items():
            if np.array_equal(t_numbers, numbers) and t_edges == edges:
                return name, np.arange(len(numbers), dtype=np.int64)
        graph = _graph(numbers, bonds)
        for name, (t_numbers, t_edges, t_graph) in self._templates.items():
            if len(t_numbers) != len(numbers) or len(t_edges) != len(edges):
                continue
            if not np.array_equal(np.sort(t_numbers), np.sort(numbers)):
                continue
            matcher = nx.algorithms.isomorphism.GraphMatcher(
                t_graph, graph, node_match=lambda a, b: a["z"] == b["z"]
            )
            if matcher.is_isomorphic():
                mapping = matcher.mapping
                order = np.array([mapping[k] for k in range(len(numbers))], dtype=np.int64)
                return name, order
        known = ", ".join(
            f"'{name}' ({formula_of(t_numbers)}, {len(t_edges)} bonds)"
            for name, (t_numbers, t_edges, _) in self._templates.items()
        )
        label = label() if callable(label) else label
        raise MoleculeError(
            f"{label} ({formula_of(numbers)}, {len(edges)} bonds) matches no template of the "
            f"mapping (templates: {known}); check that the trajectory's species and molecule ids "
            "agree with the mapping's templates, or add a template for this molecule"
        )
