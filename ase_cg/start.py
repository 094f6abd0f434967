"""Start structures of CG MD: new boxes of molecules, frames read from files, replicated boxes.

* :func:`build_cg_box` fills a cubic periodic box with CG molecules at a given mass density:
  each molecule is its template (from the model's mapping) mapped to beads, randomly oriented,
  centred on a random site of a cubic lattice, and re-oriented until no two beads of different
  molecules are closer than a threshold.
* :func:`read_start` reads a start frame (a CG frame as it is, an all-atom one mapped with the
  model's mapping).
* :func:`repeat_molecules` replicates a box with new molecule ids per copy, after
  :func:`make_molecules_whole` has joined the molecules that crossed its boundary.

Units: positions Å, masses amu, densities g/cm³.
"""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.geometry import find_mic
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from ase_cg import _keys as K
from ase_cg.beads import set_bead_types
from ase_cg.errors import InputError
from ase_cg.io import check_coordinates, read_h5md
from ase_cg.neighbors import neighbor_pairs
from ase_cg.units import AMU_PER_A3_TO_G_PER_CM3


def _mapping_of(model_or_mapping):
    """The :class:`~ase_cg.mapping.CGMapping` of a model (or the mapping itself)."""
    mapping = getattr(model_or_mapping, "mapping", model_or_mapping)
    if mapping is None or not hasattr(mapping, "templates"):
        raise InputError(
            "building a CG box needs molecule templates: give a CGMapping or a model that "
            "carries one (model.mapping is None; train or build the model with a mapping)"
        )
    return mapping


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3, 3) uniformly random rotation matrices (from random unit quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    ).transpose(2, 0, 1)


def build_cg_box(
    model_or_mapping,
    n_molecules: int | dict[str, int],
    density_g_cm3: float,
    *,
    seed: int | None = None,
    min_distance: float = 2.0,
    max_tries: int = 200,
) -> Atoms:
    """A cubic periodic box of randomly placed and oriented CG molecules.

    Parameters
    ----------
    model_or_mapping : CGModel or CGMapping
        Where the molecule templates, bead types and bead masses come from.
    n_molecules : int or dict of str to int
        Number of molecules; a dict ``{molecule type: count}`` for several types (an int needs
        a mapping with one molecule type).
    density_g_cm3 : float, g/cm³
        Mass density; fixes the box edge ``L = (M / ρ)^(1/3)``.
    seed : int, optional
        Seed of the placement (same seed, same box).
    min_distance : float, Å
        Smallest allowed distance between beads of different molecules.
    max_tries : int
        Rounds of re-orienting (then re-siting) the molecules that still overlap.

    Returns
    -------
    ase.Atoms
        ``numbers`` 0, bead masses (amu), positions wrapped into the box (Å), ``pbc`` True,
        ``arrays["mol-id"]`` (int) and ``arrays["bead-type"]`` (str); beads ordered molecule
        by molecule, template bead order within a molecule (as ``CGMapping.map`` gives).

    Raises
    ------
    InputError
        Unknown molecule type, non-positive count or density, or no overlap-free placement
        found (density too high for ``min_distance``).
    """
    mapping = _mapping_of(model_or_mapping)
    types = mapping.molecule_types
    if isinstance(n_molecules, dict):
        counts = {name: int(count) for name, count in n_molecules.items()}
        unknown = sorted(set(counts) - set(types))
        if unknown:
            raise InputError(f"molecule types {unknown} are not in the mapping (it has {types})")
    else:
        if len(types) != 1:
            raise InputError(
                f"the mapping has {len(types)} molecule types {types}: give n_molecules as a "
                "dict {molecule type: count}"
            )
        counts = {types[0]: int(n_molecules)}
    if any(count < 0 for count in counts.values()) or sum(counts.values()) == 0:
        raise InputError(f"n_molecules must be positive counts, got {counts}")
    if not (np.isfinite(density_g_cm3) and density_g_cm3 > 0):
        raise InputError(f"density_g_cm3 must be a positive number, got {density_g_cm3!r}")

    templates, bead_names, bead_masses = mapping.templates, mapping.bead_names, mapping.bead_masses
    shapes, names, masses, molecule_of = [], [], [], []
    for name, count in counts.items():
        template = templates[name]
        beads = mapping.position_matrix(name) @ template.positions
        beads -= beads.mean(axis=0)
        for _ in range(count):
            shapes.append(beads)
            names.extend(bead_names[name])
            masses.extend(bead_masses[b] for b in bead_names[name])
            molecule_of.extend([len(shapes) - 1] * len(beads))
    n_total = len(shapes)
    masses = np.asarray(masses, dtype=np.float64)
    molecule_of = np.asarray(molecule_of, dtype=np.int64)
    volume = masses.sum() * AMU_PER_A3_TO_G_PER_CM3 / density_g_cm3  # Å³
    edge = volume ** (1.0 / 3.0)
    cell = np.eye(3) * edge

    rng = np.random.default_rng(seed)
    n_side = int(np.ceil(n_total ** (1.0 / 3.0) - 1e-9))
    sites = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    order = rng.permutation(n_total)  # mix the molecule types over the lattice
    site_of = np.empty(n_total, dtype=np.int64)
    site_of[order] = rng.choice(len(sites), n_total, replace=False)
    centres = (sites[site_of] + 0.5) * (edge / n_side)
    rotations = _random_rotations(rng, n_total)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in shapes])])

    def place(molecules: np.ndarray) -> None:
        for m in molecules:
            positions[starts[m] : starts[m + 1]] = shapes[m] @ rotations[m].T + centres[m]

    positions = np.zeros((len(masses), 3))
    place(np.arange(n_total))
    for attempt in range(max_tries):
        i, j, _ = neighbor_pairs(positions, cell, True, min_distance)
        clash = molecule_of[i] != molecule_of[j]
        if not clash.any():
            break
        bad = np.unique(molecule_of[i[clash]])
        rotations[bad] = _random_rotations(rng, len(bad))
        if attempt >= max_tries // 2:  # orientations alone do not help: jitter the centres
            centres[bad] += rng.normal(0.0, 0.1 * edge / n_side, (len(bad), 3))
        place(bad)
    else:
        raise InputError(
            f"could not place {n_total} molecules at {density_g_cm3} g/cm³ (box edge "
            f"{edge:.2f} Å) with beads of different molecules ≥ {min_distance} Å apart after "
            f"{max_tries} tries; lower the density or min_distance"
        )
    atoms = Atoms(
        numbers=np.zeros(len(masses), dtype=int), positions=positions, cell=cell, pbc=True
    )
    atoms.set_masses(masses)
    atoms.wrap()
    atoms.arrays[K.MOL_ID] = molecule_of.copy()
    set_bead_types(atoms, names)
    return atoms


def read_start(path: Path, frame: int, model) -> Atoms:
    """One frame of ``path`` as CG atoms (all-atom frames are mapped with the model's mapping)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such start structure")
    out_of_range = InputError(f"{path}: has no frame {frame} (out of range; -1 is the last)")
    if path.suffix.lower() in (".h5", ".h5md", ".hdf5"):
        try:
            atoms = read_h5md(path, index=frame)
        except IndexError:
            raise out_of_range from None
    else:
        try:
            atoms = ase.io.read(path, index=frame)
        except (IndexError, StopIteration):
            raise out_of_range from None
        except Exception as error:  # ASE's readers raise many types for a file they cannot read
            raise InputError(
                f"{path}: cannot read a structure from it ({type(error).__name__}: {error})"
            ) from None
    check_coordinates(atoms.positions[None], f"{path}: frame", lambda _: frame)
    if K.BEAD_TYPE in atoms.arrays:
        return atoms
    if model.mapping is None:
        raise InputError(
            f"{path}: frame {frame} has no bead types (an all-atom frame?) and the model has no "
            "mapping to map it with; give a CG start structure"
        )
    cg = model.mapping.map(atoms)
    cg.calc = None
    return cg


def make_molecules_whole(atoms: Atoms, bonds: np.ndarray) -> Atoms:
    """A copy of ``atoms`` with each molecule whole: bonded beads at minimum-image distance.

    Walks each molecule's bond graph breadth first from its lowest-index bead and moves every
    bead to the periodic image nearest its parent, so bonds that crossed the box boundary no
    longer do (chains longer than half the box stay correct, since only bonded distances are
    imaged).

    Parameters
    ----------
    atoms : Atoms
        Periodic CG configuration.
    bonds : (n_bonds, 2) int
        Bonded bead pairs.
    """
    whole = atoms.copy()
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    if len(bonds) == 0:
        return whole
    n = len(atoms)
    graph = coo_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n, n)).tocsr()
    positions = whole.get_positions()
    visited = np.zeros(n, dtype=bool)
    for root in np.unique(bonds):
        if visited[root]:
            continue
        order, parents = breadth_first_order(graph, root, directed=False)
        visited[order] = True
        for bead in order[1:]:  # parents come before children in breadth-first order
            parent = parents[bead]
            vector, _ = find_mic(positions[bead] - positions[parent], atoms.cell, atoms.pbc)
            positions[bead] = positions[parent] + vector
    whole.set_positions(positions)
    return whole


def repeat_molecules(atoms: Atoms, repeat, bonds: np.ndarray | None = None) -> Atoms:
    """``atoms`` replicated ``repeat`` = (n1, n2, n3) times, each copy's molecules with new ids.

    Molecules are first made whole along ``bonds`` (:func:`make_molecules_whole`): a bond that
    crossed the original box's boundary would otherwise span the repeated box. ASE's
    :meth:`~ase.Atoms.repeat` copies every per-atom array, so the copies would share molecule
    ids; here copy ``c`` gets ids shifted by ``c · (max id + 1)``. Velocities are copied as
    they are (the copies start correlated; a thermostat decorrelates them).

    Raises
    ------
    InputError
        If ``repeat`` is not three positive integers or ``atoms`` has no periodic cell.
    """
    counts = tuple(int(n) for n in np.atleast_1d(repeat))
    if len(counts) != 3 or min(counts) < 1 or not np.allclose(counts, np.atleast_1d(repeat)):
        raise InputError(f"repeat must be three positive integers, got {repeat!r}")
    if counts == (1, 1, 1):
        return atoms
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        raise InputError("repeat needs a start structure with a periodic 3-D cell")
    if bonds is not None:
        atoms = make_molecules_whole(atoms, bonds)
    n_copies = counts[0] * counts[1] * counts[2]
    mol_ids = atoms.arrays.get(K.MOL_ID)
    repeated = atoms.repeat(counts)
    if mol_ids is not None:
        stride = int(mol_ids.max()) + 1
        copy = np.repeat(np.arange(n_copies), len(atoms))
        repeated.arrays[K.MOL_ID] = np.tile(mol_ids, n_copies) + stride * copy
    repeated.wrap()
    return repeated
