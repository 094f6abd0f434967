"""`ase-cg demo --quick` runs the whole pipeline end to end and writes a complete report."""

from __future__ import annotations

import json
import math

import pytest

from ase_cg.cli import main
from ase_cg.demo import DemoSizes, demo
from ase_cg.errors import InputError

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("assignment.png", "loss.png", "potentials.png", "rdf.png", "bonds.png")


def check_report(folder, runs):
    index = (folder / "index.md").read_text()
    for title in ("Does the CG liquid match", "Speed per simulated nanosecond", "Mapping",
                  "Force matching", "Where the time went"):  # fmt: skip
        assert f"## {title}" in index
    for name in FIGURES:
        assert (folder / name).read_bytes()[:8] == PNG, name
        assert f"]({name})" in index
    metrics = json.loads((folder / "metrics.json").read_text())
    assert sorted(metrics["runs"]) == sorted(runs)
    reference_temperature = 180.0
    for name in runs:
        assert (folder / "compare" / name / "index.md").exists()
        assert f"](compare/{name}/index.md)" in index
        md = metrics["runs"][name]["md"]
        # short runs from a mapped 180 K frame stay near the reference temperature
        assert md["temperature_K"] == pytest.approx(reference_temperature, rel=0.35), name
        rdf = metrics["runs"][name]["comparison"]["rdf"]["CH3-CH3"]
        assert math.isfinite(rdf["max_abs_difference"])
        # the liquid keeps its first coordination shell (CH3-CH3 peak near 4 Å)
        assert rdf["first_peak_cg"]["r_A"] == pytest.approx(
            rdf["first_peak_reference"]["r_A"], abs=0.5
        )
        speed = metrics["speed"]["cg"][name]
        assert speed["ns_per_day"] > 0 and speed["speedup_vs_allatom"] > 0
        assert metrics["verdict"][name] in index
    # the classical fit explains part of the held-out mapped force, never more than all of it
    held_out = metrics["training"]["classical"]["validation"]["all"]["fraction_unexplained"]
    assert 0.0 < held_out < 1.0
    assert metrics["training"]["neural"][0]["validation_fvu"] > 0.0
    return metrics


def test_demo_quick_without_lammps(tmp_path):
    metrics = demo(tmp_path / "report", quick=True, lammps=False)
    check_report(tmp_path / "report", ["classical-ase", "neural-ase"])
    assert metrics["sizes"]["frames"] == DemoSizes.quick().frames


@pytest.mark.slow
def test_demo_cli_quick_end_to_end(tmp_path):
    assert main(["demo", "--quick", "-o", str(tmp_path / "report")]) == 0
    runs = ["classical-ase", "neural-ase", "classical-lammps", "neural-lammps"]
    metrics = check_report(tmp_path / "report", runs)
    assert metrics["runs"]["neural-lammps"]["md"]["engine"] == "lammps"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": 1}, "frames ≥ 2"),
        ({"steps": 0}, "steps ≥ 1"),
        ({"device": "tpu"}, "device 'tpu'"),
    ],
)
def test_demo_rejects_bad_sizes(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        demo(tmp_path / "report", quick=True, **kwargs)
    assert not (tmp_path / "report").exists()


def test_water_demo_quick_three_body_restores_tetrahedral_order(tmp_path):
    """`ase-cg demo --system water --quick`: a small SPC/E reference, three models in LAMMPS;
    the pair model loses the tetrahedral order q that the three-body term restores."""
    assert main(["demo", "--system", "water", "--quick", "-o", str(tmp_path / "w")]) == 0
    metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
    rows = {row["model"]: row for row in metrics["rows"]}
    assert set(rows) == {"pair", "pair + three-body", "neural"}
    pair, threebody = rows["pair"], rows["pair + three-body"]
    assert abs(threebody["mean_q_difference"]) < 0.5 * abs(pair["mean_q_difference"])
    assert pair["mean_q_difference"] < -0.05  # pair water is less tetrahedral than SPC/E
    assert threebody["fraction_unexplained"] < pair["fraction_unexplained"]
    for row in metrics["rows"]:
        slug = row["model"].replace(" + ", "_")
        assert (tmp_path / "w" / "compare" / slug / "local_order.png").stat().st_size > 1000
    text = (tmp_path / "w" / "index.md").read_text()
    assert "| pair + three-body |" in text and "mean q" in text
