"""Property-based sweep of bad input: mapping JSON, model files and config files.

Every input, however damaged, either loads or raises one of the documented exception types
(:class:`~ase_cg.errors.InputError` and its subclasses ``MappingFileError`` and
``ModelFileError``, all ``ValueError``) with a message naming the file; nothing else escapes.
A model file carrying a pickled object is refused without running it.
(The H5MD reader is fuzzed in ``tests/unit/test_io_errors.py``.)

The sweep found exceptions that escaped (TypeError, AttributeError, UnicodeDecodeError, errors
not naming the file); they are fixed, and a test for each case below keeps them fixed.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from _paths import DATA_DIR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ase_cg.config import load_config
from ase_cg.errors import InputError
from ase_cg.fitting import TrainConfig
from ase_cg.mapping import CGMapping
from ase_cg.model import ModelFileError, load_model, save_model
from ase_cg.pipeline import _config_sections
from ase_cg.potentials import CGModel, HarmonicBonds, Repulsion
from ase_cg.potentials.neural import NeuralPotential

DATA = DATA_DIR
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def load_train_config(path):
    """A :class:`TrainConfig` from a YAML/TOML file (the trainer's config reader)."""
    return load_config(path, TrainConfig)


def tree_paths(tree, prefix=()):
    """Every (path, value) inside a JSON tree; a path is a tuple of keys / indices."""
    yield prefix, tree
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    for key, value in items:
        yield from tree_paths(value, (*prefix, key))


def mutate(tree, data):
    """A copy of ``tree`` with one value replaced, one key deleted or one key added."""
    tree = copy.deepcopy(tree)
    paths = [p for p, _ in tree_paths(tree) if p]
    path = data.draw(st.sampled_from(paths))
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[path[-1]] = data.draw(json_values)
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=6))] = data.draw(json_values)
    else:
        parent.append(data.draw(json_values))
    return tree


def corrupt_bytes(raw: bytes, data) -> bytes:
    raw = bytearray(raw)
    kind = data.draw(st.sampled_from(["flip", "zero", "truncate"]))
    if kind == "truncate":
        return bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    for _ in range(data.draw(st.integers(1, 8))):
        p = data.draw(st.integers(0, len(raw) - 1))
        raw[p] = 0 if kind == "zero" else raw[p] ^ data.draw(st.integers(1, 255))
    return bytes(raw)


# ---------------------------------------------------------------------------------------------
# mapping JSON


@pytest.fixture(scope="module")
def mapping_dict():
    return json.loads((DATA / "ethane_mapping.json").read_text())


def load_mapping_or_refuse(path: Path) -> None:
    try:
        mapping = CGMapping.load(path)
    except InputError as error:
        assert str(path) in str(error)
        return
    # a mapping that loads is usable: it round-trips and names its beads
    assert CGMapping.from_dict(mapping.to_dict()).bead_types == mapping.bead_types


@FUZZ
@given(data=st.data())
def test_fuzz_mapping_json_structure(mapping_dict, tmp_path, data):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mutate(mapping_dict, data)))
    load_mapping_or_refuse(path)


@FUZZ
@given(data=st.data())
def test_fuzz_mapping_json_text(mapping_dict, tmp_path, data):
    path = tmp_path / "mapping.json"
    text = json.dumps(mapping_dict).encode()
    path.write_bytes(corrupt_bytes(text, data))
    load_mapping_or_refuse(path)


def test_mapping_file_with_a_bad_value_names_the_file(mapping_dict, tmp_path):
    bad = copy.deepcopy(mapping_dict)
    bad["molecule_types"][0]["masses"][0] = None
    path = tmp_path / "nullmass.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match="nullmass.json.*mass"):
        CGMapping.load(path)


@pytest.mark.parametrize("case", ["species entry is a list", "not UTF-8"])
def test_mapping_bad_values_raise_mapping_file_errors_naming_the_file(mapping_dict, tmp_path, case):
    path = tmp_path / "bad.json"
    if case == "not UTF-8":
        path.write_bytes(b'{"format": "\xe9"}')
    else:
        bad = copy.deepcopy(mapping_dict)
        bad["molecule_types"][0]["species"][0] = []
        path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match="bad.json"):
        CGMapping.load(path)


# ---------------------------------------------------------------------------------------------
# model files


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory) -> bytes:
    mapping = CGMapping.load(DATA / "ethane_mapping.json")
    model = CGModel(
        mapping.bead_types,
        [
            HarmonicBonds(1, k=21.0, r0=1.69),
            Repulsion(1, sigma=3.4, epsilon=0.01, power=12, cutoff=5.0),
            NeuralPotential(1, n_atom_basis=4, n_filters=4, n_interactions=1, n_rbf=4, cutoff=5),
        ],
        mapping=mapping,
    )
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(model, path)
    return path.read_bytes()


def load_model_or_refuse(path: Path) -> None:
    try:
        model = load_model(path)
    except ModelFileError as error:
        assert str(path) in str(error)
        return
    assert isinstance(model, CGModel)


@FUZZ
@given(data=st.data())
def test_fuzz_model_file_bytes(model_bytes, tmp_path, data):
    path = tmp_path / "model.pt"
    path.write_bytes(corrupt_bytes(model_bytes, data))
    load_model_or_refuse(path)


@FUZZ
@given(data=st.data())
def test_fuzz_model_config(model_bytes, tmp_path, data):
    """A well-formed file whose JSON config is damaged (a hand-edited or foreign file)."""
    payload = torch.load(io.BytesIO(model_bytes), weights_only=True)
    payload["config"] = json.dumps(mutate(json.loads(payload["config"]), data))
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    load_model_or_refuse(path)


def set_in(tree, path, value):
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("terms", 0), None),
        (("terms", 0, "type"), {}),
        (("dtype",), []),
        (("bead_type_names",), None),
        (("mapping", "molecule_types", 0, "groups", 0), [0, None]),
        # 10^12 weights: refused from the tensor shapes before anything is allocated
        (("terms", 2, "config", "n_atom_basis"), 1_000_000),
    ],
)
def test_model_config_damage_raises_model_file_error_naming_the_file(
    model_bytes, tmp_path, where, value
):
    payload = torch.load(io.BytesIO(model_bytes), weights_only=True)
    config = json.loads(payload["config"])
    set_in(config, where, value)
    payload["config"] = json.dumps(config)
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="damaged.pt"):
        load_model(path)


class _Payload:
    """Unpickling this runs ``Path.touch`` on the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("how", ["torch.save", "pickle", "inside the state dict"])
def test_model_file_with_a_pickle_payload_is_refused_without_running_it(model_bytes, tmp_path, how):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"format": "ase_cg-model", "version": 1, "x": _Payload(marker)}, path)
    elif how == "pickle":
        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        payload = torch.load(io.BytesIO(model_bytes), weights_only=True)
        payload["state_dict"]["evil"] = _Payload(marker)
        torch.save(payload, path)
    assert zipfile.is_zipfile(path) == (how != "pickle")
    with pytest.raises(ModelFileError, match="evil.pt.*pickled code"):
        load_model(path)
    assert not marker.exists()
    # the check is real: the unsafe loader would have run the payload
    if how == "pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


# ---------------------------------------------------------------------------------------------
# config files

config_values = st.dictionaries(
    st.text(max_size=12) | st.integers() | st.sampled_from(["epochs", "train", "neural"]),
    json_values,
    max_size=4,
)


def parse_or_refuse(path: Path) -> None:
    for parse in (load_train_config, _config_sections):
        try:
            parse(path)
        except (InputError, FileNotFoundError) as error:
            assert str(path) in str(error)


@FUZZ
@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
@given(text=st.text(max_size=80))
def test_fuzz_config_text(tmp_path, suffix, text):
    path = tmp_path / f"train{suffix}"
    path.write_text(text)
    parse_or_refuse(path)


@FUZZ
@given(values=config_values)
def test_fuzz_config_keys_and_values(tmp_path, values):
    import yaml

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(values))
    parse_or_refuse(path)


@pytest.mark.parametrize("parse", [load_train_config, _config_sections], ids=["train", "sections"])
def test_non_string_config_keys_raise_input_error(tmp_path, parse):
    path = tmp_path / "keys.yaml"
    path.write_text("1: 2\nlearning_rat: 3\n")
    with pytest.raises(InputError, match="keys.yaml"):
        parse(path)


def test_unparsable_config_files_name_the_file(tmp_path):
    for name, text in (("a.yaml", "epochs: [1\n"), ("b.yaml", "{[1]: 2}"), ("c.toml", "x = \n")):
        path = tmp_path / name
        path.write_text(text)
        for parse in (load_train_config, _config_sections):
            with pytest.raises(InputError, match=name):
                parse(path)


def test_missing_config_file_is_file_not_found(tmp_path):
    for parse in (load_train_config, _config_sections):
        with pytest.raises(FileNotFoundError):
            parse(tmp_path / "nope.yaml")
