"""Spline terms: basis, analytic design matrix vs autograd, tables vs forward, extrapolation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _chains import (
    chain_from_internal,
    chain_liquid,
    random_chain_model,
)

from ase_cg import _keys as K
from ase_cg.fitting.linear import _NormalEquations
from ase_cg.model import load_model, save_model
from ase_cg.potentials import CGModel, SystemTopology, make_batch
from ase_cg.potentials._splines import SplineGrid, basis_weights
from ase_cg.potentials.base import build_graph
from ase_cg.potentials.classical import (
    AngleSpline,
    BondSpline,
    DihedralSpline,
    PairSpline,
    type_combinations,
)


def test_basis_weights_partition_unity_and_derivatives():
    u = torch.linspace(0, 1, 11, dtype=torch.float64)
    w, dw, d2w = basis_weights(u)
    assert torch.allclose(w.sum(-1), torch.ones_like(u))
    assert torch.allclose(dw.sum(-1), torch.zeros_like(u), atol=1e-14)
    h = 1e-6
    assert torch.allclose((basis_weights(u + h)[0] - basis_weights(u - h)[0]) / (2 * h), dw)
    assert torch.allclose((basis_weights(u + h)[1] - basis_weights(u - h)[1]) / (2 * h), d2w)


def test_spline_is_c2_across_knots(rng):
    grid = SplineGrid(1.0, 3.0, 8)
    coefficients = torch.as_tensor(rng.normal(size=(1, grid.n_basis)))
    rows = torch.zeros(2, dtype=torch.int64)
    for knot in grid.knots()[1:-1]:
        x = torch.tensor([knot - 1e-12, knot + 1e-12], dtype=torch.float64)
        for order in range(3):
            left, right = grid.evaluate(coefficients, rows, x, order)
            assert float(left) == pytest.approx(float(right), abs=1e-8)


def test_difference_matrix_annihilates_quadratics():
    grid = SplineGrid(0.0, 1.0, 10)
    j = np.arange(grid.n_basis, dtype=float)
    d3 = grid.difference_matrix(3)
    assert np.allclose(d3 @ (2 + 3 * j - 0.5 * j**2), 0)
    assert not np.allclose(d3 @ j**3, 0)
    periodic = SplineGrid(-math.pi, math.pi, 12, periodic=True).difference_matrix(3)
    assert periodic.shape == (12, 12) and np.allclose(periodic @ np.ones(12), 0)


def test_type_combinations_are_symmetric():
    assert type_combinations(2, 2) == [(0, 0), (0, 1), (1, 1)]
    angle = AngleSpline(3, 1.0, 3.0, 4)
    dihedral = DihedralSpline(3, 12)
    for types in [(0, 1, 2), (2, 0, 1), (1, 1, 0)]:
        forward = angle.combination_index(torch.tensor([types]))
        backward = angle.combination_index(torch.tensor([types[::-1]]))
        assert forward == backward
    forward = dihedral.combination_index(torch.tensor([[0, 1, 2, 2]]))
    assert forward == dihedral.combination_index(torch.tensor([[2, 2, 1, 0]]))
    assert forward != dihedral.combination_index(torch.tensor([[0, 2, 1, 2]]))
    assert len(angle.combinations) == 18  # 3·3·3 = 27 tuples, 9 palindromes: (27 + 9) / 2


def test_design_matrix_equals_autograd_forces(rng):
    """G c (analytic coordinate gradients, scattered) equals −∇E of the model by autograd."""
    positions, cell, topology = chain_liquid(rng)
    model = random_chain_model(rng)
    batch = make_batch(positions, cell, topology, model.cutoff)
    forces = model(batch)[K.FORCES].detach().reshape(-1)
    graph = build_graph(batch, batch[K.POSITIONS], batch[K.CELL])
    equations = _NormalEquations(list(model.terms))
    design, virial_rows = equations.design_matrix(graph)
    coefficients = torch.cat([t.coefficients[:, : t.n_free].reshape(-1) for t in model.terms])
    assert torch.allclose(design @ coefficients, forces, rtol=1e-9, atol=1e-10)
    assert forces.abs().max() > 0.05
    # the virial rows give the trace of the virial W = −σV that autograd gives (pair and bond
    # terms; angles and dihedrals are invariant under uniform scaling and add nothing)
    stress = model(batch, compute_stress=True)[K.STRESS][0].detach()
    volume = abs(float(torch.linalg.det(batch[K.CELL][0])))
    trace = -torch.trace(stress) * volume
    assert torch.allclose(virial_rows @ coefficients, trace.reshape(1), rtol=1e-8, atol=1e-10)
    # every kind contributes
    for term in model.terms:
        start = int(equations.offsets[list(model.terms).index(term)])
        block = design[:, start : start + len(term.combinations) * term.n_free]
        assert block.abs().max() > 0, term.kind


def two_beads(r, types=(0, 0), box=30.0):
    positions = np.array([[5.0, 5.0, 5.0], [5.0 + r, 5.0, 5.0]])
    topology = SystemTopology(np.array(types), np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 4)))
    return positions, np.eye(3) * box, topology


def test_pair_tabulate_equals_forward(rng):
    term = PairSpline(2, 2.0, 8.0, 24)
    with torch.no_grad():
        term.coefficients[:, : term.n_free] = torch.as_tensor(
            rng.normal(size=(3, term.n_free)) * 0.02
        )
        term.lower[:] = torch.tensor([2.5, 3.0, 2.2], dtype=torch.float64)
    model = CGModel(["A", "B"], [term]).double()
    r_table, energy, force = term.tabulate((1, 0), n_points=41)
    assert r_table[0] == pytest.approx(1.5) and r_table[-1] == pytest.approx(8.0)
    for r, e, f in zip(r_table[::4], energy[::4], force[::4], strict=True):
        if r >= 8.0:
            continue
        positions, cell, topology = two_beads(r, types=(0, 1))
        out = model(make_batch(positions, cell, topology, model.cutoff))
        assert out[K.ENERGY].item() == pytest.approx(e, rel=1e-10, abs=1e-12)
        # force on bead 1 (at larger x) is +F along x for a repulsive (F > 0) pair
        assert out[K.FORCES][1, 0].item() == pytest.approx(f, rel=1e-8, abs=1e-10)
    assert energy[-1] == pytest.approx(0.0, abs=1e-14) and force[-1] == pytest.approx(0, abs=1e-12)


def test_bonded_tabulate_equals_forward(rng):
    bond = BondSpline(1, 1.0, 2.0, 10)
    angle = AngleSpline(1, 1.0, 3.0, 10)
    dihedral = DihedralSpline(1, 12)
    with torch.no_grad():
        for term in (bond, angle, dihedral):
            term.coefficients[:] = torch.as_tensor(rng.normal(size=term.coefficients.shape)) * 0.1
        bond.lower[:], bond.upper[:] = 1.2, 1.8
        angle.lower[:], angle.upper[:] = 1.5, 2.5
    model = CGModel(["A"], [bond, angle, dihedral]).double()
    positions = chain_from_internal([1.5, 1.1, 1.9], [2.0, 2.8], 0.7) + 5.0
    topology = SystemTopology(np.zeros(4, int), [[0, 1], [1, 2], [2, 3]], [[0, 1, 2], [1, 2, 3]],
                              [[0, 1, 2, 3]])  # fmt: skip
    out = model(make_batch(positions, np.eye(3) * 30, topology, 0.0))
    expected = bond.evaluate([1.5, 1.1, 1.9], (0, 0))[0].sum()  # 1.1 and 1.9: extrapolated
    expected += angle.evaluate([2.0, 2.8], (0, 0, 0))[0].sum()  # 2.8: extrapolated
    expected += dihedral.evaluate([0.7], (0, 0, 0, 0))[0].sum()
    assert out[K.ENERGY].item() == pytest.approx(expected, rel=1e-10)
    # dihedral periodic: tabulated over a full turn, equal ends
    phi, e, f = dihedral.tabulate((0, 0, 0, 0), n_points=37)
    assert phi[0] == pytest.approx(-math.pi) and e[0] == pytest.approx(e[-1], rel=1e-12)
    # angle table force is −dE/dθ: finite differences (away from the kinks at lower/upper,
    # where the random spline's force may be below the extrapolation floor)
    theta, e, f = angle.tabulate((0, 0, 0), n_points=20001)
    numeric = -(e[2:] - e[:-2]) / (theta[2] - theta[0])
    smooth = (np.abs(theta[1:-1] - 1.5) > 0.01) & (np.abs(theta[1:-1] - 2.5) > 0.01)
    bad = ~np.isclose(f[1:-1], numeric, atol=1e-5) & smooth
    assert not bad.any(), (theta[1:-1][bad], f[1:-1][bad] - numeric[bad])


def test_extrapolation_repulsive_even_for_attractive_fit():
    """Below ``lower`` energy rises monotonically, also when the spline force there attracts."""
    term = PairSpline(1, 2.0, 8.0, 24, force_floor=0.05, stiffness_floor=0.5)
    r_knots = torch.linspace(2.0, 8.0, term.n_free, dtype=torch.float64)
    with torch.no_grad():  # a well at 4 Å whose force at r = 4.5 Å pulls inwards
        term.coefficients[0, : term.n_free] = -0.1 * torch.exp(-((r_knots - 4.0) ** 2))
        term.lower[0] = 4.5
    assert term.evaluate([4.5], (0, 0))[1][0] < -0.05  # attractive at the edge
    r = np.linspace(0.05, 4.5, 300)
    energy, force = term.evaluate(r, (0, 0))
    assert np.all(np.diff(energy[:-1]) < 0)  # E increases as r → 0
    assert np.all(force[:-1] >= 0.05 - 1e-12)
    bond = BondSpline(1, 1.0, 2.0, 10, force_floor=0.05, stiffness_floor=0.5)
    with torch.no_grad():
        bond.lower[0], bond.upper[0] = 1.3, 1.7
    r = np.linspace(0.0, 3.0, 301)
    energy, force = bond.evaluate(r, (0, 0))
    below, above = r <= 1.3, r >= 1.7
    assert np.all(np.diff(energy[below]) < 0) and np.all(np.diff(energy[above]) > 0)
    assert np.all(force[r < 1.3] > 0) and np.all(force[r > 1.7] < 0)


def test_spline_model_file_round_trip(rng, tmp_path):
    positions, cell, topology = chain_liquid(rng, n_molecules=8, box=12.0)
    model = random_chain_model(rng)
    with torch.no_grad():
        model.terms[1].lower[:] = 1.4  # extrapolation state travels in the file
    save_model(model, tmp_path / "splines.pt")
    loaded = load_model(tmp_path / "splines.pt")
    assert [type(t).__name__ for t in loaded.terms] == [
        "PairSpline",
        "BondSpline",
        "AngleSpline",
        "DihedralSpline",
    ]
    assert loaded.cutoff == pytest.approx(7.0)
    batch = make_batch(positions, cell, topology, model.cutoff)
    a, b = model(batch), loaded(batch)
    assert torch.allclose(a[K.FORCES], b[K.FORCES]) and torch.allclose(a[K.ENERGY], b[K.ENERGY])


def test_bad_types_rejected():
    term = PairSpline(2, 2.0, 8.0, 24)
    with pytest.raises(ValueError, match="2 bead-type indices"):
        term.evaluate([3.0], (0, 2))
    with pytest.raises(ValueError, match="stop > start"):
        term.tabulate((0, 1), start=5.0, stop=4.0)
