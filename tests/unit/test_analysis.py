"""ase_cg.analysis against analytic results: ideal gas, FCC lattice, known bonded geometry,
random walks with a known diffusion coefficient, and the properties of the comparison metrics."""

from __future__ import annotations

import numpy as np
import pytest
from _dimers import ch3_dimers
from ase import Atoms
from ase.build import bulk

from ase_cg import analysis
from ase_cg.analysis import AnalysisError
from ase_cg.io import write_h5md


def ideal_gas(rng, n, cell, *, molecule_size=1):
    """Uniform random points in a (possibly triclinic) cell, molecule ids in blocks."""
    cell = np.asarray(cell, dtype=float)
    atoms = Atoms(
        numbers=np.zeros(n, dtype=int), positions=rng.random((n, 3)) @ cell, cell=cell, pbc=True
    )
    atoms.arrays["mol-id"] = np.arange(n) // molecule_size
    atoms.arrays["bead-type"] = np.array(["A", "B"] * (n // 2) + ["A"] * (n % 2))
    return atoms


TRICLINIC = np.array([[20.0, 0.0, 0.0], [5.0, 19.0, 0.0], [-3.0, 4.0, 21.0]])


def test_rdf_of_ideal_gas_is_one_in_a_triclinic_cell(rng):
    images = [ideal_gas(rng, 800, TRICLINIC) for _ in range(20)]
    r_max = analysis.cell_half_width(TRICLINIC)
    r, g = analysis.rdf(images, r_max, 40, intermolecular=False)
    assert r[0] == pytest.approx(r_max / 80)
    outer = r > 3.0  # enough pairs per bin for ~2 % noise
    assert np.max(np.abs(g[outer] - 1.0)) < 0.06
    assert abs(np.mean(g[outer]) - 1.0) < 0.01


def test_intermolecular_rdf_of_ideal_gas_is_one_after_excluding_big_molecules(rng):
    # molecules of 50 particles: a quarter of all pairs are intramolecular, so a normalisation
    # that kept N(N-1)/2 pairs would give g = 0.75
    images = [ideal_gas(rng, 200, np.eye(3) * 18.0, molecule_size=50) for _ in range(60)]
    r, g = analysis.rdf(images, 9.0, 18, intermolecular=True)
    assert abs(np.mean(g[r > 3.0]) - 1.0) < 0.02
    # per type pair (A-B unlike types), too
    r, g_ab = analysis.rdf(images, 9.0, 18, types=("A", "B"), intermolecular=True)
    assert abs(np.mean(g_ab[r > 3.0]) - 1.0) < 0.03


def fcc(a, repeat, rng=None, noise=0.0, primitive=False):
    atoms = bulk("Ar", "fcc", a=a, cubic=not primitive).repeat(repeat)
    if noise:
        atoms.positions += rng.normal(scale=noise, size=atoms.positions.shape)
    atoms.arrays["mol-id"] = np.arange(len(atoms))
    return atoms


@pytest.mark.parametrize("primitive", [False, True], ids=["cubic", "triclinic-primitive"])
def test_fcc_first_peak_and_coordination_number(rng, primitive):
    a = 4.0
    atoms = fcc(a, 6 if primitive else 4, rng, noise=0.03, primitive=primitive)
    r, g = analysis.rdf([atoms], 6.0, 600)
    assert r[np.argmax(g)] == pytest.approx(a / np.sqrt(2), abs=0.03)
    # neighbours of one atom: density of the *other* atoms, (N - 1) / V
    rho = (len(atoms) - 1) / atoms.get_volume()
    dr = r[1] - r[0]
    shells = 4 / 3 * np.pi * ((r + dr / 2) ** 3 - (r - dr / 2) ** 3)
    first_shell = r < 0.5 * (a / np.sqrt(2) + a)  # first minimum, between 1st and 2nd shells
    assert np.sum(rho * g[first_shell] * shells[first_shell]) == pytest.approx(12.0, rel=1e-12)
    second_shell = (r > 0.5 * (a / np.sqrt(2) + a)) & (r < 0.5 * (a + a * np.sqrt(1.5)))
    assert np.sum(rho * g[second_shell] * shells[second_shell]) == pytest.approx(6.0, rel=1e-12)


def test_rdf_rejects_r_max_beyond_half_box_and_bad_input(rng):
    atoms = ideal_gas(rng, 10, np.eye(3) * 10.0)
    with pytest.raises(AnalysisError, match="half the shortest perpendicular width"):
        analysis.rdf([atoms], 5.5, 10)
    with pytest.raises(AnalysisError, match="no particle of type 'C'"):
        analysis.rdf([atoms], 4.0, 10, types=("A", "C"))
    atoms.pbc = False
    with pytest.raises(AnalysisError, match="periodic"):
        analysis.rdf([atoms], 4.0, 10)
    del atoms.arrays["mol-id"]
    atoms.pbc = True
    with pytest.raises(AnalysisError, match="mol-id"):
        analysis.rdf([atoms], 4.0, 10)


def random_dimers(rng, n_molecules, box, bond_mean, bond_sigma):
    """Dimers with Gaussian bond lengths, random orientations, wrapped into a cubic box."""
    first = rng.random((n_molecules, 3)) * box
    direction = rng.normal(size=(n_molecules, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    lengths = rng.normal(bond_mean, bond_sigma, n_molecules)
    second = first + direction * lengths[:, None]
    atoms = ch3_dimers(np.stack([first, second], axis=1), box)
    bonds = np.stack([np.arange(0, 2 * n_molecules, 2), np.arange(1, 2 * n_molecules, 2)], 1)
    return atoms, bonds, lengths


def test_bond_distribution_recovers_known_lengths_across_the_boundary(rng):
    images, all_lengths = [], []
    for _ in range(5):
        atoms, bonds, lengths = random_dimers(rng, 400, 6.0, 1.69, 0.03)
        images.append(atoms)
        all_lengths.append(lengths)
    all_lengths = np.concatenate(all_lengths)
    np.testing.assert_allclose(analysis.bond_lengths(images[-1], bonds), lengths, atol=1e-10)
    centres, p = analysis.bond_distribution(images, bonds, np.linspace(1.5, 1.9, 81))
    width = centres[1] - centres[0]
    assert np.sum(p) * width == pytest.approx(1.0)
    mean = np.sum(centres * p) * width
    std = np.sqrt(np.sum((centres - mean) ** 2 * p) * width)
    assert mean == pytest.approx(all_lengths.mean(), abs=1e-3)
    assert std == pytest.approx(0.03, rel=0.05)
    # a topology dict works as well as the array
    _, p_dict = analysis.bond_distribution(images, {"bonds": bonds}, np.linspace(1.5, 1.9, 81))
    np.testing.assert_array_equal(p, p_dict)


def test_angles_and_dihedrals_match_ase_in_a_wrapped_triclinic_cell(rng):
    cell = np.array([[9.0, 0.0, 0.0], [2.0, 8.0, 0.0], [1.0, -1.5, 10.0]])
    chain = np.cumsum(rng.normal(scale=1.0, size=(40, 3)) + [1.2, 0.0, 0.0], axis=0)
    atoms = Atoms(numbers=np.zeros(40, dtype=int), positions=chain, cell=cell, pbc=True)
    reference = atoms.copy()  # unwrapped: plain vector geometry is the truth
    atoms.wrap()
    topology = analysis.topology_from_bonds([(i, i + 1) for i in range(39)])
    assert len(topology["angles"]) == 38 and len(topology["dihedrals"]) == 37
    angles = analysis.bond_angles(atoms, topology)
    expected = [reference.get_angle(*a) for a in topology["angles"]]
    np.testing.assert_allclose(angles, expected, atol=1e-8)
    dihedrals = analysis.dihedral_angles(atoms, topology)
    expected = np.array([reference.get_dihedral(*d) for d in topology["dihedrals"]])  # [0, 360)
    np.testing.assert_allclose(np.mod(dihedrals, 360.0), expected, atol=1e-8)
    assert np.all((dihedrals > -180.0) & (dihedrals <= 180.0))


def test_dihedral_sign_cis_trans_convention():
    def dihedral(phi_deg):
        phi = np.radians(phi_deg)
        positions = [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.5]]
        positions.append([np.cos(phi), np.sin(phi), 0.0] + np.array([0.0, 0.0, 1.5]))
        positions[0] = [1.0, 0.0, 0.0]
        atoms = Atoms(numbers=[0] * 4, positions=positions, cell=np.eye(3) * 20, pbc=True)
        return analysis.dihedral_angles(atoms, [[0, 1, 2, 3]])[0]

    assert dihedral(0.0) == pytest.approx(0.0, abs=1e-9)
    assert abs(dihedral(180.0)) == pytest.approx(180.0)
    # IUPAC: looking from j along j→k (+z), positive when i must turn clockwise to eclipse l;
    # a right-handed turn about +z looks clockwise to a viewer looking along +z
    assert dihedral(60.0) == pytest.approx(60.0)
    assert dihedral(-60.0) == pytest.approx(-60.0)


def test_angle_distribution_of_rigid_trimers(rng):
    images = []
    for _ in range(3):
        atoms = Atoms(numbers=[0] * 30, cell=np.eye(3) * 12, pbc=True)
        for m in range(10):
            rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
            local = np.array([[1.5, 0, 0], [0, 0, 0], [1.5 * np.cos(2.0), 1.5 * np.sin(2.0), 0]])
            atoms.positions[3 * m : 3 * m + 3] = local @ rotation.T + rng.random(3) * 12
        atoms.wrap()
        images.append(atoms)
    angles = np.array([[3 * m, 3 * m + 1, 3 * m + 2] for m in range(10)])
    centres, p = analysis.angle_distribution(images, angles, np.linspace(0, 180, 181))
    assert centres[np.argmax(p)] == pytest.approx(np.degrees(2.0), abs=0.5)
    assert np.sum(p) * 1.0 == pytest.approx(1.0)


def test_density_of_fcc_argon():
    atoms = fcc(5.26, 3)
    expected = 4 * 39.948 * 1.66053906660 / 5.26**3  # amu/Å³ → g/cm³
    np.testing.assert_allclose(analysis.density([atoms, atoms]), [expected] * 2, rtol=1e-6)


def random_walk(rng, n_particles, n_frames, sigma, box):
    """Gaussian random walk: D = sigma² / (2 dt) per component."""
    steps = rng.normal(scale=sigma, size=(n_frames, n_particles, 3))
    steps[0] = rng.random((n_particles, 3)) * box
    return np.cumsum(steps, axis=0)


def test_msd_of_random_walk_gives_known_diffusion_coefficient(rng):
    dt, sigma, box = 10.0, 0.2, 8.0
    unwrapped = random_walk(rng, 400, 500, sigma, box)
    wrapped = np.mod(unwrapped, box)
    times = np.arange(500) * dt
    t_wrapped, msd_wrapped = analysis.msd(positions=wrapped, cells=np.eye(3) * box, times_fs=times)
    t, msd_unwrapped = analysis.msd(positions=unwrapped, times_fs=times, unwrapped=True)
    np.testing.assert_allclose(msd_wrapped, msd_unwrapped, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(t, times)
    d_true = sigma**2 / (2 * dt)  # Å²/fs
    # direct average over time origins at one lag equals the FFT result
    lag = 37
    direct = np.mean(np.sum((unwrapped[lag:] - unwrapped[:-lag]) ** 2, axis=2))
    assert msd_unwrapped[lag] == pytest.approx(direct, rel=1e-9)
    fit = analysis.diffusion_coefficient(t, msd_unwrapped, (200.0, 2000.0))
    assert fit.a2_per_fs == pytest.approx(d_true, rel=0.05)
    assert fit.cm2_per_s == pytest.approx(0.1 * fit.a2_per_fs)
    assert fit.fit_range_fs == (200.0, 2000.0)


def test_msd_from_atoms_and_molecule_centres_of_mass(rng):
    dt, sigma, box, n_frames = 5.0, 0.15, 10.0, 300
    independent = random_walk(rng, 1000, n_frames, sigma, box)
    images = []
    for step, x in enumerate(independent):
        atoms = Atoms(numbers=[0] * 1000, positions=x, cell=np.eye(3) * box, pbc=True)
        atoms.set_masses(np.full(1000, 15.0))
        atoms.wrap()
        atoms.arrays["mol-id"] = np.arange(1000) // 2
        atoms.info["time"] = step * dt
        images.append(atoms)
    t, msd_particles = analysis.msd(images)
    t, msd_molecules = analysis.msd(images, by_molecule=True)
    d_particles = analysis.diffusion_coefficient(t, msd_particles).a2_per_fs
    d_molecules = analysis.diffusion_coefficient(t, msd_molecules).a2_per_fs
    assert d_particles == pytest.approx(sigma**2 / (2 * dt), rel=0.06)
    # the centre of mass of two independent walkers diffuses half as fast
    assert d_molecules / d_particles == pytest.approx(0.5, rel=0.1)


def test_msd_rejects_uneven_times_and_missing_times(rng):
    x = random_walk(rng, 5, 10, 0.1, 5.0)
    with pytest.raises(AnalysisError, match="evenly spaced"):
        analysis.msd(positions=x, unwrapped=True, times_fs=np.r_[0, np.cumsum(np.arange(1, 10))])
    with pytest.raises(AnalysisError, match="times_fs"):
        analysis.msd(positions=x, unwrapped=True)
    with pytest.raises(AnalysisError, match="fit range"):
        analysis.diffusion_coefficient(np.arange(10.0), np.arange(10.0), (20.0, 30.0))


def test_comparison_metrics():
    r = np.linspace(0.0, 10.0, 101)
    g = 1 + np.exp(-((r - 4) ** 2))
    assert analysis.max_abs_difference(g, g) == 0.0
    assert analysis.max_abs_difference(g, g + 0.1) == pytest.approx(0.1)
    assert analysis.integrated_absolute_error(r, g, g + 0.1) == pytest.approx(1.0)
    with pytest.raises(AnalysisError, match="same bins"):
        analysis.max_abs_difference(g, g[:-1])


def test_jensen_shannon_properties(rng):
    p, q = rng.random(50), rng.random(50)
    assert analysis.jensen_shannon(p, p) == pytest.approx(0.0, abs=1e-15)
    assert analysis.jensen_shannon(p, 3 * p) == pytest.approx(0.0, abs=1e-15)  # normalised
    assert analysis.jensen_shannon(p, q) == pytest.approx(analysis.jensen_shannon(q, p))
    assert 0 < analysis.jensen_shannon(p, q) < np.log(2)
    disjoint = analysis.jensen_shannon([1, 1, 0, 0], [0, 0, 2, 5])
    assert disjoint == pytest.approx(np.log(2))
    with pytest.raises(AnalysisError, match="non-negative"):
        analysis.jensen_shannon([1, -1], [1, 1])


def dimer_file(rng, path, n_frames, n_molecules, box, dt):
    """Independent random-dimer frames ``dt`` fs apart, written to H5MD: (frames, bonds)."""
    images = []
    for step in range(n_frames):
        atoms, bonds, _ = random_dimers(rng, n_molecules, box, 1.69, 0.03)
        atoms.info["time"] = dt * step
        images.append(atoms)
    write_h5md(path, images, bonds=bonds)
    return images, bonds


def test_functions_read_h5md_files_like_lists_of_atoms(rng, tmp_path):
    path = tmp_path / "cg.h5"
    images, bonds = dimer_file(rng, path, 6, 50, 9.0, 20.0)
    r, g_list = analysis.rdf(images, 4.5, 45)
    _, g_file = analysis.rdf(str(path), 4.5, 45)
    np.testing.assert_allclose(g_file, g_list, atol=0.05)  # positions stored as float32
    edges = np.linspace(1.5, 1.9, 41)
    np.testing.assert_allclose(
        analysis.bond_distribution(path, bonds, edges)[1],
        analysis.bond_distribution(images, bonds, edges)[1],
        atol=0.5,
    )
    np.testing.assert_allclose(analysis.density(path), analysis.density(images), rtol=1e-6)
    t_file, msd_file = analysis.msd(path)
    t_list, msd_list = analysis.msd(images)
    np.testing.assert_allclose(t_file, t_list)
    np.testing.assert_allclose(msd_file, msd_list, rtol=1e-4, atol=1e-4)
    with pytest.raises(AnalysisError, match="not a file"):
        analysis.rdf(tmp_path / "missing.h5", 4.0, 10)


def test_unwrapping_in_a_fluctuating_triclinic_box_follows_the_real_motion(rng):
    # particles random-walk while the box breathes by ±3 %: unwrapping the wrapped positions
    # recovers every step to within the affine box change, and the MSD is not inflated
    n_frames, sigma, dt = 400, 0.1, 10.0
    base = np.array([[12.0, 0.0, 0.0], [2.0, 11.0, 0.0], [1.0, 1.5, 13.0]])
    walk = random_walk(rng, 300, n_frames, sigma, 10.0)
    cells = np.array([base * (1 + 0.03 * np.sin(k / 7)) for k in range(n_frames)])
    wrapped = []
    for x, cell in zip(walk, cells, strict=True):
        fractional = np.linalg.solve(cell.T, x.T).T
        wrapped.append((fractional - np.floor(fractional)) @ cell)
    times = np.arange(n_frames) * dt
    t, msd_wrapped = analysis.msd(positions=np.array(wrapped), cells=cells, times_fs=times)
    _, msd_true = analysis.msd(positions=walk, unwrapped=True, times_fs=times)
    fit = analysis.diffusion_coefficient(t, msd_wrapped).a2_per_fs
    assert fit == pytest.approx(analysis.diffusion_coefficient(t, msd_true).a2_per_fs, rel=0.05)
    assert fit == pytest.approx(sigma**2 / (2 * dt), rel=0.1)


def test_rdf_is_unchanged_by_translation_and_rewrapping(rng):
    images = [ideal_gas(rng, 300, TRICLINIC, molecule_size=3) for _ in range(3)]
    r, g = analysis.rdf(images, 8.0, 40, types=("A", "B"))
    moved = []
    for atoms in images:
        atoms = atoms.copy()
        atoms.positions += [7.3, -2.1, 40.0]
        atoms.wrap()
        moved.append(atoms)
    np.testing.assert_allclose(analysis.rdf(moved, 8.0, 40, types=("A", "B"))[1], g, atol=1e-12)


def test_rdf_agrees_with_mdanalysis_interrdf_with_exclusion_blocks(rng, tmp_path):
    # MDAnalysis counts ordered pairs and removes the excluded blocks from N as well: the same
    # normalisation as ours, so the two must agree up to its float32 distances
    import MDAnalysis as mda
    from MDAnalysis.analysis.rdf import InterRDF

    dimer_file(rng, tmp_path / "dimers.h5", 4, 150, 12.0, 10.0)
    universe = mda.Universe.empty(300, trajectory=False)
    universe.load_new(str(tmp_path / "dimers.h5"), format="H5MD")
    reference = InterRDF(
        universe.atoms, universe.atoms, nbins=60, range=(0.0, 6.0), exclusion_block=(2, 2)
    ).run()
    r, g = analysis.rdf(tmp_path / "dimers.h5", 6.0, 60)
    np.testing.assert_allclose(r, reference.results.bins, atol=1e-12)
    np.testing.assert_allclose(g, reference.results.rdf, atol=2e-3)
