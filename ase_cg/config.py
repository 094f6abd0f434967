"""Typed dataclass configs read from YAML or TOML, with unknown keys refused (one place)."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from pathlib import Path

import yaml

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
        values = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
    except Exception as error:  # yaml and tomllib raise their own error types
        raise InputError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {error}"
        ) from None
    if not isinstance(values, dict):
        raise InputError(f"{path}: a config file must hold a mapping of keys to values")
    return values


def _type_problem(value, hint) -> str | None:
    """Why ``value`` does not fit the type annotation ``hint`` (None if it fits).

    Understands what the config dataclasses use: ``int``, ``float`` (an int is fine, NaN and
    infinities are not), ``str``, ``bool``, ``None``, unions, ``list[X]`` and ``tuple[X, ...]``
    / ``tuple[X, Y]`` (a list is fine for a tuple: YAML has no tuples).
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, option) for option in typing.get_args(hint)]
        return None if None in problems else " or ".join(p for p in problems if p)
    if hint is type(None):
        return None if value is None else "null"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "an integer"
    if hint is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if number and math.isfinite(value) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return "a list"
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return f"a list of {len(args)} values"
            pairs = zip(value, args, strict=True)
        else:
            pairs = ((item, args[0]) for item in value) if args else ()
        for item, item_hint in pairs:
            problem = _type_problem(item, item_hint)
            if problem:
                return f"a list of {problem.removeprefix('a ').removeprefix('an ')}s"
        return None
    return None  # an annotation this check does not know: the dataclass checks it


def config_from_dict(values: dict, cls, *, source: str = "config", error=InputError):
    """``cls(**values)`` for a dataclass ``cls``; unknown keys and values of the wrong type
    (``epochs: "many"``) raise ``error`` naming the key."""
    if not isinstance(values, dict):
        raise error(f"{source}: expected a mapping of {cls.__name__} keys, got {values!r}")
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known, key=repr)
    if unknown:
        raise error(
            f"{source}: unknown keys {unknown} for {cls.__name__}; known keys: {sorted(known)}"
        )
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        problem = _type_problem(value, hints[key])
        if problem:
            raise error(f"{source}: {key} = {value!r}; expected {problem} ({cls.__name__}.{key})")
    try:
        return cls(**values)
    except (TypeError, ValueError) as problem:
        if str(source) in str(problem):
            raise
        text = str(problem).removeprefix(f"invalid {cls.__name__}: ")
        raise error(f"{source}: invalid {cls.__name__}: {text}") from None


def load_config(path: str | os.PathLike | None, cls, overrides: dict | None = None):
    """Read a dataclass config from a YAML or TOML file; unknown keys are errors.

    Parameters
    ----------
    path : YAML (``.yaml``/``.yml``) or TOML (``.toml``) file, or None for defaults
    cls : dataclass type
    overrides : dict, optional
        Values that take precedence over the file's (e.g. from command-line flags); None
        values are ignored.
    """
    values = read_config_file(path) if path is not None else {}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return config_from_dict(values, cls, source=str(path or "config"))
