"""Chemical sanity of trajectories from other programs: elements, bond lengths, constraints.

Three questions every foreign all-atom trajectory raises, answered from the data alone:

* **Which element is each particle?**  H5MD ``species`` are arbitrary integer ids (0, 1, …
  in most writers), not atomic numbers.  :func:`identify_elements` decides from element
  names or atomic numbers where the file has them, else from the masses (the nearest
  standard atomic weight, :data:`ase.data.atomic_masses`), else takes the ids as atomic
  numbers only when that is plausible; it says which rule it used.
* **Are the lengths in the unit the file claims?**  :func:`bond_length_ratios` compares
  bonded distances with the sum of covalent radii (:data:`ase.data.covalent_radii`); a file
  labelled nm that holds Å gives ratios near 10.
* **Are some bonds constrained?**  :func:`rigid_bonds` finds bonds whose length does not
  change over the frames (SHAKE, LINCS, RATTLE).  Engines write forces without the
  constraint forces (GROMACS always), which is harmless for a bead-sum force map only when
  every constrained bond lies inside one bead: :func:`split_bonds` finds those that do not.
"""

from __future__ import annotations

import re

import numpy as np
from ase.data import atomic_masses, atomic_numbers, chemical_symbols, covalent_radii
from scipy.spatial import cKDTree

from ase_cg.errors import InputError

__all__ = [
    "BOND_RATIO_RANGE",
    "MASS_TOLERANCE",
    "RIGID_BOND_STD",
    "bond_length_ratios",
    "implausible_lengths",
    "element_from_name",
    "identify_elements",
    "rigid_bonds",
    "split_bonds",
]

#: A stored mass matches an element when within this many amu of its standard atomic weight.
MASS_TOLERANCE = 0.5
#: Plausible range of (median bonded distance) / (sum of covalent radii).
BOND_RATIO_RANGE = (0.6, 1.5)
#: A bond whose length has a standard deviation below this over the frames is rigid, Å.
#: (Flexible C–C bonds fluctuate by 0.01–0.03 Å at 180 K, LINCS bonds by < 1e-6 Å, SHAKE
#: bonds at tolerance 1e-4 by < 1e-4 Å; float32 storage adds ~1e-6 Å.)
RIGID_BOND_STD = 2e-4

_ELEMENT_MASSES = np.asarray(atomic_masses[1:119], dtype=np.float64)  # index z - 1


def _elements_from_masses(masses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest element by standard atomic weight: ``(numbers, |Δm| amu)`` per particle."""
    difference = np.abs(masses[:, None] - _ELEMENT_MASSES[None, :])
    index = np.argmin(difference, axis=1)
    return index + 1, difference[np.arange(len(masses)), index]


def element_from_name(name: str, mass: float | None = None) -> int | None:
    """Atomic number of an element name or an atom name (``"C"``, ``"CA"``, ``"H12"``).

    The leading letters are tried as a two-letter symbol (``"CL"`` → Cl) and as a one-letter
    symbol (``"CA"`` → C); with ``mass`` (amu) the first whose standard atomic weight lies
    within :data:`MASS_TOLERANCE` wins (so an alpha carbon ``CA`` of mass 12 is C, not Ca),
    without it the two-letter symbol when it is one.  ``None`` when nothing fits.
    """
    letters = re.match(r"\s*([A-Za-z]+)", str(name))
    if letters is None:
        return None
    text = letters.group(1)
    candidates = [text[:2].capitalize(), text[:1].upper()] if len(text) > 1 else [text.upper()]
    for symbol in candidates:
        z = atomic_numbers.get(symbol)
        if z is None or z == 0:
            continue
        if mass is None or abs(atomic_masses[z] - mass) <= MASS_TOLERANCE:
            return z
    return None


def identify_elements(
    species=None,
    masses=None,
    *,
    names=None,
    numbers=None,
    where: str = "trajectory",
) -> tuple[np.ndarray, str]:
    """Atomic number of every particle, and a one-line note of the rule used.

    Rules, first that applies: given atomic ``numbers`` (e.g. VMD's ``atomicnumber``), element
    or atom ``names``, then the ``masses`` (nearest standard atomic weight, each within
    :data:`MASS_TOLERANCE`); ``species`` are taken as atomic numbers only when there are no
    masses and every id is an element (1..118), or when they match the masses. Names and
    numbers are checked against the masses when both are given.

    Parameters
    ----------
    species : (n,) int, optional
        Particle species ids as stored.
    masses : (n,) float64, amu, optional
    names : (n,) str, optional
        Element symbols or atom names.
    numbers : (n,) int, optional
        Atomic numbers stored by the writer.
    where : str
        How messages name the source (file and dataset).

    Returns
    -------
    numbers : (n,) int64
    note : str

    Raises
    ------
    InputError
        Names or numbers contradict the masses, masses match no element, or the species are
        ids that nothing identifies; the message names the particle and the fix.
    """
    masses = None if masses is None else np.asarray(masses, dtype=np.float64)
    if numbers is not None:
        result = np.asarray(numbers, dtype=np.int64)
        bad = np.flatnonzero((result < 1) | (result > 118))
        if bad.size:
            raise InputError(
                f"{where}: particle {int(bad[0])} has atomic number {int(result[bad[0]])}; "
                "atomic numbers must be 1..118."
            )
        _check_against_masses(result, masses, where, "its atomic number")
        return result, f"{where}: elements from the stored atomic numbers"
    if names is not None:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        result = np.zeros(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            z = element_from_name(name, None if masses is None else float(masses[i]))
            if z is None:
                mass = "" if masses is None else f" and mass {masses[i]:.4g} amu"
                raise InputError(
                    f"{where}: particle {i} has name {name!r}{mass}, which names no element "
                    "consistent with its mass; give element names (C, H, O …)."
                )
            result[i] = z
        return result, f"{where}: elements from the element/atom names"
    if masses is not None:
        if species is not None:
            ids = np.asarray(species, dtype=np.int64)
            if np.all((ids >= 1) & (ids <= 118)) and np.all(
                np.abs(atomic_masses[np.clip(ids, 1, 118)] - masses) <= MASS_TOLERANCE
            ):
                return ids, f"{where}: species are atomic numbers (they match the masses)"
        result, difference = _elements_from_masses(masses)
        bad = np.flatnonzero(difference > MASS_TOLERANCE)
        if bad.size:
            i = int(bad[0])
            raise InputError(
                f"{where}: particle {i} has mass {masses[i]:.6g} amu, which is no element's "
                f"standard atomic weight (nearest: {chemical_symbols[result[i]]}, "
                f"{atomic_masses[result[i]]:.4f} amu); united-atom or repartitioned masses "
                "need element names in the file (e.g. parameters/vmd_structure/name)."
            )
        rule = "species ids" if species is not None else "particles"
        return result, f"{where}: elements of the {rule} from their masses (nearest atomic weight)"
    if species is not None:
        ids = np.asarray(species, dtype=np.int64)
        if np.all((ids >= 1) & (ids <= 118)):
            return ids, f"{where}: species taken as atomic numbers (no masses or names to check)"
        raise InputError(
            f"{where}: species {sorted(set(ids.tolist()))[:10]} are ids, not atomic numbers, and "
            "the file has neither masses nor element names to tell the elements; add a mass "
            "dataset (amu) or element names."
        )
    return np.zeros(0 if masses is None else len(masses), dtype=np.int64), f"{where}: no elements"


def _check_against_masses(numbers, masses, where: str, what: str) -> None:
    if masses is None:
        return
    bad = np.flatnonzero(np.abs(atomic_masses[numbers] - masses) > MASS_TOLERANCE)
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{where}: particle {i} is {chemical_symbols[numbers[i]]} by {what} but has mass "
            f"{masses[i]:.6g} amu ({chemical_symbols[numbers[i]]}: {atomic_masses[numbers[i]]:.4f}"
            "); fix the masses or the element data."
        )


def _minimum_image(vectors: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    if not np.any(pbc):
        return vectors
    fractional = vectors @ np.linalg.inv(cell)
    fractional[..., pbc] -= np.rint(fractional[..., pbc])
    return fractional @ cell


def bond_length_ratios(numbers, positions, cell, pbc, bonds=None, mol_ids=None):
    """Bonded distances over covalent-radius sums, and what they were measured on.

    With ``bonds``: every bond (minimum image).  With ``mol_ids``: each atom's nearest atom
    of its own molecule (molecules of one atom are skipped).  With neither: each hydrogen's
    nearest atom (hydrogen is bonded in every molecular liquid).

    Parameters
    ----------
    numbers : (n,) int
    positions : (n, 3) float64, Å
    cell : (3, 3) float64, Å
    pbc : (3,) bool
    bonds : (n_bonds, 2) int, optional
    mol_ids : (n,) int, optional

    Returns
    -------
    ratios : (m,) float64
        Distance / (r_cov,i + r_cov,j); empty when nothing could be measured.
    what : str
        ``"bonds"``, ``"nearest atom in each molecule"`` or ``"nearest atom of each H"``.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    cell = np.asarray(cell, dtype=np.float64)
    radii = covalent_radii[numbers]
    if bonds is not None and len(bonds):
        bonds = np.asarray(bonds, dtype=np.int64)
        vectors = _minimum_image(positions[bonds[:, 1]] - positions[bonds[:, 0]], cell, pbc)
        sums = radii[bonds[:, 0]] + radii[bonds[:, 1]]
        return np.linalg.norm(vectors, axis=1) / sums, "bonds"
    if mol_ids is not None:
        _, molecule = np.unique(np.asarray(mol_ids), return_inverse=True)
        order = np.argsort(molecule, kind="stable")
        sizes = np.bincount(molecule)
        members = np.split(order, np.cumsum(sizes)[:-1])
        ratios = []
        for size in np.unique(sizes):
            if size < 2:
                continue
            idx = np.stack([m for m in members if len(m) == size][:2000])  # a sample is enough
            delta = positions[idx][:, None, :, :] - positions[idx][:, :, None, :]
            distance = np.linalg.norm(_minimum_image(delta, cell, pbc), axis=-1)
            distance[:, np.arange(size), np.arange(size)] = np.inf
            nearest = np.argmin(distance, axis=2)
            d = np.take_along_axis(distance, nearest[..., None], axis=2)[..., 0]
            ratios.append((d / (radii[idx] + radii[np.take_along_axis(idx, nearest, 1)])).ravel())
        what = "nearest atom in each molecule"
        return (np.concatenate(ratios) if ratios else np.zeros(0)), what
    hydrogens = np.flatnonzero(numbers == 1)
    if hydrogens.size == 0 or len(numbers) < 2:
        return np.zeros(0), "nearest atom of each H"
    if np.any(pbc) and abs(np.linalg.det(cell)) > 1e-12:
        fractional = positions @ np.linalg.inv(cell)
        fractional[:, pbc] -= np.floor(fractional[:, pbc])
        shifts = np.array(
            [[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)], dtype=float
        )
        shifts = shifts[np.all((shifts == 0) | pbc, axis=1)]
        images = (fractional[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ cell
        owner = np.tile(np.arange(len(numbers)), len(shifts))
        tree = cKDTree(images)
        query = fractional[hydrogens] @ cell
    else:
        owner = np.arange(len(numbers))
        tree = cKDTree(positions)
        query = positions[hydrogens]
    distance, index = tree.query(query, k=2)
    nearest = owner[index[:, 1]]
    return distance[:, 1] / (radii[hydrogens] + radii[nearest]), "nearest atom of each H"


def implausible_lengths(numbers, positions, cell, pbc, bonds=None, mol_ids=None) -> str | None:
    """Why these lengths cannot be in Å (one phrase), or ``None`` when they are plausible.

    The median of :func:`bond_length_ratios` must lie in :data:`BOND_RATIO_RANGE`; a file
    in nm read as Å gives about 0.1, one in Å read as nm about 10.  Arguments as there.
    """
    ratios, what = bond_length_ratios(numbers, positions, cell, pbc, bonds, mol_ids)
    if ratios.size == 0:
        return None
    median = float(np.median(ratios))
    low, high = BOND_RATIO_RANGE
    if low <= median <= high:
        return None
    return (
        f"bonded distances ({what}, frame 0) are {median:.3g} × the sum of covalent radii "
        f"(expected {low}..{high})"
    )


def rigid_bonds(lengths, tolerance: float = RIGID_BOND_STD) -> np.ndarray:
    """Which bonds keep their length over the frames (constrained).

    Parameters
    ----------
    lengths : (n_frames, n_bonds) float64, Å
        Bond lengths per frame; fewer than 3 frames tell nothing (all False).
    tolerance : float, Å
        Largest standard deviation of a rigid bond.

    Returns
    -------
    (n_bonds,) bool
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.ndim != 2 or lengths.shape[0] < 3:
        return np.zeros(lengths.shape[-1] if lengths.ndim else 0, dtype=bool)
    return lengths.std(axis=0) < tolerance


def split_bonds(bonds, atom_bead) -> np.ndarray:
    """Bonds whose atoms are not in the same bead.

    Parameters
    ----------
    bonds : (n_bonds, 2) int
    atom_bead : (n_atoms,) int
        Bead of each atom, −1 for atoms in no bead.

    Returns
    -------
    (n_bonds,) bool
    """
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    atom_bead = np.asarray(atom_bead)
    a, b = atom_bead[bonds[:, 0]], atom_bead[bonds[:, 1]]
    return (a != b) | (a < 0)
