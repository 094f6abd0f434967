"""Per-frame observables in H5MD (``observables/<name>``): writing, reading any file's, units."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from ase import units

from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, H5MDWriter, write_observables


def _write(path, n_frames=4, observables=None, energy=True):
    rng = np.random.default_rng(0)
    with H5MDWriter(path, species=[1, 1, 8], masses=[1.0, 1.0, 16.0], time_step=2.0) as w:
        for frame in range(n_frames):
            w.append(
                rng.uniform(0, 5, (3, 3)),
                np.eye(3) * 5,
                step=10 * frame,
                energy=-float(frame) if energy else None,
                observables=None if observables is None else observables(frame),
            )


def test_writer_stores_pressure_in_bar_and_reader_returns_ase_units(tmp_path):
    tensors = np.arange(4 * 9, dtype=float).reshape(4, 3, 3) * units.bar
    tensors = tensors + tensors.transpose(0, 2, 1)

    def observables(frame):
        return {"pressure": 100.0 * frame * units.bar, "pressure_tensor": tensors[frame]}

    _write(tmp_path / "a.h5", observables=observables)
    with h5py.File(tmp_path / "a.h5") as handle:
        value = handle["observables/pressure/value"]
        assert value.attrs["unit"] == "bar"
        np.testing.assert_allclose(value[()], [0.0, 100.0, 200.0, 300.0])
        assert handle["observables/pressure/step"] == handle["particles/all/position/step"]
    with H5MDTrajectory(tmp_path / "a.h5") as trajectory:
        assert trajectory.observable_names == ("potential_energy", "pressure", "pressure_tensor")
        bar = trajectory.observable("pressure") / units.bar
        np.testing.assert_allclose(bar, [0, 100, 200, 300])
        np.testing.assert_allclose(trajectory.observable("pressure_tensor"), tensors, rtol=1e-12)
        assert trajectory.observable("pressure", 2) == pytest.approx(200 * units.bar)
        picked = trajectory.observable("pressure", [3, 1]) / units.bar
        np.testing.assert_allclose(picked, [300, 100])
        np.testing.assert_allclose(trajectory.observable("potential_energy"), trajectory.energies())


def test_writer_rejects_changing_or_unknown_observables(tmp_path):
    with pytest.raises(InputError, match="observables"):
        _write(tmp_path / "b.h5", observables=lambda f: {"pressure": 1.0} if f == 0 else {})
    with pytest.raises(InputError, match="unknown observable 'temperature'"):
        _write(tmp_path / "c.h5", observables=lambda f: {"temperature": 1.0})
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize(
    ("unit", "factor"),
    [("atm", 1.01325 * units.bar), ("MPa", 10 * units.bar), ("kPa", 0.01 * units.bar), (None, 1.0)],
)
def test_reader_reads_foreign_observables_with_their_units(tmp_path, unit, factor):
    # another writer's file: observables with their own step datasets and units
    _write(tmp_path / "f.h5", energy=False)
    with h5py.File(tmp_path / "f.h5", "r+") as handle:
        element = handle.create_group("observables/pressure")
        value = element.create_dataset("value", data=[1.0, 2.0, 3.0, 4.0])
        if unit is not None:
            value.attrs["unit"] = unit
        element.create_dataset("step", data=[0, 10, 20, 30])
    with H5MDTrajectory(tmp_path / "f.h5") as trajectory:
        np.testing.assert_allclose(trajectory.observable("pressure"), np.arange(1, 5) * factor)


def test_reader_errors_name_the_dataset(tmp_path):
    _write(tmp_path / "g.h5", energy=False)
    with (
        H5MDTrajectory(tmp_path / "g.h5") as trajectory,
        pytest.raises(InputError, match=r"no 'observables/pressure'.*none"),
    ):
        trajectory.observable("pressure")
    with h5py.File(tmp_path / "g.h5", "r+") as handle:
        element = handle.create_group("observables/pressure")
        element.create_dataset("value", data=[1.0, 2.0, 3.0, 4.0]).attrs["unit"] = "K"
        element.create_dataset("step", data=[0, 10, 20, 30])
        other = handle.create_group("observables/density")
        other.create_dataset("value", data=[1.0, 2.0, 3.0, 4.0])
        other.create_dataset("step", data=[0, 5, 20, 30])
    with H5MDTrajectory(tmp_path / "g.h5") as trajectory:
        with pytest.raises(InputError, match=r"'unit' of 'observables/pressure/value' is 'K'"):
            trajectory.observable("pressure")
        with pytest.raises(InputError, match="observables/density/step"):
            trajectory.observable("density")


def test_write_observables_adds_and_replaces_atomically(tmp_path):
    path = tmp_path / "h.h5"
    _write(path)
    write_observables(path, {"pressure": np.array([1.0, 2.0, 3.0, 4.0]) * units.bar})
    write_observables(path, {"pressure": np.array([5.0, 6.0, 7.0, 8.0]) * units.bar})
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"one value per frame \(4, ...\), got shape \(3,\)"):
        write_observables(path, {"pressure": np.ones(3)})
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1
    with H5MDTrajectory(path) as trajectory:
        np.testing.assert_allclose(trajectory.observable("pressure") / units.bar, [5, 6, 7, 8])
        assert trajectory.n_frames == 4 and trajectory.has_energies
