"""Molecule templates: one molecule of a liquid as data (geometry, force field, state point).

A :class:`MoleculeTemplate` holds everything the reference builder and the LAMMPS deck need
about one molecule type; nothing downstream is specific to a molecule. Add a molecule by
writing one more template (see :data:`ETHANE`, :data:`PROPANE` and the rigid :data:`WATER`)
and registering it in :data:`MOLECULES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from ase_cg.errors import InputError
from ase_cg.reference.forcefield import (
    ANGLE_PARAMETERS,
    ATOM_TYPES,
    BOND_PARAMETERS,
    DIHEDRAL_PARAMETERS,
    KCAL_PER_MOL,
    angle_key,
    bond_key,
    dihedral_key,
)


class MoleculeTemplateError(InputError):
    """A molecule template is inconsistent or names parameters the force field lacks."""


@dataclass(frozen=True)
class Bond:
    """Harmonic bond :math:`K (r - r_0)^2` between atoms ``i`` and ``j`` (indices in the molecule).

    Attributes
    ----------
    i, j : int
    k : float, eV/Å²
    r0 : float, Å
    """

    i: int
    j: int
    k: float
    r0: float


@dataclass(frozen=True)
class Angle:
    """Harmonic angle :math:`K (\\theta - \\theta_0)^2` at centre atom ``j``.

    Attributes
    ----------
    i, j, k : int
    k_theta : float, eV/rad²
    theta0 : float, degrees
    """

    i: int
    j: int
    k: int
    k_theta: float
    theta0: float


@dataclass(frozen=True)
class Dihedral:
    """OPLS dihedral ``i``–``j``–``k``–``l``; ``v`` = (V1, V2, V3, V4), eV."""

    i: int
    j: int
    k: int
    l: int  # noqa: E741 (the conventional name of the fourth dihedral atom)
    v: tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class MoleculeTemplate:
    """One molecule type of a liquid: conformer, force field and liquid state point.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"ethane"``.
    elements : tuple of str, (n_atoms,)
        Chemical symbols.
    positions : (n_atoms, 3) float64, Å
        One conformer (any orientation; the builder rotates it).
    atom_types : tuple of str, (n_atoms,)
        Force-field atom type names (LAMMPS atom types are made from the distinct names).
    charges : (n_atoms,) float64, e
    masses : (n_atoms,) float64, amu
    lj_sigma : (n_atoms,) float64, Å
    lj_epsilon : (n_atoms,) float64, eV
    bonds, angles, dihedrals : tuple of :class:`Bond`, :class:`Angle`, :class:`Dihedral`
        Every bonded term with its parameters.
    temperature : float, K
        Temperature of the liquid state point the reference is run at by default.
    density : float, g/cm³
        Mass density of the liquid at ``temperature`` (saturated liquid).
    references : str
        Where the force field and the state point come from.
    rigid : bool
        Every bond and angle is held at its r_0 and θ_0 by SHAKE during MD (rigid water
        models); their harmonic constants then only serve the minimisation.
    time_step_fs : float, fs
        Default MD time step of the reference run.
    """

    name: str
    elements: tuple[str, ...]
    positions: np.ndarray
    atom_types: tuple[str, ...]
    charges: np.ndarray
    masses: np.ndarray
    lj_sigma: np.ndarray
    lj_epsilon: np.ndarray
    bonds: tuple[Bond, ...]
    angles: tuple[Angle, ...]
    dihedrals: tuple[Dihedral, ...]
    temperature: float
    density: float
    references: str = field(default="")
    rigid: bool = False
    time_step_fs: float = 1.0

    def __post_init__(self) -> None:
        n_atoms = len(self.elements)
        where = f"molecule template {self.name!r}"
        if self.positions.shape != (n_atoms, 3) or not np.all(np.isfinite(self.positions)):
            raise MoleculeTemplateError(
                f"{where}: positions must be a finite ({n_atoms}, 3) array in Å (one row per "
                f"element), got shape {self.positions.shape}"
            )
        for label in ("atom_types",):
            if len(getattr(self, label)) != n_atoms:
                raise MoleculeTemplateError(
                    f"{where}: {label} has {len(getattr(self, label))} entries for {n_atoms} atoms"
                )
        for label in ("charges", "masses", "lj_sigma", "lj_epsilon"):
            if getattr(self, label).shape != (n_atoms,):
                raise MoleculeTemplateError(
                    f"{where}: {label} must have shape ({n_atoms},), got "
                    f"{getattr(self, label).shape}"
                )
        if np.any(self.masses <= 0):
            raise MoleculeTemplateError(f"{where}: masses must be positive (amu)")
        if abs(self.charges.sum()) > 1e-8:
            raise MoleculeTemplateError(
                f"{where}: net charge {self.charges.sum():+.6f} e; a reference liquid needs "
                "neutral molecules, fix the partial charges"
            )
        for term in (*self.bonds, *self.angles, *self.dihedrals):
            atoms = term_atoms(term)
            if len(set(atoms)) != len(atoms) or not all(0 <= a < n_atoms for a in atoms):
                raise MoleculeTemplateError(
                    f"{where}: {term} must name distinct atom indices in 0..{n_atoms - 1}"
                )
        if not self.time_step_fs > 0:
            raise MoleculeTemplateError(
                f"{where}: time_step_fs must be > 0, got {self.time_step_fs}"
            )
        if not (self.temperature > 0 and self.density > 0):
            raise MoleculeTemplateError(
                f"{where}: state point needs temperature > 0 K and density > 0 g/cm³, got "
                f"{self.temperature} K, {self.density} g/cm³"
            )

    @classmethod
    def from_opls(
        cls,
        name: str,
        positions: Sequence[Sequence[float]],
        atom_types: Sequence[str],
        bonds: Sequence[tuple[int, int]],
        *,
        temperature: float,
        density: float,
        references: str = "",
    ) -> MoleculeTemplate:
        """Template from OPLS-AA atom types and the bond list.

        Angles and dihedrals are enumerated from the bond graph; every parameter is looked up
        in :mod:`ase_cg.reference.forcefield`.

        Parameters
        ----------
        name : str
        positions : (n_atoms, 3) array-like, Å
        atom_types : sequence of str, (n_atoms,)
            OPLS-AA type names (keys of :data:`~ase_cg.reference.forcefield.ATOM_TYPES`).
        bonds : sequence of (int, int)
            Bonded atom pairs (indices in the molecule).
        temperature : float, K
        density : float, g/cm³
        references : str

        Raises
        ------
        MoleculeTemplateError
            If an atom type or a bonded term has no parameters in the force field.
        """
        unknown = sorted(set(atom_types) - set(ATOM_TYPES))
        if unknown:
            raise MoleculeTemplateError(
                f"molecule template {name!r}: atom types {unknown} are not in the OPLS-AA table; "
                f"known: {sorted(ATOM_TYPES)} (add them to ase_cg/reference/forcefield.py)"
            )
        types = [ATOM_TYPES[t] for t in atom_types]
        classes = [t.bond_class for t in types]
        neighbours: dict[int, list[int]] = {i: [] for i in range(len(types))}
        for i, j in bonds:
            neighbours[i].append(j)
            neighbours[j].append(i)

        def lookup(table: dict, key: tuple, atoms: tuple[int, ...]) -> tuple:
            if key not in table:
                raise MoleculeTemplateError(
                    f"molecule template {name!r}: no OPLS-AA parameters for {'-'.join(key)} "
                    f"(atoms {atoms}); add them to ase_cg/reference/forcefield.py"
                )
            return table[key]

        bond_terms = tuple(
            Bond(i, j, *lookup(BOND_PARAMETERS, bond_key(classes[i], classes[j]), (i, j)))
            for i, j in bonds
        )
        angle_terms = []
        for j in sorted(neighbours):
            around = sorted(neighbours[j])
            for a, i in enumerate(around):
                for k in around[a + 1 :]:
                    key = angle_key(classes[i], classes[j], classes[k])
                    angle_terms.append(Angle(i, j, k, *lookup(ANGLE_PARAMETERS, key, (i, j, k))))
        dihedral_terms = []
        for j, k in bonds:
            for i in sorted(neighbours[j]):
                for m in sorted(neighbours[k]):
                    if i in (j, k) or m in (j, k) or i == m:
                        continue
                    key = dihedral_key(classes[i], classes[j], classes[k], classes[m])
                    v = lookup(DIHEDRAL_PARAMETERS, key, (i, j, k, m))
                    dihedral_terms.append(Dihedral(i, j, k, m, v))
        return cls(
            name=name,
            elements=tuple(t.element for t in types),
            positions=np.asarray(positions, dtype=np.float64),
            atom_types=tuple(atom_types),
            charges=np.array([t.charge for t in types]),
            masses=np.array([t.mass for t in types]),
            lj_sigma=np.array([t.sigma for t in types]),
            lj_epsilon=np.array([t.epsilon for t in types]),
            bonds=bond_terms,
            angles=tuple(angle_terms),
            dihedrals=tuple(dihedral_terms),
            temperature=float(temperature),
            density=float(density),
            references=references,
        )

    @property
    def n_atoms(self) -> int:
        """Number of atoms in one molecule."""
        return len(self.elements)

    @property
    def molar_mass(self) -> float:
        """Mass of one molecule, amu (= g/mol)."""
        return float(self.masses.sum())

    def to_atoms(self) -> Atoms:
        """One molecule as :class:`ase.Atoms` (masses set, ``arrays["mol-id"]`` all 1, no cell)."""
        atoms = Atoms(self.elements, positions=self.positions, masses=self.masses)
        atoms.set_initial_charges(self.charges)
        atoms.arrays["mol-id"] = np.ones(self.n_atoms, dtype=np.int64)
        return atoms


def term_atoms(term: Bond | Angle | Dihedral) -> tuple[int, ...]:
    """Atom indices (within the molecule) of a bonded term, in order."""
    if isinstance(term, Bond):
        return (term.i, term.j)
    if isinstance(term, Angle):
        return (term.i, term.j, term.k)
    return (term.i, term.j, term.k, term.l)


_OPLS = (
    "OPLS-AA: W. L. Jorgensen, D. S. Maxwell, J. Tirado-Rives, J. Am. Chem. Soc. 118, 11225 (1996)"
)

#: Ethane, C2H6: two CH3 carbons (``opls_135``, CT, −0.18 e) and six H (``opls_140``, HC, +0.06 e).
#: Conformer: staggered, from ASE's G2 set (MP2/6-31G*, Curtiss et al., J. Chem. Phys. 106, 1063
#: (1997)). State point: 180 K, 0.5495 g/cm³, the saturated liquid of the Bücker–Wagner reference
#: equation of state (D. Bücker, W. Wagner, J. Phys. Chem. Ref. Data 35, 205 (2006)); OPLS-AA
#: stays liquid there (NPT at 1 atm gives 0.546 g/cm³).
ETHANE = MoleculeTemplate.from_opls(
    "ethane",
    positions=[
        [0.0, 0.0, 0.7622],
        [0.0, 0.0, -0.7622],
        [0.0, 1.019, 1.1572],
        [-0.8824, -0.5095, 1.1572],
        [0.8824, -0.5095, 1.1572],
        [0.0, -1.019, -1.1572],
        [-0.8824, 0.5095, -1.1572],
        [0.8824, 0.5095, -1.1572],
    ],
    atom_types=["opls_135"] * 2 + ["opls_140"] * 6,
    bonds=[(0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6), (1, 7)],
    temperature=180.0,
    density=0.5495,
    references=f"{_OPLS}; state point: Bücker & Wagner, J. Phys. Chem. Ref. Data 35, 205 (2006)",
)

#: Propane, C3H8: a CH2 carbon (``opls_136``, −0.12 e) between two CH3 carbons (``opls_135``,
#: −0.18 e), eight H (``opls_140``, +0.06 e). Conformer from ASE's G2 set (as for ethane; atom 0
#: is the CH2 carbon). State point: 231 K (normal boiling point), 0.58 g/cm³, the saturated
#: liquid density of the reference equation of state of E. W. Lemmon, M. O. McLinden, W. Wagner,
#: J. Chem. Eng. Data 54, 3141 (2009) (0.581 g/cm³ at 231.04 K).
PROPANE = MoleculeTemplate.from_opls(
    "propane",
    positions=[
        [0.0, 0.0, 0.5877],
        [0.0, 1.2669, -0.2602],
        [0.0, -1.2669, -0.2602],
        [-0.8769, 0.0, 1.2447],
        [0.8769, 0.0, 1.2447],
        [0.0, 2.1662, 0.3621],
        [0.0, -2.1662, 0.3621],
        [0.8836, 1.3042, -0.9044],
        [-0.8836, 1.3042, -0.9044],
        [-0.8836, -1.3042, -0.9044],
        [0.8836, -1.3042, -0.9044],
    ],
    atom_types=["opls_136"] + ["opls_135"] * 2 + ["opls_140"] * 8,
    bonds=[(0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 7), (1, 8), (2, 6), (2, 9), (2, 10)],
    temperature=231.0,
    density=0.58,
    references=(
        f"{_OPLS}; state point: Lemmon, McLinden & Wagner, J. Chem. Eng. Data 54, 3141 (2009)"
    ),
)

_SPCE_OH = 1.0  # O–H bond, Å
_SPCE_HOH = 109.47  # H–O–H angle, degrees
_SPCE_Q_H = 0.4238  # e

#: Water, SPC/E (H. J. C. Berendsen, J. R. Grigera, T. P. Straatsma, J. Phys. Chem. 91, 6269
#: (1987)): O −0.8476 e with Lennard-Jones σ = 3.166 Å, ε = 0.1553 kcal/mol; H +0.4238 e without
#: Lennard-Jones; rigid, O–H 1.0 Å and H–O–H 109.47° held by SHAKE. The harmonic constants
#: (450 kcal/mol/Å², 55 kcal/mol/rad², as in LAMMPS's SPC/E examples) only act in the
#: minimisation. State point: 300 K, 0.997 g/cm³ (SPC/E gives 0.998 g/cm³ at 1 atm); 2 fs steps.
WATER = MoleculeTemplate(
    name="water",
    elements=("O", "H", "H"),
    positions=_SPCE_OH
    * np.array(
        [
            [0.0, 0.0, 0.0],
            [np.sin(np.radians(_SPCE_HOH / 2)), 0.0, np.cos(np.radians(_SPCE_HOH / 2))],
            [-np.sin(np.radians(_SPCE_HOH / 2)), 0.0, np.cos(np.radians(_SPCE_HOH / 2))],
        ]
    ),
    atom_types=("spce_O", "spce_H", "spce_H"),
    charges=np.array([-2.0 * _SPCE_Q_H, _SPCE_Q_H, _SPCE_Q_H]),
    masses=np.array([15.9994, 1.008, 1.008]),
    lj_sigma=np.array([3.166, 0.0, 0.0]),
    lj_epsilon=np.array([0.1553 * KCAL_PER_MOL, 0.0, 0.0]),
    bonds=(Bond(0, 1, 450.0 * KCAL_PER_MOL, _SPCE_OH), Bond(0, 2, 450.0 * KCAL_PER_MOL, _SPCE_OH)),
    angles=(Angle(1, 0, 2, 55.0 * KCAL_PER_MOL, _SPCE_HOH),),
    dihedrals=(),
    temperature=300.0,
    density=0.997,
    references="SPC/E: Berendsen, Grigera & Straatsma, J. Phys. Chem. 91, 6269 (1987)",
    rigid=True,
    time_step_fs=2.0,
)

#: Registered molecule templates, by name.
MOLECULES: dict[str, MoleculeTemplate] = {m.name: m for m in (ETHANE, PROPANE, WATER)}
