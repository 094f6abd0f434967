"""Non-finite results are stopped where they appear, naming what is at fault."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from ase_cg.calculator import CGCalculator, NonFiniteResultError
from ase_cg.errors import InputError
from ase_cg.md import MDBlowUpError, build_cg_box, run_md
from lammps_interface import export


def with_nan_parameter(model):
    """A copy of ``model`` whose first floating-point tensor is NaN."""
    broken = copy.deepcopy(model)
    state = broken.state_dict()  # shares storage with the copy
    next(t for t in state.values() if t.is_floating_point()).fill_(float("nan"))
    return broken


def test_overlapping_beads_are_named_by_the_calculator(prior_model):
    atoms = build_cg_box(prior_model, 8, 0.3, seed=1)
    atoms.positions[12] = atoms.positions[7]  # two beads of different molecules at distance 0
    atoms.calc = CGCalculator(prior_model)
    with pytest.raises(NonFiniteResultError, match=r"beads 7 and 12 overlap \(distance 0 Å\)"):
        atoms.get_potential_energy()
    # finite positions again: the calculator works (no stale result kept)
    atoms.positions[12] += [2.0, 0.0, 0.0]
    assert np.isfinite(atoms.get_forces()).all()


def test_nan_parameters_are_blamed_not_the_time_step(prior_model):
    atoms = build_cg_box(prior_model, 8, 0.3, seed=1)
    with pytest.raises(MDBlowUpError, match="check the model's parameters") as info:
        run_md(atoms, CGCalculator(with_nan_parameter(prior_model)), steps=5)
    assert "non-finite" in str(info.value)


def test_export_refuses_nan_tables(prior_model, tmp_path):
    with pytest.raises(InputError, match=r"pair.table: table .* non-finite"):
        export(with_nan_parameter(prior_model), tmp_path / "deck")
    assert not (tmp_path / "deck" / "pair.table").exists()
