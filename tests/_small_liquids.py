"""Helpers of the auto-encoder tests: a small real all-atom liquid and a chemistry check."""

from __future__ import annotations

from ase import Atoms


def small_reference(tmp_path_factory, molecule: str):
    """A 27-molecule OPLS-AA liquid of ``molecule`` (LAMMPS, 1 ps, 50 frames) as H5MD."""
    from ase_cg.reference import generate_reference

    path = tmp_path_factory.mktemp(molecule) / f"{molecule}_aa.h5"
    return generate_reference(
        molecule,
        output=path,
        n_molecules=27,
        equilibration_ps=0.5,
        production_ps=1.0,
        stride=20,
        progress=False,
    )


def heavy_atoms_with_their_hydrogens(template: Atoms, groups, cutoff: float = 1.3) -> bool:
    """True when every bead is one carbon with exactly the hydrogens bonded to it (C–H within
    ``cutoff`` Å in the template)."""
    symbols = template.get_chemical_symbols()
    carbons = [j for j, s in enumerate(symbols) if s == "C"]
    distances = template.get_all_distances()
    for group in groups:
        heavy = [j for j in group if j in carbons]
        if len(heavy) != 1:
            return False
        bonded = {j for j, s in enumerate(symbols) if s == "H" and distances[heavy[0], j] < cutoff}
        if {j for j in group if symbols[j] == "H"} != bonded:
            return False
    return True


def check_five_seeds(result, formula: str, at_least: int) -> None:
    """At least ``at_least`` of the restarts found carbons with their hydrogens, and the kept
    mapping did."""
    template = result.templates[formula]
    runs = result.report["runs"]
    found = [heavy_atoms_with_their_hydrogens(template, run["groups"][formula]) for run in runs]
    assert sum(found) >= at_least, [run["groups"] for run in runs]
    assert heavy_atoms_with_their_hydrogens(template, result.mapping.groups[formula])
