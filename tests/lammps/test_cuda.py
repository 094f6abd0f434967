"""The CUDA paths of the Python side: calculator and training on a GPU equal the CPU.

Skipped where torch sees no CUDA device (CI); ``bench/gpu_run.sh`` runs them on a GPU machine,
together with the plugin tests, whose ``device auto`` decks then run on the GPU.
"""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
import torch

from ase_cg.calculator import CGCalculator
from ase_cg.io import read_h5md
from ase_cg.mapping import CGMapping
from ase_cg.model import load_model
from ase_cg.pipeline import train_model

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU that torch sees"
)


def mapped_frame(data_dir):
    mapping = CGMapping.load(data_dir / "ethane_mapping.json")
    return mapping.map(read_h5md(data_dir / "ethane_aa.h5", index=0))


def results(atoms, calculator):
    atoms = atoms.copy()
    atoms.calc = calculator
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()


def test_neural_calculator_on_cuda_equals_cpu(data_dir):
    """The shipped (float32) SchNet model in float64: only the order of the sums differs.

    (In float32 the energies differed by 4e-9 relative on an H200.)
    """
    beads = mapped_frame(data_dir)
    model = load_model(data_dir / "ethane_neural.pt").double()
    cpu = results(beads, CGCalculator(copy.deepcopy(model), device="cpu"))
    cuda = results(beads, CGCalculator(copy.deepcopy(model), device="cuda"))
    assert cuda[0] == pytest.approx(cpu[0], rel=1e-10)
    np.testing.assert_allclose(cuda[1], cpu[1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cuda[2], cpu[2], rtol=1e-8, atol=1e-12)
    assert np.abs(cpu[1]).max() > 1e-3  # not vacuous


def train_losses(data_dir, directory, device):
    train_model(
        data_dir / "ethane_aa.h5",
        directory,
        kind="neural",
        mapping_path=data_dir / "ethane_mapping.json",
        train_overrides={
            "epochs": 2,
            "max_frames": 6,
            "batch_frames": 2,
            "dtype": "float64",
            "device": device,
            "progress": False,
        },
        temperature=180.0,
    )
    with open(directory / "metrics.csv") as handle:
        return [float(row["train_loss"]) for row in csv.DictReader(handle)]


def test_training_on_cuda_follows_cpu(data_dir, tmp_path):
    """Float64 training on the GPU follows the CPU's loss curve.

    Not to rounding: the GPU sums in another order, and Adam turns those ~1e-16 differences in
    near-zero gradients into full-size steps (sign(g)·lr), so the curves part slowly (1.6e-3
    relative after two epochs on an H200).
    """
    cpu = train_losses(data_dir, tmp_path / "cpu", "cpu")
    cuda = train_losses(data_dir, tmp_path / "cuda", "cuda")
    assert len(cuda) == len(cpu) == 2
    np.testing.assert_allclose(cuda, cpu, rtol=1e-2)
    assert cuda[1] < cuda[0]  # it trains
