"""ase_cg.reference.speed: the all-atom runs every CG speed-up is measured against.

The GROMACS input must describe the same force field as the LAMMPS deck (same potential energy
of one configuration, each term), and the LAMMPS run must constrain exactly the bonds to
hydrogen. GROMACS cases are skipped when ``gmx`` is not installed.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ase_cg._lammps import lammps_subprocess_env
from ase_cg.reference import (
    ETHANE,
    WATER,
    compute_energy_forces,
    pack_molecules,
    write_lammps_data,
)
from ase_cg.reference.speed import (
    TIME_STEP_FS,
    gromacs_executable,
    lammps_deck,
    measure_lammps,
    write_gromacs_input,
)
from ase_cg.units import to_ase_factor

needs_gromacs = pytest.mark.skipif(gromacs_executable() is None, reason="gmx not installed")


@needs_gromacs
@pytest.mark.parametrize("template, n_molecules", [(ETHANE, 160), (WATER, 512)])
def test_gromacs_topology_has_the_lammps_energy(tmp_path, template, n_molecules):
    """Same potential energy of one configuration; rigid water through SETTLE (no bond or angle
    terms, intramolecular pairs excluded), ethane with its bonded terms."""
    atoms = pack_molecules(template, n_molecules, template.density, seed=3)
    write_gromacs_input(tmp_path, template, atoms, steps=0)
    gmx, env = gromacs_executable(), dict(os.environ, GMX_MAXBACKUP="-1", OMP_NUM_THREADS="1")
    for command in (
        [gmx, "grompp", "-f", "em.mdp", "-c", "conf.gro", "-p", "topol.top", "-o", "sp.tpr"],
        [gmx, "mdrun", "-deffnm", "sp", "-nsteps", "0", "-ntmpi", "1", "-ntomp", "1"],
    ):
        subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, check=True)
    log = (tmp_path / "sp.log").read_text()
    block = log[log.index("   Energies (kJ/mol)") :].splitlines()[1:5]
    names = [line[i : i + 15].strip() for line in block[::2] for i in range(0, len(line), 15)]
    values = [float(v) for line in block[1::2] for v in line.split()]
    gromacs = dict(zip(names, values, strict=True))  # GROMACS prints 15-character columns
    energy, _ = compute_energy_forces(template, atoms)
    lammps = energy / to_ase_factor("kJ mol-1", "energy")
    # PME (GROMACS) and PPPM (LAMMPS) at 1e-5 differ by ~5e-4 of the electrostatic terms, which
    # for water are large and of both signs (a missing exclusion would change them by ~1e3 ×)
    electrostatic = sum(abs(gromacs[k]) for k in ("Coulomb (SR)", "Coul. recip."))
    assert abs(gromacs["Potential"] - lammps) < 5e-4 * abs(lammps) + 1e-3 * electrostatic
    if template.rigid:
        assert "Bond" not in gromacs and "Angle" not in gromacs
        assert "settles" in (tmp_path / "topol.top").read_text()
    else:
        assert gromacs["Bond"] > 0 and gromacs["Angle"] > 0


def test_lammps_run_constrains_the_bonds_to_hydrogen(tmp_path):
    n_molecules = 27
    atoms = pack_molecules(ETHANE, n_molecules, ETHANE.density, seed=1)
    write_lammps_data(tmp_path / "system.data", ETHANE, atoms)
    (tmp_path / "in.speed").write_text(
        lammps_deck("system.data", ETHANE, steps=10, temperature=180.0, seed=1)
    )
    result = subprocess.run(
        ["lmp", "-in", "in.speed", "-log", "none"],
        cwd=tmp_path,
        env=lammps_subprocess_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    # each carbon with its three hydrogens is one SHAKE cluster of 4 atoms; the C–C bond is free
    clusters = dict(
        (int(size), int(count))
        for count, size in re.findall(r"(\d+) = # of size (\d) clusters", result.stdout)
    )
    assert clusters == {2: 0, 3: 0, 4: 2 * n_molecules}


def test_measure_lammps_reports_consistent_rates():
    result = measure_lammps(ETHANE, 27, steps=20)
    assert result["engine"] == "lammps" and result["n_atoms"] == 27 * 8
    assert result["steps"] == 20 and result["time_step_fs"] == TIME_STEP_FS
    assert result["ns_per_day"] == pytest.approx(
        20 * TIME_STEP_FS * 1e-6 / result["seconds"] * 86400.0
    )
    assert result["atom_steps_per_s"] == pytest.approx(20 * 216 / result["seconds"])
