r"""Fixed coarse-grained mappings: atoms to beads, force maps, CG trajectories, backmapping.

A :class:`CGMapping` holds one or several molecule *types*. Each type is a template molecule
(:class:`ase.Atoms`: species, positions, masses, and its bonds) with ``groups``: for every bead the
template atom indices it contains (each atom in at most one bead; atoms in no bead are dropped).

Physics
-------
The bead positions are a linear map of the atom positions,

.. math::

    z_I = \sum_j E_{Ij} x_j, \qquad E_{Ij} = \frac{m_j}{M_I}\ (j \in I), \quad
    M_I = \sum_{j \in I} m_j,

(centre of mass, ``weighting="mass"``; ``weighting="geometry"`` uses :math:`E_{Ij} = 1/n_I`).
``E`` has shape ``(n_beads, n_atoms)``, non-negative entries and rows summing to one. Bead masses
are :math:`M_I` for both weightings; bead velocities are bead momenta over bead masses,
:math:`v_I = \sum_{j\in I} m_j v_j / M_I`, so total momentum is conserved.

A *force map* is a matrix ``b`` of shape ``(n_beads, n_atoms)`` giving the instantaneous CG force
:math:`F_I = \sum_j b_{Ij} f_j`. It is consistent with the position map when

.. math::

    b\,E^{\mathsf T} = I_{n_\mathrm{beads}},

which :func:`check_force_map` verifies. Two maps are offered: the bead sum
(:func:`bead_sum_force_map`, :math:`b_{Ij} = 1` for :math:`j \in I`, which conserves the total
force) and the paper's pseudo-inverse (:func:`pseudo_inverse_force_map`,
:math:`b = (E E^{\mathsf T})^{-1} E`, the transpose of the Moore–Penrose pseudo-inverse
:math:`E^+ = E^{\mathsf T}(E E^{\mathsf T})^{-1}`; written :math:`\nabla E^{\mathsf T}(\nabla E
\nabla E^{\mathsf T})^{-1}` in Wang & Gómez-Bombarelli 2019 with the column convention). The
latter is differentiable in ``E`` and works on NumPy arrays and on torch tensors.

Periodic boundaries: before mapping, each molecule is made whole by walking its template's bond
tree from a reference atom (the template's most central atom) and applying the minimum image to
every bond, so molecules of any size are handled as long as each bond is shorter than half the
box; atoms that no bond reaches are placed by the minimum image from the reference atom. The bead
positions are wrapped back into the box along periodic directions.

Mapping file (JSON, :meth:`CGMapping.save`)::

    {
      "format": "ase_cg.mapping", "version": 1,
      "units": {"length": "angstrom", "mass": "amu"},
      "weighting": "mass",                       # or "geometry"
      "molecule_types": [
        {"name": "ethane",
         "species": ["C", "C", "H", ...],        # template atoms
         "positions": [[x, y, z], ...],          # Å
         "masses": [12.011, ...],                # amu, > 0
         "bonds": [[0, 1], [0, 2], ...],         # template atom index pairs
         "groups": [[0, 2, 3, 4], [1, 5, 6, 7]], # template atom indices per bead
         "bead_names": ["CH3", "CH3"]}           # bead-type name per bead
      ]
    }

Usage::

    mapping = CGMapping.from_groups(molecule("C2H6"), [[0, 2, 3, 4], [1, 5, 6, 7]],
                                    name="ethane")                  # one molecule type
    mapping = CGMapping.from_groups({"ethane": (ethane, groups),   # several types
                                     "propane": (propane, groups3, ["CH3", "CH2", "CH3"])})
    cg = mapping.map(atoms)                  # one frame → CG ase.Atoms
    system = mapping.system(atoms)           # sparse E and b, built once per layout
    z = system.map_positions(x, cells)       # (n_frames, n_atoms, 3) → (n_frames, n_beads, 3)
    map_trajectory("aa.h5", "cg.h5", mapping)   # whole files, chunk by chunk
    start = backmap(cg, mapping)             # all-atom start structure from beads
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers, chemical_symbols

from ase_cg import _keys as K
from ase_cg._paths import write_text_atomic
from ase_cg.beads import bead_types_of, set_bead_types
from ase_cg.errors import InputError
from ase_cg.molecules import (
    BOND_SCALE,
    MoleculeError,
    TemplateMatcher,
    covalent_bonds,
    find_molecules,
    formula_of,
)

__all__ = [
    "FORCE_MAPS",
    "MAPPING_FORMAT",
    "MAPPING_VERSION",
    "CGMapping",
    "MappingError",
    "MappingFileError",
    "SystemMapping",
    "backmap",
    "bead_sum_force_map",
    "check_force_map",
    "map_trajectory",
    "pseudo_inverse_force_map",
]

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


# --------------------------------------------------------------------------------------------
# Force maps


def _is_torch(array) -> bool:
    return type(array).__module__.startswith("torch")


def bead_sum_force_map(E):
    r"""Bead-sum force map: :math:`b_{Ij} = 1` if atom ``j`` is in bead ``I``, else 0.

    :math:`F_I = \sum_{j \in I} f_j`. Consistent (:math:`b E^{\mathsf T} = I`) only when each atom
    is in at most one bead and the rows of ``E`` sum to one.

    Parameters
    ----------
    E : (..., n_beads, n_atoms) numpy array or torch tensor
        Position map.

    Returns
    -------
    b : same shape and kind as ``E``
    """
    if _is_torch(E):
        return (E != 0).to(E.dtype)
    if scipy.sparse.issparse(E):
        b = scipy.sparse.csr_matrix(E, copy=True)
        b.data = (b.data != 0).astype(np.float64)
        return b
    E = np.asarray(E)
    return (E != 0).astype(E.dtype if np.issubdtype(E.dtype, np.floating) else np.float64)


def pseudo_inverse_force_map(E):
    r"""The paper's force map :math:`b = (E E^{\mathsf T})^{-1} E`.

    ``b`` is the transpose of the Moore–Penrose pseudo-inverse of ``E`` and satisfies
    :math:`b E^{\mathsf T} = I` for any ``E`` of full row rank, also for soft (overlapping)
    assignments. On torch tensors the result is differentiable in ``E`` (the auto-encoder uses
    this while learning the mapping).

    Parameters
    ----------
    E : (..., n_beads, n_atoms) numpy array or torch tensor
        Position map, full row rank.

    Returns
    -------
    b : (..., n_beads, n_atoms), same kind as ``E``
    """
    if _is_torch(E):
        import torch

        return torch.linalg.solve(E @ E.mT, E)
    if scipy.sparse.issparse(E):
        E = E.toarray()
    E = np.asarray(E, dtype=np.float64)
    try:
        return np.linalg.solve(E @ np.swapaxes(E, -1, -2), E)
    except np.linalg.LinAlgError as error:
        raise MappingError(
            "the pseudo-inverse force map needs E·Eᵀ invertible (no empty beads, no two beads "
            f"with proportional rows): {error}"
        ) from error


def check_force_map(b, E, atol: float = 1e-8) -> float:
    r"""Check that a force map is consistent with a position map: :math:`b E^{\mathsf T} = I`.

    Convention: ``E`` and ``b`` both have shape ``(n_beads, n_atoms)``; bead positions are
    ``z = E @ x`` and bead forces ``F = b @ f``.

    Parameters
    ----------
    b, E : (n_beads, n_atoms) numpy arrays, scipy sparse matrices or torch tensors
        Force map and position map.
    atol : float
        Largest allowed absolute deviation of any element of :math:`b E^{\mathsf T}` from the
        identity.

    Returns
    -------
    float
        The largest absolute deviation found.

    Raises
    ------
    MappingError
        Shapes differ, or the deviation exceeds ``atol`` (the message names the bead pair).
    """
    if _is_torch(b) or _is_torch(E):
        b = b.detach().cpu().numpy() if _is_torch(b) else b
        E = E.detach().cpu().numpy() if _is_torch(E) else E
    if tuple(b.shape) != tuple(E.shape):
        raise MappingError(f"force map shape {tuple(b.shape)} differs from E's {tuple(E.shape)}")
    product = b @ E.T
    if scipy.sparse.issparse(product):
        product = product.toarray()
    deviation = np.abs(np.asarray(product) - np.eye(E.shape[0]))
    worst = float(deviation.max()) if deviation.size else 0.0
    if worst > atol:
        i, j = np.unravel_index(np.argmax(deviation), deviation.shape)
        raise MappingError(
            f"force map inconsistent with the position map: (b·Eᵀ)[{i}, {j}] = "
            f"{product[i, j]:.6g}, expected {float(i == j)} (|b·Eᵀ − I| max {worst:.3g} > "
            f"atol {atol:g}); the bead sum needs each atom in at most one bead"
        )
    return worst


# --------------------------------------------------------------------------------------------
# Molecule types


def _bead_graph_topology(n_beads: int, bead_bonds: np.ndarray) -> dict:
    """Bead bonds, angles and dihedrals (as index arrays) from a bead bond list."""
    neighbours = [[] for _ in range(n_beads)]
    for i, j in bead_bonds.tolist():
        neighbours[i].append(j)
        neighbours[j].append(i)
    angles = [
        (i, j, k) for j in range(n_beads) for i in neighbours[j] for k in neighbours[j] if i < k
    ]
    dihedrals = [
        (i, j, k, l)
        for j, k in bead_bonds.tolist()
        for i in neighbours[j]
        if i != k
        for l in neighbours[k]  # noqa: E741
        if l != j and l != i
    ]
    return {
        "bonds": np.asarray(sorted(map(tuple, bead_bonds.tolist())), dtype=np.int64).reshape(-1, 2),
        "angles": np.asarray(sorted(angles), dtype=np.int64).reshape(-1, 3),
        "dihedrals": np.asarray(sorted(dihedrals), dtype=np.int64).reshape(-1, 4),
    }


@dataclass
class _MoleculeType:
    """One molecule type of a mapping, validated, with its derived matrices."""

    name: str
    numbers: np.ndarray  # (n_atoms,) int
    positions: np.ndarray  # (n_atoms, 3) Å
    masses: np.ndarray  # (n_atoms,) amu
    bonds: np.ndarray  # (n_bonds, 2) int
    groups: list  # list[list[int]]
    bead_names: list | None  # list[str] or None (default names assigned by CGMapping)
    weighting: str
    named: bool = field(init=False)  # bead names given by the user (else defaults)
    E: np.ndarray = field(init=False)  # (n_beads, n_atoms)
    membership: np.ndarray = field(init=False)  # (n_beads, n_atoms) 0/1
    bead_masses: np.ndarray = field(init=False)  # (n_beads,) amu
    parent: np.ndarray = field(init=False)  # (n_atoms,) unwrap tree parent (root: itself)
    root: int = field(init=False)  # the unwrap tree's root atom
    ancestors: np.ndarray = field(init=False)  # (n_atoms, n_atoms) tree paths, see _build_tree
    path_map: np.ndarray = field(init=False)  # (n_beads, n_atoms) E @ ancestors
    topology: dict = field(init=False)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def n_beads(self) -> int:
        return len(self.groups)

    def __post_init__(self):
        name = self.name
        n_atoms = self.n_atoms
        if n_atoms == 0:
            raise MappingError(f"molecule type '{name}': the template has no atoms")
        bad = np.flatnonzero(~np.isfinite(self.masses) | (self.masses <= 0))
        if len(bad):
            k = int(bad[0])
            raise MappingError(
                f"molecule type '{name}': template atom {k} ({chemical_symbols[self.numbers[k]]})"
                f" has mass {float(self.masses[k])!r}; every atom needs a mass > 0 amu (set "
                "template.set_masses(...))"
            )
        if self.weighting not in WEIGHTINGS:
            raise MappingError(
                f"molecule type '{name}': weighting {self.weighting!r} is not one of {WEIGHTINGS}"
            )
        if len(self.groups) == 0:
            raise MappingError(f"molecule type '{name}': no beads given (groups is empty)")
        owner = {}
        groups = []
        for bead, group in enumerate(self.groups):
            group = list(group)
            if len(group) == 0:
                raise MappingError(
                    f"molecule type '{name}': bead {bead} is empty; every bead needs at least "
                    "one atom"
                )
            for atom in group:
                if isinstance(atom, bool) or not isinstance(atom, int | np.integer):
                    raise MappingError(
                        f"molecule type '{name}': bead {bead} has atom index {atom!r}, which is "
                        "not an integer"
                    )
                if not 0 <= atom < n_atoms:
                    raise MappingError(
                        f"molecule type '{name}': bead {bead} has atom index {atom}, out of "
                        f"range (the template has {n_atoms} atoms, indices 0…{n_atoms - 1})"
                    )
                if atom in owner:
                    where = (
                        "twice in that bead" if owner[atom] == bead else f"in bead {owner[atom]}"
                    )
                    raise MappingError(
                        f"molecule type '{name}': atom {atom} is in bead {bead} and {where}; "
                        "each atom may belong to at most one bead"
                    )
                owner[int(atom)] = bead
            groups.append([int(a) for a in group])
        self.groups = groups
        self.named = self.bead_names is not None
        if self.bead_names is not None:
            self.bead_names = list(self.bead_names)
            if len(self.bead_names) != len(groups):
                raise MappingError(
                    f"molecule type '{name}': {len(self.bead_names)} bead names for "
                    f"{len(groups)} beads"
                )
            for bead, bead_name in enumerate(self.bead_names):
                if not isinstance(bead_name, str) or not bead_name.strip():
                    raise MappingError(
                        f"molecule type '{name}': bead {bead} has name {bead_name!r}; bead names "
                        "must be non-empty strings"
                    )
        bonds = np.asarray(self.bonds, dtype=np.int64).reshape(-1, 2)
        if ((bonds < 0) | (bonds >= n_atoms)).any() or (bonds[:, 0] == bonds[:, 1]).any():
            raise MappingError(
                f"molecule type '{name}': template bonds {bonds.tolist()} refer to atoms out of "
                f"range 0…{n_atoms - 1} or bond an atom to itself"
            )
        self.bonds = np.unique(np.sort(bonds, axis=1), axis=0).reshape(-1, 2)

        self.membership = np.zeros((len(groups), n_atoms))
        for bead, group in enumerate(groups):
            self.membership[bead, group] = 1.0
        self.bead_masses = self.membership @ self.masses
        weights = self.membership * (self.masses if self.weighting == "mass" else 1.0)
        self.E = weights / weights.sum(axis=1, keepdims=True)
        self._build_tree()
        self._build_topology()

    def _build_tree(self):
        graph = nx.Graph()
        graph.add_nodes_from(range(self.n_atoms))
        graph.add_edges_from(self.bonds.tolist())
        root = max(
            range(self.n_atoms),
            key=lambda k: (nx.closeness_centrality(graph, k), -k),
        )
        self.parent = np.full(self.n_atoms, root, dtype=np.int64)
        for child, parent in nx.bfs_predecessors(graph, root):
            self.parent[child] = parent
        self.root = root
        # ancestors[k, j] = 1 when atom j is on the tree path root → k (root excluded), so
        # x_k = x_root + Σ_j ancestors[k, j] (x_j − x_parent(j)).
        self.ancestors = np.zeros((self.n_atoms, self.n_atoms))
        for k in range(self.n_atoms):
            j = k
            while j != root:
                self.ancestors[k, j] = 1.0
                j = self.parent[j]
        # Bead positions from the root atom and the bond vectors: z = x_root + (E·A)·Δ.
        self.path_map = self.E @ self.ancestors

    def _build_topology(self):
        bead_of = np.full(self.n_atoms, -1, dtype=np.int64)
        for bead, group in enumerate(self.groups):
            bead_of[group] = bead
        a, b = bead_of[self.bonds[:, 0]], bead_of[self.bonds[:, 1]]
        crossing = (a >= 0) & (b >= 0) & (a != b)
        bead_bonds = np.unique(
            np.sort(np.stack([a[crossing], b[crossing]], axis=1), axis=1), axis=0
        )
        self.topology = _bead_graph_topology(self.n_beads, bead_bonds.reshape(-1, 2))

    def environment_key(self, bead: int) -> tuple[str, str]:
        """(formula, graph hash) identifying the bead's chemical environment."""
        graph = nx.Graph()
        in_bead = set(self.groups[bead])
        graph.add_nodes_from(
            (k, {"label": f"{z}{'*' if k in in_bead else ''}"}) for k, z in enumerate(self.numbers)
        )
        graph.add_edges_from(self.bonds.tolist())
        digest = nx.weisfeiler_lehman_graph_hash(
            graph, node_attr="label", iterations=max(3, self.n_atoms)
        )
        return formula_of(self.numbers[self.groups[bead]]), digest

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "species": [chemical_symbols[z] for z in self.numbers],
            "positions": self.positions.tolist(),
            "masses": self.masses.tolist(),
            "bonds": self.bonds.tolist(),
            "groups": [list(g) for g in self.groups],
            "bead_names": list(self.bead_names),
        }

    def template(self) -> Atoms:
        atoms = Atoms(numbers=self.numbers, positions=self.positions, masses=self.masses)
        atoms.info["name"] = self.name
        return atoms


def _template_arrays(template: Atoms, name: str):
    if not isinstance(template, Atoms):
        raise MappingError(
            f"molecule type '{name}': the template must be an ase.Atoms, got "
            f"{type(template).__name__}"
        )
    numbers = np.asarray(template.numbers, dtype=np.int64)
    if "masses" not in template.arrays and (numbers == 0).any():
        k = int(np.flatnonzero(numbers == 0)[0])
        raise MappingError(
            f"molecule type '{name}': template atom {k} has no element (X) and no mass; set "
            "template.set_masses(...)"
        )
    masses = np.asarray(template.get_masses(), dtype=np.float64)
    return numbers, np.asarray(template.positions, dtype=np.float64), masses


# --------------------------------------------------------------------------------------------
# The mapping


class CGMapping:
    r"""A fixed linear coarse-grained mapping for one or several molecule types.

    Build it with :meth:`from_groups` (or :meth:`combine`, :meth:`load`, :meth:`from_dict`).

    Bead-type names: given per molecule type with ``bead_names``, or by default the Hill formula
    of the bead's atoms (``"CH3"``). Beads with the same formula and the same chemical
    environment (the template's bond graph with the bead marked, compared by
    Weisfeiler–Lehman hash) share one type, so both ethane beads are ``"CH3"``; beads with the
    same formula in a different environment get ``"CH3_2"``, ``"CH3_3"``, … Beads sharing a
    type name must have the same mass.

    Examples
    --------
    >>> from ase.build import molecule
    >>> ethane = molecule("C2H6")
    >>> mapping = CGMapping.from_groups(ethane, [[0, 2, 3, 4], [1, 5, 6, 7]], name="ethane")
    >>> mapping.bead_types
    ['CH3']
    """

    def __init__(self, molecule_types: list, *, weighting: str = "mass"):
        if not molecule_types:
            raise MappingError("a mapping needs at least one molecule type")
        self._types = {}
        for mol_type in molecule_types:
            if mol_type.name in self._types:
                raise MappingError(
                    f"two molecule types are named '{mol_type.name}'; give them distinct names"
                )
            if mol_type.weighting != weighting:
                raise MappingError(
                    f"molecule type '{mol_type.name}' uses weighting '{mol_type.weighting}', the "
                    f"mapping '{weighting}'; one mapping has one weighting"
                )
            self._types[mol_type.name] = mol_type
        self.weighting = weighting
        self._assign_bead_names()
        self._check_masses()
        self._matcher = TemplateMatcher(
            {name: (t.numbers, t.bonds) for name, t in self._types.items()}
        )
        self._check_distinct_templates()
        self._topology_cache = None  # (layout key, topology) of the last topology() call

    # ---------------------------------------------------------------------------- builders

    @classmethod
    def from_groups(
        cls,
        template,
        groups=None,
        *,
        bead_names=None,
        weighting: str = "mass",
        name: str | None = None,
        bonds=None,
    ) -> CGMapping:
        """Mapping from bead groups on template molecules.

        Two forms:

        - one molecule type: ``from_groups(template, groups, bead_names=..., name=...,
          bonds=...)``;
        - several: ``from_groups({name: (template, groups), name2: (template2, groups2,
          bead_names2), ...})`` (``groups``, ``bead_names``, ``name`` and ``bonds`` are then
          not given).

        Parameters
        ----------
        template : ase.Atoms or dict
            One molecule (positions in Å, masses in amu; ASE's default masses if none set), or
            the dict of several as above.
        groups : list of list of int
            For each bead, the template atom indices it contains; each atom in at most one bead.
        bead_names : list of str, optional
            Bead-type name of each bead (default: from formula and environment, see class doc).
        weighting : {"mass", "geometry"}
            Centre of mass (default) or centre of geometry bead positions.
        name : str, optional
            Molecule type name (default: ``template.info["name"]`` or the Hill formula).
        bonds : (n_bonds, 2) int, optional
            Template bonds (default: from geometry, covalent radii × 1.2).

        Raises
        ------
        MappingError
            Empty bead, atom in two beads, index out of range, zero or missing masses, …
        """
        if isinstance(template, dict):
            if (
                groups is not None
                or bead_names is not None
                or name is not None
                or bonds is not None
            ):
                raise MappingError(
                    "with a dict of molecule types, give groups and bead names inside the dict: "
                    "{name: (template, groups[, bead_names])}"
                )
            types = []
            for type_name, spec in template.items():
                if not isinstance(spec, tuple | list) or len(spec) not in (2, 3):
                    raise MappingError(
                        f"molecule type '{type_name}': expected a tuple (template, groups[, "
                        f"bead_names]), got {spec!r:.80}"
                    )
                types.append(
                    cls._make_type(
                        spec[0],
                        spec[1],
                        spec[2] if len(spec) == 3 else None,
                        weighting,
                        str(type_name),
                        None,
                    )
                )
            return cls(types, weighting=weighting)
        if groups is None:
            raise MappingError("from_groups(template, groups): groups is missing")
        if name is None:
            name = template.info.get("name") if isinstance(template, Atoms) else None
            if name is None and isinstance(template, Atoms):
                name = formula_of(template.numbers)
        mol_type = cls._make_type(template, groups, bead_names, weighting, str(name), bonds)
        return cls([mol_type], weighting=weighting)

    @staticmethod
    def _make_type(template, groups, bead_names, weighting, name, bonds) -> _MoleculeType:
        numbers, positions, masses = _template_arrays(template, name)
        if bonds is None:
            bonds = covalent_bonds(numbers, positions)
        if isinstance(groups, np.ndarray):
            groups = groups.tolist()
        if not isinstance(groups, list | tuple):
            raise MappingError(
                f"molecule type '{name}': groups must be a list of atom-index lists, got "
                f"{type(groups).__name__}"
            )
        groups = [g.tolist() if isinstance(g, np.ndarray) else g for g in groups]
        for bead, group in enumerate(groups):
            if not isinstance(group, list | tuple):
                raise MappingError(
                    f"molecule type '{name}': bead {bead} must be a list of atom indices, got "
                    f"{group!r}"
                )
        return _MoleculeType(
            name=name,
            numbers=numbers,
            positions=positions,
            masses=masses,
            bonds=bonds,
            groups=groups,
            bead_names=bead_names,
            weighting=weighting,
        )

    @classmethod
    def combine(cls, *mappings: CGMapping) -> CGMapping:
        """One mapping holding the molecule types of several (type names must be distinct).

        Same result as :meth:`from_groups` with a dict of all the types: default bead names are
        derived again over all types, user-given (and loaded) names are kept.
        """
        types = []
        for mapping in mappings:
            for t in mapping._types.values():
                types.append(
                    _MoleculeType(
                        name=t.name,
                        numbers=t.numbers,
                        positions=t.positions,
                        masses=t.masses,
                        bonds=t.bonds,
                        groups=t.groups,
                        bead_names=t.bead_names if t.named else None,
                        weighting=t.weighting,
                    )
                )
        weighting = mappings[0].weighting if mappings else "mass"
        return cls(types, weighting=weighting)

    def _assign_bead_names(self):
        taken = set()
        for t in self._types.values():
            if t.bead_names is not None:
                taken.update(t.bead_names)
        by_key: dict = {}
        count: dict = {}
        for t in self._types.values():
            if t.bead_names is not None:
                continue
            names = []
            for bead in range(t.n_beads):
                key = t.environment_key(bead)
                if key not in by_key:
                    formula = key[0]
                    candidate, n = formula, count.get(formula, 0)
                    while candidate in taken:
                        n += 1
                        candidate = f"{formula}_{n + 1}" if n else formula
                    count[formula] = n
                    taken.add(candidate)
                    by_key[key] = candidate
                names.append(by_key[key])
            t.bead_names = names

    def _check_masses(self):
        seen = {}
        for t in self._types.values():
            for bead, (bead_name, mass) in enumerate(zip(t.bead_names, t.bead_masses, strict=True)):
                if bead_name in seen:
                    other, other_mass = seen[bead_name]
                    if not np.isclose(mass, other_mass, rtol=1e-9, atol=0):
                        raise MappingError(
                            f"bead type '{bead_name}' has mass {other_mass:.6g} amu in {other} "
                            f"and {mass:.6g} amu in molecule type '{t.name}' bead {bead}; beads "
                            "sharing a type name must have the same mass: rename one"
                        )
                else:
                    seen[bead_name] = (f"molecule type '{t.name}' bead {bead}", mass)

    def _check_distinct_templates(self):
        names = list(self._types)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                t = self._types[b]
                try:
                    found, _ = self._matcher.match(t.numbers, t.bonds)
                except MoleculeError:
                    continue
                if found != b:
                    raise MappingError(
                        f"molecule types '{a}' and '{b}' have the same species and bond graph, "
                        "so molecules cannot be told apart; merge them into one type"
                    )

    # ---------------------------------------------------------------------------- properties

    @property
    def molecule_types(self) -> list[str]:
        """Molecule type names, in definition order."""
        return list(self._types)

    @property
    def groups(self) -> dict[str, list[list[int]]]:
        """Molecule type name → template atom indices of each bead."""
        return {name: [list(g) for g in t.groups] for name, t in self._types.items()}

    @property
    def bead_names(self) -> dict[str, list[str]]:
        """Molecule type name → bead-type name of each bead, in template bead order."""
        return {name: list(t.bead_names) for name, t in self._types.items()}

    @property
    def bead_types(self) -> list[str]:
        """Sorted unique bead-type names over all molecule types."""
        return sorted({b for t in self._types.values() for b in t.bead_names})

    @property
    def bead_masses(self) -> dict[str, float]:
        """Bead-type name → bead mass (amu)."""
        return {
            b: float(m)
            for t in self._types.values()
            for b, m in zip(t.bead_names, t.bead_masses, strict=True)
        }

    @property
    def templates(self) -> dict[str, Atoms]:
        """Molecule type name → a copy of its template molecule."""
        return {name: t.template() for name, t in self._types.items()}

    @property
    def template_bonds(self) -> dict[str, np.ndarray]:
        """Molecule type name → (n_bonds, 2) int64 template atom bonds."""
        return {name: t.bonds.copy() for name, t in self._types.items()}

    @property
    def bead_topology(self) -> dict[str, dict]:
        """Molecule type name → bead topology within one molecule.

        Each value has ``"bead_types"`` (list of str, per bead) and int64 arrays ``"bonds"``
        (n, 2), ``"angles"`` (n, 3), ``"dihedrals"`` (n, 4) of bead indices within the molecule.
        Beads I and J are bonded when any atomic bond joins an atom of I and an atom of J;
        angles and dihedrals are the chains of two and three bead bonds.
        """
        return {
            name: {"bead_types": list(t.bead_names)} | {k: v.copy() for k, v in t.topology.items()}
            for name, t in self._types.items()
        }

    def position_matrix(self, molecule_type: str) -> np.ndarray:
        """E of one molecule type: (n_beads, n_atoms) float64, rows sum to 1 (template order)."""
        return self._type(molecule_type).E.copy()

    def _type(self, name: str) -> _MoleculeType:
        try:
            return self._types[name]
        except KeyError:
            raise MappingError(
                f"no molecule type '{name}' in this mapping (types: {self.molecule_types})"
            ) from None

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{name}: {t.n_atoms} atoms → {t.n_beads} beads {t.bead_names}"
            for name, t in self._types.items()
        )
        return f"CGMapping({parts}; weighting={self.weighting!r})"

    # ---------------------------------------------------------------------------- mapping

    def system(
        self,
        atoms: Atoms,
        *,
        mol_ids=None,
        bonds=None,
        force_map: str = "bead_sum",
        scale: float = BOND_SCALE,
    ) -> SystemMapping:
        """Mapping matrices for a whole atomistic configuration (built once per layout).

        Molecules come from ``mol_ids`` / ``atoms.arrays["mol-id"]``, else ``bonds``, else the
        geometry (:func:`ase_cg.molecules.find_molecules`), and are matched to the templates by
        species and bond graph, so atoms may be in any order.

        Parameters
        ----------
        atoms : ase.Atoms
            One configuration of the atomistic system.
        mol_ids : (n_atoms,) int, optional
            Molecule id per atom (default: ``atoms.arrays["mol-id"]`` if present).
        bonds : (n_bonds, 2) int, optional
            Atomic bonds (global indices).
        force_map : {"bead_sum", "pseudo_inverse"}
            Force map put in ``SystemMapping.force_matrix``.
        scale : float
            Covalent-radius tolerance for bonds from geometry.

        Raises
        ------
        MoleculeError
            A molecule matches no template (species or bonds differ).
        MappingError
            Atom masses differ from the template's, or an unknown force map.
        """
        return SystemMapping(
            self, atoms, mol_ids=mol_ids, bonds=bonds, force_map=force_map, scale=scale
        )

    def map(self, atoms: Atoms, *, mol_ids=None, bonds=None, force_map: str = "bead_sum") -> Atoms:
        """Map one atomistic configuration to a CG ``ase.Atoms``.

        Returns
        -------
        ase.Atoms
            Beads ordered molecule by molecule, template bead order within a molecule:
            ``numbers`` all 0, masses the bead masses (amu), positions (Å) the bead centres with
            molecules made whole and wrapped into the box, ``arrays["mol-id"]`` the molecule
            index, ``arrays["bead-type"]`` the bead-type names; forces (eV/Å, mapped with
            ``force_map``) through a ``SinglePointCalculator`` when ``atoms`` has forces;
            velocities (bead momenta / bead masses) when ``atoms`` has momenta. Same cell and pbc.
        """
        return self.system(atoms, mol_ids=mol_ids, bonds=bonds, force_map=force_map).map_atoms(
            atoms
        )

    def _split_cg(self, cg_atoms: Atoms) -> list[tuple[str, np.ndarray]]:
        """(molecule type, bead indices) per molecule of a CG configuration."""
        bead_types = bead_types_of(cg_atoms)
        for key, value in ((K.MOL_ID, cg_atoms.arrays.get(K.MOL_ID)), (K.BEAD_TYPE, bead_types)):
            if value is None:
                raise MappingError(
                    f"the CG configuration has no arrays['{key}']; map atoms with "
                    "CGMapping.map or read a CG H5MD file, which set it"
                )
        mol_ids = np.asarray(cg_atoms.arrays[K.MOL_ID])
        order = np.argsort(mol_ids, kind="stable")
        bounds = np.flatnonzero(np.diff(mol_ids[order])) + 1
        by_sequence: dict = {}
        for name, t in self._types.items():
            by_sequence.setdefault(tuple(t.bead_names), []).append(name)
        molecules = []
        for beads in np.split(order, bounds) if len(order) else []:
            sequence = tuple(bead_types[beads].tolist())
            names = by_sequence.get(sequence)
            if names is None:
                raise MappingError(
                    f"CG molecule {mol_ids[beads[0]]} (beads {beads.tolist()}) has bead types "
                    f"{list(sequence)}, which match no molecule type of the mapping "
                    f"({ {n: t.bead_names for n, t in self._types.items()} })"
                )
            if len(names) > 1:
                first = self._types[names[0]].topology
                for other in names[1:]:
                    if any(
                        not np.array_equal(first[k], self._types[other].topology[k]) for k in first
                    ):
                        raise MappingError(
                            f"CG molecule {mol_ids[beads[0]]}: molecule types {names} have the "
                            "same bead types but different bead topologies; give their beads "
                            "distinct names"
                        )
            molecules.append((names[0], beads))
        return molecules

    def topology(self, cg_atoms: Atoms) -> dict[str, np.ndarray]:
        """Global bead bonds, angles and dihedrals of a CG configuration.

        Molecules are found from ``arrays["mol-id"]`` and matched to molecule types by their
        sequence of ``arrays["bead-type"]`` names. Molecules may be interleaved, but the beads of
        one molecule must appear in template bead order (as :meth:`map` writes them).

        Returns
        -------
        dict
            ``"bonds"`` (n, 2), ``"angles"`` (n, 3), ``"dihedrals"`` (n, 4), int64 global bead
            indices. The result for the last bead layout is kept, so calling this every MD
            step costs one comparison of the ``mol-id`` and ``bead-type`` arrays.
        """
        key = None
        if K.MOL_ID in cg_atoms.arrays and K.BEAD_TYPE in cg_atoms.arrays:
            key = (
                np.asarray(cg_atoms.arrays[K.MOL_ID]).tobytes(),
                np.asarray(cg_atoms.arrays[K.BEAD_TYPE]).astype(str).tobytes(),
            )
            cached = self._topology_cache
            if cached is not None and cached[0] == key:
                return {k: v.copy() for k, v in cached[1].items()}
        parts = {"bonds": [], "angles": [], "dihedrals": []}
        for name, beads in self._split_cg(cg_atoms):
            topo = self._types[name].topology
            for kind in parts:
                parts[kind].append(beads[topo[kind]])
        result = _concat_topology(parts)
        self._topology_cache = (key, result)
        return {k: v.copy() for k, v in result.items()}

    # ---------------------------------------------------------------------------- files

    def to_dict(self) -> dict:
        """JSON-able description (the schema in the module docstring)."""
        return {
            "format": MAPPING_FORMAT,
            "version": MAPPING_VERSION,
            "units": dict(MAPPING_UNITS),
            "weighting": self.weighting,
            "molecule_types": [t.to_dict() for t in self._types.values()],
        }

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "mapping dict") -> CGMapping:
        """Mapping from :meth:`to_dict` output, validated.

        Raises
        ------
        MappingFileError
            Wrong format tag or version, a missing key or a value of the wrong type; the message
            names the key (e.g. ``molecule_types[0].groups``).
        """
        try:
            return cls(_parse_mapping_dict(data, source), weighting=data["weighting"])
        except MappingFileError:
            raise
        except (MappingError, TypeError, ValueError, KeyError, AttributeError) as error:
            # a value that passes the schema but not the mapping's own checks (e.g. a null
            # mass), or an element of the wrong type: name the source
            raise MappingFileError(f"{source}: {error}") from None

    def save(self, path) -> None:
        """Write the mapping as indented JSON (atomic: temporary file + rename)."""
        write_text_atomic(path, _format_json(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path) -> CGMapping:
        """Read a mapping JSON file written by :meth:`save` (or by hand)."""
        path = Path(path)
        try:
            text = path.read_text()
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as error:
            raise MappingFileError(f"cannot read mapping file {path}: {error}") from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise MappingFileError(f"mapping file {path} is not valid JSON: {error}") from error
        return cls.from_dict(data, source=f"mapping file {path}")


def _format_json(data: dict) -> str:
    """Indented JSON with every innermost list (a position, a group, a bond) on one line."""

    def encode(value, indent: str) -> str:
        inner = indent + "  "
        if isinstance(value, dict):
            items = [f"{inner}{json.dumps(k)}: {encode(v, inner)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + indent + "}"
        if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            items = [inner + encode(v, inner) for v in value]
            return "[\n" + ",\n".join(items) + "\n" + indent + "]"
        return json.dumps(value, ensure_ascii=False)

    return encode(data, "")


def _concat_topology(parts: dict) -> dict[str, np.ndarray]:
    width = {"bonds": 2, "angles": 3, "dihedrals": 4}
    return {
        key: (np.concatenate(arrays) if arrays else np.zeros((0, width[key])))
        .astype(np.int64)
        .reshape(-1, width[key])
        for key, arrays in parts.items()
    }


#: Keys of a mapping file and of each of its molecule types (CGMapping.to_dict).
_MAPPING_KEYS = ("format", "version", "units", "weighting", "molecule_types")
_MOLECULE_KEYS = ("name", "species", "positions", "masses", "bonds", "groups", "bead_names")


def _parse_mapping_dict(data, source: str) -> list[_MoleculeType]:
    def fail(key, message):
        raise MappingFileError(f"{source}: key '{key}': {message}")

    def need(mapping, key, kind, where):
        full = f"{where}.{key}" if where else key
        if key not in mapping:
            fail(full, "missing")
        value = mapping[key]
        if not isinstance(value, kind):
            fail(full, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
        return value

    def no_unknown_keys(mapping, known, where):
        unknown = sorted((str(key) for key in mapping if key not in known), key=str)
        if unknown:
            fail(
                f"{where}.{unknown[0]}" if where else unknown[0],
                f"unknown key (a typo?); the keys here are {sorted(known)}",
            )

    if not isinstance(data, dict):
        raise MappingFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
    no_unknown_keys(data, _MAPPING_KEYS, "")
    fmt = need(data, "format", str, "")
    if fmt != MAPPING_FORMAT:
        fail("format", f"is {fmt!r}, expected {MAPPING_FORMAT!r} (not a mapping file?)")
    version = need(data, "version", int, "")
    if version > MAPPING_VERSION or version < 1:
        fail("version", f"is {version}; this ase_cg reads versions 1…{MAPPING_VERSION}")
    units = need(data, "units", dict, "")
    if units != MAPPING_UNITS:
        fail("units", f"is {units}, expected {MAPPING_UNITS}")
    weighting = need(data, "weighting", str, "")
    if weighting not in WEIGHTINGS:
        fail("weighting", f"is {weighting!r}, expected one of {WEIGHTINGS}")
    entries = need(data, "molecule_types", list, "")
    if not entries:
        fail("molecule_types", "is empty; a mapping needs at least one molecule type")
    types = []
    for k, entry in enumerate(entries):
        where = f"molecule_types[{k}]"
        if not isinstance(entry, dict):
            fail(where, f"expected an object, got {type(entry).__name__}")
        no_unknown_keys(entry, _MOLECULE_KEYS, where)
        name = need(entry, "name", str, where)
        species = need(entry, "species", list, where)
        unknown = [s for s in species if s not in atomic_numbers]
        if unknown:
            fail(f"{where}.species", f"unknown element symbols {unknown}")
        n = len(species)
        raw_positions = need(entry, "positions", list, where)
        try:
            positions = np.asarray(raw_positions, dtype=np.float64)
        except (TypeError, ValueError):
            fail(f"{where}.positions", "must be a list of [x, y, z] numbers (Å)")
        if positions.shape != (n, 3):
            fail(
                f"{where}.positions",
                f"shape {positions.shape}, expected ({n}, 3) (one per species)",
            )
        raw_masses = need(entry, "masses", list, where)
        try:
            masses = np.asarray(raw_masses, dtype=np.float64)
        except (TypeError, ValueError):
            fail(f"{where}.masses", "must be a list of numbers (amu)")
        if masses.shape != (n,):
            fail(f"{where}.masses", f"length {masses.shape}, expected {n} (one per species)")
        raw_bonds = need(entry, "bonds", list, where)
        try:
            bonds = np.asarray(raw_bonds, dtype=np.int64).reshape(-1, 2)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an index ≥ 2**63
            fail(f"{where}.bonds", "must be a list of [i, j] atom index pairs")
        groups = need(entry, "groups", list, where)
        for b, group in enumerate(groups):
            if not isinstance(group, list) or not all(
                isinstance(a, int) and not isinstance(a, bool) for a in group
            ):
                fail(
                    f"{where}.groups[{b}]", f"must be a list of integer atom indices, got {group!r}"
                )
        bead_names = need(entry, "bead_names", list, where)
        types.append(
            _MoleculeType(
                name=name,
                numbers=np.array([atomic_numbers[s] for s in species], dtype=np.int64),
                positions=positions,
                masses=masses,
                bonds=bonds,
                groups=groups,
                bead_names=bead_names,
                weighting=weighting,
            )
        )
    return types


# --------------------------------------------------------------------------------------------
# A mapped system


class SystemMapping:
    r"""Sparse mapping matrices for one atomistic layout (vectorised, frame-batched).

    Built by :meth:`CGMapping.system`. Beads are ordered molecule by molecule (molecule index
    order: sorted molecule ids, or lowest atom index), template bead order within a molecule.

    Attributes
    ----------
    n_atoms, n_beads, n_molecules : int
    bead_types : (n_beads,) str
        Bead-type name of each bead.
    bead_type_index : (n_beads,) int64
        Index of each bead's type in ``mapping.bead_types``.
    bead_masses : (n_beads,) float64, amu
    bead_mol_ids : (n_beads,) int64
        Molecule index of each bead.
    molecule_types : list of str
        Molecule type of each molecule.
    atom_mol_ids : (n_atoms,) int64
        Molecule index of each atom.
    atom_bonds : (n_bonds, 2) int64
        Bonds between atoms within molecules (given, or found from the geometry).
    position_matrix : scipy.sparse.csr_matrix (n_beads, n_atoms)
        E: non-negative, rows sum to 1.
    force_matrix : scipy.sparse.csr_matrix (n_beads, n_atoms)
        The chosen force map b (:math:`b E^{\mathsf T} = I`).
    momentum_matrix : scipy.sparse.csr_matrix (n_beads, n_atoms)
        :math:`m_j / M_I` for :math:`j \in I`: bead velocities from atom velocities.
    pbc : (3,) bool
    topology : dict
        Global bead ``"bonds"`` (n, 2), ``"angles"`` (n, 3), ``"dihedrals"`` (n, 4), int64.
    force_map : str
    """

    def __init__(self, mapping: CGMapping, atoms: Atoms, *, mol_ids, bonds, force_map, scale):
        if force_map not in FORCE_MAPS:
            raise MappingError(f"force map {force_map!r} is not one of {FORCE_MAPS}")
        self.mapping = mapping
        self.force_map = force_map
        self.n_atoms = len(atoms)
        self.numbers = np.asarray(atoms.numbers, dtype=np.int64).copy()
        self.pbc = np.asarray(atoms.pbc, dtype=bool).copy()
        molset = find_molecules(atoms, mol_ids=mol_ids, bonds=bonds, scale=scale)
        self.n_molecules = molset.n_molecules
        self.atom_mol_ids = molset.atom_molecule
        self.atom_bonds = molset.bonds

        # Bonds per molecule, in local indices.
        order = np.concatenate(molset.molecules) if molset.molecules else np.zeros(0, np.int64)
        sizes = np.array([len(m) for m in molset.molecules], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        local = np.empty(self.n_atoms, dtype=np.int64)
        local[order] = np.arange(self.n_atoms) - np.repeat(starts, sizes)
        bond_mol = molset.atom_molecule[molset.bonds[:, 0]]
        bond_order = np.argsort(bond_mol, kind="stable")
        bond_counts = np.bincount(bond_mol, minlength=self.n_molecules)
        local_bonds = np.split(local[molset.bonds[bond_order]], np.cumsum(bond_counts)[:-1])

        atom_masses = atoms.get_masses() if "masses" in atoms.arrays else None
        types = []
        per_type: dict[str, list] = {name: [] for name in mapping.molecule_types}
        for m, members in enumerate(molset.molecules):
            name, perm = mapping._matcher.match(
                self.numbers[members],
                local_bonds[m],
                label=lambda m=m, members=members: _molecule_label(
                    m, members, atoms, molset.source
                ),
            )
            in_template_order = members[perm]
            types.append(name)
            per_type[name].append((m, in_template_order))
        self.molecule_types = types

        n_beads_mol = np.array([mapping._types[t].n_beads for t in types], dtype=np.int64)
        bead_offset = np.concatenate([[0], np.cumsum(n_beads_mol)[:-1]]).astype(np.int64)
        self.n_beads = int(n_beads_mol.sum())

        force_of = {
            "bead_sum": bead_sum_force_map,
            "pseudo_inverse": pseudo_inverse_force_map,
        }[force_map]
        bead_types = np.empty(self.n_beads, dtype=object)
        bead_masses = np.empty(self.n_beads)
        self.bead_mol_ids = np.repeat(np.arange(self.n_molecules), n_beads_mol).astype(np.int64)
        self.parent = np.arange(self.n_atoms, dtype=np.int64)
        rows, cols, e_vals, b_vals, p_vals = [], [], [], [], []
        # (row, col, value) triplets of the unwrapping matrices, see _build_unwrap
        unwrap = {"root_beads": [], "path_beads": [], "root_atoms": [], "path_atoms": []}
        topo_parts = {"bonds": [], "angles": [], "dihedrals": []}
        for name, entries in per_type.items():
            if not entries:
                continue
            t = mapping._types[name]
            mols = np.array([m for m, _ in entries], dtype=np.int64)
            atom_idx = np.stack([a for _, a in entries])  # (n_mol_t, n_atoms_t)
            if atom_masses is not None:
                _check_atom_masses(t, atom_masses, atom_idx, mols, molset, atoms)
            offsets = bead_offset[mols]  # (n_mol_t,)
            bead_rows = offsets[:, None] + np.arange(t.n_beads)[None, :]  # (n_mol_t, n_beads_t)
            bead_types[bead_rows.ravel()] = np.tile(np.array(t.bead_names, dtype=object), len(mols))
            bead_masses[bead_rows.ravel()] = np.tile(t.bead_masses, len(mols))
            self.parent[atom_idx] = atom_idx[:, t.parent]
            root = atom_idx[:, t.root]
            unwrap["root_beads"].append((bead_rows.ravel(), np.repeat(root, t.n_beads)))
            unwrap["root_atoms"].append((atom_idx.ravel(), np.repeat(root, t.n_atoms)))
            nz_bead, nz_atom = np.nonzero(t.path_map)
            unwrap["path_beads"].append(
                (
                    (offsets[:, None] + nz_bead[None, :]).ravel(),
                    atom_idx[:, nz_atom].ravel(),
                    np.tile(t.path_map[nz_bead, nz_atom], len(mols)),
                )
            )
            nz_row, nz_col = np.nonzero(t.ancestors)
            unwrap["path_atoms"].append(
                (
                    atom_idx[:, nz_row].ravel(),
                    atom_idx[:, nz_col].ravel(),
                    np.ones(len(mols) * len(nz_row)),
                )
            )
            b_t = force_of(t.E)
            momentum_t = t.membership * t.masses / t.bead_masses[:, None]
            nz_bead, nz_atom = np.nonzero((t.membership != 0) | (b_t != 0))
            rows.append((offsets[:, None] + nz_bead[None, :]).ravel())
            cols.append(atom_idx[:, nz_atom].ravel())
            e_vals.append(np.tile(t.E[nz_bead, nz_atom], len(mols)))
            b_vals.append(np.tile(b_t[nz_bead, nz_atom], len(mols)))
            p_vals.append(np.tile(momentum_t[nz_bead, nz_atom], len(mols)))
            for key in topo_parts:
                topo_parts[key].append(
                    (offsets[:, None, None] + t.topology[key][None]).reshape(
                        -1, t.topology[key].shape[1]
                    )
                )
        shape = (self.n_beads, self.n_atoms)

        def matrix(values):
            if not rows:
                return scipy.sparse.csr_matrix(shape)
            return scipy.sparse.csr_matrix(
                (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=shape
            )

        self.position_matrix = matrix(e_vals)
        self.position_matrix.eliminate_zeros()
        self.force_matrix = matrix(b_vals)
        self.force_matrix.eliminate_zeros()
        self.momentum_matrix = matrix(p_vals)
        self.momentum_matrix.eliminate_zeros()
        self.bead_types = bead_types.astype(str)
        self.bead_masses = bead_masses
        type_index = {name: k for k, name in enumerate(mapping.bead_types)}
        self.bead_type_index = np.array([type_index[b] for b in self.bead_types], dtype=np.int64)
        if topo_parts["bonds"]:
            # Sort each kind by its first bead so the order follows the beads.
            for key in topo_parts:
                merged = np.concatenate(topo_parts[key])
                topo_parts[key] = [merged[np.lexsort(merged.T[::-1])]] if len(merged) else []
        self.topology = _concat_topology(topo_parts)
        self._build_flat_operators(unwrap)

    def _build_flat_operators(self, unwrap: dict) -> None:
        """Sparse operators on component-major arrays (3·n, n_frames).

        Every map here is linear per Cartesian component, so ``M`` acts on a chunk of frames
        laid out as ``a[3 i + c, f]`` (atom ``i``, component ``c``, frame ``f``) as one sparse
        product ``kron(M, I₃) @ a``: the whole chunk at once, contiguous in memory.
        """
        n_beads, n_atoms = self.n_beads, self.n_atoms

        def triplets(parts, shape, ones=False):
            if not parts:
                return scipy.sparse.csr_matrix(shape)
            r = np.concatenate([p[0] for p in parts])
            c = np.concatenate([p[1] for p in parts])
            v = np.ones(len(r)) if ones else np.concatenate([p[2] for p in parts])
            return scipy.sparse.csr_matrix((v, (r, c)), shape=shape)

        def flat(matrix):
            return scipy.sparse.kron(matrix, scipy.sparse.identity(3), format="csr")

        bond = scipy.sparse.identity(n_atoms, format="csr") - scipy.sparse.csr_matrix(
            (np.ones(n_atoms), (np.arange(n_atoms), self.parent)), shape=(n_atoms, n_atoms)
        )
        self._flat = {
            "bond": flat(bond),  # Δ_j = s_j − s_parent(j)  (0 for roots)
            "root_beads": flat(triplets(unwrap["root_beads"], (n_beads, n_atoms), ones=True)),
            "path_beads": flat(triplets(unwrap["path_beads"], (n_beads, n_atoms))),
            "root_atoms": flat(triplets(unwrap["root_atoms"], (n_atoms, n_atoms), ones=True)),
            "path_atoms": flat(triplets(unwrap["path_atoms"], (n_atoms, n_atoms), ones=True)),
            "position": flat(self.position_matrix),
            "force": flat(self.force_matrix),
            "momentum": flat(self.momentum_matrix),
        }

    def __repr__(self) -> str:
        return (
            f"SystemMapping({self.n_atoms} atoms, {self.n_molecules} molecules → "
            f"{self.n_beads} beads, force_map={self.force_map!r})"
        )

    # ------------------------------------------------------------------ frame-batched maps

    def _frames(self, array, what: str) -> tuple[np.ndarray, bool]:
        array = np.asarray(array, dtype=np.float64)
        single = array.ndim == 2
        if single:
            array = array[None]
        if array.ndim != 3 or array.shape[1:] != (self.n_atoms, 3):
            raise MappingError(
                f"{what} must have shape (n_frames, {self.n_atoms}, 3) or ({self.n_atoms}, 3) "
                f"for this system, got {np.shape(array)}"
            )
        return array, single

    def _apply(self, name: str, array: np.ndarray) -> np.ndarray:
        """Apply operator ``name`` to (n_frames, n, 3) → (n_frames, m, 3)."""
        return _frames_major(self._flat[name] @ _component_major(array), array.shape[0])

    def _cells(self, cells, n_frames: int) -> np.ndarray | None:
        if not self.pbc.any():
            return None
        if cells is None:
            raise MappingError("this system is periodic: map_positions needs the cells")
        cells = np.broadcast_to(np.asarray(cells, dtype=np.float64), (n_frames, 3, 3))
        det = np.abs(np.linalg.det(cells))
        if (det < 1e-12).any():
            frame = int(np.flatnonzero(det < 1e-12)[0])
            raise MappingError(
                f"frame {frame}: the cell {cells[frame].tolist()} is degenerate but pbc is "
                f"{self.pbc.tolist()}; periodic mapping needs a full 3D cell"
            )
        return cells

    def _fractional_and_bonds(self, positions: np.ndarray, cells: np.ndarray):
        """Fractional coordinates s and minimum-image bond vectors Δ, both component-major
        (3 n_atoms, n_frames); Δ_j = s_j − s_parent(j) along the template's bond tree."""
        fractional = _component_major(positions @ np.linalg.inv(cells))
        bonds = self._flat["bond"] @ fractional
        if self.pbc.all():
            bonds -= np.rint(bonds)
        else:
            periodic = np.tile(self.pbc, self.n_atoms)
            bonds[periodic] -= np.rint(bonds[periodic])
        return fractional, bonds

    def unwrap(self, positions, cells=None) -> np.ndarray:
        """Atom positions with every molecule made whole.

        Each atom is placed at the minimum image of its bond to its parent in the template's
        bond tree (rooted at the template's most central atom), so molecules of any size come
        out whole as long as every bond is shorter than half the box. The root atom stays
        where it is.

        Parameters
        ----------
        positions : (n_frames, n_atoms, 3) float64, Å
        cells : (n_frames, 3, 3) or (3, 3) float64, Å
            Cell vectors as rows (ignored when the system is not periodic).

        Returns
        -------
        (n_frames, n_atoms, 3) float64, Å
        """
        positions, single = self._frames(positions, "positions")
        cells = self._cells(cells, positions.shape[0])
        if cells is None:
            return positions[0] if single else positions
        fractional, bonds = self._fractional_and_bonds(positions, cells)
        whole = self._flat["root_atoms"] @ fractional + self._flat["path_atoms"] @ bonds
        whole = _frames_major(whole, positions.shape[0]) @ cells
        return whole[0] if single else whole

    def map_positions(self, positions, cells=None) -> np.ndarray:
        """Bead positions: molecules made whole, E applied, beads wrapped into the box.

        With periodic boundaries the bead positions are computed in fractional coordinates as
        :math:`z = s_\\mathrm{root} + (E A)\\,\\Delta` (``A`` the template's tree paths, Δ the
        minimum-image bond vectors), which equals E applied to the whole molecule.

        Parameters
        ----------
        positions : (n_frames, n_atoms, 3) float64, Å
            (or (n_atoms, 3) for one frame, returning (n_beads, 3)).
        cells : (n_frames, 3, 3) or (3, 3) float64, Å
            Cell vectors as rows; needed when the system is periodic.

        Returns
        -------
        (n_frames, n_beads, 3) float64, Å
        """
        positions, single = self._frames(positions, "positions")
        cells = self._cells(cells, positions.shape[0])
        if cells is None:
            beads = self._apply("position", positions)
            return beads[0] if single else beads
        fractional, bonds = self._fractional_and_bonds(positions, cells)
        beads = self._flat["root_beads"] @ fractional + self._flat["path_beads"] @ bonds
        if self.pbc.all():
            beads -= np.floor(beads)
        else:
            periodic = np.tile(self.pbc, self.n_beads)
            beads[periodic] -= np.floor(beads[periodic])
        beads = _frames_major(beads, positions.shape[0]) @ cells
        return beads[0] if single else beads

    def map_forces(self, forces) -> np.ndarray:
        """Bead forces F = b·f: (n_frames, n_atoms, 3) eV/Å → (n_frames, n_beads, 3) eV/Å."""
        forces, single = self._frames(forces, "forces")
        out = self._apply("force", forces)
        return out[0] if single else out

    def map_velocities(self, velocities) -> np.ndarray:
        """Bead velocities (bead momentum / bead mass): (n_frames, n_atoms, 3) → (n_frames,
        n_beads, 3), ASE velocity units (Å per ASE time unit)."""
        velocities, single = self._frames(velocities, "velocities")
        out = self._apply("momentum", velocities)
        return out[0] if single else out

    def map_atoms(self, atoms: Atoms) -> Atoms:
        """Map one configuration with this layout to a CG ``ase.Atoms`` (see
        :meth:`CGMapping.map`)."""
        if len(atoms) != self.n_atoms or not np.array_equal(atoms.numbers, self.numbers):
            raise MappingError(
                "this configuration's atoms differ from the layout the SystemMapping was built "
                f"for ({len(atoms)} vs {self.n_atoms} atoms or different species); build a new "
                "one with mapping.system(atoms)"
            )
        cell = atoms.cell.array
        bead_positions = self.map_positions(atoms.positions, cell)
        cg = Atoms(
            numbers=np.zeros(self.n_beads, dtype=int),
            positions=bead_positions,
            masses=self.bead_masses,
            cell=cell,
            pbc=atoms.pbc,
        )
        cg.arrays[K.MOL_ID] = self.bead_mol_ids.copy()
        set_bead_types(cg, self.bead_types)
        if atoms.has("momenta"):
            cg.set_velocities(self.map_velocities(atoms.get_velocities()))
        forces = _attached_forces(atoms)
        if forces is not None:
            cg.calc = SinglePointCalculator(cg, forces=self.map_forces(forces))
        cg.info.update({k: v for k, v in atoms.info.items() if k in ("step", "time")})
        return cg


def _component_major(array: np.ndarray) -> np.ndarray:
    """(n_frames, n, 3) → contiguous (3 n, n_frames)."""
    return np.ascontiguousarray(array.reshape(array.shape[0], -1).T)


def _frames_major(array: np.ndarray, n_frames: int) -> np.ndarray:
    """Contiguous (3 n, n_frames) → (n_frames, n, 3)."""
    return np.ascontiguousarray(np.asarray(array).T).reshape(n_frames, -1, 3)


def _attached_forces(atoms: Atoms) -> np.ndarray | None:
    calc = atoms.calc
    if calc is None:
        return None
    results = getattr(calc, "results", {})
    if "forces" in results:
        return np.asarray(results["forces"])
    return None


def _molecule_label(m: int, members: np.ndarray, atoms: Atoms, source: str) -> str:
    shown = members[:8].tolist()
    more = ", …" if len(members) > 8 else ""
    label = f"molecule {m} (atoms {', '.join(map(str, shown))}{more}"
    if source == "mol-id" and K.MOL_ID in atoms.arrays:
        label += f"; mol-id {atoms.arrays[K.MOL_ID][members[0]]}"
    return label + f"; molecules from {source})"


def _check_atom_masses(t: _MoleculeType, atom_masses, atom_idx, mols, molset, atoms) -> None:
    """Masses (amu) of the molecules of one type, ``atom_idx`` (n_mol, n_atoms_t) in template
    order, against the template's."""
    masses = atom_masses[atom_idx]
    bad = ~np.isclose(masses, t.masses[None, :], rtol=1e-4, atol=0)
    if bad.any():
        row, k = (int(v) for v in np.argwhere(bad)[0])
        label = _molecule_label(int(mols[row]), molset.molecules[mols[row]], atoms, molset.source)
        raise MappingError(
            f"{label}: atom {int(atom_idx[row, k])}, template atom {k} "
            f"({chemical_symbols[t.numbers[k]]}), has mass {float(masses[row, k])!r} amu, the "
            f"template of '{t.name}' {float(t.masses[k])!r} amu; fix the trajectory's masses or "
            "the mapping's template"
        )


# --------------------------------------------------------------------------------------------
# Backmapping


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
    from scipy.spatial.transform import Rotation

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
    molecules = mapping._split_cg(cg_atoms)
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
        t = mapping._types[name]
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
            from scipy.spatial.transform import Rotation

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


# --------------------------------------------------------------------------------------------
# Trajectories


def map_trajectory(
    input_h5,
    output_h5,
    mapping: CGMapping,
    *,
    chunk_size: int = 256,
    force_map: str = "bead_sum",
    compression: str | None = "gzip",
    progress: bool | None = None,
    topology=None,
    split_constraints: str = "warn",
    **read_options,
) -> SystemMapping:
    """Map an all-atom trajectory to a CG H5MD trajectory, chunk by chunk.

    Memory holds one chunk of frames at a time, so files larger than memory are fine. The CG
    file has the bead types, bead masses, molecule ids (molecule index per bead), the CG bonds
    (:attr:`SystemMapping.topology`), the mapped positions (wrapped), forces (with
    ``force_map``) and velocities where the input has them, the box, steps and times, and the
    input's ``observables/pressure`` and ``pressure_tensor`` (the system's, unchanged).

    Parameters
    ----------
    input_h5 : path or Trajectory
        All-atom trajectory: an H5MD file, any file MDAnalysis reads (with ``topology``,
        e.g. ``traj.trr`` + ``topol.tpr``), or an :mod:`ase_cg.trajectory` object. Molecules
        come from its molecule ids, else its bonds, else the first frame's geometry.
    output_h5 : path
        CG H5MD file to write (written to a temporary file and renamed when complete).
    mapping : CGMapping
    chunk_size : int
        Frames read, mapped and written at a time.
    force_map : {"bead_sum", "pseudo_inverse"}
    compression : {"gzip", "lzf", None}
        HDF5 filter of the output's per-frame datasets (gzip: smallest; lzf or None: faster).
    progress : bool or None
        Show a tqdm bar with frames/s (``None``: only on a terminal).
    topology : path, optional
        Topology for MDAnalysis inputs (``.tpr``, LAMMPS data file …).
    split_constraints : {"warn", "error", "allow"}
        What to do when the mapping splits a constrained bond between beads
        (:class:`ase_cg.trajectory.MappedTrajectory`).
    **read_options
        Passed to :func:`ase_cg.trajectory.open_trajectory` (``lammps_units`` …).

    Returns
    -------
    SystemMapping
        The mapping matrices used (built from the first frame).
    """
    from tqdm import tqdm

    from ase_cg._paths import check_output_not_input
    from ase_cg.io import H5MDWriter
    from ase_cg.trajectory import MappedTrajectory, open_trajectory

    if chunk_size < 1:
        raise MappingError(f"chunk_size must be ≥ 1 frame, got {chunk_size}")
    if isinstance(input_h5, (str, os.PathLike)):
        check_output_not_input(output_h5, [input_h5], option="output")
    trajectory = open_trajectory(input_h5, topology=topology, **read_options)
    try:
        if trajectory.bead_types is not None:
            raise MappingError(
                f"{input_h5}: is already a CG trajectory (it has bead types); map an all-atom "
                "trajectory"
            )
        mapped = MappedTrajectory(
            trajectory, mapping, force_map=force_map, split_constraints=split_constraints
        )
        system = mapped.system
        disable = None if progress is None else not progress
        with (
            H5MDWriter(
                output_h5,
                bead_types=system.bead_types,
                masses=system.bead_masses,
                mol_ids=system.bead_mol_ids,
                bonds=system.topology["bonds"],
                time_step=mapped.time_step,
                compression=compression,
                pbc=system.pbc,
            ) as writer,
            tqdm(total=mapped.n_frames, unit="frame", desc="map", disable=disable) as bar,
        ):
            steps = np.asarray(mapped.steps)
            times = mapped.times
            # the pressure is the whole system's, the same in either representation
            carried_observables = mapped.observable_names
            for frames in mapped.iter_chunks(chunk_size):
                cells = mapped.cells(frames)
                beads = mapped.positions(frames)
                forces = mapped.forces(frames) if mapped.has_forces else None
                velocities = mapped.velocities(frames) if mapped.has_velocities else None
                observables = {
                    name: mapped.observable(name, frames) for name in carried_observables
                }
                for k, frame in enumerate(range(*frames.indices(mapped.n_frames))):
                    writer.append(
                        beads[k],
                        cells[k],
                        forces=None if forces is None else forces[k],
                        velocities=None if velocities is None else velocities[k],
                        step=int(steps[frame]),
                        time=None if times is None else float(times[frame]),
                        observables={name: values[k] for name, values in observables.items()},
                    )
                bar.update(len(beads))
    finally:
        if trajectory is not input_h5:
            trajectory.close()
    return system
