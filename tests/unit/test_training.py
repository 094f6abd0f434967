"""Force-matching trainer: recovers known parameters, reports FVU, resumes exactly, guards input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _lj import LearnableLJ, lj_train_config, write_lj_dataset

from ase_cg.config import load_config
from ase_cg.errors import InputError
from ase_cg.fitting import (
    ForceMatchingData,
    TrainConfig,
    TrainingDiverged,
    evaluate,
    split_frames,
    train,
)
from ase_cg.io import H5MDWriter
from ase_cg.potentials import CGModel


def lj_force(epsilon, sigma, r):
    return 24 * epsilon * (2 * (sigma / r) ** 12 - (sigma / r) ** 6) / r


def test_training_recovers_known_lennard_jones(tmp_path, rng):
    write_lj_dataset(tmp_path / "cg.h5", rng)
    data = ForceMatchingData(tmp_path / "cg.h5")
    model = CGModel(["B"], [LearnableLJ(0.015, 3.15)])
    result = train(model, data, tmp_path / "run", lj_train_config(epochs=12, learning_rate=0.02))
    term = result.model.terms[0]
    epsilon, sigma = term.log_epsilon.exp().item(), term.log_sigma.exp().item()
    # the pair force is recovered over the sampled distances (ε and σ alone are correlated)
    r = np.linspace(2.8, 4.5, 20)
    np.testing.assert_allclose(
        lj_force(epsilon, sigma, r),
        lj_force(0.01, 3.0, r),
        atol=0.1 * np.abs(lj_force(0.01, 3.0, r)).max(),
    )
    # the unexplained fraction is that of the true potential (noise), not zero
    truth = CGModel(["B"], [LearnableLJ(0.01, 3.0)]).double()
    topology = truth.topology(data.cg_atoms())
    _, validation_frames = split_frames(data.n_frames, lj_train_config())
    truth_fvu = evaluate(truth, data, validation_frames, topology)["fvu"]
    assert truth_fvu < result.validation["fvu"] < 1.15 * truth_fvu
    assert result.metrics[0]["validation_loss"] > result.metrics[-1]["validation_loss"]
    for name in ("metrics.csv", "loss.png", "model.pt", "checkpoint.pt"):
        assert (tmp_path / "run" / name).stat().st_size > 0


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path, rng):
    write_lj_dataset(tmp_path / "cg.h5", rng, n_frames=12)
    data = ForceMatchingData(tmp_path / "cg.h5")
    straight = train(
        CGModel(["B"], [LearnableLJ(0.02, 3.3)]), data, tmp_path / "a", lj_train_config(epochs=4)
    )
    train(CGModel(["B"], [LearnableLJ(0.02, 3.3)]), data, tmp_path / "b", lj_train_config(epochs=2))
    resumed = train(
        CGModel(["B"], [LearnableLJ(0.5, 1.0)]),
        data,
        tmp_path / "b",
        lj_train_config(epochs=4),
        resume=True,
    )
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [r["train_loss"] for r in straight.metrics] == [r["train_loss"] for r in resumed.metrics]


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, rng):
    write_lj_dataset(tmp_path / "cg.h5", rng, n_frames=8)
    data = ForceMatchingData(tmp_path / "cg.h5")
    train(
        CGModel(["B"], [LearnableLJ(0.02, 3.3)]), data, tmp_path / "run", lj_train_config(epochs=1)
    )
    good = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    exploding = CGModel(["B"], [LearnableLJ(0.02, 3.3)])
    with torch.no_grad():
        exploding.terms[0].log_epsilon.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="step"):
        train(exploding, data, tmp_path / "run", lj_train_config(epochs=2, checkpoint_every=1000))
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == good


def test_trajectory_without_forces_is_refused(tmp_path):
    with H5MDWriter(tmp_path / "noforce.h5", bead_types=["B"] * 3, masses=[1.0] * 3) as writer:
        writer.append(np.eye(3), np.eye(3) * 10)
    with pytest.raises(InputError, match="noforce.h5.*forces"):
        ForceMatchingData(tmp_path / "noforce.h5")


def test_unknown_config_keys_are_errors(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 3\nlearning_rat: 0.1\n")
    with pytest.raises(InputError, match="learning_rat"):
        load_config(path, TrainConfig)
    assert load_config(None, TrainConfig).epochs == TrainConfig().epochs
    (tmp_path / "t.toml").write_text("epochs = 3\n")
    assert load_config(tmp_path / "t.toml", TrainConfig, overrides={"seed": 7}).seed == 7


def test_time_block_split_keeps_validation_last():
    train_frames, validation = split_frames(
        100, TrainConfig(validation_fraction=0.2, frame_stride=2)
    )
    assert len(train_frames) == 40 and len(validation) == 10
    assert train_frames.max() < validation.min()
