"""How fast the all-atom reference liquid runs the way a user would run it: the CG speed baseline.

Best practice for an OPLS-AA liquid of small molecules is bonds to hydrogen constrained and a
2 fs time step, with the reference's cutoffs and long-range electrostatics. Two engines:

* LAMMPS (:func:`measure_lammps`): the deck of :mod:`ase_cg.reference.lammps`
  (``lj/cut/coul/long`` 10 Å, PPPM 1e-5), bonds to hydrogen held by ``fix shake``
  (tolerance 1e-4);
* GROMACS (:func:`measure_gromacs`, when ``gmx`` is on the ``PATH``): the same molecules, force
  field and cutoffs (plain LJ and PME real space at 1.0 nm, Ewald tolerance 1e-5, no dispersion
  correction, 1–4 pairs scaled by ½), ``constraints = h-bonds`` (LINCS), Verlet lists with
  GROMACS's automatic buffer; input written by :func:`write_gromacs_input`.

Both start from the same packed box (:func:`~ase_cg.reference.builder.pack_molecules`), minimise,
then run NVT at the template's temperature on one MPI rank or thread per core. Each returns::

    {"engine": "lammps" | "gromacs", "label": str, "n_atoms": int, "time_step_fs": float,
     "cores": int, "steps": int, "seconds": float, "ns_per_day": float,
     "atom_steps_per_s": float, "version": str}

``seconds`` covers the timed stretch only (LAMMPS: the last ``run``, after a warm-up; GROMACS:
the second half of the run, ``mdrun -resethway``).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ase_cg._lammps import lammps_subprocess_env
from ase_cg.errors import ASECGError
from ase_cg.reference.builder import pack_molecules
from ase_cg.reference.lammps import (
    CUTOFF,
    KSPACE_ACCURACY,
    check_system,
    constraint_commands,
    force_field_commands,
    write_lammps_data,
)
from ase_cg.reference.molecules import MoleculeTemplate, term_atoms
from ase_cg.units import to_ase_factor

#: 1 eV in kJ/mol (GROMACS's energy unit).
_KJ_PER_MOL_PER_EV = 1.0 / to_ase_factor("kJ mol-1", "energy")
#: Time step of the constrained all-atom runs, fs.
TIME_STEP_FS = 2.0
#: Thermostat coupling time, fs (both engines).
THERMOSTAT_FS = 100.0
#: Steps run before the timed stretch (LAMMPS), after the minimisation.
WARMUP_STEPS = 200
#: Mass below which an atom counts as hydrogen, amu (bonds to it are constrained).
_HYDROGEN_MASS = 1.5

_LAMMPS_LOOP = re.compile(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+)")
_LAMMPS_VERSION = re.compile(r"^LAMMPS \((.+)\)", re.MULTILINE)
_GMX_TIME = re.compile(r"^\s+Time:\s+[\d.]+\s+([\d.]+)", re.MULTILINE)
_GMX_PERFORMANCE = re.compile(r"^Performance:\s+([\d.]+)", re.MULTILINE)
_GMX_VERSION = re.compile(r"^\s*GROMACS version:\s+(\S+)", re.MULTILINE)


class BenchmarkError(ASECGError, RuntimeError):
    """An all-atom speed run failed; the message holds the engine's last output lines."""


def _run(command: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(f"{result.stdout}\n{result.stderr}".strip().splitlines()[-25:])
        raise BenchmarkError(f"{what} failed ({' '.join(command)}):\n{tail}")
    return result.stdout + result.stderr


def _hydrogen_masses(template: MoleculeTemplate) -> list[float]:
    """Distinct masses (amu) of the hydrogens bonded in ``template``."""
    masses = sorted(
        {
            float(m)
            for b in template.bonds
            for m in template.masses[[b.i, b.j]]
            if m < _HYDROGEN_MASS
        }
    )
    if not masses:
        raise BenchmarkError(f"{template.name!r} has no bond to hydrogen to constrain")
    return masses


def lammps_deck(
    data_file: str, template: MoleculeTemplate, *, steps: int, temperature: float, seed: int
) -> str:
    """LAMMPS input: reference force field, minimise, SHAKE on bonds to H (every bond and angle
    of a rigid template), warm-up, timed run.

    Parameters
    ----------
    data_file : str
        Data file of :func:`~ase_cg.reference.lammps.write_lammps_data`, relative to the run
        folder.
    template : MoleculeTemplate
        The molecule (its hydrogen masses select the constrained bonds).
    steps : int
        Steps of the timed run, :data:`TIME_STEP_FS` each.
    temperature : float, K
    seed : int
        Velocity seed (LAMMPS is given ``seed + 1``: it takes positive seeds only).
    """
    if template.rigid:  # every bond and angle held (rigid water), at the speed tolerance
        (constrained,) = constraint_commands(template, tolerance=1.0e-4, iterations=20,
                                             fix_id="constrain")  # fmt: skip
    else:
        hydrogens = " ".join(f"m {m!r}" for m in _hydrogen_masses(template))
        constrained = f"fix constrain all shake 1.0e-4 20 0 {hydrogens}"
    return "\n".join(
        [
            *force_field_commands(data_file),
            "thermo 0",
            "minimize 1.0e-4 1.0e-6 1000 10000",
            "reset_timestep 0",
            f"velocity all create {temperature!r} {int(seed) + 1} mom yes rot yes dist gaussian",
            f"fix integrate all nvt temp {temperature!r} {temperature!r} {THERMOSTAT_FS!r}",
            constrained,
            f"timestep {TIME_STEP_FS!r}",
            f"run {WARMUP_STEPS}",
            f"run {int(steps)}",
            "",
        ]
    )


def measure_lammps(
    template: MoleculeTemplate,
    n_molecules: int,
    *,
    steps: int = 1000,
    ranks: int = 1,
    seed: int = 1,
    atoms: Atoms | None = None,
) -> dict:
    """Throughput of the all-atom liquid in LAMMPS: SHAKE on bonds to H, 2 fs, PPPM, NVT.

    Parameters
    ----------
    template : MoleculeTemplate
    n_molecules : int
    steps : int, default 1000
        Timed steps (after minimisation and :data:`WARMUP_STEPS` warm-up steps).
    ranks : int, default 1
        MPI ranks (one core each).
    seed : int, default 1
        Packing and velocity seed.
    atoms : ase.Atoms, optional
        Start configuration (molecules of ``template``); packed at the template's density if
        not given.

    Returns
    -------
    dict
        See the module docstring.
    """
    atoms = (
        pack_molecules(template, n_molecules, template.density, seed=seed)
        if atoms is None
        else atoms
    )
    check_system(template, atoms)
    env = lammps_subprocess_env()
    env["OMP_NUM_THREADS"] = "1"
    lmp = shutil.which("lmp", path=env["PATH"])
    command = (
        [lmp] if ranks == 1 else [shutil.which("mpiexec", path=env["PATH"]), "-n", str(ranks), lmp]
    )
    with tempfile.TemporaryDirectory(prefix="ase_cg_aa_speed_") as tmp:
        folder = Path(tmp)
        write_lammps_data(folder / "system.data", template, atoms)
        deck = lammps_deck(
            "system.data", template, steps=steps, temperature=template.temperature, seed=seed
        )
        (folder / "in.speed").write_text(deck)
        _run([*command, "-in", "in.speed", "-log", "log.lammps", "-nocite"], folder, env, "LAMMPS")
        log = (folder / "log.lammps").read_text()
    loop, procs, n_steps, n_atoms = _LAMMPS_LOOP.findall(log)[-1]
    seconds = float(loop)
    version = _LAMMPS_VERSION.search(log)
    return _result(
        "lammps",
        f"all-atom LAMMPS, SHAKE {'rigid' if template.rigid else 'on bonds to H'}, "
        f"{TIME_STEP_FS:g} fs, PPPM {KSPACE_ACCURACY:g}, "
        f"{CUTOFF:g} Å",
        int(n_atoms),
        int(procs),
        int(n_steps),
        seconds,
        version.group(1) if version else "unknown",
    )


def _result(engine, label, n_atoms, cores, steps, seconds, version) -> dict:
    return {
        "engine": engine,
        "label": label,
        "n_atoms": n_atoms,
        "time_step_fs": TIME_STEP_FS,
        "cores": cores,
        "steps": steps,
        "seconds": seconds,
        "ns_per_day": steps * TIME_STEP_FS * 1e-6 / seconds * 86400.0,
        "atom_steps_per_s": steps * n_atoms / seconds,
        "version": version,
    }


def write_gromacs_input(
    folder: str | os.PathLike,
    template: MoleculeTemplate,
    atoms: Atoms,
    *,
    steps: int,
    seed: int = 1,
) -> dict[str, Path]:
    """GROMACS input for the reference liquid: ``conf.gro``, ``topol.top``, ``em.mdp``, ``md.mdp``.

    The topology carries the template's OPLS-AA parameters converted to GROMACS units and
    conventions (nm, kJ/mol, ½k for bonds and angles, Fourier dihedrals = OPLS ``V1…V4``,
    geometric mixing of σ and ε, 1–4 pairs from the dihedrals scaled by ½). ``md.mdp`` runs
    NVT (v-rescale, 0.1 ps) at the template's temperature with ``constraints = h-bonds``.

    Parameters
    ----------
    folder : path
    template : MoleculeTemplate
    atoms : ase.Atoms
        Whole molecules of ``template`` in template order, orthorhombic cell, Å.
    steps : int
        ``nsteps`` of the MD run (2 fs each).
    seed : int, default 1
        Velocity seed.

    Returns
    -------
    dict
        ``"gro"``, ``"top"``, ``"em"``, ``"md"`` → path.
    """
    folder = Path(folder)
    n_molecules = check_system(template, atoms)
    type_names = list(dict.fromkeys(template.atom_types))
    ev = _KJ_PER_MOL_PER_EV
    lines = [
        f"; {template.name}, OPLS-AA (ase_cg.reference), {n_molecules} molecules",
        "[ defaults ]",
        "; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ",
        "1 3 yes 0.5 0.5",
        "",
        "[ atomtypes ]",
        "; name bond_type at.num mass charge ptype sigma(nm) epsilon(kJ/mol)",
    ]
    for name in type_names:
        i = template.atom_types.index(name)
        lines.append(
            f"{name} {name} {atomic_numbers[template.elements[i]]} "
            f"{float(template.masses[i])!r} 0.0 A "
            f"{float(template.lj_sigma[i] / 10.0)!r} "
            f"{float(template.lj_epsilon[i] * ev)!r}"
        )
    residue = template.name[:5].upper()
    lines += ["", "[ moleculetype ]", f"{residue} 3", "", "[ atoms ]"]
    lines += [
        f"{i + 1} {template.atom_types[i]} 1 {residue} {template.elements[i]}{i + 1} {i + 1} "
        f"{float(template.charges[i])!r} {float(template.masses[i])!r}"
        for i in range(template.n_atoms)
    ]
    if template.rigid:  # SETTLE (rigid water: O first, two H): no bonds, explicit exclusions
        lines += _settles(template)
    else:
        lines += ["", "[ bonds ]"]
        lines += [
            f"{b.i + 1} {b.j + 1} 1 {float(b.r0 / 10.0)!r} {float(2.0 * b.k * ev * 100.0)!r}"
            for b in template.bonds
        ]
    pairs = sorted({tuple(sorted((d.i, d.l))) for d in template.dihedrals})
    lines += ["", "[ pairs ]"] + [f"{i + 1} {j + 1} 1" for i, j in pairs]
    lines += ["", "[ angles ]"]
    lines += [
        f"{a.i + 1} {a.j + 1} {a.k + 1} 1 {float(a.theta0)!r} {float(2.0 * a.k_theta * ev)!r}"
        for a in template.angles
        if not template.rigid
    ]
    lines += ["", "[ dihedrals ]"]
    lines += [
        " ".join(str(n + 1) for n in term_atoms(d))
        + " 5 "
        + " ".join(f"{float(v * ev)!r}" for v in d.v)
        for d in template.dihedrals
    ]
    lines += ["", "[ system ]", template.name, "", "[ molecules ]", f"{residue} {n_molecules}", ""]
    paths = {"top": folder / "topol.top", "gro": folder / "conf.gro"}
    paths["top"].write_text("\n".join(lines))

    lengths = np.diag(atoms.cell.array) / 10.0
    positions = atoms.positions / 10.0
    gro = [f"{template.name} (ase_cg.reference)", str(len(atoms))]
    for n, (x, y, z) in enumerate(positions):
        molecule, i = divmod(n, template.n_atoms)
        gro.append(
            f"{(molecule + 1) % 100000:5d}{residue:<5s}{template.elements[i] + str(i + 1):>5s}"
            f"{(n + 1) % 100000:5d}{x:10.5f}{y:10.5f}{z:10.5f}"
        )
    gro.append(" ".join(f"{v:.5f}" for v in lengths))
    paths["gro"].write_text("\n".join(gro) + "\n")

    common = [
        "cutoff-scheme = Verlet",
        "pbc = xyz",
        "coulombtype = PME",
        f"rcoulomb = {float(CUTOFF / 10.0)!r}",
        f"ewald-rtol = {float(KSPACE_ACCURACY)!r}",
        "vdwtype = Cut-off",
        "vdw-modifier = None",
        f"rvdw = {float(CUTOFF / 10.0)!r}",
        "DispCorr = no",
    ]
    paths["em"] = folder / "em.mdp"
    paths["em"].write_text(
        "\n".join(["integrator = steep", "nsteps = 1000", "emtol = 500", *common, ""])
    )
    temperature = template.temperature
    paths["md"] = folder / "md.mdp"
    paths["md"].write_text(
        "\n".join(
            [
                "integrator = md",
                f"dt = {float(TIME_STEP_FS / 1000.0)!r}",
                f"nsteps = {int(steps)}",
                "nstlog = 0",
                "nstenergy = 0",
                "nstcalcenergy = 100",
                *common,
                "constraints = h-bonds",
                "constraint-algorithm = lincs",
                "tcoupl = v-rescale",
                "tc-grps = System",
                f"tau-t = {float(THERMOSTAT_FS / 1000.0)!r}",
                f"ref-t = {float(temperature)!r}",
                "gen-vel = yes",
                f"gen-temp = {float(temperature)!r}",
                f"gen-seed = {int(seed)}",
                "",
            ]
        )
    )
    return paths


def _settles(template: MoleculeTemplate) -> list[str]:
    """``[ settles ]`` and ``[ exclusions ]`` of a rigid three-site water (O, H, H), nm."""
    (bond, *_), (angle,) = template.bonds, template.angles
    if template.n_atoms != 3 or angle.j != 0 or len(template.bonds) != 2:
        raise BenchmarkError(f"{template.name!r}: SETTLE needs a three-site water, O first")
    d_oh = float(bond.r0) / 10.0
    d_hh = 2.0 * d_oh * math.sin(math.radians(float(angle.theta0)) / 2.0)
    return ["", "[ settles ]", f"1 1 {d_oh!r} {d_hh!r}", "", "[ exclusions ]",
            "1 2 3", "2 1 3", "3 1 2"]  # fmt: skip


def gromacs_executable() -> str | None:
    """Path of ``gmx`` (or ``gmx_mpi``) on the ``PATH``, None if GROMACS is not installed."""
    return shutil.which("gmx") or shutil.which("gmx_mpi")


def measure_gromacs(
    template: MoleculeTemplate,
    n_molecules: int,
    *,
    steps: int = 2000,
    threads: int = 1,
    seed: int = 1,
    atoms: Atoms | None = None,
) -> dict | None:
    """Throughput of the all-atom liquid in GROMACS (h-bonds LINCS, 2 fs, PME); None without gmx.

    Parameters
    ----------
    template : MoleculeTemplate
    n_molecules : int
    steps : int, default 2000
        MD steps; the second half is timed (``-resethway``).
    threads : int, default 1
        OpenMP threads of one thread-MPI rank (one core each).
    seed : int, default 1
    atoms : ase.Atoms, optional
        Start configuration; packed at the template's density if not given.

    Returns
    -------
    dict or None
        See the module docstring; None if ``gmx`` is not on the ``PATH``.
    """
    gmx = gromacs_executable()
    if gmx is None:
        return None
    atoms = (
        pack_molecules(template, n_molecules, template.density, seed=seed)
        if atoms is None
        else atoms
    )
    env = dict(os.environ, GMX_MAXBACKUP="-1", OMP_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory(prefix="ase_cg_gmx_speed_") as tmp:
        folder = Path(tmp)
        write_gromacs_input(folder, template, atoms, steps=steps, seed=seed)
        mdrun = ["-ntmpi", "1", "-ntomp", str(threads), "-nb", "cpu"]
        _run([gmx, "grompp", "-f", "em.mdp", "-c", "conf.gro", "-p", "topol.top", "-o", "em.tpr"],
             folder, env, "gmx grompp (minimisation)")  # fmt: skip
        _run([gmx, "mdrun", "-deffnm", "em", *mdrun], folder, env, "gmx mdrun (minimisation)")
        _run([gmx, "grompp", "-f", "md.mdp", "-c", "em.gro", "-p", "topol.top", "-o", "md.tpr"],
             folder, env, "gmx grompp (MD)")  # fmt: skip
        _run([gmx, "mdrun", "-deffnm", "md", "-resethway", "-noconfout", *mdrun],
             folder, env, "gmx mdrun (MD)")  # fmt: skip
        log = (folder / "md.log").read_text()
    seconds = float(_GMX_TIME.findall(log)[-1])
    version = _GMX_VERSION.search(log)
    timed = steps - steps // 2
    return _result(
        "gromacs",
        f"all-atom GROMACS, {'SETTLE' if template.rigid else 'h-bonds LINCS'}, "
        f"{TIME_STEP_FS:g} fs, PME {KSPACE_ACCURACY:g}, "
        f"{CUTOFF:g} Å",
        len(atoms),
        threads,
        timed,
        seconds,
        version.group(1) if version else "unknown",
    )
