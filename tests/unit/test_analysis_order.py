"""Neighbour angles and the tetrahedral order parameter against lattices with known values, the
ideal gas, and a brute-force minimum-image implementation in a triclinic cell."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.geometry import get_distances

from ase_cg import analysis
from ase_cg.analysis import AnalysisError
from ase_cg.io import write_h5md

TETRAHEDRAL_ANGLE = np.degrees(np.arccos(-1.0 / 3.0))  # 109.47°


def q_of(unit_vectors) -> float:
    """Errington–Debenedetti q of four unit vectors, written out pair by pair."""
    total = 0.0
    for a, b in itertools.combinations(range(4), 2):
        total += (float(np.dot(unit_vectors[a], unit_vectors[b])) + 1.0 / 3.0) ** 2
    return 1.0 - 3.0 / 8.0 * total


def diamond(nearest=2.8, repeat=3):
    """Diamond lattice (every site at the centre of a tetrahedron of its four neighbours)."""
    atoms = bulk("C", "diamond", a=nearest * 4.0 / np.sqrt(3.0), cubic=True).repeat(repeat)
    atoms.arrays["mol-id"] = np.arange(len(atoms))
    return atoms


def test_diamond_lattice_is_perfectly_tetrahedral():
    atoms = diamond()
    atoms.rattle(1e-9)  # breaks exact ties of the lattice, not the geometry
    q = analysis.tetrahedral_order_parameters(atoms)
    np.testing.assert_allclose(q, 1.0, atol=1e-7)
    angles = analysis.neighbor_angles(atoms)  # default cutoff 3.18 Å: the four at 2.8 Å
    assert len(angles) == 6 * len(atoms)
    np.testing.assert_allclose(angles, TETRAHEDRAL_ANGLE, atol=1e-6)
    centres, density = analysis.neighbor_angle_distribution([atoms, diamond()], bins=180)
    width = centres[1] - centres[0]
    peak = int(np.argmax(density))
    assert centres[peak] - width / 2 <= TETRAHEDRAL_ANGLE < centres[peak] + width / 2
    assert density[peak] * width == pytest.approx(1.0)
    _, _, mean = analysis.tetrahedral_order([atoms, diamond()])
    assert mean == pytest.approx(1.0, abs=1e-7)


def test_simple_cubic_lattice_angles_and_q_of_any_four_of_six_neighbours(rng):
    atoms = bulk("Po", "sc", a=2.8).repeat(6)
    atoms.positions += rng.normal(scale=1e-9, size=atoms.positions.shape)
    angles = analysis.neighbor_angles(atoms)  # six neighbours at 2.8 Å, the next at 3.96 Å
    assert len(angles) == 15 * len(atoms)
    at_90 = np.abs(angles - 90.0) < 1e-6
    at_180 = np.abs(angles - 180.0) < 1e-3  # arccos near −1: error ~ sqrt(position noise)
    assert np.all(at_90 | at_180)
    assert at_90.sum() == 12 * len(atoms) and at_180.sum() == 3 * len(atoms)
    # the four nearest are any four of the six octahedral directions, so q takes one of the
    # values of those choices (1/2 for four in a plane, 5/8 otherwise)
    octahedron = np.vstack([np.eye(3), -np.eye(3)])
    allowed = sorted(
        {round(q_of(octahedron[list(c)]), 12) for c in itertools.combinations(range(6), 4)}
    )
    assert allowed == pytest.approx([0.5, 0.625])
    q = analysis.tetrahedral_order_parameters(atoms)
    distance = np.min(np.abs(q[:, None] - np.array(allowed)[None, :]), axis=1)
    assert distance.max() < 1e-6


def test_ideal_gas_has_zero_mean_q_and_sine_angle_distribution(rng):
    length, n, n_frames = 30.0, 3000, 6
    frames = [
        Atoms("X" * n, positions=rng.random((n, 3)) * length, cell=[length] * 3, pbc=True)
        for _ in range(n_frames)
    ]
    means = [analysis.tetrahedral_order_parameters(atoms).mean() for atoms in frames]
    standard_error = np.std(means, ddof=1) / np.sqrt(n_frames)
    assert standard_error < 0.01
    assert abs(np.mean(means)) < 4 * standard_error + 1e-3
    _, _, mean = analysis.tetrahedral_order(frames)
    assert mean == pytest.approx(np.mean(means))
    # uncorrelated directions: p(ψ) = sin ψ / 2 per radian; per degree, bin by bin
    edges = np.linspace(0.0, 180.0, 19)
    centres, density = analysis.neighbor_angle_distribution(frames, cutoff=3.0, bins=edges)
    expected = (np.cos(np.radians(edges[:-1])) - np.cos(np.radians(edges[1:]))) / 2 / 10.0
    np.testing.assert_allclose(centres, 0.5 * (edges[1:] + edges[:-1]))
    np.testing.assert_allclose(density, expected, atol=0.015 * expected.max())


def test_brute_force_minimum_image_agrees_in_a_triclinic_cell(rng):
    cell = np.array([[14.0, 0.0, 0.0], [4.0, 13.0, 0.0], [-2.0, 3.0, 15.0]])
    atoms = Atoms("X" * 150, positions=rng.random((150, 3)) @ cell, cell=cell, pbc=True)
    vectors, distances = get_distances(atoms.positions, cell=cell, pbc=True)
    np.fill_diagonal(distances, np.inf)
    cutoff = 4.0
    expected_q, expected_angles = [], []
    for i in range(len(atoms)):
        nearest = np.argsort(distances[i])[:4]
        expected_q.append(q_of(vectors[i, nearest] / distances[i, nearest, None]))
        shell = np.flatnonzero(distances[i] < cutoff)
        for j, k in itertools.combinations(shell, 2):
            cosine = np.dot(vectors[i, j], vectors[i, k]) / (distances[i, j] * distances[i, k])
            expected_angles.append(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
    np.testing.assert_allclose(analysis.tetrahedral_order_parameters(atoms), expected_q, atol=1e-10)
    np.testing.assert_allclose(
        np.sort(analysis.neighbor_angles(atoms, cutoff)), np.sort(expected_angles), atol=1e-8
    )


def test_h5md_file_gives_the_frames_values(tmp_path):
    frames = [diamond(), diamond()]
    frames[1].rattle(0.05, seed=3)
    write_h5md(tmp_path / "d.h5", frames)
    for function in (analysis.neighbor_angle_distribution, analysis.tetrahedral_order):
        from_file = function(tmp_path / "d.h5")
        from_list = function(frames)
        for a, b in zip(from_file, from_list, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)  # positions stored as float32


def test_bad_input_is_rejected_with_the_frame_named():
    atoms = diamond()
    squeezed = atoms.copy()
    squeezed.set_cell(atoms.cell[:] * 0.3, scale_atoms=True)  # half width 2.9 Å < 3.18 Å
    with pytest.raises(AnalysisError, match=r"neighbor_angle_distribution, frame 1: cutoff"):
        analysis.neighbor_angle_distribution([atoms, squeezed])
    open_box = atoms.copy()
    open_box.pbc = False
    with pytest.raises(AnalysisError, match=r"tetrahedral_order, frame 0: pbc"):
        analysis.tetrahedral_order([open_box])
    with pytest.raises(AnalysisError, match="at least five particles"):
        analysis.tetrahedral_order_parameters(atoms[:4])
    with pytest.raises(AnalysisError, match="no particle has two neighbours within 1 Å"):
        analysis.neighbor_angle_distribution(atoms, cutoff=1.0)
    sparse = Atoms("X" * 6, positions=np.eye(3).repeat(2, axis=0) * 0.1, cell=[40] * 3, pbc=True)
    sparse.positions[3:] += 15.0
    with pytest.raises(AnalysisError, match="neighbours within half the box"):
        analysis.tetrahedral_order_parameters(sparse)
