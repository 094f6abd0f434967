r"""The mapping of atoms to beads for one or several molecule types (:class:`CGMapping`).

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
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_cg import _keys as K
from ase_cg._paths import write_text_atomic
from ase_cg.beads import bead_types_of
from ase_cg.mapping._base import (
    MAPPING_FORMAT,
    MAPPING_UNITS,
    MAPPING_VERSION,
    MappingError,
    MappingFileError,
)
from ase_cg.mapping._molecule_type import MoleculeType, concat_topology, template_arrays
from ase_cg.mapping._schema import format_json, parse_mapping_dict
from ase_cg.mapping.system import SystemMapping
from ase_cg.molecules import (
    BOND_SCALE,
    MoleculeError,
    TemplateMatcher,
    covalent_bonds,
    formula_of,
)


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
        self.matcher = TemplateMatcher(
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
    def _make_type(template, groups, bead_names, weighting, name, bonds) -> MoleculeType:
        numbers, positions, masses = template_arrays(template, name)
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
        return MoleculeType(
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
                    MoleculeType(
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
                    found, _ = self.matcher.match(t.numbers, t.bonds)
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
        return self.molecule_type(molecule_type).E.copy()

    def molecule_type(self, name: str) -> MoleculeType:
        """The record of molecule type ``name``: template arrays, bead groups, ``E``, topology."""
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

    def split_molecules(self, cg_atoms: Atoms) -> list[tuple[str, np.ndarray]]:
        """(molecule type, bead indices) per molecule of a CG configuration (by its molecule
        ids and bead types)."""
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
        for name, beads in self.split_molecules(cg_atoms):
            topo = self._types[name].topology
            for kind in parts:
                parts[kind].append(beads[topo[kind]])
        result = concat_topology(parts)
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
            return cls(parse_mapping_dict(data, source), weighting=data["weighting"])
        except MappingFileError:
            raise
        except (MappingError, TypeError, ValueError, KeyError, AttributeError) as error:
            # a value that passes the schema but not the mapping's own checks (e.g. a null
            # mass), or an element of the wrong type: name the source
            raise MappingFileError(f"{source}: {error}") from None

    def save(self, path) -> None:
        """Write the mapping as indented JSON (atomic: temporary file + rename)."""
        write_text_atomic(path, format_json(self.to_dict()) + "\n")

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
