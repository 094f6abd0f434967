"""Stillinger–Weber-type three-body spline: neighbour triples against a brute-force loop,
forces and stress against finite differences, the fit's design rows against autograd, and
force matching recovering a known angular function."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from ase import Atoms

from ase_cg import _keys as K
from ase_cg.calculator import CGCalculator
from ase_cg.fitting import ArrayTrajectory, ClassicalConfig, fit_classical
from ase_cg.fitting.linear import _NormalEquations
from ase_cg.potentials import CGModel, PairSpline, SystemTopology, ThreeBodySpline, make_batch
from ase_cg.potentials.base import build_graph
from ase_cg.testing import check_forces, check_stress

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CUTOFF, SCREENING = 4.3065, 2.871


def packing(rng, n=48, box=11.5, min_distance=2.5) -> np.ndarray:
    """Random sequential packing (minimum image), the density of liquid water's beads."""
    points: list[np.ndarray] = []
    while len(points) < n:
        trial = rng.uniform(0.0, box, 3)
        if points:
            delta = np.asarray(points) - trial
            delta -= box * np.round(delta / box)
            if np.min(np.linalg.norm(delta, axis=1)) < min_distance:
                continue
        points.append(trial)
    return np.asarray(points)


def angular(theta: np.ndarray) -> np.ndarray:
    """A known f(θ), eV: a minimum at the tetrahedral angle, steep at small angles."""
    return 0.05 * (np.cos(theta) + 1.0 / 3.0) ** 2 + 0.02 * np.exp(-(((theta - 1.2) / 0.3) ** 2))


def threebody(n_types=1, n_intervals=63) -> ThreeBodySpline:
    term = ThreeBodySpline(n_types, 0.0, math.pi, n_intervals, cutoff=CUTOFF, screening=SCREENING)
    knots = np.linspace(0.0, math.pi, term.grid.n_basis)  # near-interpolation is enough here
    rows = torch.as_tensor(angular(knots))
    term.coefficients.copy_(rows.expand(len(term.combinations), -1))
    term.lower.fill_(0.0)
    term.upper.fill_(math.pi)
    return term


def pair() -> PairSpline:
    term = PairSpline(1, 2.0, 6.0, 40)
    knots = torch.linspace(2.0, 6.0, term.grid.n_basis, dtype=torch.float64)
    coefficients = 0.2 * torch.exp(-(knots - 2.0) / 0.3) - 0.01 * torch.exp(-((knots - 2.9) ** 2))
    coefficients[-3:] = 0.0
    term.coefficients.copy_(coefficients[None])
    term.lower.fill_(2.0)
    return term


def one_bead_atoms(positions, box, types=None) -> Atoms:
    atoms = Atoms(numbers=np.zeros(len(positions), int), positions=positions, cell=[box] * 3,
                  pbc=True)  # fmt: skip
    atoms.arrays["bead-type"] = np.array(types if types is not None else ["W"] * len(positions))
    atoms.arrays["mol-id"] = np.arange(len(positions))
    atoms.set_masses(np.full(len(positions), 18.0))
    return atoms


def brute_force_energy(positions, box, types, term: ThreeBodySpline) -> float:
    """Σ_i Σ_{j<k} f(θ_jik) g(r_ij) g(r_ik) by explicit loops (minimum image)."""
    total = 0.0
    for i in range(len(positions)):
        neighbours = []
        for j in range(len(positions)):
            if j == i:
                continue
            d = positions[j] - positions[i]
            d -= box * np.round(d / box)
            if np.linalg.norm(d) < term.range:
                neighbours.append((j, d))
        for (j, a), (k, c) in itertools.combinations(neighbours, 2):
            cos = a @ c / (np.linalg.norm(a) * np.linalg.norm(c))
            theta = math.acos(max(-1.0, min(1.0, cos)))
            energy, _ = term.evaluate([theta], (types[j], types[i], types[k]))
            g = [math.exp(term.screening / (np.linalg.norm(v) - term.range)) for v in (a, c)]
            total += float(energy[0]) * g[0] * g[1]
    return total


def test_energy_equals_a_loop_over_neighbour_triples(rng):
    positions = packing(rng)
    types = rng.integers(0, 2, len(positions))
    term = threebody(n_types=2)
    with torch.no_grad():  # make the (A, B, A) and (B, A, B) functions differ from the others
        term.coefficients[1] *= 1.7
    model = CGModel(["A", "B"], [term]).double()
    atoms = one_bead_atoms(positions, 11.5, np.array(["A", "B"])[types])
    atoms.calc = CGCalculator(model)
    expected = brute_force_energy(positions, 11.5, types, term)
    assert atoms.get_potential_energy() == pytest.approx(expected, rel=1e-10)
    assert expected > 0.1  # many triples counted


def test_forces_and_stress_equal_finite_differences(rng):
    positions = packing(rng)
    model = CGModel(["W"], [pair(), threebody()]).double()
    atoms = one_bead_atoms(positions, 11.5)
    atoms.calc = CGCalculator(model)
    assert np.abs(atoms.get_forces()).max() > 0.05
    check_forces(atoms, indices=range(8), rtol=1e-6, atol=1e-8)
    check_stress(atoms)


def test_screening_vanishes_smoothly_at_the_cutoff():
    term = threebody()
    r = torch.tensor([CUTOFF - 1e-3, CUTOFF, CUTOFF + 1.0], dtype=torch.float64)
    g, dg = term.screen(r)
    assert float(g[0]) < 1e-300 + 1e-100 and float(g[1]) == 0.0 and float(g[2]) == 0.0
    assert torch.all(torch.isfinite(dg)) and float(dg[1]) == 0.0


def test_design_rows_equal_autograd_forces_and_virial(rng):
    """G c and the virial rows w c equal −∇E and the trace of W from autograd."""
    positions = packing(rng)
    cell = np.eye(3) * 11.5
    topology = SystemTopology(np.zeros(len(positions), int), np.zeros((0, 2)), np.zeros((0, 3)),
                              np.zeros((0, 4)))  # fmt: skip
    model = CGModel(["W"], [pair(), threebody()]).double()
    batch = make_batch(positions, cell, topology, model.cutoff)
    result = model(batch, compute_stress=True)
    graph = build_graph(batch, batch[K.POSITIONS], batch[K.CELL])
    equations = _NormalEquations(list(model.terms))
    design, virial_rows = equations.design_matrix(graph)
    coefficients = torch.cat([t.coefficients[:, : t.n_free].reshape(-1) for t in model.terms])
    forces = result[K.FORCES].detach().reshape(-1)
    assert torch.allclose(design @ coefficients, forces, rtol=1e-9, atol=1e-10)
    trace = -torch.trace(result[K.STRESS][0].detach()) * float(np.linalg.det(cell))
    assert torch.allclose(virial_rows @ coefficients, trace.reshape(1), rtol=1e-8, atol=1e-10)


def test_force_matching_recovers_the_angular_function(rng):
    """Noise-free forces of pair + three-body: the fit finds f(θ) over the sampled angles."""
    true = CGModel(["W"], [pair(), threebody()]).double()
    frames = [packing(rng) for _ in range(12)]
    forces = []
    for positions in frames:
        atoms = one_bead_atoms(positions, 11.5)
        atoms.calc = CGCalculator(true)
        forces.append(atoms.get_forces())
    data = ArrayTrajectory(np.asarray(frames), np.eye(3) * 11.5, np.asarray(forces),
                           bead_types=np.array(["W"] * len(frames[0])))  # fmt: skip
    topology = SystemTopology(np.zeros(len(frames[0]), int), np.zeros((0, 2)), np.zeros((0, 3)),
                              np.zeros((0, 4)))  # fmt: skip
    config = ClassicalConfig(
        pair_cutoff=6.0, pair_r_min=2.0, pair_spacing=0.1, terms=("pair", "threebody"),
        threebody_cutoff=CUTOFF, threebody_screening=SCREENING, smoothness=0.0, ridge=1e-12,
        validation_fraction=0.25, min_samples=20,
    )  # fmt: skip
    model, report = fit_classical(data, topology, config=config, progress=False)
    assert report["validation"]["all"]["fraction_unexplained"] < 1e-6
    fitted = model.terms[1]
    assert isinstance(fitted, ThreeBodySpline) and fitted.range == CUTOFF
    lower, upper = float(fitted.lower[0]), float(fitted.upper[0])
    assert lower < 1.0 and upper > 2.9  # the first shell's angles are sampled
    # the few triples at the lower edge of the sampled range pin f loosely; past it, exactly
    theta = np.linspace(lower + 0.1, upper, 200)
    got, _ = fitted.evaluate(theta, (0, 0, 0))
    expected, _ = true.terms[1].evaluate(theta, (0, 0, 0))
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()


def triangle_frames(angles_deg, per_frame=8, r=3.0, spacing=12.0) -> list[Atoms]:
    """Frames of isolated j–i–k triangles (|ij| = |ik| = r, |jk| > the three-body cutoff), one
    triangle per entry of ``angles_deg``, ``per_frame`` triangles to a frame."""
    frames = []
    for start in range(0, len(angles_deg), per_frame):
        positions = []
        for slot, angle in enumerate(angles_deg[start : start + per_frame]):
            centre = spacing * np.array([slot % 2, slot // 2 % 2, slot // 4])
            half = math.radians(angle) / 2
            arm = r * np.array([math.cos(half), math.sin(half), 0.0])
            positions += [centre, centre + arm, centre + arm * [1.0, -1.0, 1.0]]
        frames.append(one_bead_atoms(np.asarray(positions) + 1.0, 2 * spacing))
    return frames


def correction_model() -> CGModel:
    return CGModel(["W"], [pair(), threebody()])


def test_threebody_correction_penalises_overpopulated_angles():
    """CG triples at 100° three times as often as at 125° against half and half in the
    reference: one step raises f at 100° and lowers it at 125°, by about
    k_B T ln 3 / w̄ between the two (smoothing and the spline take some)."""
    from ase.units import kB

    from ase_cg.fitting import threebody_correction

    model = correction_model()
    reference = triangle_frames([100.0, 125.0] * 16)
    cg = triangle_frames([100.0, 100.0, 100.0, 125.0] * 8)
    corrected = threebody_correction(model, reference, cg, temperature=300.0, bin_width=5.0)
    before, after = model.terms[1], corrected.terms[1]
    theta = np.radians([100.0, 125.0])
    change = after.evaluate(theta, (0, 0, 0))[0] - before.evaluate(theta, (0, 0, 0))[0]
    assert change[0] > 0 > change[1]
    w_bar = math.exp(2 * SCREENING / (3.0 - CUTOFF))
    expected = kB * 300.0 * math.log(3.0) / w_bar
    assert 0.2 * expected < change[0] - change[1] < 1.2 * expected
    assert model.terms[1] is before and torch.equal(before.coefficients, threebody().coefficients)
    record = corrected.provenance["threebody_correction"]["max_abs_difference_before_per_deg"]
    assert record["W-W-W"] > 0
    unchanged = threebody_correction(model, reference, reference, temperature=300.0)
    assert torch.allclose(unchanged.terms[1].coefficients, before.coefficients, atol=1e-12)


def test_threebody_correction_needs_a_threebody_term():
    from ase_cg.fitting import FitError, threebody_correction

    frames = triangle_frames([100.0] * 8)
    with pytest.raises(FitError, match="three-body terms"):
        threebody_correction(CGModel(["W"], [pair()]), frames, frames, temperature=300.0)
