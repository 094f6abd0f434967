"""Pressure-matched force matching (virial rows in the classical least squares).

A LAMMPS liquid of LJ dimers (LJ cut at 9 Å, harmonic bonds) is fitted with a 6 Å pair range:
plain force matching loses the 6–9 Å attraction and misses the pressure by hundreds of bar;
with the virial rows the fitted model's pressure on the training frames, evaluated through the
model's autograd stress (not the fit's rows), equals the reference at nearly the optimal force
residual.
"""

from __future__ import annotations

import numpy as np
import pytest
from _dimers import LJ_CUTOFF, MASS, TEMPERATURE, simulate_dimers
from ase import units

from ase_cg import _keys as K
from ase_cg.fitting import ArrayTrajectory, ClassicalConfig, FitError, fit_classical
from ase_cg.io import H5MDTrajectory, read_h5md, write_h5md, write_observables
from ase_cg.potentials import make_batch

NOISE = 0.02  # eV/Å, Gaussian noise on the forces, as in a mapped force


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dimers(tmp_path_factory):
    return simulate_dimers(tmp_path_factory.mktemp("pressure"), noise=NOISE)


def trajectory_of(dimers, with_pressure=True, with_velocities=True, noise=NOISE):
    """The frames; forces with Gaussian noise (``noise`` eV/Å, fixed seed)."""
    positions, forces, velocities, pressures, cell, _ = dimers
    forces = forces + np.random.default_rng(11).normal(0.0, noise, forces.shape)
    return ArrayTrajectory(
        positions,
        cell,
        forces,
        pressures_array=pressures * units.bar if with_pressure else None,
        velocities_array=velocities if with_velocities else None,
        masses=np.full(positions.shape[1], MASS) if with_velocities else None,
    )


def model_pressures(model, dimers, frames):
    """Pressure (bar) of ``model`` per frame: Σ m v² / 3V minus the trace of the model's
    autograd stress / 3 — independent of the fit's virial rows."""
    positions, _, velocities, _, cell, topology = dimers
    cells = np.repeat(cell[None], len(frames), axis=0)
    batch = make_batch(positions[frames], cells, topology, model.cutoff)
    stress = model(batch, compute_stress=True)[K.STRESS].detach().numpy()
    kinetic = np.einsum("fia,fia->f", velocities[frames], velocities[frames]) * MASS
    return (
        kinetic / (3 * np.linalg.det(cell)) - np.trace(stress, axis1=1, axis2=2) / 3
    ) / units.bar


def fit(dimers, noise=NOISE, **config):
    config = ClassicalConfig(temperature=TEMPERATURE, **config)
    return fit_classical(trajectory_of(dimers, noise=noise), dimers[-1], config=config)


def test_full_range_force_matching_is_near_the_reference_pressure(dimers):
    # the pressure conventions agree: a fit of noise-free forces with the true range comes
    # within tens of bar by itself (a systematic force error of 1e-5 eV/Å over 3–9 Å moves the
    # pressure of this liquid by ~25 bar, so force matching alone pins it no closer)
    model, report = fit(dimers, noise=0.0, pair_cutoff=LJ_CUTOFF)
    train = np.arange(report["n_train_frames"])
    reference = dimers[3][train].mean()
    assert abs(model_pressures(model, dimers, train).mean() - reference) < 40.0


def test_pressure_rows_recover_the_pressure_a_short_range_fit_misses(dimers):
    plain, plain_report = fit(dimers, pair_cutoff=6.0)
    matched, report = fit(dimers, pair_cutoff=6.0, pressure_weight=1e-5)
    train = np.arange(report["n_train_frames"])
    reference = dimers[3][train].mean()
    assert report["pressure"]["reference_bar"] == pytest.approx(reference, abs=1e-9)
    plain_pressure = model_pressures(plain, dimers, train).mean()
    matched_pressure = model_pressures(matched, dimers, train).mean()
    assert plain_pressure - reference > 150.0  # the missing 6–9 Å attraction
    assert abs(matched_pressure - reference) < 5.0
    # the fit's own rows agree with the autograd stress of the finished model
    assert report["pressure"]["model_bar"] == pytest.approx(matched_pressure, abs=2.0)
    assert plain_report["pressure"]["model_bar"] == pytest.approx(plain_pressure, abs=2.0)
    # at nearly the optimal force residual, train and held out
    for part in ("train", "validation"):
        optimal = plain_report[part]["all"]["force_mse"]
        assert report[part]["all"]["force_mse"] < 1.01 * optimal


def test_constant_pressure_and_temperature_kinetic_term(dimers):
    # no velocities and no per-frame pressure: the target is the config's pressure and the
    # kinetic term 3 N k_B T
    positions = dimers[0]
    target = float(dimers[3].mean())
    config = ClassicalConfig(
        temperature=TEMPERATURE, pair_cutoff=6.0, pressure_weight=1e-5, pressure=target
    )
    trajectory = trajectory_of(dimers, with_pressure=False, with_velocities=False)
    model, report = fit_classical(trajectory, dimers[-1], config=config)
    kinetic = positions.shape[1] * units.kB * TEMPERATURE / np.linalg.det(dimers[4]) / units.bar
    assert report["pressure"]["kinetic_from"] == "temperature"
    assert report["pressure"]["kinetic_bar"] == pytest.approx(kinetic, rel=1e-12)
    assert report["pressure"]["model_bar"] == pytest.approx(target, abs=2.0)


def test_pressure_matching_without_a_pressure_says_how_to_give_one(dimers):
    trajectory = trajectory_of(dimers, with_pressure=False)
    config = ClassicalConfig(temperature=TEMPERATURE, pair_cutoff=6.0, pressure_weight=1e-5)
    with pytest.raises(FitError, match=r"no observables/pressure.*--pressure BAR"):
        fit_classical(trajectory, dimers[-1], config=config)
    with pytest.raises(FitError, match="pressure_weight must be >= 0"):
        ClassicalConfig(pressure_weight=-1.0)


def test_mapping_carries_the_pressure(tmp_path, data_dir):
    from ase_cg.mapping import CGMapping, map_trajectory
    from ase_cg.trajectory import MappedTrajectory

    frames = read_h5md(data_dir / "ethane_aa.h5", slice(0, 3))
    write_h5md(tmp_path / "aa.h5", frames, time_step=1.0)
    pressures = np.array([10.0, -20.0, 30.0]) * units.bar
    write_observables(tmp_path / "aa.h5", {"pressure": pressures})
    mapping = CGMapping.load(data_dir / "ethane_mapping.json")
    map_trajectory(tmp_path / "aa.h5", tmp_path / "cg.h5", mapping, progress=False)
    with H5MDTrajectory(tmp_path / "cg.h5") as cg:
        np.testing.assert_allclose(cg.observable("pressure"), pressures, rtol=1e-12)
        assert "pressure_tensor" not in cg.observable_names
    with H5MDTrajectory(tmp_path / "aa.h5") as aa:  # mapped on the fly: the same pressure
        view = MappedTrajectory(aa, mapping, split_constraints="allow")
        assert view.observable_names == ("pressure",)
        np.testing.assert_allclose(view.observable("pressure", [2, 0]), pressures[[2, 0]])
