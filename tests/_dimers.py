"""Dimer liquids of the tests.

* :func:`simulate_dimers`: a LAMMPS liquid of Lennard-Jones dimers, force-matching data with a
  known answer (the force- and pressure-matching tests);
* :func:`ch3_dimers`: CG frames of CH3–CH3 dimers from given bead positions (the analysis and
  comparison tests).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units

from ase_cg._lammps import import_lammps
from ase_cg.potentials import SystemTopology

EPSILON, SIGMA, LJ_CUTOFF = 0.01, 3.0, 9.0  # eV, Å, Å
K_BOND, R0_BOND, MASS = 10.0, 1.5, 15.0  # eV/Å² (E = ½ k (r − r0)²), Å, amu
TEMPERATURE = 150.0  # K


def ch3_dimers(ends: np.ndarray, box: float) -> Atoms:
    """CG frame of dimers of two ``CH3`` beads (15.035 amu), wrapped into a cubic box.

    ``ends`` (n_molecules, 2, 3), Å: the two beads of each molecule; ``box``, Å: the edge.
    Molecule ``m`` is beads ``2m`` and ``2m + 1`` (``mol-id`` m).
    """
    n_beads = 2 * len(ends)
    atoms = Atoms(
        numbers=np.zeros(n_beads, dtype=int),
        positions=np.asarray(ends).reshape(-1, 3),
        cell=np.eye(3) * box,
        pbc=True,
        masses=np.full(n_beads, 15.035),
    )
    atoms.wrap()
    atoms.arrays["mol-id"] = np.repeat(np.arange(len(ends)), 2)
    atoms.arrays["bead-type"] = np.full(n_beads, "CH3")
    return atoms


def simulate_dimers(folder, n_molecules=100, box=20.0, n_frames=100, every=10, seed=7, noise=0.0):
    """NVT liquid of LJ dimers with harmonic bonds in LAMMPS (units metal: Å, eV, eV/Å).

    The bonded pair is excluded from LJ (``special_bonds lj 0 0 0``), as ase_cg excludes it.
    Returns positions, forces (plus Gaussian noise of ``noise`` eV/Å, as in a mapped force)
    and velocities (ASE units), each (n_frames, 2 n_molecules, 3), the pressure per frame
    (LAMMPS thermo, kinetic + virial, bar), the cell and the topology.
    """
    rng = np.random.default_rng(seed)
    n_side = int(np.ceil(n_molecules ** (1 / 3)))
    lattice = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    centres = (lattice[:n_molecules] + 0.5) * box / n_side
    axes = rng.normal(size=(n_molecules, 3))
    axes /= np.linalg.norm(axes, axis=1)[:, None]
    ends = np.stack([centres - 0.5 * R0_BOND * axes, centres + 0.5 * R0_BOND * axes], 1)
    positions = ends.reshape(-1, 3) % box
    lines = ["LJ dimers", "", f"{2 * n_molecules} atoms", f"{n_molecules} bonds",
             "1 atom types", "1 bond types", "", f"0 {box} xlo xhi", f"0 {box} ylo yhi",
             f"0 {box} zlo zhi", "", "Masses", "", f"1 {MASS}", "", "Atoms # bond", ""]  # fmt: skip
    lines += [f"{i + 1} {i // 2 + 1} 1 {x:.8f} {y:.8f} {z:.8f}" for i, (x, y, z) in
              enumerate(positions)]  # fmt: skip
    lines += ["", "Bonds", ""] + [f"{m + 1} 1 {2 * m + 1} {2 * m + 2}" for m in range(n_molecules)]
    data = folder / "dimers.data"
    data.write_text("\n".join(lines) + "\n")
    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    frames = {"x": [], "f": [], "v": [], "p": []}
    try:
        for command in [
            "units metal", "atom_style bond", "boundary p p p", f"read_data {data}",
            f"pair_style lj/cut {LJ_CUTOFF}", f"pair_coeff * * {EPSILON} {SIGMA}",
            "bond_style harmonic", f"bond_coeff 1 {K_BOND / 2} {R0_BOND}",
            "special_bonds lj 0.0 0.0 0.0", "neighbor 1.0 bin",
            "neigh_modify every 1 delay 0 check yes", "minimize 1e-6 1e-8 200 2000",
            "reset_timestep 0", f"velocity all create {TEMPERATURE} {seed} dist gaussian",
            f"fix thermostat all nvt temp {TEMPERATURE} {TEMPERATURE} 0.1", "timestep 0.002",
            "thermo_style custom step temp press", "run 2000",
        ]:  # fmt: skip
            lmp.command(command)
        for _ in range(n_frames):
            lmp.command(f"run {every} pre no post no")
            n_local = lmp.extract_global("nlocal")
            order = np.argsort(lmp.numpy.extract_atom("id")[:n_local])
            for key in ("x", "f", "v"):
                frames[key].append(lmp.numpy.extract_atom(key)[:n_local][order].copy())
            frames["p"].append(lmp.get_thermo("press"))  # bar (units metal)
    finally:
        lmp.close()
    n_beads = 2 * n_molecules
    topology = SystemTopology(
        np.zeros(n_beads, int),
        np.arange(n_beads).reshape(-1, 2),
        np.zeros((0, 3)),
        np.zeros((0, 4)),
    )
    velocities = np.array(frames["v"]) / (1000.0 * units.fs)  # Å/ps → Å per ASE time unit
    forces = np.array(frames["f"])
    if noise:
        forces = forces + rng.normal(0.0, noise, forces.shape)
    return (
        np.array(frames["x"]),
        forces,
        velocities,
        np.array(frames["p"]),
        np.eye(3) * box,
        topology,
    )
