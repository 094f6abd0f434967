"""Scale guards (slow): streaming memory does not grow with the file; LAMMPS ranks agree.

The full-size numbers (1.4 GiB file, 100 000 beads) come from ``bench/bench_scale.py`` and are
in RELIABILITY.md; DDP training on 2 processes is
``tests/integration/test_pipeline.py::test_two_process_training_matches_one_process``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _paths import REPO_ROOT

ROOT = REPO_ROOT
spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "bench_scale.py")
bench_scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_scale)


def peak_rss_of_mapping_pass(path: Path) -> float:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_scale.py"), "_child", str(path), "map"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mib"]


@pytest.mark.slow
def test_streaming_memory_does_not_grow_with_the_file(tmp_path):
    small, large = tmp_path / "small.h5", tmp_path / "large.h5"
    bench_scale.write_allatom(small, 30)
    bench_scale.write_allatom(large, 300)  # 10× the frames: 24 MB → 236 MB
    growth_mib = (large.stat().st_size - small.stat().st_size) / 2**20
    difference = peak_rss_of_mapping_pass(large) - peak_rss_of_mapping_pass(small)
    assert growth_mib > 200
    assert difference < 32  # MiB: chunk cache and one mini-batch, not the file


@pytest.mark.slow
@pytest.mark.parametrize(("case", "force_tolerance"), [("tables", 1e-8), ("plugin", 1e-6)])
def test_lammps_one_and_two_ranks_agree(tmp_path, case, force_tolerance):
    """20 000 beads, tables (float64) or tables + SchNet plugin (float32), 1 vs 2 ranks."""
    result = bench_scale.bench_lammps(tmp_path, case=case, n_beads=20_000)[f"lammps_{case}"]
    two = result["versus_first"][2]
    assert two["max_force_difference_eV_A"] < force_tolerance * max(1.0, result["max_force_eV_A"])
    assert two["max_position_difference_A"] < 1e-6
    assert result["thermo"][1] == result["thermo"][2] and result["thermo"][1]
    assert np.isfinite(result["max_force_eV_A"]) and result["max_force_eV_A"] > 0.01
