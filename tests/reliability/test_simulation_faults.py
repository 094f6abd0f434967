"""Exploding CG MD in LAMMPS: the run stops with an error, the frames written so far are usable.

(The ASE engine's blow-ups — huge time step, overlapping beads, non-finite values — are
tested in ``tests/integration/test_md.py``: ``MDBlowUpError`` names the step and the bead, and
the H5MD written so far holds every frame before the failure.)
"""

from __future__ import annotations

import numpy as np
import pytest

from ase_cg.io import H5MDTrajectory
from ase_cg.md import MDBlowUpError, build_cg_box
from ase_cg.pipeline import simulate
from lammps_interface import export
from lammps_interface.run import LammpsRunError, dump_to_h5md, run_deck


@pytest.fixture(scope="module")
def huge_time_step(prior_model, tmp_path_factory):
    """``simulate(engine="lammps")`` at 100 fs (the CG bond allows ~5 fs): the error raised."""
    output = tmp_path_factory.mktemp("blow") / "blow.h5"
    with pytest.raises(Exception) as info:
        simulate(
            prior_model,
            engine="lammps",
            n_molecules=27,
            density=0.55,
            output=output,
            steps=2000,
            interval=10,
            time_step_fs=100.0,
            seed=3,
        )
    return output, info.value


def test_lammps_blow_up_stops_and_the_complete_frames_stay_readable(huge_time_step):
    output, error = huge_time_step
    # LAMMPS stops (no hang, no silent garbage) and says what broke
    assert isinstance(error, MDBlowUpError)
    assert isinstance(error.__cause__, LammpsRunError)
    assert "Bond length > table outer cutoff" in str(error)
    folder = output.with_name("blow_lammps")
    # the dump holds the complete frames before the failure; they convert to a valid file
    n = dump_to_h5md(
        folder / "dump.cg.lammpstrj", folder / "so_far.h5", folder / "data.cg", time_step=100.0
    )
    assert 1 <= n < 2000 // 10 + 1
    with H5MDTrajectory(folder / "so_far.h5") as trajectory:
        assert len(trajectory) == n
        assert np.isfinite(trajectory.positions()).all()


def test_lammps_blow_up_names_step_and_bead_and_keeps_the_output(huge_time_step):
    output, error = huge_time_step
    assert isinstance(error, MDBlowUpError)
    assert error.step > 0 and 0 <= error.bead < 54
    with H5MDTrajectory(output) as trajectory:
        assert len(trajectory) >= 1


def test_lammps_overlapping_beads_stop_with_the_distance(prior_model, tmp_path):
    atoms = build_cg_box(prior_model, 8, 0.3, seed=1)
    atoms.positions[7] = atoms.positions[12] + [0.1, 0.0, 0.0]  # beads of different molecules
    export(prior_model, tmp_path, atoms=atoms, steps=10, dump_every=1, temperature=180.0)
    with pytest.raises(LammpsRunError, match=r"Pair distance < table inner cutoff.*dist 0\.(1|09)"):
        run_deck(tmp_path)
