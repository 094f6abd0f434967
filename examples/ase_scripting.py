"""Use a trained CG model from an ASE script: Langevin MD, a geometry optimisation, analysis.

    .venv/bin/python examples/ase_scripting.py                       # shipped classical model
    .venv/bin/python examples/ase_scripting.py --model data/ethane_neural.pt --steps 500

What it does:

1. loads a model file (its mapping, bead types, masses and cutoff travel inside it);
2. builds a periodic box of CG ethane molecules at the liquid density;
3. relaxes it with ASE's FIRE optimizer (CGCalculator gives energy, forces and stress);
4. runs Langevin dynamics at 180 K, writing an extended-XYZ trajectory (it keeps the
   ``bead-type`` and ``mol-id`` arrays, which ASE's ``.traj`` format drops);
5. reads the trajectory back and prints the temperature and the intermolecular bead RDF.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.io import read, write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.optimize import FIRE

from ase_cg import shipped_data
from ase_cg.analysis import rdf
from ase_cg.calculator import CGCalculator
from ase_cg.md import build_cg_box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=shipped_data("ethane_classical.pt"), help="model file")
    parser.add_argument("--molecules", type=int, default=216, help="ethane molecules in the box")
    parser.add_argument("--density", type=float, default=0.5495, help="box density, g/cm³")
    parser.add_argument("--steps", type=int, default=2000, help="Langevin steps of 2 fs")
    parser.add_argument("--temperature", type=float, default=180.0, help="K")
    parser.add_argument("--output", default="cg_ethane.extxyz", help="trajectory written")
    args = parser.parse_args()

    calculator = CGCalculator(args.model)  # or CGCalculator(model, device="cuda")
    model = calculator.model
    print(f"model: bead types {model.bead_type_names}, cutoff {model.cutoff:.2f} Å")

    atoms = build_cg_box(model, args.molecules, args.density, seed=1)
    atoms.calc = calculator
    print(f"box: {len(atoms)} beads, edge {atoms.cell[0, 0]:.2f} Å")

    # geometry optimisation: random placement → nearest local minimum
    energy_before = atoms.get_potential_energy()
    FIRE(atoms, logfile=None).run(fmax=0.05, steps=200)
    fmax = np.abs(atoms.get_forces()).max()
    print(
        f"FIRE: energy {energy_before:.3f} → {atoms.get_potential_energy():.3f} eV, "
        f"largest force component {fmax:.3f} eV/Å"
    )

    # Langevin dynamics; ASE calls calculator for forces, the neighbour list is reused
    thermalize_momenta(atoms, args.temperature, rng=np.random.default_rng(2))
    Stationary(atoms)
    dynamics = Langevin(
        atoms, 2.0 * units.fs, temperature_K=args.temperature, friction=0.01 / units.fs,
        fixcm=False,
        rng=np.random.default_rng(3),
    )  # fmt: skip
    Path(args.output).unlink(missing_ok=True)
    dynamics.attach(
        lambda: write(args.output, atoms, format="extxyz", append=True),
        interval=max(1, args.steps // 20),
    )
    dynamics.run(args.steps)
    print(f"Langevin: {args.steps} steps, {calculator.neighbor_list_builds} neighbour lists")

    # read it back: frames are ase.Atoms with the bead types and molecule ids kept
    frames = read(args.output, index=":")
    temperatures = [f.get_temperature() for f in frames[len(frames) // 2 :]]
    print(f"read {len(frames)} frames; mean T of the second half {np.mean(temperatures):.1f} K")
    r_max = 0.49 * frames[0].cell[0, 0]
    r, g = rdf(frames, r_max, 50, types=(model.bead_type_names[0],) * 2)
    peak = int(np.argmax(g))
    print(f"first RDF peak: g = {g[peak]:.2f} at r = {r[peak]:.2f} Å")


if __name__ == "__main__":
    main()
