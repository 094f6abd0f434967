"""Model files: one self-contained, safely loadable file per trained CG model.

Layout of the file (a ``torch.save`` of plain containers, loaded with ``weights_only=True``, so a
file from a stranger cannot run code)::

    {
      "format": "ase_cg-model",
      "version": 1,
      "config": "<JSON text>"   # see below
      "state_dict": {name: tensor, ...}
    }

    config = {
      "bead_type_names": [...],            # order of bead-type indices
      "exclusion_bonds": 3,
      "units": {"length": "Å", "energy": "eV"},
      "dtype": "float64" | "float32",      # widest dtype of the model's tensors
      "mapping": {...} | null,             # CGMapping.to_dict(): templates, groups, bead names
      "terms": [{"type": "<EnergyTerm class>", "config": {...}, "dtype": "float32"}, ...],
      "provenance": {...}                  # data checksum, training config, package version
    }

Writes are atomic (temporary file + rename): a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

import ase_cg
from ase_cg._paths import atomic_path
from ase_cg.errors import InputError
from ase_cg.mapping import CGMapping
from ase_cg.potentials import TERM_TYPES, CGModel

FORMAT_TAG = "ase_cg-model"
FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ModelFileError(InputError):
    """A model file that cannot be loaded: not ours, a newer version, or damaged."""


def model_config(model: CGModel) -> dict:
    """The JSON-able description of ``model`` (everything but its tensors)."""
    mapping = model.mapping.to_dict() if model.mapping is not None else None
    return {
        "bead_type_names": list(model.bead_type_names),
        "exclusion_bonds": model.exclusion_bonds,
        "units": {"length": "Å", "energy": "eV"},
        "dtype": str(model.dtype).removeprefix("torch."),
        "mapping": mapping,
        "terms": [
            {"type": type(term).__name__, "config": term.config(), "dtype": _term_dtype(term)}
            for term in model.terms
        ],
        "provenance": {"ase_cg_version": ase_cg.__version__, **model.provenance},
    }


def _term_dtype(term) -> str:
    """Name of the floating dtype of a term's tensors (terms may differ: float32 SchNet beside
    a float64 prior)."""
    for tensor in term.state_dict().values():
        if tensor.is_floating_point():
            return str(tensor.dtype).removeprefix("torch.")
    return "float64"


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        torch.save(obj, stream)
        stream.flush()
        os.fsync(stream.fileno())


def save_model(model: CGModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically; returns the path."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "config": json.dumps(model_config(model), ensure_ascii=False),
        "state_dict": state,
    }
    atomic_torch_save(payload, path)
    return Path(path)


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Validated ``(config, state_dict)`` of a model file, without building the model.

    Raises
    ------
    ModelFileError
        Naming the file and what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected an ase_cg model file")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged or unsafe files
        raise ModelFileError(
            f"{path}: not a loadable ase_cg model file (damaged, truncated, or carrying pickled "
            f"code, which is refused): {type(error).__name__}: {str(error)[:300]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_TAG:
        raise ModelFileError(f"{path}: not an ase_cg model file (no format tag {FORMAT_TAG!r})")
    version = payload.get("version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {version!r}, this ase_cg ({ase_cg.__version__}) reads "
            f"version {FORMAT_VERSION}; upgrade ase_cg or re-export the model"
        )
    try:
        config = json.loads(payload["config"])
        state = payload["state_dict"]
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: damaged model config: {error}") from None
    for key in ("bead_type_names", "terms", "dtype"):
        if key not in config:
            raise ModelFileError(f"{path}: model config lacks the field {key!r}")
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise ModelFileError(f"{path}: 'state_dict' must map names to tensors")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            count = int((~torch.isfinite(tensor)).sum())
            raise ModelFileError(
                f"{path}: tensor {name!r} holds {count} non-finite value(s) (NaN or inf) of "
                f"{tensor.numel()}; the model file is damaged or came from a diverged fit"
            )
    return config, state


def _check_config_types(config: dict, source: str) -> None:
    """Raise ModelFileError unless the config's fields have the types build_model needs."""
    names = config.get("bead_type_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{source}: 'bead_type_names' must be a non-empty list of strings")
    if not isinstance(config.get("dtype"), str):
        raise ModelFileError(f"{source}: 'dtype' must be a string such as 'float64'")
    terms = config.get("terms")
    if not isinstance(terms, list) or not terms:
        raise ModelFileError(f"{source}: 'terms' must be a non-empty list of energy terms")
    for index, entry in enumerate(terms):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("type"), str)
            or not isinstance(entry.get("config"), dict)
            or not isinstance(entry.get("dtype", config["dtype"]), str)
        ):
            raise ModelFileError(
                f"{source}: term {index} must be {{'type': str, 'config': dict, 'dtype': str}}"
            )
    if not isinstance(config.get("exclusion_bonds", 3), int):
        raise ModelFileError(f"{source}: 'exclusion_bonds' must be an integer")


def build_model(config: dict, *, source: str = "model config") -> CGModel:
    """A :class:`CGModel` with freshly initialised tensors from a model config dict.

    Raises
    ------
    ModelFileError
        Naming ``source`` and the field at fault.
    """
    _check_config_types(config, source)
    terms = []
    for index, entry in enumerate(config["terms"]):
        term_type = TERM_TYPES.get(entry["type"])
        if term_type is None:
            raise ModelFileError(
                f"{source}: term {index} has unknown type {entry['type']!r} "
                f"(known: {sorted(TERM_TYPES)})"
            )
        term_dtype = _DTYPES.get(entry.get("dtype", config["dtype"]))
        if term_dtype is None:
            raise ModelFileError(f"{source}: term {index} has unknown dtype {entry.get('dtype')!r}")
        try:
            terms.append(term_type(**entry["config"]).to(term_dtype))
        except (TypeError, ValueError, KeyError, RuntimeError) as error:
            raise ModelFileError(
                f"{source}: term {index} ({entry['type']}) has an invalid config: {error}"
            ) from None
    mapping = None
    if config.get("mapping") is not None:
        try:
            mapping = CGMapping.from_dict(config["mapping"])
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ModelFileError(f"{source}: invalid embedded mapping: {error}") from None
    provenance = config.get("provenance")
    if provenance is not None and not isinstance(provenance, dict):
        raise ModelFileError(f"{source}: 'provenance' must be a mapping")
    return CGModel(
        config["bead_type_names"],
        terms,
        mapping=mapping,
        exclusion_bonds=config.get("exclusion_bonds", 3),
        provenance=provenance,
    )


def load_model(path: str | os.PathLike) -> CGModel:
    """Load a model written by :func:`save_model` (safely: ``weights_only=True``).

    The returned model carries ``.mapping`` and ``.cutoff`` (Å) and is in evaluation mode.
    """
    config, state = read_model_file(path)
    # build once without memory (meta tensors) and check the file's tensor shapes against the
    # config first, so a damaged config cannot ask for gigabytes of weights
    with torch.device("meta"):
        skeleton = build_model(config, source=str(path))
    expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
    found = {name: tuple(getattr(tensor, "shape", ())) for name, tensor in state.items()}
    if expected != found:
        differ = sorted(
            name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name)
        )
        raise ModelFileError(
            f"{path}: tensors do not match the model config: {differ[0]!r} is "
            f"{found.get(differ[0], 'missing')} in the file, the config needs "
            f"{expected.get(differ[0], 'no such tensor')}"
            + (f" ({len(differ) - 1} more)" if len(differ) > 1 else "")
        )
    model = build_model(config, source=str(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ModelFileError(f"{path}: tensors do not match the model config: {error}") from None
    return model.eval()


#: ``model.provenance`` key of the state point of the training data (:func:`reference_state`)
REFERENCE_STATE = "reference_state"


def reference_state(model: CGModel) -> dict[str, float]:
    """The state point of the data a model was trained on, for defaults of MD and export.

    Returns
    -------
    dict
        ``"temperature_K"`` (K) and ``"density_g_cm3"`` (g/cm³) where the model file records
        them (``provenance["reference_state"]``, written by :func:`ase_cg.pipeline.train_model`;
        older files give the temperature of their training only); missing keys are absent.
    """
    provenance = model.provenance
    state = dict(provenance.get(REFERENCE_STATE) or {})
    older = (
        provenance.get("temperature_K"),
        provenance.get("temperature"),
        (provenance.get("fit_config") or {}).get("temperature"),
    )
    if "temperature_K" not in state:
        state["temperature_K"] = next(
            (t for t in older if isinstance(t, int | float) and t > 0), None
        )
    return {key: float(value) for key, value in state.items() if value is not None}
