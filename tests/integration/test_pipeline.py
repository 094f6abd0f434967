"""File-to-file training steps (`ase-cg train`), data-parallel training, and their inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from ase_cg import _keys as K
from ase_cg.analysis import density
from ase_cg.cli import main
from ase_cg.errors import InputError
from ase_cg.fitting import ForceMatchingData, TrainConfig, train, train_distributed
from ase_cg.io import H5MDTrajectory, read_h5md
from ase_cg.mapping import CGMapping, map_trajectory
from ase_cg.model import load_model, reference_state
from ase_cg.pipeline import cg_temperature, train_model
from ase_cg.potentials import make_batch
from ase_cg.reference import generate_reference

SMALL_NEURAL = {
    "n_atom_basis": 8,
    "n_filters": 8,
    "n_interactions": 2,
    "n_rbf": 8,
    "cutoff": 6.0,
    "seed": 3,
}


@pytest.fixture(scope="module")
def ethane_files(tmp_path_factory, data_dir):
    """A small real all-atom ethane run (27 molecules) and its CG mapping."""
    folder = tmp_path_factory.mktemp("ethane")
    aa = generate_reference(
        "ethane", output=folder / "aa.h5", n_molecules=27, equilibration_ps=0.5,
        production_ps=0.6, stride=20, seed=5, progress=False,
    )  # fmt: skip
    mapping = data_dir / "ethane_mapping.json"
    cg = folder / "cg.h5"
    map_trajectory(aa, cg, CGMapping.load(mapping), progress=False)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"neural": SMALL_NEURAL, "train": {"progress": False}}))
    return {"aa": aa, "cg": cg, "mapping": mapping, "config": config}


def test_cg_temperature_from_mapped_velocities(ethane_files):
    with H5MDTrajectory(ethane_files["cg"]) as trajectory:
        temperature = cg_temperature(trajectory, slice(None))
    # 54 beads over 30 frames of a 180 K run: a loose statistical bound
    assert temperature == pytest.approx(180.0, rel=0.25)


def test_train_classical_from_all_atom_file(ethane_files, tmp_path):
    code = main([
        "train", str(ethane_files["aa"]), "-o", str(tmp_path / "classical"),
        "--kind", "classical", "--mapping", str(ethane_files["mapping"]),
    ])  # fmt: skip
    assert code == 0
    model = load_model(tmp_path / "classical" / "model.pt")
    assert model.mapping is not None
    assert model.provenance["data_sha256"]
    assert (tmp_path / "classical" / "potentials.png").stat().st_size > 0
    # the state point of the data travels with the model: MD and export default to it
    state = reference_state(model)
    with H5MDTrajectory(ethane_files["cg"]) as trajectory:
        temperature = cg_temperature(trajectory, slice(0, 50))
    assert state["temperature_K"] == pytest.approx(temperature, rel=1e-12)
    expected_density = density(read_h5md(ethane_files["cg"], slice(0, 50))).mean()
    assert state["density_g_cm3"] == pytest.approx(expected_density, rel=1e-12)
    assert 0.4 < state["density_g_cm3"] < 0.7  # liquid ethane, g/cm³
    # the fitted model explains part of the mapped force on the training data
    data = ForceMatchingData(ethane_files["cg"])
    positions, cells, forces = data.read(np.arange(5))
    topology = model.topology(data.cg_atoms())
    out = model(make_batch(positions, cells, topology, model.cutoff))
    residual = ((out[K.FORCES].detach().numpy() - forces.reshape(-1, 3)) ** 2).mean()
    assert residual < (forces**2).mean()


def test_train_neural_cli_writes_model_and_metrics(ethane_files, tmp_path):
    code = main([
        "train", str(ethane_files["cg"]), "-o", str(tmp_path / "neural"), "--kind", "neural",
        "--mapping", str(ethane_files["mapping"]), "--config", str(ethane_files["config"]),
        "--epochs", "2", "--dtype", "float64",
    ])  # fmt: skip
    assert code == 0
    for name in ("model.pt", "initial.pt", "metrics.csv", "loss.png", "checkpoint.pt"):
        assert (tmp_path / "neural" / name).exists()
    model = load_model(tmp_path / "neural" / "model.pt")
    assert {type(term).__name__ for term in model.terms} >= {"NeuralPotential", "HarmonicBonds"}


@pytest.mark.parametrize(
    ("text", "unknown"), [("trian: {epochs: 2}\n", "trian"), ("train: {epoch: 2}\n", "epoch")]
)
def test_unknown_config_section_and_key_are_refused(ethane_files, tmp_path, text, unknown):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(InputError, match=unknown):
        train_model(
            ethane_files["cg"], tmp_path, mapping_path=ethane_files["mapping"], config_path=bad
        )


def test_all_atom_data_without_mapping_is_refused(ethane_files, tmp_path):
    with pytest.raises(InputError, match="mapping"):
        train_model(ethane_files["aa"], tmp_path / "z", kind="neural")


@pytest.mark.mpi
def test_two_process_training_matches_one_process(ethane_files, tmp_path):
    """Data-parallel gradients averaged over 2 processes equal the full mini-batch gradient."""
    train_model(
        ethane_files["cg"],
        tmp_path / "init",
        mapping_path=ethane_files["mapping"],
        config_path=ethane_files["config"],
        train_overrides={"epochs": 0},
    )
    initial = tmp_path / "init" / "initial.pt"
    config = TrainConfig(
        epochs=2,
        batch_frames=4,
        dtype="float64",
        progress=False,
        learning_rate=1e-3,
        early_stopping=0,
    )
    single = train(
        load_model(initial), ForceMatchingData(ethane_files["cg"]), tmp_path / "one", config
    ).model
    double = train_distributed(initial, ethane_files["cg"], tmp_path / "two", config, world_size=2)
    moved = 0.0
    for a, b, c in zip(
        single.parameters(), double.parameters(), load_model(initial).parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
        moved = max(moved, (a - c).abs().max().item())
    assert moved > 1e-5  # training changed the weights, so the comparison means something
