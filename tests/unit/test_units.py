"""Unit strings → ASE units (ase_cg.units)."""

from __future__ import annotations

import pytest
from ase import units

from ase_cg.errors import InputError
from ase_cg.units import ASE_UNITS, QUANTITIES, to_ase_factor

KJ_MOL = units.kJ / units.mol
KCAL_MOL = units.kcal / units.mol


@pytest.mark.parametrize(
    ("unit", "quantity", "expected"),
    [
        ("nm", "length", 10.0),
        ("Å", "length", 1.0),
        ("\u212b", "length", 1.0),  # ANGSTROM SIGN, normalised to Å
        ("angstrom", "length", 1.0),
        ("A", "length", 1.0),
        ("pm", "length", 0.01),
        ("kJ mol-1", "energy", KJ_MOL),
        ("kJ/mol", "energy", KJ_MOL),
        ("kcal mol-1", "energy", KCAL_MOL),
        ("eV", "energy", 1.0),
        ("kJ mol-1 nm-1", "force", KJ_MOL / 10.0),
        ("kJ/(mol*nm)", "force", KJ_MOL / 10.0),
        ("kJ mol^-1 nm**-1", "force", KJ_MOL / 10.0),
        ("kJ mol⁻¹ nm⁻¹", "force", KJ_MOL / 10.0),
        ("kcal/mol/Angstrom", "force", KCAL_MOL),
        ("eV/Å", "force", 1.0),
        ("ps", "time", 1000 * units.fs),
        ("fs", "time", units.fs),
        ("ns", "time", 1e6 * units.fs),
        ("nm ps-1", "velocity", 10.0 / (1000 * units.fs)),
        ("Å fs-1", "velocity", 1.0 / units.fs),
        ("u", "mass", 1.0),
        ("amu", "mass", 1.0),
        ("Da", "mass", 1.0),
        ("g mol-1", "mass", 1.0),
    ],
)
def test_factors(unit, quantity, expected):
    assert to_ase_factor(unit, quantity) == pytest.approx(expected, rel=1e-8)


def test_kj_mol_is_0_0103643_ev():
    # 1 kJ/mol = 0.0103642688 eV (CODATA): the table is not off by a power of ten.
    assert to_ase_factor("kJ mol-1", "energy") == pytest.approx(0.0103642688, rel=1e-6)
    assert to_ase_factor("kcal mol-1", "energy") == pytest.approx(0.0433641043, rel=1e-6)


@pytest.mark.parametrize("quantity", sorted(QUANTITIES))
def test_written_units_round_trip(quantity):
    # the strings we write are parsed back with the dimension they claim
    assert to_ase_factor(ASE_UNITS[quantity], quantity) > 0


def test_written_units_are_known_to_mdanalysis():
    from MDAnalysis.coordinates.H5MD import H5MDReader

    table = H5MDReader._unit_translation
    for quantity in ("length", "force", "velocity", "time"):
        assert ASE_UNITS[quantity] in table[quantity]


@pytest.mark.parametrize("unit", ["parsec", "kJ mol-1 furlong-1", "", "kJ mol-1 (nm", "nm)"])
def test_unknown_or_malformed_string_names_it(unit):
    with pytest.raises(InputError) as error:
        to_ase_factor(unit, "force")
    assert repr(unit) in str(error.value)


@pytest.mark.parametrize(
    ("unit", "quantity"),
    [("nm", "force"), ("kJ mol-1", "force"), ("ps", "length"), ("nm ps-1", "time")],
)
def test_wrong_dimension_raises(unit, quantity):
    with pytest.raises(InputError, match=f"{quantity} was expected"):
        to_ase_factor(unit, quantity)


def test_unknown_quantity_is_a_programming_error():
    with pytest.raises(ValueError, match="quantity"):
        to_ase_factor("nm", "temperature")
