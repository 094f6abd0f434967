"""``python -m lammps_interface._single_point INPUT OUTPUT``: one LAMMPS energy/force evaluation.

Runs the LAMMPS commands in INPUT (a deck that sets up the system without ``run``), then
``run 0``, and writes OUTPUT (``.npz``, ASE units, beads ordered by LAMMPS atom ID)::

    energy         ()            eV     potential energy
    forces         (n_beads, 3)  eV/Å
    virial         (3, 3)        eV     W_ab = Σ_i x_ia f_ib (minus the strain derivative)
    bead_energies  (n_beads,)    eV     compute pe/atom
    bead_virials   (n_beads, 6)  eV     per-bead virial (xx, yy, zz, xy, xz, yz), sums to W
    volume         ()            Å³

Meant to be started by :func:`lammps_interface.run.evaluate` in a subprocess (a LAMMPS plugin
cannot be loaded twice in one process), under ``mpiexec`` for several ranks; rank 0 writes.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ase_cg._lammps import import_lammps
from lammps_interface.units import EV_TO_KCAL_PER_MOL


def main(argv: list[str]) -> int:
    """Evaluate ``argv[0]`` (LAMMPS input) and write ``argv[1]`` (npz); return an exit code."""
    input_path, output_path = argv
    lammps = import_lammps()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.file(input_path)
        for command in (
            "compute cgsp_pe all pe/atom",
            "compute cgsp_vir all pressure NULL virial",
            "compute cgsp_stress all stress/atom NULL virial",
            "thermo_style custom step pe vol c_cgsp_vir[*]",
            "dump cgsp_dump all custom 1 cgsp.dump.partial id c_cgsp_pe c_cgsp_stress[*]",
            "run 0 post no",
        ):
            lmp.command(command)
        n_beads = lmp.get_natoms()
        nktv2p = lmp.extract_global("nktv2p")
        volume = lmp.get_thermo("vol")
        energy = lmp.get_thermo("pe")
        pressure = np.array(
            lmp.numpy.extract_compute("cgsp_vir", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_VECTOR)
        )
        forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n_beads, 3)
        bead_energies = np.ctypeslib.as_array(lmp.gather("c_cgsp_pe", 1, 1))
        stress = np.ctypeslib.as_array(lmp.gather("c_cgsp_stress", 1, 6)).reshape(n_beads, 6)
        rank = lmp.extract_setting("world_rank")
        lmp.command("undump cgsp_dump")
    except Exception as error:  # LAMMPS raises plain Exception with its ERROR message
        message = str(error)
        print(message if "ERROR" in message else f"ERROR: {message}", file=sys.stderr)
        lmp.close()
        return 1
    lmp.close()
    if rank == 0 and os.path.exists("cgsp.dump.partial"):
        os.unlink("cgsp.dump.partial")
    if rank != 0:
        return 0
    w = pressure * volume / nktv2p / EV_TO_KCAL_PER_MOL  # (xx, yy, zz, xy, xz, yz)
    virial = np.array([[w[0], w[3], w[4]], [w[3], w[1], w[5]], [w[4], w[5], w[2]]])
    temporary = f"{output_path}.partial"
    with open(temporary, "wb") as handle:
        np.savez(
            handle,
            energy=energy / EV_TO_KCAL_PER_MOL,
            forces=forces / EV_TO_KCAL_PER_MOL,
            virial=virial,
            bead_energies=bead_energies / EV_TO_KCAL_PER_MOL,
            bead_virials=-stress / nktv2p / EV_TO_KCAL_PER_MOL,
            volume=volume,
        )
    os.replace(temporary, output_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
