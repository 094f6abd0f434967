"""A human-readable summary of an H5MD file (what ``ase-cg info`` prints)."""

from __future__ import annotations

import os

import numpy as np
from ase.symbols import Symbols

from ase_cg.io.reader import H5MDTrajectory

__all__ = ["info"]


def _composition(trajectory: H5MDTrajectory) -> str:
    if trajectory.mol_ids is None:
        return "none stored (no particles/<group>/molecule_id)"
    mol_ids = trajectory.mol_ids
    _, molecule = np.unique(mol_ids, return_inverse=True)
    if trajectory.bead_types is not None:
        names, kinds = np.unique(trajectory.bead_types, return_inverse=True)
    else:
        names, kinds = np.unique(trajectory.numbers, return_inverse=True)
    counts = np.zeros((molecule.max() + 1, len(names)), dtype=np.int64)
    np.add.at(counts, (molecule, kinds), 1)
    rows, n_each = np.unique(counts, axis=0, return_counts=True)
    parts = []
    for row, n in zip(rows.tolist(), n_each.tolist(), strict=True):
        if trajectory.bead_types is not None:
            label = "[" + " ".join(f"{c}×{names[k]}" for k, c in enumerate(row) if c) + "]"
        else:
            label = Symbols(np.repeat(names, row)).get_chemical_formula("hill")
        parts.append((n, label))
    parts.sort(key=lambda part: (-part[0], part[1]))
    parts = [f"{n} × {label}" for n, label in parts]
    return f"{molecule.max() + 1}: " + ", ".join(parts)


def info(path: str | os.PathLike, group: str | None = None) -> str:
    """One human-readable summary of an H5MD file (what ``ase-cg info`` prints).

    Frames, particles, molecules and their composition, box (first frame, whether it
    changes), unit strings as stored, time step, which per-frame quantities are present,
    file size.
    """
    with H5MDTrajectory(path, group) as t:
        size = t.path.stat().st_size
        cell = t.cells(0)
        kind = "triclinic" if np.any(cell[~np.eye(3, dtype=bool)] != 0) else "orthorhombic"
        if not t.pbc.any() and not np.any(cell):
            box = "none (non-periodic)"
        elif kind == "orthorhombic":
            box = f"orthorhombic {' × '.join(f'{x:.4f}' for x in np.diag(cell))} Å"
        else:
            box = "triclinic, cell vectors (Å) " + "; ".join(
                "[" + ", ".join(f"{x:.4f}" for x in row) + "]" for row in cell
            )
        box += f", pbc={t.pbc.tolist()}, {'changes' if t.box_changes else 'constant'}"
        present = ["positions"] + [
            name
            for name, flag in (
                ("forces", t.has_forces),
                ("velocities", t.has_velocities),
                ("energies", t.has_energies),
            )
            if flag
        ]
        if t.bead_types is not None:
            kinds = f"CG beads, types {sorted(set(t.bead_types.tolist()))}"
        elif t.numbers.any():
            kinds = f"atoms, {Symbols(t.numbers).get_chemical_formula('hill')}"
        else:
            kinds = "particles without species"
        units = ", ".join(
            f"{q}={u!r}" if u is not None else f"{q}=(none: ASE)" for q, u in t.units.items()
        )
        masses = t.mass_source
        lines = [
            f"file:        {t.path} ({size / 2**20:.2f} MiB)",
            f"group:       particles/{t.group}",
            f"frames:      {t.n_frames} (steps {t.steps[0]}..{t.steps[-1]})",
            f"particles:   {t.n_atoms} ({kinds})",
            f"masses:      {masses}",
            f"elements:    {t.element_rule.removeprefix(f'{t.path}: ')}",
            f"molecules:   {_composition(t)}",
            f"bonds:       {'none stored' if t.bonds is None else len(t.bonds)}",
            f"box:         {box}",
            f"present:     {', '.join(present)}",
            f"observables: {', '.join(t.observable_names) or 'none'}",
            f"units:       {units}",
            "time step:   "
            + ("unknown" if t.time_step is None else f"{t.time_step:g} fs")
            + ("" if t.times is None else f"; time {t.times[0]:g}..{t.times[-1]:g} fs"),
        ]
        for name, values in t.parameters.items():
            settings = ", ".join(f"{key}={_short(value)}" for key, value in values.items())
            lines.append(f"parameters:  {name}: {settings}")
    return "\n".join(lines)


def _short(value, width: int = 60) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = f"{value:.6g}" if isinstance(value, float) else str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
