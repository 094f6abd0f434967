"""Mapping matrices for one atomistic layout (:class:`SystemMapping`), frame-batched.

Periodic boundaries: before mapping, each molecule is made whole by walking its template's bond
tree from a reference atom (the template's most central atom) and applying the minimum image to
every bond, so molecules of any size are handled as long as each bond is shorter than half the
box; atoms that no bond reaches are placed by the minimum image from the reference atom. The bead
positions are wrapped back into the box along periodic directions.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

from ase_cg import _keys as K
from ase_cg.beads import set_bead_types
from ase_cg.mapping._base import FORCE_MAPS, MappingError
from ase_cg.mapping._molecule_type import MoleculeType, concat_topology
from ase_cg.mapping.force_maps import bead_sum_force_map, pseudo_inverse_force_map
from ase_cg.molecules import find_molecules


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

    def __init__(self, mapping, atoms: Atoms, *, mol_ids, bonds, force_map, scale):
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
            name, perm = mapping.matcher.match(
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

        n_beads_mol = np.array([mapping.molecule_type(t).n_beads for t in types], dtype=np.int64)
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
            t = mapping.molecule_type(name)
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
        self.topology = concat_topology(topo_parts)
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
        self._reduce_periodic(bonds, np.rint)
        return fractional, bonds

    def _reduce_periodic(self, values: np.ndarray, rounding) -> None:
        """Subtract ``rounding(values)`` in place along the periodic directions of component-major
        (3 n, n_frames) fractional ``values`` (``np.rint``: minimum image, ``np.floor``: into
        the box)."""
        if self.pbc.all():
            values -= rounding(values)
        else:
            periodic = np.tile(self.pbc, values.shape[0] // 3)
            values[periodic] -= rounding(values[periodic])

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
        self._reduce_periodic(beads, np.floor)
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


def _check_atom_masses(t: MoleculeType, atom_masses, atom_idx, mols, molset, atoms) -> None:
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
