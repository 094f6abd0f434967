"""OPLS-AA parameters for saturated hydrocarbons, and the units they are written in.

Source: W. L. Jorgensen, D. S. Maxwell, J. Tirado-Rives, "Development and Testing of the OPLS
All-Atom Force Field on Conformational Energetics and Properties of Organic Liquids",
J. Am. Chem. Soc. 118, 11225 (1996). The values agree with GROMACS's ``oplsaa.ff``
(``ffnonbonded.itp``, ``ffbonded.itp``) after converting kJ → kcal and undoing GROMACS's ½k
convention for bonds and angles.

Functional forms (the LAMMPS ``units real`` conventions, no factor ½ in bonds and angles):

.. math::

    E_\\mathrm{bond} = K_r (r - r_0)^2, \\qquad
    E_\\mathrm{angle} = K_\\theta (\\theta - \\theta_0)^2,

    E_\\mathrm{dihedral} = \\tfrac12 V_1 (1 + \\cos\\phi) + \\tfrac12 V_2 (1 - \\cos 2\\phi)
        + \\tfrac12 V_3 (1 + \\cos 3\\phi) + \\tfrac12 V_4 (1 - \\cos 4\\phi),

    E_\\mathrm{LJ} = 4 \\epsilon_{ij} [(\\sigma_{ij}/r)^{12} - (\\sigma_{ij}/r)^6], \\quad
    \\sigma_{ij} = \\sqrt{\\sigma_i \\sigma_j}, \\ \\epsilon_{ij} = \\sqrt{\\epsilon_i \\epsilon_j},

plus Coulomb between partial charges; 1–2 and 1–3 pairs excluded, 1–4 pairs scaled by ½.

The numbers below are written as in the paper (kcal/mol, Å, degrees) and multiplied by
:data:`KCAL_PER_MOL` once, here, so every energy held in the code is in eV (ASE units).
"""

from __future__ import annotations

from dataclasses import dataclass

from ase_cg.units import to_ase_factor

#: 1 kcal/mol in eV.
KCAL_PER_MOL = to_ase_factor("kcal mol-1", "energy")


@dataclass(frozen=True)
class AtomType:
    """One OPLS-AA atom type.

    Attributes
    ----------
    name : str
        OPLS-AA type name, e.g. ``"opls_135"``.
    bond_class : str
        Bonded class used to look up bond, angle and dihedral parameters (``"CT"``, ``"HC"``).
    element : str
        Chemical symbol.
    mass : float, amu
    charge : float, e
    sigma : float, Å
        Lennard-Jones σ.
    epsilon : float, eV
        Lennard-Jones ε.
    description : str
        What the type stands for in the paper.
    """

    name: str
    bond_class: str
    element: str
    mass: float
    charge: float
    sigma: float
    epsilon: float
    description: str


#: OPLS-AA atom types for alkanes (Jorgensen et al. 1996, Table 1), by type name.
ATOM_TYPES: dict[str, AtomType] = {
    t.name: t
    for t in (
        AtomType("opls_135", "CT", "C", 12.011, -0.18, 3.50, 0.066 * KCAL_PER_MOL, "alkane CH3"),
        AtomType("opls_136", "CT", "C", 12.011, -0.12, 3.50, 0.066 * KCAL_PER_MOL, "alkane CH2"),
        AtomType("opls_140", "HC", "H", 1.008, 0.06, 2.50, 0.030 * KCAL_PER_MOL, "alkane H"),
    )
}

#: Harmonic bonds: (class, class) sorted → (K_r in eV/Å², r_0 in Å).
BOND_PARAMETERS: dict[tuple[str, str], tuple[float, float]] = {
    ("CT", "CT"): (268.0 * KCAL_PER_MOL, 1.529),
    ("CT", "HC"): (340.0 * KCAL_PER_MOL, 1.090),
}

#: Harmonic angles: (end, centre, end), ends sorted → (K_θ in eV/rad², θ_0 in degrees).
ANGLE_PARAMETERS: dict[tuple[str, str, str], tuple[float, float]] = {
    ("CT", "CT", "CT"): (58.35 * KCAL_PER_MOL, 112.7),
    ("CT", "CT", "HC"): (37.5 * KCAL_PER_MOL, 110.7),
    ("HC", "CT", "HC"): (33.0 * KCAL_PER_MOL, 107.8),
}

#: OPLS dihedrals: (a, b, c, d) in the orientation that sorts first → (V1, V2, V3, V4) in eV.
DIHEDRAL_PARAMETERS: dict[tuple[str, str, str, str], tuple[float, float, float, float]] = {
    ("CT", "CT", "CT", "CT"): tuple(v * KCAL_PER_MOL for v in (1.740, -0.157, 0.279, 0.0)),
    ("CT", "CT", "CT", "HC"): tuple(v * KCAL_PER_MOL for v in (0.0, 0.0, 0.300, 0.0)),
    ("HC", "CT", "CT", "HC"): tuple(v * KCAL_PER_MOL for v in (0.0, 0.0, 0.300, 0.0)),
}


def bond_key(a: str, b: str) -> tuple[str, str]:
    """Canonical key of a bond between bonded classes ``a`` and ``b``."""
    return (a, b) if a <= b else (b, a)


def angle_key(a: str, b: str, c: str) -> tuple[str, str, str]:
    """Canonical key of an angle ``a``–``b``–``c`` (``b`` is the centre)."""
    return (a, b, c) if a <= c else (c, b, a)


def dihedral_key(a: str, b: str, c: str, d: str) -> tuple[str, str, str, str]:
    """Canonical key of a dihedral ``a``–``b``–``c``–``d`` (read forwards or backwards)."""
    return min((a, b, c, d), (d, c, b, a))
