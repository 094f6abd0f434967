"""Shared pytest fixtures: every test runs in its own temporary folder with a fixed RNG seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _paths import DATA_DIR
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not pass or fail by chance); run
# `pytest --hypothesis-profile=explore` to search new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile("repeatable")


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """Run each test in its own temporary working directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _reseed_global_generators():
    """Reseed NumPy's and torch's global generators before each test, so a test that draws from
    them (or calls code that does) gives the same numbers alone or in any order."""
    import torch

    np.random.seed(20190125)
    torch.manual_seed(20190125)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures(...)``): the
    small graphs of the tests run faster on one, and do not contend on a shared 2-core box."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded NumPy generator (tests must not depend on global RNG state)."""
    return np.random.default_rng(20190125)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's ``data/`` folder with the shipped reference files."""
    return DATA_DIR


@pytest.fixture(scope="module")
def ethane_mapping():
    """CH3|CH3 mapping of ``ase.build.molecule("C2H6")`` (atoms C C H H H H H H)."""
    from ase.build import molecule

    from ase_cg.mapping import CGMapping

    return CGMapping.from_groups(molecule("C2H6"), [[0, 2, 3, 4], [1, 5, 6, 7]], name="ethane")


@pytest.fixture(scope="module")
def prior_model(ethane_mapping):
    """CH3–CH3 prior: harmonic bond (k = k_B·180 K / (0.027 Å)²) and a soft repulsion."""
    from ase_cg.potentials import CGModel, HarmonicBonds, Repulsion

    terms = [
        Repulsion(1, sigma=3.4, epsilon=0.01, power=12, cutoff=5.0),
        HarmonicBonds(1, k=21.0, r0=1.69),
    ]
    state = {"reference_state": {"temperature_K": 180.0, "density_g_cm3": 0.5495}}
    return CGModel(
        ethane_mapping.bead_types, terms, mapping=ethane_mapping, provenance=state
    ).double()
