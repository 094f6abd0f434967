"""Folders the tests read: the repository root, the shipped `data/`, the tests' own `data/`."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
DATA_DIR = REPO_ROOT / "data"
TEST_DATA = TESTS / "data"
