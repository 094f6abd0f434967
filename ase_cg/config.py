"""Typed dataclass configs read from YAML or TOML, with unknown keys refused (one place)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ase_cg.errors import InputError


def read_config_file(path: str | os.PathLike) -> dict:
    """The mapping in a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file.

    Raises
    ------
    InputError
        If the file does not parse or does not hold a mapping (the message names the file).
    """
    path = Path(path)
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            values = tomllib.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text) or {}
    except Exception as error:  # yaml and tomllib raise their own error types
        raise InputError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {error}"
        ) from None
    if not isinstance(values, dict):
        raise InputError(f"{path}: a config file must hold a mapping of keys to values")
    return values


def config_from_dict(values: dict, cls, *, source: str = "config", error=InputError):
    """``cls(**values)`` for a dataclass ``cls``; unknown keys raise ``error`` naming them."""
    if not isinstance(values, dict):
        raise error(f"{source}: expected a mapping of {cls.__name__} keys, got {values!r}")
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known, key=repr)
    if unknown:
        raise error(
            f"{source}: unknown keys {unknown} for {cls.__name__}; known keys: {sorted(known)}"
        )
    try:
        return cls(**values)
    except TypeError as problem:
        raise error(f"{source}: invalid {cls.__name__}: {problem}") from None
