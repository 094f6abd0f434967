"""Checks of a CG model that users and the test suite share.

Each check raises :class:`AssertionError` with the largest deviation when it fails and returns
it (a number to print) when it passes:

* :func:`check_forces`: forces against central finite differences of the energy;
* :func:`check_stress`: stress against finite differences of the energy under strain;
* :func:`check_gradient` and :func:`check_strain_derivative`: the same two checks for a model
  used without a calculator, through any function that gives its energy;
* :func:`check_rigid_motion`: energy, forces and stress unchanged by a translation of all beads
  and by moving beads by whole cell vectors;
* :func:`check_lammps_parity`: the model exported to LAMMPS (tables + the ``cgtorch`` plugin)
  gives the energy, forces and virial of :class:`~ase_cg.calculator.CGCalculator` for the same
  configuration, on 1 or more MPI ranks.

Energies in eV, forces in eV/Å, stresses in eV/Å³, virials in eV (ASE units throughout).
"""

from __future__ import annotations

import os

import numpy as np
from ase import Atoms
from ase.calculators.fd import calculate_numerical_stress

from ase_cg.calculator import CGCalculator
from lammps_interface.deck import export
from lammps_interface.run import evaluate


def _deviation(what: str, got: np.ndarray, expected: np.ndarray, rtol: float, atol: float):
    """Largest |got − expected|; AssertionError where it exceeds atol + rtol·|expected|."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    difference = np.abs(got - expected)
    bad = difference > atol + rtol * np.abs(expected)
    if np.any(bad):
        index = np.unravel_index(np.argmax(np.where(bad, difference, -1.0)), difference.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} values differ beyond rtol={rtol}, "
            f"atol={atol}; worst at {tuple(int(i) for i in index)}: {got[index]!r} vs "
            f"{expected[index]!r}"
        )
    return float(difference.max(initial=0.0))


def check_forces(
    atoms: Atoms,
    *,
    indices=None,
    eps: float = 1e-5,
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> float:
    """Forces of ``atoms.calc`` against central differences of its energy.

    :func:`check_gradient` on the calculator's energy (``atoms`` must have a calculator; the
    options and the returned largest deviation, eV/Å, are those of :func:`check_gradient`).
    """
    forces = atoms.get_forces()
    probe = atoms.copy()
    probe.calc = atoms.calc

    def energy(positions):
        probe.positions = positions
        return probe.get_potential_energy()

    return check_gradient(
        energy, atoms.positions, forces, indices=indices, eps=eps, rtol=rtol, atol=atol
    )


def check_stress(
    atoms: Atoms, *, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-10
) -> float:
    """Stress of ``atoms.calc`` (Voigt, eV/Å³) against finite differences under strain."""
    stress = atoms.get_stress()
    numeric = calculate_numerical_stress(atoms, eps=eps)
    return _deviation("stress vs strain derivative", stress, numeric, rtol, atol)


def check_gradient(
    energy,
    positions: np.ndarray,
    forces: np.ndarray,
    *,
    indices=None,
    eps: float = 1e-5,
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> float:
    """Forces against central differences of ``energy(positions)``, the energy of a model.

    Parameters
    ----------
    energy : callable
        ``energy(positions) -> float``, eV, for positions (n_beads, 3), Å.
    positions : (n_beads, 3) float, Å
    forces : (n_beads, 3) float, eV/Å
        The model's forces at ``positions``.
    indices : sequence of int, optional
        Beads to displace (default all; 6 energies per bead).
    eps : float, Å
        Displacement.
    rtol, atol : float
        Tolerances (atol in eV/Å).

    Returns
    -------
    float
        Largest absolute deviation, eV/Å.
    """
    positions = np.asarray(positions, dtype=np.float64)
    indices = range(len(positions)) if indices is None else [int(i) for i in indices]
    numeric = np.zeros((len(indices), 3))
    for row, bead in enumerate(indices):
        for axis in range(3):
            plus, minus = positions.copy(), positions.copy()
            plus[bead, axis] += eps
            minus[bead, axis] -= eps
            numeric[row, axis] = -(energy(plus) - energy(minus)) / (2 * eps)
    got = np.asarray(forces, dtype=np.float64)[list(indices)]
    return _deviation("forces vs finite differences", got, numeric, rtol, atol)


def check_strain_derivative(
    energy,
    positions: np.ndarray,
    cell: np.ndarray,
    stress: np.ndarray,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-9,
) -> float:
    """Stress against central differences of ``energy(positions, cell)`` under strain.

    σ_ab = (1/V) ∂E/∂ε_ab with positions and cell vectors (rows) multiplied by 1 + ε.

    Parameters
    ----------
    energy : callable
        ``energy(positions, cell) -> float``, eV.
    positions : (n_beads, 3) float, Å
    cell : (3, 3) float, Å
        Cell vectors as rows.
    stress : (3, 3) float, eV/Å³
        The model's stress at ``positions`` and ``cell``.
    eps : float
        Strain.
    rtol, atol : float
        Tolerances (atol in eV/Å³).

    Returns
    -------
    float
        Largest absolute deviation, eV/Å³.
    """
    positions, cell = np.asarray(positions, np.float64), np.asarray(cell, np.float64)
    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            strain = np.zeros((3, 3))
            strain[a, b] = eps
            plus, minus = np.eye(3) + strain, np.eye(3) - strain
            difference = energy(positions @ plus, cell @ plus) - energy(
                positions @ minus, cell @ minus
            )
            numeric[a, b] = difference / (2 * eps) / abs(np.linalg.det(cell))
    return _deviation("stress vs strain derivative", stress, numeric, rtol, atol)


def check_rigid_motion(
    atoms: Atoms, calculator_factory, *, seed: int = 0, rtol: float = 1e-12, atol: float = 1e-10
) -> float:
    """Results unchanged when every bead moves by one vector and some by whole cell vectors.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic CG configuration.
    calculator_factory : callable
        Returns a new calculator for each copy (so no neighbour list is reused).
    """
    rng = np.random.default_rng(seed)

    def results(configuration):
        configuration.calc = calculator_factory()
        return (
            np.array([configuration.get_potential_energy()]),
            configuration.get_forces(),
            configuration.get_stress(),
        )

    reference = results(atoms.copy())
    moved = atoms.copy()
    moved.translate(rng.normal(0.0, 5.0, 3))
    moved.positions += rng.integers(-2, 3, (len(moved), 3)) @ moved.cell.array
    worst = 0.0
    names = ("energy", "forces", "stress")
    for name, got, expected in zip(names, results(moved), reference, strict=True):
        worst = max(worst, _deviation(f"{name} after a rigid motion", got, expected, rtol, atol))
    return worst


def calculator_results(model, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy (eV), forces (eV/Å) and virial W = −σV (3 × 3, eV) from :class:`CGCalculator`."""
    atoms = atoms.copy()
    atoms.calc = CGCalculator(model)
    virial = -atoms.get_stress(voigt=False) * atoms.get_volume()
    return atoms.get_potential_energy(), atoms.get_forces(), virial


def check_lammps_parity(
    model,
    atoms: Atoms,
    directory: str | os.PathLike,
    *,
    ranks: int = 1,
    rtol: float = 1e-6,
    **export_options,
) -> dict[str, float]:
    """LAMMPS (the model exported with :func:`lammps_interface.export`) against CGCalculator.

    Energy, forces and virial must agree to ``rtol`` relative to the largest value of each.

    Parameters
    ----------
    model : CGModel
    atoms : ase.Atoms
        Periodic CG configuration with bead types and molecule ids.
    directory : path
        Where the export is written.
    ranks : int
        MPI ranks of the LAMMPS run.
    rtol : float
    **export_options
        Passed to :func:`lammps_interface.export` (``temperature`` defaults to 300 K: the deck
        is not run, only evaluated).

    Returns
    -------
    dict
        ``"energy"``, ``"forces"``, ``"virial"``: the largest deviations (eV, eV/Å, eV).
    """
    export_options.setdefault("temperature", 300.0)
    files = export(model, directory, atoms=atoms, **export_options)
    lammps = evaluate(files["system"], ranks=ranks)
    energy, forces, virial = calculator_results(model, atoms)
    return {
        "energy": _deviation("LAMMPS energy", lammps.energy, energy, rtol, 0.0),
        "forces": _deviation(
            "LAMMPS forces", lammps.forces, forces, 0.0, rtol * np.abs(forces).max()
        ),
        "virial": _deviation(
            "LAMMPS virial", lammps.virial, virial, 0.0, rtol * np.abs(virial).max()
        ),
    }
