"""Training data of the auto-encoder: whole molecules per type, in template atom order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from ase_cg.autoencoder.config import AutoencoderConfig, AutoencoderError
from ase_cg.errors import InputError
from ase_cg.mapping import CGMapping
from ase_cg.molecules import MoleculeError, TemplateMatcher, find_molecules, formula_of
from ase_cg.reference.molecules import MOLECULES
from ase_cg.trajectory import open_trajectory


@dataclass
class TypeData:
    """One molecule type of the training data: its template and where its molecules are."""

    name: str
    template: Atoms  # whole molecule, masses set
    bonds: np.ndarray  # (n_bonds, 2) template bonds
    atom_index: np.ndarray  # (n_mol_t, n_atoms_t) global atom index, template order
    n_beads: int


@dataclass
class TrainingData:
    """All-atom frames cut into whole molecules per type (positions Å, forces eV/Å)."""

    source: str
    types: list
    positions: list = field(default_factory=list)  # per type (n_frames, n_mol_t, n_at_t, 3)
    forces: list = field(default_factory=list)
    cells: np.ndarray | None = None  # (n_frames, 3, 3)
    pbc: np.ndarray | None = None
    frames: np.ndarray | None = None  # indices in the trajectory
    force_scale: float = 1.0  # mean |f|² of atoms over training frames, eV²/Å²


def _open(trajectory):
    """``(trajectory, owned)``: a :class:`ase_cg.trajectory.Trajectory` of all-atom frames."""
    try:
        source = open_trajectory(trajectory)
    except InputError as error:
        raise AutoencoderError(str(error)) from error
    if getattr(source, "bead_types", None) is not None:
        if source is not trajectory:
            source.close()
        raise AutoencoderError(
            f"{getattr(source, 'path', 'trajectory')}: is a CG trajectory (it has bead types); "
            "learning a mapping needs the all-atom trajectory"
        )
    return source, source is not trajectory


def _find_types(atoms: Atoms, source: str) -> list[tuple[str, Atoms, np.ndarray]]:
    """Distinct molecule types of one frame: (formula name, whole template, local bonds)."""
    molset = find_molecules(atoms)
    found: dict[str, tuple[Atoms, np.ndarray]] = {}
    matcher = None
    for members in molset.molecules:
        in_mol = np.isin(molset.bonds[:, 0], members)
        local = np.searchsorted(members, molset.bonds[in_mol])
        numbers = atoms.numbers[members]
        if matcher is not None:
            try:
                matcher.match(numbers, local)
                continue
            except MoleculeError:
                pass
        if len(members) == 1:
            raise AutoencoderError(
                f"{source}: molecule of atom {int(members[0])} ({atoms[members[0]].symbol}) has "
                "one atom; a one-atom molecule cannot be split into learned beads: remove it or "
                "map it with a fixed mapping (ase_cg.mapping.CGMapping.from_groups)"
            )
        positions = atoms.positions[members]
        if atoms.pbc.any():  # minimum image from the first atom: a whole molecule
            delta = positions - positions[0]
            fractional = delta @ np.linalg.inv(atoms.cell.array)
            fractional[:, atoms.pbc] -= np.rint(fractional[:, atoms.pbc])
            positions = positions[0] + fractional @ atoms.cell.array
        template = Atoms(numbers=numbers, positions=positions, masses=atoms.get_masses()[members])
        name = formula_of(numbers)
        if name in found:
            name = f"{name}_{sum(1 for k in found if k.split('_')[0] == name) + 1}"
        found[name] = (template, local)
        matcher = TemplateMatcher({k: (v[0].numbers, v[1]) for k, v in found.items()})
    return [(name, t, b) for name, (t, b) in found.items()]


def _resolve_beads(n_beads, found, source: str) -> dict[str, tuple[str, int]]:
    """Formula name → (molecule type name, beads); dict keys may be formulas or registry names."""
    formulas = [name for name, _, _ in found]
    if isinstance(n_beads, dict):
        chosen: dict[str, tuple[str, int]] = {}
        for key, value in n_beads.items():
            formula = key
            if key not in formulas and key in MOLECULES:
                formula = formula_of(MOLECULES[key].to_atoms().numbers)
            if formula not in formulas:
                raise AutoencoderError(
                    f"{source}: n_beads names molecule type {key!r}, but the trajectory has "
                    f"{formulas}; key the beads by formula or by a reference molecule name"
                )
            chosen[formula] = (key, value)
        missing = sorted(set(formulas) - set(chosen))
        if missing:
            raise AutoencoderError(
                f"{source}: no bead count for molecule types {missing}; give n_beads for every "
                f"type, e.g. {{{', '.join(repr(f) + ': 2' for f in formulas)}}}"
            )
    else:
        chosen = {f: (f, n_beads) for f in formulas}
    for formula, (name, value) in chosen.items():
        n_atoms = next(len(t) for f, t, _ in found if f == formula)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise AutoencoderError(
                f"{source}: molecule type {name!r}: n_beads must be a positive integer, got "
                f"{value!r}"
            )
        if value > n_atoms:
            raise AutoencoderError(
                f"{source}: molecule type {name!r} has {n_atoms} atoms but {value} beads were "
                f"asked for; use at most {n_atoms} beads (each bead needs at least one atom)"
            )
    return chosen


def _select_frames(
    n_frames: int, config: AutoencoderConfig, source: str, n_molecules: int
) -> np.ndarray:
    frames = np.arange(0, n_frames, config.stride)
    limit = config.max_frames
    if config.molecules_per_frame is not None and n_molecules > config.molecules_per_frame:
        limit = config.sampled_frames if limit is None else min(limit, config.sampled_frames)
    if limit is not None and len(frames) > limit:
        frames = frames[np.linspace(0, len(frames) - 1, limit).round().astype(int)]
    if len(frames) < 2:
        raise AutoencoderError(
            f"{source}: {len(frames)} frame(s) selected; learning a mapping needs at least 2 "
            "(training and validation): give a longer trajectory or a smaller stride"
        )
    return frames


def load_training_data(trajectory, n_beads, config: AutoencoderConfig, disable) -> TrainingData:
    """Read the frames :func:`~ase_cg.autoencoder.learn_mapping` learns from.

    ``n_beads``: beads per molecule (int), or per molecule type or formula (dict);
    ``disable``: hide the progress bar. Molecules are made whole and put in template order.
    """
    traj, owned = _open(trajectory)
    try:
        source = str(getattr(traj, "path", trajectory))
        if not traj.has_forces:
            raise AutoencoderError(
                f"{source}: the trajectory has no forces; the auto-encoder's force-matching term "
                "needs all-atom forces (write forces in the reference run: ase-cg reference)"
            )
        atoms0 = traj[0]
        found = _find_types(atoms0, source)
        chosen = _resolve_beads(n_beads, found, source)
        # One bead per atom: SystemMapping then gives whole molecules and template order.
        per_atom = CGMapping.from_groups(
            {
                formula: (
                    t,
                    [[j] for j in range(len(t))],
                    [f"{formula}:{j}" for j in range(len(t))],
                )
                for formula, t, _ in found
            }
        )
        system = per_atom.system(atoms0)
        order = system.position_matrix.tocsr()
        order.sort_indices()
        atom_of_row = order.indices  # one atom per row, rows molecule by molecule
        mol_types = np.asarray(system.molecule_types)[system.bead_mol_ids]
        types = []
        for formula, template, bonds in found:
            rows = np.flatnonzero(mol_types == formula)
            index = atom_of_row[rows].reshape(-1, len(template))
            name, beads = chosen[formula]
            types.append(TypeData(name, template, bonds, index, int(beads)))
        frames = _select_frames(len(traj), config, source, sum(len(t.atom_index) for t in types))
        data = TrainingData(source=source, types=types, frames=frames, pbc=np.asarray(atoms0.pbc))
        pos_t = [[] for _ in types]
        for_t = [[] for _ in types]
        cells = []
        step = 64
        chunks = range(0, len(frames), step)
        for start in tqdm(chunks, desc="reading frames", disable=disable, leave=False):
            sel = frames[start : start + step]
            positions = traj.positions(sel)
            forces = traj.forces(sel)
            cell = traj.cells(sel)
            whole = system.unwrap(positions, cell)
            cells.append(np.broadcast_to(cell, (len(sel), 3, 3)))
            for k, t in enumerate(types):
                pos_t[k].append(whole[:, t.atom_index])
                for_t[k].append(forces[:, t.atom_index])
        data.positions = [np.concatenate(p) for p in pos_t]
        data.forces = [np.concatenate(f) for f in for_t]
        data.cells = np.concatenate(cells)
        return data
    finally:
        if owned:
            traj.close()
