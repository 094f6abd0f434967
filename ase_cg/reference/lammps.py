"""The all-atom force field as a LAMMPS deck (``units real``), and unit conversion from LAMMPS.

The deck is OPLS-AA as LAMMPS writes it::

    units real / atom_style full
    pair_style lj/cut/coul/long 10.0      pair_modify mix geometric
    kspace_style pppm 1e-5                special_bonds lj/coul 0.0 0.0 0.5
    bond_style harmonic / angle_style harmonic / dihedral_style opls

All parameters travel in the data file (``Pair/Bond/Angle/Dihedral Coeffs``), written by
:func:`write_lammps_data` from a :class:`~ase_cg.reference.molecules.MoleculeTemplate`. Rigid
templates (water) add ``fix shake`` on all their bond and angle types
(:func:`constraint_commands`) for MD; energies and forces of single configurations
(:func:`compute_energy_forces`) are those of the potential, without constraint forces.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_cg._lammps import import_lammps
from ase_cg._paths import write_text_atomic
from ase_cg.errors import InputError
from ase_cg.reference.molecules import MoleculeTemplate, term_atoms
from ase_cg.units import to_ase_factor

# LAMMPS ``units real`` → ASE units: multiply a LAMMPS value by the factor.
# (Lengths are Å and masses g/mol = amu on both sides.)
#: kcal/mol → eV
ENERGY_FROM_REAL = to_ase_factor("kcal mol-1", "energy")
#: kcal/(mol Å) → eV/Å
FORCE_FROM_REAL = to_ase_factor("kcal mol-1 Å-1", "force")
#: Å/fs → Å/(ASE time unit)
VELOCITY_FROM_REAL = to_ase_factor("Å fs-1", "velocity")
#: atm → eV/Å³
PRESSURE_FROM_REAL = to_ase_factor("atm", "pressure")
#: thermo keywords of the pressure tensor (LAMMPS order) and their place in a 3×3 matrix
PRESSURE_TENSOR_KEYWORDS = {
    "pxx": (0, 0),
    "pyy": (1, 1),
    "pzz": (2, 2),
    "pxy": (0, 1),
    "pxz": (0, 2),
    "pyz": (1, 2),
}

#: Pair cutoff of the reference force field, Å.
CUTOFF = 10.0
#: Relative accuracy of the PPPM long-range Coulomb solver.
KSPACE_ACCURACY = 1.0e-5


def force_field_commands(data_file: str | os.PathLike) -> list[str]:
    """LAMMPS commands that set up the system in ``data_file`` with the OPLS-AA force field.

    Parameters
    ----------
    data_file : path
        A data file written by :func:`write_lammps_data`.

    Returns
    -------
    list of str
        Commands from ``units`` to the neighbour settings; no fixes, no run.
    """
    return [
        "units real",
        "atom_style full",
        "boundary p p p",
        f"pair_style lj/cut/coul/long {CUTOFF}",
        "bond_style harmonic",
        "angle_style harmonic",
        "dihedral_style opls",
        "special_bonds lj/coul 0.0 0.0 0.5",
        f"read_data {Path(data_file).as_posix()}",
        "pair_modify mix geometric",
        f"kspace_style pppm {KSPACE_ACCURACY}",
        "neighbor 2.0 bin",
        "neigh_modify delay 0 every 1 check yes",
    ]


#: Relative tolerance and iteration limit of SHAKE for rigid templates.
SHAKE_TOLERANCE = 1.0e-8
SHAKE_ITERATIONS = 200
#: LAMMPS fix id of the SHAKE constraints.
CONSTRAINT_FIX = "constraints"


def constraint_commands(
    template: MoleculeTemplate,
    *,
    tolerance: float = SHAKE_TOLERANCE,
    iterations: int = SHAKE_ITERATIONS,
    fix_id: str = CONSTRAINT_FIX,
) -> list[str]:
    """``fix shake`` holding every bond and angle type of a rigid template (else nothing).

    To follow :func:`force_field_commands` (after ``read_data``); the bond and angle type
    numbers are those :func:`write_lammps_data` gives the template's distinct parameter sets.
    SHAKE must be the last fix defined (after the integrator and any thermostat that adds
    forces, or the constraints drift by ~1e-5 Å per ps): after changing fixes, issue
    ``unfix`` :data:`CONSTRAINT_FIX` and these commands again.
    """
    if not template.rigid:
        return []
    n_bond_types = len(dict.fromkeys((b.k, b.r0) for b in template.bonds))
    n_angle_types = len(dict.fromkeys((a.k_theta, a.theta0) for a in template.angles))
    bond_types = " ".join(str(t) for t in range(1, n_bond_types + 1))
    angle_types = " ".join(str(t) for t in range(1, n_angle_types + 1))
    return [
        f"fix {fix_id} all shake {tolerance} {iterations} 0"
        + (f" b {bond_types}" if bond_types else "")
        + (f" a {angle_types}" if angle_types else "")
    ]


def check_system(template: MoleculeTemplate, atoms: Atoms) -> int:
    """Number of molecules in ``atoms``, after checking it is ``template`` repeated.

    Raises
    ------
    InputError
        If ``atoms`` is not whole molecules of ``template`` in template order, or has no
        orthorhombic periodic cell.
    """
    n_molecules, rest = divmod(len(atoms), template.n_atoms)
    symbols = tuple(atoms.get_chemical_symbols())
    if rest or n_molecules == 0 or symbols != template.elements * n_molecules:
        raise InputError(
            f"the {len(atoms)} atoms are not whole {template.name!r} molecules in template "
            f"order ({' '.join(template.elements)} repeated); reorder them molecule by molecule"
        )
    cell = atoms.cell.array
    if not atoms.pbc.all() or np.abs(cell - np.diag(np.diag(cell))).max() > 1e-9:
        raise InputError(
            "the all-atom reference needs a periodic orthorhombic cell (pbc all True, diagonal "
            f"cell), got pbc={atoms.pbc.tolist()} and cell {cell.tolist()}"
        )
    return n_molecules


def write_lammps_data(path: str | os.PathLike, template: MoleculeTemplate, atoms: Atoms) -> Path:
    """Write ``atoms`` (molecules of ``template``) as a LAMMPS data file, ``atom_style full``.

    Atoms are wrapped into the box ``[0, L)`` with image flags, so whole molecules stay whole.
    Atom, bond, angle and dihedral types are the distinct names/parameter sets of the
    template, written with their coefficients in ``units real``.

    Parameters
    ----------
    path : path
        File to write (atomically).
    template : MoleculeTemplate
    atoms : ase.Atoms
        ``n_molecules * template.n_atoms`` atoms in template order, orthorhombic cell with its
        origin at 0, positions in Å.

    Returns
    -------
    Path
    """
    n_molecules = check_system(template, atoms)
    n_atoms = template.n_atoms
    lengths = np.diag(atoms.cell.array)

    atom_type_names = list(dict.fromkeys(template.atom_types))
    atom_type = [atom_type_names.index(t) + 1 for t in template.atom_types]
    bond_params = list(dict.fromkeys((b.k, b.r0) for b in template.bonds))
    angle_params = list(dict.fromkeys((a.k_theta, a.theta0) for a in template.angles))
    dihedral_params = list(dict.fromkeys(d.v for d in template.dihedrals))

    lines = [
        f"LAMMPS data file: {n_molecules} x {template.name}, OPLS-AA, units real (ase_cg)",
        "",
        f"{len(atoms)} atoms",
        f"{n_molecules * len(template.bonds)} bonds",
        f"{n_molecules * len(template.angles)} angles",
        f"{n_molecules * len(template.dihedrals)} dihedrals",
        "",
        f"{len(atom_type_names)} atom types",
        f"{len(bond_params)} bond types",
        f"{len(angle_params)} angle types",
        f"{len(dihedral_params)} dihedral types",
        "",
    ]
    lines += [f"0.0 {_num(length)} {a}lo {a}hi" for length, a in zip(lengths, "xyz", strict=True)]
    lines += ["", "Masses", ""]
    for t, name in enumerate(atom_type_names, start=1):
        i = template.atom_types.index(name)
        lines.append(f"{t} {_num(template.masses[i])}  # {name}")
    lines += ["", "Pair Coeffs # lj/cut/coul/long", ""]
    for t, name in enumerate(atom_type_names, start=1):
        i = template.atom_types.index(name)
        eps = template.lj_epsilon[i] / ENERGY_FROM_REAL
        lines.append(f"{t} {eps:.12g} {_num(template.lj_sigma[i])}  # {name}")
    coefficients = {
        "Bond Coeffs # harmonic": [
            f"{t} {k / ENERGY_FROM_REAL:.12g} {_num(r0)}"
            for t, (k, r0) in enumerate(bond_params, 1)
        ],
        "Angle Coeffs # harmonic": [
            f"{t} {k / ENERGY_FROM_REAL:.12g} {_num(theta0)}"
            for t, (k, theta0) in enumerate(angle_params, 1)
        ],
        "Dihedral Coeffs # opls": [
            f"{t} " + " ".join(f"{v / ENERGY_FROM_REAL:.12g}" for v in params)
            for t, params in enumerate(dihedral_params, 1)
        ],
    }
    for title, rows in coefficients.items():
        if rows:  # LAMMPS reads an empty section as an error
            lines += ["", title, "", *rows]

    positions = atoms.positions
    images = np.floor(positions / lengths).astype(np.int64)
    wrapped = positions - images * lengths
    mol_ids = np.repeat(np.arange(1, n_molecules + 1), n_atoms)
    types = np.tile(atom_type, n_molecules)
    charges = np.tile(template.charges, n_molecules)
    lines += ["", "Atoms # full", ""]
    lines += [
        f"{i + 1} {mol_ids[i]} {types[i]} {_num(charges[i])} "
        f"{wrapped[i, 0]:.10f} {wrapped[i, 1]:.10f} {wrapped[i, 2]:.10f} "
        f"{images[i, 0]} {images[i, 1]} {images[i, 2]}"
        for i in range(len(atoms))
    ]

    def topology(title: str, terms: tuple, params: list, key) -> list[str]:
        if not terms:  # LAMMPS reads an empty section as an error
            return []
        rows, n = ["", title, ""], 0
        for m in range(n_molecules):
            offset = m * n_atoms + 1
            for term in terms:
                n += 1
                ids = " ".join(str(a + offset) for a in term_atoms(term))
                rows.append(f"{n} {params.index(key(term)) + 1} {ids}")
        return rows

    lines += topology("Bonds", template.bonds, bond_params, lambda b: (b.k, b.r0))
    lines += topology("Angles", template.angles, angle_params, lambda a: (a.k_theta, a.theta0))
    lines += topology("Dihedrals", template.dihedrals, dihedral_params, lambda d: d.v)

    return write_text_atomic(path, "\n".join(lines) + "\n")


def _num(value: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(value))


def gather_array(lmp, name: str) -> np.ndarray:
    """Per-atom ``(n_atoms, 3)`` float64 array ``name`` (``"x"``, ``"v"``, ``"f"``), by atom id.

    Collective: every MPI rank must call it.
    """
    raw = lmp.gather_atoms(name, 1, 3)
    return np.ctypeslib.as_array(raw).reshape(-1, 3).astype(np.float64, copy=True)


def thermo_pressure(lmp) -> tuple[float, np.ndarray]:
    """Scalar pressure and symmetric pressure tensor of the current step, eV/Å³.

    LAMMPS's ``thermo_press``: kinetic (Σ m v v / V, from the velocities) plus virial parts;
    valid right after a ``run`` (thermo output on its last step).

    Returns
    -------
    pressure : float, eV/Å³
    tensor : (3, 3) float64, eV/Å³
    """
    tensor = np.zeros((3, 3))
    for keyword, (a, b) in PRESSURE_TENSOR_KEYWORDS.items():
        tensor[a, b] = tensor[b, a] = lmp.get_thermo(keyword) * PRESSURE_FROM_REAL
    return lmp.get_thermo("press") * PRESSURE_FROM_REAL, tensor


def compute_energy_forces(template: MoleculeTemplate, atoms: Atoms) -> tuple[float, np.ndarray]:
    """Potential energy and forces of ``atoms`` under the reference force field, from LAMMPS.

    A fresh LAMMPS instance reads the configuration and runs ``run 0``; the forces are the
    total per-atom forces (pair + bonded + PPPM).

    Parameters
    ----------
    template : MoleculeTemplate
    atoms : ase.Atoms
        Molecules of ``template`` in template order, orthorhombic cell with origin 0
        (positions may be wrapped per atom).

    Returns
    -------
    energy : float, eV
    forces : (n_atoms, 3) float64, eV/Å
    """
    lammps = import_lammps()
    with tempfile.TemporaryDirectory(prefix="ase_cg_eval_") as tmp:
        data_file = write_lammps_data(Path(tmp) / "system.data", template, atoms)
        lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        try:
            lmp.commands_list(force_field_commands(data_file))
            lmp.command("thermo_style custom step pe")
            lmp.command("run 0")
            energy = lmp.get_thermo("pe") * ENERGY_FROM_REAL
            forces = gather_array(lmp, "f") * FORCE_FROM_REAL
        finally:
            lmp.close()
    return energy, forces


def compute_pressure(template: MoleculeTemplate, atoms: Atoms) -> tuple[float, np.ndarray]:
    """Pressure of ``atoms`` under the reference force field, from LAMMPS ``run 0``.

    Kinetic part from ``atoms``' velocities (none: zero), virial part from every interaction
    (pair, bonded, PPPM), as LAMMPS's ``thermo_press``: ``P = (Σ m v⊗v + W) / V``.

    Parameters
    ----------
    template : MoleculeTemplate
    atoms : ase.Atoms
        As for :func:`compute_energy_forces`; velocities (``atoms.get_velocities()``, Å per
        ASE time unit) optional.

    Returns
    -------
    pressure : float, eV/Å³
    tensor : (3, 3) float64, eV/Å³
    """
    lammps = import_lammps()
    velocities = atoms.get_velocities() / VELOCITY_FROM_REAL  # Å/fs, LAMMPS atom-id order
    with tempfile.TemporaryDirectory(prefix="ase_cg_eval_") as tmp:
        data_file = write_lammps_data(Path(tmp) / "system.data", template, atoms)
        lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        try:
            lmp.commands_list(force_field_commands(data_file))
            flat = np.ascontiguousarray(velocities, dtype=np.float64).reshape(-1)
            lmp.scatter_atoms("v", 1, 3, np.ctypeslib.as_ctypes(flat))
            lmp.command("thermo_style custom step pe press " + " ".join(PRESSURE_TENSOR_KEYWORDS))
            lmp.command("run 0")
            return thermo_pressure(lmp)
        finally:
            lmp.close()
