"""One molecule type of a mapping: template, bead groups, bead topology."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ase_cg.mapping._base import WEIGHTINGS, MappingError
from ase_cg.molecules import formula_of


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
class MoleculeType:
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


def template_arrays(template: Atoms, name: str):
    """``(numbers (n,) int64, positions (n, 3) Å, masses (n,) amu)`` of a template molecule."""
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


def concat_topology(parts: dict) -> dict[str, np.ndarray]:
    """``{"bonds": (n, 2), "angles": (n, 3), "dihedrals": (n, 4)}`` int64 from lists of parts."""
    width = {"bonds": 2, "angles": 3, "dihedrals": 4}
    return {
        key: (np.concatenate(arrays) if arrays else np.zeros((0, width[key])))
        .astype(np.int64)
        .reshape(-1, width[key])
        for key, arrays in parts.items()
    }
