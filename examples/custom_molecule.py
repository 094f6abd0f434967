"""Coarse-grain a molecule other than ethane, starting from your own all-atom H5MD file.

    .venv/bin/python examples/custom_molecule.py --h5md my_liquid.h5 --workdir propane
    .venv/bin/python examples/custom_molecule.py --workdir propane   # makes a propane liquid

Your file needs positions, forces and the box per frame, the species, and molecule ids (or
bonds); velocities give the temperature. Without ``--h5md`` a small liquid-propane reference is
generated with LAMMPS (OPLS-AA, 231 K) as a stand-in for your own data.

The mapping is built from the data, for any molecule: one bead per heavy atom with the
hydrogens bonded to it (a "united-atom" mapping; propane → CH3–CH2–CH3). Bead-type names come
from each bead's formula and environment, so both CH3 ends share one type. Then the usual
steps: map, fit the classical potential, run CG MD in ASE, compare with the mapped reference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def molecule_template(h5md: Path):
    """The first molecule of the file's first frame, made whole across periodic boundaries."""
    from ase_cg.io import read_h5md

    atoms = read_h5md(h5md, index=0)
    if "mol-id" not in atoms.arrays:
        raise SystemExit(f"{h5md}: no molecule ids; write them (ase_cg.io.write_h5md does)")
    molecule = atoms[atoms.arrays["mol-id"] == atoms.arrays["mol-id"][0]]
    vectors = molecule.positions - molecule.positions[0]
    fractional = np.linalg.solve(molecule.cell.T, vectors.T).T
    molecule.positions = molecule.positions[0] + (fractional - np.round(fractional)) @ molecule.cell
    molecule.pbc = False
    return molecule


def united_atom_groups(template) -> list[list[int]]:
    """One group per heavy atom: the atom and every hydrogen closest to it."""
    symbols = np.array(template.get_chemical_symbols())
    heavy = np.flatnonzero(symbols != "H")
    groups = [[int(i)] for i in heavy]
    for h in np.flatnonzero(symbols == "H"):
        distances = np.linalg.norm(template.positions[heavy] - template.positions[h], axis=1)
        groups[int(np.argmin(distances))].append(int(h))
    return [sorted(group) for group in groups]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h5md", default=None, help="your all-atom H5MD file (with forces)")
    parser.add_argument("--name", default=None, help="molecule name (default: its formula)")
    parser.add_argument("--workdir", default="custom_molecule", help="output folder")
    parser.add_argument("--molecules", type=int, default=64, help="generated propane molecules")
    parser.add_argument("--production-ps", type=float, default=5.0, help="generated run, ps")
    parser.add_argument("--steps", type=int, default=2000, help="CG MD steps of 2 fs")
    args = parser.parse_args()

    from ase_cg.analysis import compare
    from ase_cg.io import H5MDTrajectory
    from ase_cg.mapping import CGMapping, map_trajectory
    from ase_cg.pipeline import cg_temperature, simulate, train_model

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    h5md = Path(args.h5md) if args.h5md else None
    if h5md is None:
        from ase_cg.reference import generate_reference

        h5md = generate_reference(
            "propane", output=work / "propane_aa.h5", n_molecules=args.molecules,
            equilibration_ps=min(2.0, args.production_ps), production_ps=args.production_ps,
            stride=20, seed=1, progress=False,
        )  # fmt: skip
        print(f"generated a propane reference: {h5md}")

    template = molecule_template(h5md)
    groups = united_atom_groups(template)
    mapping = CGMapping.from_groups(template, groups, name=args.name)
    mapping.save(work / "mapping.json")
    print(f"mapping: {mapping}")

    cg = work / "cg.h5"
    map_trajectory(h5md, cg, mapping, progress=False)
    with H5MDTrajectory(cg) as trajectory:
        temperature = cg_temperature(trajectory, slice(None))
    print(f"mapped {cg}; bead temperature {temperature:.0f} K")

    model = train_model(
        cg, work / "classical", kind="classical", mapping_path=work / "mapping.json"
    )
    print(f"classical model: {model} (fitted functions in {work / 'classical' / 'potentials.png'})")

    summary = simulate(
        model, start=cg, output=work / "cg_md.h5", temperature=temperature, time_step_fs=2.0,
        steps=args.steps, interval=max(1, args.steps // 50), seed=1, progress=False,
    )  # fmt: skip
    print(f"CG MD: {summary.steps} steps, T = {summary.temperature_K:.0f} K")

    metrics = compare(cg, work / "cg_md.h5", output_dir=work / "report")
    for pair, values in metrics["rdf"].items():
        print(f"RDF {pair}: max |Δg| = {values['max_abs_difference']:.3f}")
    for kind in ("bonds", "angles"):
        for name, values in (metrics.get(kind) or {}).items():
            if "jensen_shannon" in values:
                print(f"{kind[:-1]} {name}: Jensen–Shannon {values['jensen_shannon']:.3f} nats")
    print(f"report: {work / 'report' / 'index.md'}")


if __name__ == "__main__":
    main()
