"""Shared pytest fixtures: every test runs in its own temporary folder with a fixed RNG seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """Run each test in its own temporary working directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded NumPy generator (tests must not depend on global RNG state)."""
    return np.random.default_rng(20190125)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's ``data/`` folder with the shipped reference files."""
    return DATA_DIR
