"""Transport: mean-squared displacement (unwrapped across frames, of particles or molecule
centres of mass) and diffusion coefficients by the Einstein relation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ase_cg.analysis._frames import (
    AnalysisError,
    check_periodic,
    frames_of,
    iter_frames,
    mol_ids_of,
)

__all__ = ["A2_PER_FS_TO_CM2_PER_S", "DiffusionFit", "diffusion_coefficient", "msd"]

#: 1 Å²/fs in cm²/s (1e-16 cm² / 1e-15 s).
A2_PER_FS_TO_CM2_PER_S = 0.1


class Unwrapper:
    r"""Continuous positions from wrapped frames, one frame at a time.

    The displacement of each wrapped position since the previous frame is reduced to its
    nearest image in the *current* cell (the lattice-displacement scheme of von Bülow,
    Bullerjahn & Hummer, J. Chem. Phys. 153, 021101 (2020)):

    .. math:: u_t = u_{t-1} + \Delta w - \mathrm{round}(\Delta w\, h_t^{-1})\, h_t,
              \qquad \Delta w = w_t - w_{t-1}

    with :math:`h_t` the cell (rows). Exact in fixed cells as long as no particle moves more
    than half a box width between frames; in NPT runs it does not amplify box fluctuations
    the way ``w_t + n_t h_t`` with image counters does; triclinic cells work.
    """

    def __init__(self):
        self.previous = None
        self.current = None

    def add(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.float64)
        if self.current is None:
            self.current = positions.copy()
        else:
            step = positions - self.previous
            step -= np.round(np.linalg.solve(cell.T, step.T).T) @ cell
            self.current = self.current + step
        self.previous = positions
        return self.current


def centres_of_mass(positions: np.ndarray, mol_ids: np.ndarray, masses: np.ndarray):
    """(n_molecules, 3) mass-weighted centres of ``positions`` grouped by molecule id."""
    _, inverse = np.unique(mol_ids, return_inverse=True)
    total = np.bincount(inverse, weights=masses)
    return (
        np.stack([np.bincount(inverse, weights=masses * positions[:, k]) for k in range(3)], axis=1)
        / total[:, None]
    )


def msd_fft(trajectory: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Time-origin-averaged MSD of (n_frames, n, 3) continuous positions, for every lag.

    MSD(m) = S1(m) − 2 S2(m) with S2 the positions' autocorrelation from an FFT (O(T log T)),
    processed in chunks of particles so memory stays bounded.
    """
    n_frames, n_particles, _ = trajectory.shape
    lags = np.arange(n_frames)
    per_lag = n_frames - lags
    total = np.zeros(n_frames)
    size = 2 * n_frames
    for start in range(0, n_particles, chunk):
        x = trajectory[:, start : start + chunk]
        squared = np.sum(x * x, axis=2)  # (T, n)
        cumulative = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(squared, axis=0)])
        # Σ_{t<T−m} x_t² + Σ_{t≥m} x_t²
        s1 = cumulative[n_frames - lags] + cumulative[n_frames] - cumulative[lags]
        spectrum = np.fft.rfft(x, n=size, axis=0)
        autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, n=size, axis=0)[:n_frames]
        s2 = np.sum(autocorrelation, axis=2)
        total += np.sum(s1 - 2.0 * s2, axis=1)
    return np.maximum(total / (per_lag * n_particles), 0.0)


def check_times(times_fs, n_frames: int, what: str) -> np.ndarray:
    times = np.asarray(times_fs, dtype=np.float64).reshape(-1)
    if len(times) != n_frames:
        raise AnalysisError(f"{what}: {len(times)} times for {n_frames} frames")
    if n_frames > 1:
        steps = np.diff(times)
        if np.any(steps <= 0) or not np.allclose(steps, steps[0], rtol=1e-4, atol=1e-6):
            raise AnalysisError(
                f"{what}: frame times must be evenly spaced and increasing (found spacings "
                f"{steps.min():.6g} to {steps.max():.6g} fs); give frames written at a fixed "
                "interval"
            )
    return times


def msd(
    images=None,
    *,
    positions=None,
    cells=None,
    times_fs=None,
    unwrapped: bool = False,
    by_molecule: bool = False,
    mol_ids=None,
    masses=None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean-squared displacement, averaged over particles (or molecules) and time origins.

    .. math:: \mathrm{MSD}(\tau) = \langle |x_i(t+\tau) - x_i(t)|^2 \rangle_{i,t}

    computed for every lag with an FFT. Wrapped positions are unwrapped first, frame to frame,
    by taking each displacement to its nearest periodic image in the current cell (von Bülow
    et al. 2020, safe for NPT and triclinic cells); this assumes no particle moves more than
    half a box width between consecutive frames. Memory: the continuous positions of all
    frames, (n_frames, n, 3) float64.

    Parameters
    ----------
    images : sequence of ase.Atoms, or path of an H5MD file, optional
        Frames at evenly spaced times. Times come from ``times_fs``, else from
        ``atoms.info["time"]`` (fs) or the H5MD file's times.
    positions : (n_frames, n, 3) float, Å, optional
        Instead of ``images``: positions of every frame.
    cells : (n_frames, 3, 3) or (3, 3) float, Å, optional
        Cells of ``positions`` (needed unless ``unwrapped``).
    times_fs : (n_frames,) float, fs, optional
        Time of each frame.
    unwrapped : bool
        ``positions`` are already continuous (not wrapped into the box): skip unwrapping.
    by_molecule : bool
        MSD of molecule centres of mass instead of particles (needs ``mol_ids`` and ``masses``,
        taken from the frames when ``images`` is given).
    mol_ids : (n,) int, optional
    masses : (n,) float, amu, optional

    Returns
    -------
    lag_times : (n_frames,) float64, fs
    msd : (n_frames,) float64, Å²
    """
    if (images is None) == (positions is None):
        raise AnalysisError("msd: give either images or positions (with cells), not both")
    if images is not None:
        with frames_of(images, "msd") as frames:
            unwrapper = Unwrapper()
            continuous, frame_times = [], []
            for frame, atoms in enumerate(iter_frames(frames, desc="MSD")):
                cell, _ = check_periodic(atoms, frame, "msd")
                continuous.append(unwrapper.add(atoms.positions, cell).copy())
                frame_times.append(atoms.info.get("time"))
                if frame == 0 and by_molecule:
                    mol_ids = mol_ids_of(atoms, frame, "msd", needed=True)
                    masses = atoms.get_masses()
            if times_fs is None and hasattr(frames, "times"):
                times_fs = frames.times
        trajectory = np.stack(continuous)
        if times_fs is None:
            if any(t is None for t in frame_times):
                raise AnalysisError(
                    "msd: frames carry no times (atoms.info['time'], fs); pass times_fs"
                )
            times_fs = frame_times
    else:
        trajectory = np.asarray(positions, dtype=np.float64)
        if trajectory.ndim != 3 or trajectory.shape[2] != 3:
            raise AnalysisError(
                f"msd: positions must be (n_frames, n, 3), got shape {trajectory.shape}"
            )
        if not unwrapped:
            if cells is None:
                raise AnalysisError("msd: wrapped positions need cells; pass cells= or unwrapped")
            cells = np.broadcast_to(np.asarray(cells, dtype=np.float64), (len(trajectory), 3, 3))
            unwrapper = Unwrapper()
            trajectory = np.stack(
                [unwrapper.add(p, c).copy() for p, c in zip(trajectory, cells, strict=True)]
            )
        if times_fs is None:
            raise AnalysisError("msd: positions given without times; pass times_fs (fs)")
    times = check_times(times_fs, len(trajectory), "msd")
    if by_molecule:
        if mol_ids is None or masses is None:
            raise AnalysisError("msd: by_molecule=True needs mol_ids and masses")
        mol_ids = np.asarray(mol_ids)
        masses = np.asarray(masses, dtype=np.float64)
        if len(mol_ids) != trajectory.shape[1] or len(masses) != trajectory.shape[1]:
            raise AnalysisError(
                f"msd: {len(mol_ids)} molecule ids and {len(masses)} masses for "
                f"{trajectory.shape[1]} particles"
            )
        trajectory = np.stack([centres_of_mass(x, mol_ids, masses) for x in trajectory])
    return times - times[0], msd_fft(trajectory)


@dataclass(frozen=True)
class DiffusionFit:
    """Self-diffusion coefficient from a linear fit MSD(t) = 2 d D t + c (Einstein relation)."""

    a2_per_fs: float
    """D, Å²/fs."""
    cm2_per_s: float
    """D, cm²/s (1 Å²/fs = 0.1 cm²/s)."""
    intercept_a2: float
    """Fitted c, Å² (ballistic regime and vibrations)."""
    fit_range_fs: tuple[float, float]
    """Lag times fitted, fs."""
    dimensions: int
    """d: number of dimensions the MSD is summed over."""


def diffusion_coefficient(times_fs, msd_a2, fit_range=None, *, dimensions: int = 3) -> DiffusionFit:
    r"""Self-diffusion coefficient by the Einstein relation, a least-squares line through MSD(t).

    .. math:: \mathrm{MSD}(t) \approx 2 d D t + c, \qquad t_0 \le t \le t_1

    Parameters
    ----------
    times_fs : (n,) float, fs
        Lag times.
    msd_a2 : (n,) float, Å²
        Mean-squared displacement at each lag.
    fit_range : (float, float), fs, optional
        Lag times ``(t0, t1)`` to fit; default from 10 % to 50 % of the longest lag (past the
        ballistic start, before the noisy long lags that few time origins average).
    dimensions : int
        d (3 for an MSD summed over x, y, z).

    Returns
    -------
    DiffusionFit
        ``a2_per_fs`` and ``cm2_per_s``: D in Å²/fs and cm²/s.
    """
    times = np.asarray(times_fs, dtype=np.float64)
    values = np.asarray(msd_a2, dtype=np.float64)
    if times.shape != values.shape or times.ndim != 1:
        raise AnalysisError(
            f"diffusion_coefficient: times {times.shape} and msd {values.shape} must be equal "
            "1-D arrays"
        )
    if fit_range is None:
        fit_range = (0.1 * times.max(), 0.5 * times.max())
    low, high = float(fit_range[0]), float(fit_range[1])
    selected = (times >= low) & (times <= high)
    if selected.sum() < 2:
        raise AnalysisError(
            f"diffusion_coefficient: fit range {low:g}–{high:g} fs holds {int(selected.sum())} "
            f"point(s) (lags span {times.min():g}–{times.max():g} fs); widen fit_range"
        )
    slope, intercept = np.polyfit(times[selected], values[selected], 1)
    d = slope / (2 * dimensions)
    return DiffusionFit(
        a2_per_fs=float(d),
        cm2_per_s=float(d * A2_PER_FS_TO_CM2_PER_S),
        intercept_a2=float(intercept),
        fit_range_fs=(low, high),
        dimensions=int(dimensions),
    )
