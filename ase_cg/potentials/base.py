"""The CG model: a sum of energy terms over one graph of beads, with forces and stress by autograd.

Every potential in ase_cg (pair splines, bonded splines, the prior, SchNet) is an
:class:`EnergyTerm`: a ``torch.nn.Module`` that maps a :class:`CGGraph` to per-bead energies.
:class:`CGModel` sums them and derives forces and stress in one place:

.. math::

    E = \\sum_t \\sum_I e^{(t)}_I, \\qquad
    F_I = -\\frac{\\partial E}{\\partial x_I}, \\qquad
    \\sigma = \\frac{1}{V} \\frac{\\partial E}{\\partial \\varepsilon}\\Big|_{\\varepsilon=0}

where the strain ε deforms positions and cell together (x → x(1+ε), h → h(1+ε)), so the stress
includes every periodic image. Terms see geometry only through difference vectors (pair vectors
with their cell shifts, minimum-image bond vectors), which makes every term translation-invariant
and lets the LAMMPS plugin feed LAMMPS's own (ghost-atom) pair vectors to the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import scipy.sparse
import torch
from torch import Tensor, nn

from ase_cg import _keys as K
from ase_cg.beads import bead_types_of
from ase_cg.neighbors import neighbor_pairs


class CGGraph(NamedTuple):
    """Geometry of a batch of CG systems as seen by energy terms.

    All vectors are differentiable functions of the bead positions and the strain.

    Attributes
    ----------
    bead_types : (n_beads,) int64
        Index into the model's ``bead_type_names``.
    system_index : (n_beads,) int64
    pair_i, pair_j : (n_pairs,) int64
        Directed neighbour pairs within the model cutoff (both directions present).
    pair_vectors : (n_pairs, 3) float, Å
        ``x_j − x_i`` including the periodic shift.
    pair_excluded : (n_pairs,) bool
        True for pairs that non-bonded pair terms must skip (few bonds apart).
    bonds : (n_bonds, 2) int64
    bond_vectors : (n_bonds, 3) float, Å
        Minimum-image ``x_b − x_a``.
    angles : (n_angles, 3) int64
    angle_vectors : (n_angles, 2, 3) float, Å
        Minimum-image ``x_a − x_b`` and ``x_c − x_b`` (b is the vertex).
    dihedrals : (n_dihedrals, 4) int64
    dihedral_vectors : (n_dihedrals, 3, 3) float, Å
        Minimum-image ``x_b − x_a``, ``x_c − x_b``, ``x_d − x_c``.
    """

    bead_types: Tensor
    system_index: Tensor
    pair_i: Tensor
    pair_j: Tensor
    pair_vectors: Tensor
    pair_excluded: Tensor
    bonds: Tensor
    bond_vectors: Tensor
    angles: Tensor
    angle_vectors: Tensor
    dihedrals: Tensor
    dihedral_vectors: Tensor

    @property
    def n_beads(self) -> int:
        return self.bead_types.shape[0]


TERM_TYPES: dict[str, type[EnergyTerm]] = {}


def register_term(cls: type[EnergyTerm]) -> type[EnergyTerm]:
    """Class decorator: make an :class:`EnergyTerm` subclass loadable from model files by name."""
    if cls.__name__ in TERM_TYPES and TERM_TYPES[cls.__name__] is not cls:
        raise ValueError(f"two energy terms are named {cls.__name__}")
    TERM_TYPES[cls.__name__] = cls
    return cls


class EnergyTerm(nn.Module):
    """Base class of all energy terms.

    Subclasses set the class attribute ``kind`` (``"pair"``, ``"bond"``, ``"angle"``,
    ``"dihedral"``, ``"manybody"`` or ``"composite"``), implement ``forward(graph) -> (n_beads,)``
    per-bead energies in eV, and ``config()`` returning the JSON-able keyword arguments of their
    constructor, so that ``type(term)(**term.config())`` rebuilds the term and
    ``load_state_dict`` restores its tensors (model files hold no pickled code).
    """

    kind: ClassVar[str] = ""

    @property
    def cutoff(self) -> float:
        """Largest pair distance (Å) this term needs in the neighbour list; 0 for bonded terms."""
        return 0.0

    @property
    def message_passing_layers(self) -> int:
        """Number of message-passing hops (a bead feels beads layers · cutoff away); 1 for pairs."""
        return 1 if self.cutoff > 0 else 0

    def config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement config()")


def _scatter_to_beads(values: Tensor, index: Tensor, n_beads: int) -> Tensor:
    """Sum ``values`` (n,) into ``n_beads`` slots at ``index`` (n,)."""
    out = torch.zeros(n_beads, dtype=values.dtype, device=values.device)
    return out.index_add(0, index, values)


def pair_energies_to_beads(graph: CGGraph, pair_energy: Tensor) -> Tensor:
    """Per-bead energies from per-directed-pair energies φ(r_ij).

    Each undirected pair appears twice in the directed list; giving half of φ to bead i on each
    appearance gives each bead ½ Σ_j φ(r_ij) and the system Σ_{i<j} φ(r_ij).
    """
    return _scatter_to_beads(0.5 * pair_energy, graph.pair_i, graph.n_beads)


def tuple_energies_to_beads(graph: CGGraph, indices: Tensor, energy: Tensor) -> Tensor:
    """Per-bead energies from bonded-term energies, shared equally among the term's beads.

    Parameters
    ----------
    indices : (n_terms, k) int64
        Bead indices of each bond/angle/dihedral.
    energy : (n_terms,) float, eV
    """
    k = indices.shape[1]
    shared = (energy / k).unsqueeze(1).expand(-1, k).reshape(-1)
    return _scatter_to_beads(shared, indices.reshape(-1), graph.n_beads)


@dataclass
class SystemTopology:
    """Bonded topology and exclusions of one CG system (NumPy, global bead indices).

    Attributes
    ----------
    bead_type_index : (n_beads,) int64
    bonds : (n_bonds, 2) int64
    angles : (n_angles, 3) int64
    dihedrals : (n_dihedrals, 4) int64
    exclusion_bonds : int
        Non-bonded pair terms skip bead pairs at most this many bonds apart (3 excludes 1-2,
        1-3 and 1-4 pairs, as LAMMPS ``special_bonds lj 0 0 0``).
    """

    bead_type_index: np.ndarray
    bonds: np.ndarray
    angles: np.ndarray
    dihedrals: np.ndarray
    exclusion_bonds: int = 3

    def __post_init__(self) -> None:
        self.bead_type_index = np.asarray(self.bead_type_index, dtype=np.int64)
        self.bonds = np.asarray(self.bonds, dtype=np.int64).reshape(-1, 2)
        self.angles = np.asarray(self.angles, dtype=np.int64).reshape(-1, 3)
        self.dihedrals = np.asarray(self.dihedrals, dtype=np.int64).reshape(-1, 4)
        self._excluded_keys = self._excluded_pair_keys()

    @property
    def n_beads(self) -> int:
        return self.bead_type_index.shape[0]

    def _excluded_pair_keys(self) -> np.ndarray:
        """Sorted keys ``i * n_beads + j`` of ordered bead pairs within ``exclusion_bonds``."""
        n = self.n_beads
        if len(self.bonds) == 0 or self.exclusion_bonds <= 0:
            return np.zeros(0, dtype=np.int64)
        a, b = self.bonds[:, 0], self.bonds[:, 1]
        adjacency = scipy.sparse.coo_matrix(
            (np.ones(2 * len(a)), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n)
        ).tocsr()
        reach = scipy.sparse.identity(n, format="csr")
        step = scipy.sparse.identity(n, format="csr") + adjacency
        for _ in range(self.exclusion_bonds):
            reach = (reach @ step).astype(bool).astype(np.float64)
        reach = reach.tocoo()
        keep = reach.row != reach.col
        return np.sort(reach.row[keep].astype(np.int64) * n + reach.col[keep])

    def excluded(self, pair_i: np.ndarray, pair_j: np.ndarray) -> np.ndarray:
        """(n_pairs,) bool: which pairs non-bonded pair terms must skip."""
        if len(self._excluded_keys) == 0:
            return np.zeros(len(pair_i), dtype=bool)
        keys = pair_i * self.n_beads + pair_j
        return np.isin(keys, self._excluded_keys, assume_unique=False)


def make_batch(
    positions: list[np.ndarray] | np.ndarray,
    cells: list[np.ndarray] | np.ndarray,
    topology: SystemTopology,
    cutoff: float,
    *,
    pbc: bool = True,
    reference_forces: np.ndarray | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> dict[str, Tensor]:
    """Concatenate frames of one CG system into a batch with neighbour lists.

    Parameters
    ----------
    positions : (n_frames, n_beads, 3) float, Å
    cells : (n_frames, 3, 3) float, Å
    topology : SystemTopology
        The same for every frame.
    cutoff : float, Å
        Neighbour-list cutoff (the model's ``cutoff``; a calculator may add a skin).
    pbc : bool
    reference_forces : (n_frames, n_beads, 3) float, eV/Å, optional
        Mapped all-atom forces, stored under ``REFERENCE_FORCES`` for force matching.

    Returns
    -------
    dict of tensors keyed by the constants of :mod:`ase_cg._keys`.
    """
    positions = np.asarray(positions, dtype=np.float64)
    cells = np.asarray(cells, dtype=np.float64)
    if positions.ndim == 2:
        positions, cells = positions[None], cells[None]
    n_frames, n_beads, _ = positions.shape
    if n_beads != topology.n_beads:
        raise ValueError(f"positions have {n_beads} beads but the topology has {topology.n_beads}")
    pair_i, pair_j, shifts, excluded = [], [], [], []
    for frame in range(n_frames):
        i, j, s = neighbor_pairs(positions[frame], cells[frame], pbc, cutoff)
        excluded.append(topology.excluded(i, j))
        offset = frame * n_beads
        pair_i.append(i + offset)
        pair_j.append(j + offset)
        shifts.append(s)
    offsets = (np.arange(n_frames, dtype=np.int64) * n_beads)[:, None, None]

    def tile(indices: np.ndarray) -> Tensor:
        width = indices.shape[1]
        tiled = (indices[None] + offsets).reshape(-1, width)
        return torch.as_tensor(tiled, dtype=torch.int64, device=device)

    batch = {
        K.POSITIONS: torch.as_tensor(positions.reshape(-1, 3), dtype=dtype, device=device),
        K.CELL: torch.as_tensor(cells, dtype=dtype, device=device),
        K.BEAD_TYPE_INDEX: torch.as_tensor(
            np.tile(topology.bead_type_index, n_frames), dtype=torch.int64, device=device
        ),
        K.SYSTEM_INDEX: torch.arange(n_frames, device=device).repeat_interleave(n_beads),
        K.PAIR_I: torch.as_tensor(np.concatenate(pair_i), device=device),
        K.PAIR_J: torch.as_tensor(np.concatenate(pair_j), device=device),
        K.PAIR_SHIFTS: torch.as_tensor(np.concatenate(shifts), dtype=dtype, device=device),
        K.PAIR_EXCLUDED: torch.as_tensor(np.concatenate(excluded), device=device),
        K.BONDS: tile(topology.bonds),
        K.ANGLES: tile(topology.angles),
        K.DIHEDRALS: tile(topology.dihedrals),
    }
    if not pbc:
        batch[K.CELL] = torch.zeros_like(batch[K.CELL])
    if reference_forces is not None:
        batch[K.REFERENCE_FORCES] = torch.as_tensor(
            np.asarray(reference_forces).reshape(-1, 3), dtype=dtype, device=device
        )
    return batch


def _minimum_image(vectors: Tensor, cells: Tensor, periodic: bool) -> Tensor:
    """Shortest periodic images of ``vectors`` (n, 3) in their cells (n, 3, 3)."""
    if not periodic:
        return vectors
    fractional = torch.linalg.solve(cells.transpose(1, 2), vectors.unsqueeze(-1)).squeeze(-1)
    return vectors - torch.bmm(torch.round(fractional).unsqueeze(1), cells).squeeze(1)


def build_graph(batch: dict[str, Tensor], positions: Tensor, cells: Tensor) -> CGGraph:
    """The :class:`CGGraph` of ``batch`` at (possibly strained) ``positions`` and ``cells``."""
    system = batch[K.SYSTEM_INDEX]
    periodic = bool(torch.any(cells != 0))
    pair_i, pair_j = batch[K.PAIR_I], batch[K.PAIR_J]
    shifts = torch.bmm(batch[K.PAIR_SHIFTS].unsqueeze(1), cells[system[pair_i]]).squeeze(1)
    pair_vectors = positions[pair_j] - positions[pair_i] + shifts

    def chain_vectors(indices: Tensor) -> Tensor:
        steps = positions[indices[:, 1:]] - positions[indices[:, :-1]]
        n, k, _ = steps.shape
        step_cells = cells[system[indices[:, :-1]]].reshape(n * k, 3, 3)
        return _minimum_image(steps.reshape(n * k, 3), step_cells, periodic).reshape(n, k, 3)

    bonds, angles, dihedrals = batch[K.BONDS], batch[K.ANGLES], batch[K.DIHEDRALS]
    angle_steps = chain_vectors(angles)
    # angle vectors point from the vertex b to a and to c
    angle_vectors = torch.stack([-angle_steps[:, 0], angle_steps[:, 1]], dim=1)
    return CGGraph(
        bead_types=batch[K.BEAD_TYPE_INDEX],
        system_index=system,
        pair_i=pair_i,
        pair_j=pair_j,
        pair_vectors=pair_vectors,
        pair_excluded=batch[K.PAIR_EXCLUDED],
        bonds=bonds,
        bond_vectors=chain_vectors(bonds).reshape(-1, 3),
        angles=angles,
        angle_vectors=angle_vectors,
        dihedrals=dihedrals,
        dihedral_vectors=chain_vectors(dihedrals),
    )


class CGModel(nn.Module):
    """A CG potential: a sum of :class:`EnergyTerm` s, with the mapping it was trained with.

    Parameters
    ----------
    bead_type_names : list of str
        Bead types, in the order of the ``bead_type_index`` the terms see.
    terms : list of EnergyTerm
    mapping : ase_cg.mapping.CGMapping, optional
        The atom → bead mapping (gives the bonded topology of CG ``ase.Atoms``).
    exclusion_bonds : int
        Non-bonded pair terms skip bead pairs at most this many bonds apart.
    provenance : dict, optional
        JSON-able record of how the model was made (data checksum, config, version).

    Attributes
    ----------
    cutoff : float, Å
        Neighbour-list cutoff: the largest cutoff of any term.
    """

    def __init__(
        self,
        bead_type_names: list[str],
        terms: list[EnergyTerm],
        *,
        mapping=None,
        exclusion_bonds: int = 3,
        provenance: dict | None = None,
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("a CGModel needs at least one energy term")
        self.bead_type_names = list(bead_type_names)
        self.terms = nn.ModuleList(terms)
        self.mapping = mapping
        self.exclusion_bonds = int(exclusion_bonds)
        self.provenance = dict(provenance or {})

    @property
    def cutoff(self) -> float:
        return max(term.cutoff for term in self.terms)

    @property
    def dtype(self) -> torch.dtype:
        """The widest floating dtype of the model's tensors (float64 if there are none).

        A model may mix dtypes (a float32 SchNet term beside a float64 prior); batches are
        built in this dtype so that no term loses precision at its input.
        """
        dtypes = {t.dtype for t in self.state_dict().values() if t.is_floating_point()}
        if not dtypes or torch.float64 in dtypes:
            return torch.float64
        return torch.float32 if torch.float32 in dtypes else next(iter(dtypes))

    def topology(self, atoms) -> SystemTopology:
        """Bead types, bonded topology and exclusions of CG ``ase.Atoms``.

        Raises
        ------
        ValueError
            If a bead type is not one of the model's, or bonded terms need molecule ids that the
            atoms do not carry.
        """
        names = bead_types_of(atoms)
        if names is None:
            raise ValueError(
                f"CG atoms need per-bead type names in atoms.arrays[{K.BEAD_TYPE!r}] "
                f"(one of {self.bead_type_names}); map all-atom frames with CGMapping.map()"
            )
        lookup = {name: index for index, name in enumerate(self.bead_type_names)}
        unknown = sorted(set(map(str, names)) - set(lookup))
        if unknown:
            raise ValueError(
                f"bead types {unknown} are not in the model (it knows {self.bead_type_names})"
            )
        type_index = np.array([lookup[str(name)] for name in names], dtype=np.int64)
        empty = np.zeros((0, 2), dtype=np.int64)
        if self.mapping is None:
            return SystemTopology(type_index, empty, empty, empty, self.exclusion_bonds)
        if K.MOL_ID not in atoms.arrays:
            raise ValueError(
                f"CG atoms need molecule ids in atoms.arrays[{K.MOL_ID!r}] for the bonded terms"
            )
        topo = self.mapping.topology(atoms)
        return SystemTopology(
            type_index, topo["bonds"], topo["angles"], topo["dihedrals"], self.exclusion_bonds
        )

    def forward(
        self,
        batch: dict[str, Tensor],
        *,
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool = False,
    ) -> dict[str, Tensor]:
        """Energies, and forces/stress by autograd.

        Parameters
        ----------
        batch : dict of tensors from :func:`make_batch`
        compute_forces, compute_stress : bool
        create_graph : bool
            Keep the graph of the forces (needed to train on forces).

        Returns
        -------
        dict with ``ENERGY`` (n_systems,), ``BEAD_ENERGIES`` (n_beads,), and ``FORCES``
        (n_beads, 3) eV/Å and ``STRESS`` (n_systems, 3, 3) eV/Å³ when asked for.
        """
        positions, cells = batch[K.POSITIONS], batch[K.CELL]
        system = batch[K.SYSTEM_INDEX]
        n_systems = cells.shape[0]
        inputs = []
        if compute_forces:
            positions = positions.detach().requires_grad_(True)
            inputs.append(positions)
        if compute_stress:
            strain = torch.zeros_like(cells, requires_grad=True)
            inputs.append(strain)
            positions = positions + torch.bmm(positions.unsqueeze(1), strain[system]).squeeze(1)
            cells = cells + torch.bmm(cells, strain)
        graph = build_graph(batch, positions, cells)
        bead_energies = sum(term(graph) for term in self.terms)
        energy = torch.zeros(n_systems, dtype=bead_energies.dtype, device=bead_energies.device)
        energy = energy.index_add(0, system, bead_energies)
        out = {K.ENERGY: energy, K.BEAD_ENERGIES: bead_energies}
        if inputs:
            grads = torch.autograd.grad(
                energy.sum(), inputs, create_graph=create_graph, allow_unused=True
            )
            grads = [
                torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs, strict=True)
            ]
            if compute_forces:
                out[K.FORCES] = -grads[0]
            if compute_stress:
                volume = torch.abs(torch.linalg.det(batch[K.CELL]))
                out[K.STRESS] = grads[-1] / volume[:, None, None]
        return out
