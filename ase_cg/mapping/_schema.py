"""The mapping file's parser and formatter.

The JSON schema is drawn in :mod:`ase_cg.mapping.cgmapping`.
"""

from __future__ import annotations

import json

import numpy as np
from ase.data import atomic_numbers

from ase_cg.mapping._base import (
    MAPPING_FORMAT,
    MAPPING_UNITS,
    MAPPING_VERSION,
    WEIGHTINGS,
    MappingFileError,
)
from ase_cg.mapping._molecule_type import MoleculeType


def format_json(data: dict) -> str:
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


#: Keys of a mapping file and of each of its molecule types (CGMapping.to_dict).
_MAPPING_KEYS = ("format", "version", "units", "weighting", "molecule_types")
_MOLECULE_KEYS = ("name", "species", "positions", "masses", "bonds", "groups", "bead_names")


def parse_mapping_dict(data, source: str) -> list[MoleculeType]:
    """Molecule types of a mapping dict (:meth:`CGMapping.to_dict` layout), checked key by key;
    errors name ``source`` and the key."""

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
            MoleculeType(
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
