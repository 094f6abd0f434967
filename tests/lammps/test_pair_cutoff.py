"""Pair cutoff from where the fitted force vanishes (lammps_interface.tables.pair_force_range).

Checked against answers known in closed form: a B-spline whose coefficients stop at basis
function m is exactly zero beyond knot m + 1; the force-shifted repulsion
ε (σ/r)^p reaches a given force at a radius solved by hand. The export with
``pair_cutoff="auto"`` must still reproduce the model in LAMMPS.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _paths import DATA_DIR

from ase_cg.calculator import CGCalculator
from ase_cg.errors import InputError
from ase_cg.mapping import CGMapping
from ase_cg.md import build_cg_box
from ase_cg.potentials import CGModel, HarmonicBonds, Repulsion
from ase_cg.potentials.classical import PairSpline
from lammps_interface import export
from lammps_interface.run import evaluate
from lammps_interface.tables import pair_force_range

ETHANE = CGMapping.load(DATA_DIR / "ethane_mapping.json")
SPACING = 0.01


def compact_spline(last: int) -> PairSpline:
    """Pair spline on [2.5, 10] Å whose coefficients are non-zero up to basis ``last`` only."""
    term = PairSpline(1, 2.5, 10.0, 30).double()
    coefficients = torch.zeros(term.grid.n_basis, dtype=torch.float64)
    coefficients[: last + 1] = torch.linspace(0.5, 0.05, last + 1, dtype=torch.float64)
    term.coefficients.copy_(coefficients[None])
    term.lower.fill_(2.5)
    return term


@pytest.mark.parametrize("last", [8, 15])
def test_range_of_a_compact_spline_is_its_support(last):
    term = compact_spline(last)
    spacing = (term.grid.stop - term.grid.start) / term.grid.n_intervals
    # on [x_i, x_i+1) only B_i … B_i+3 are non-zero: B_j ends at knot j + 1
    support_end = term.grid.start + (last + 1) * spacing
    found = pair_force_range([term], 1, 1e-9, 2.5, 10.0, spacing=SPACING)
    assert support_end - 1e-9 <= found <= support_end + SPACING + 1e-9
    # a loose tolerance cuts earlier, never later
    assert pair_force_range([term], 1, 1e-2, 2.5, 10.0, spacing=SPACING) < found


def test_range_of_the_shifted_repulsion_is_analytic():
    sigma, epsilon, power, cutoff, tolerance = 3.3, 0.02, 12, 9.0, 1e-3
    term = Repulsion(1, sigma=sigma, epsilon=epsilon, power=power, cutoff=cutoff).double()
    # F(r) = ε p σ^p (r^-(p+1) - rc^-(p+1)) = tolerance
    expected = (
        sigma**power / (tolerance / (epsilon * power) + sigma**power / cutoff ** (power + 1))
    ) ** (1.0 / (power + 1))
    found = pair_force_range([term], 1, tolerance, 2.0, cutoff, spacing=SPACING)
    assert expected <= found <= expected + SPACING + 1e-9


def test_range_sums_the_pair_terms():
    spline, wall = compact_spline(8), Repulsion(1, sigma=3.3, epsilon=0.02, cutoff=9.0).double()
    both = pair_force_range([spline, wall], 1, 1e-3, 2.5, 9.0, spacing=SPACING)
    alone = [pair_force_range([t], 1, 1e-3, 2.5, 9.0, spacing=SPACING) for t in (spline, wall)]
    assert both >= max(alone) - SPACING


def test_bad_tolerance_and_cutoff_are_refused(tmp_path):
    with pytest.raises(InputError, match="tolerance"):
        pair_force_range([compact_spline(8)], 1, 0.0, 2.5, 10.0)
    model = CGModel(["CH3"], [compact_spline(8)], mapping=ETHANE).double()
    with pytest.raises(InputError, match="pair_cutoff"):
        export(
            model,
            tmp_path,
            atoms=build_cg_box(model, 8, 0.5495, seed=1),
            temperature=180.0,
            pair_cutoff=12.0,
        )


def test_export_with_auto_cutoff_reproduces_the_model(tmp_path):
    spline = compact_spline(12)
    model = CGModel(["CH3"], [spline, HarmonicBonds(1, k=20.0, r0=1.69)], mapping=ETHANE).double()
    atoms = build_cg_box(model, 64, 0.5495, seed=2)
    files = export(
        model,
        tmp_path,
        atoms=atoms,
        table_points=4000,
        temperature=180.0,
        pair_cutoff="auto",
        pair_force_tolerance=1e-9,
    )
    cutoff = pair_force_range([spline], 1, 1e-9, 0.5, 10.0)
    assert cutoff < 9.0  # shorter than the spline's own 10 Å
    coefficient = next(
        line for line in files["system"].read_text().splitlines() if line.startswith("pair_coeff")
    )
    assert float(coefficient.split()[-1]) == pytest.approx(cutoff)
    atoms.calc = CGCalculator(model)
    forces = atoms.get_forces()
    lammps = evaluate(files["system"])
    assert lammps.energy == pytest.approx(atoms.get_potential_energy(), rel=1e-6)
    # what is left is the table's interpolation (it falls as the square of the point spacing);
    # the forces dropped beyond the cutoff are below 1e-9 eV/Å
    assert np.abs(lammps.forces - forces).max() < 3e-6 * np.abs(forces).max()


def test_cli_exports_the_shipped_model_with_auto_cutoff(tmp_path):
    from ase_cg.cli import main
    from ase_cg.model import load_model

    model_path = DATA_DIR / "ethane_classical.pt"
    argv = ["export-lammps", str(model_path), str(tmp_path), "--n-molecules", "32"]
    argv += ["--density", "0.5495", "--pair-cutoff", "auto", "--pair-table-style", "linear"]
    assert main(argv) == 0
    pair = [t for t in load_model(model_path).double().terms if t.kind == "pair"]
    expected = pair_force_range(pair, 1, 2e-3, 0.5, pair[0].cutoff)
    assert expected < pair[0].cutoff
    system = (tmp_path / "system.in").read_text()
    assert "pair_style table linear 2000" in system
    coefficient = next(line for line in system.splitlines() if line.startswith("pair_coeff"))
    assert float(coefficient.split()[-1]) == pytest.approx(expected)
