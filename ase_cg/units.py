"""Unit strings of trajectory files → ASE units: the one conversion table of ``ase_cg``.

Files store physical quantities with unit strings in the H5MD / UDUNITS notation
(``"nm"``, ``"kJ mol-1 nm-1"``, ``"nm ps-1"``) or in common variants (``"kJ/mol"``,
``"kcal/mol/Angstrom"``, ``"eV/Å"``).  :func:`to_ase_factor` parses such a string and
returns the factor that turns a value in that unit into ASE's units
(Å, eV, amu, ASE time = Å·sqrt(amu/eV) ≈ 10.18 fs), after checking that the string has the
dimension of the quantity asked for.  The numbers come from :mod:`ase.units`.

Grammar: a product of unit symbols separated by spaces, ``*``, ``·`` or ``.``; ``/``
divides by the next symbol or parenthesised group; each symbol may carry an integer
exponent written ``nm-1``, ``nm^-1``, ``nm**-1`` or ``nm⁻¹``.  ``mol`` counts as
dimensionless (``kJ mol-1`` is an energy per particle), so ``g mol-1`` is a mass.

Examples
--------
>>> round(to_ase_factor("kJ mol-1 nm-1", "force"), 8)
0.00103643
>>> to_ase_factor("nm", "length")
10.0
"""

from __future__ import annotations

import re
import unicodedata

from ase import units as _ase

from ase_cg.errors import InputError

#: g/cm³ per amu/Å³: mass density of ``masses.sum() / volume`` in amu and Å³
AMU_PER_A3_TO_G_PER_CM3 = _ase._amu * 1e3 / 1e-24

# Dimension vectors are exponents of (length, mass, time).
_LENGTH = (1, 0, 0)
_MASS = (0, 1, 0)
_TIME = (0, 0, 1)
_ENERGY = (2, 1, -2)
_FORCE = (1, 1, -2)
_VELOCITY = (1, 0, -1)
_PRESSURE = (-1, 1, -2)
_NONE = (0, 0, 0)

#: Dimension of each quantity that :func:`to_ase_factor` accepts.
QUANTITIES: dict[str, tuple[int, int, int]] = {
    "length": _LENGTH,
    "energy": _ENERGY,
    "force": _FORCE,
    "time": _TIME,
    "mass": _MASS,
    "velocity": _VELOCITY,
    "pressure": _PRESSURE,
}

# symbol → (value in ASE units, dimension)
_SYMBOLS: dict[str, tuple[float, tuple[int, int, int]]] = {
    # length
    "Å": (1.0, _LENGTH),
    "A": (1.0, _LENGTH),
    "Ang": (1.0, _LENGTH),
    "angstrom": (1.0, _LENGTH),
    "Angstrom": (1.0, _LENGTH),
    "nm": (_ase.nm, _LENGTH),
    "pm": (0.01, _LENGTH),
    "fm": (1e-5, _LENGTH),
    "m": (_ase.m, _LENGTH),
    "cm": (1e-2 * _ase.m, _LENGTH),
    "bohr": (_ase.Bohr, _LENGTH),
    "Bohr": (_ase.Bohr, _LENGTH),
    # energy
    "eV": (1.0, _ENERGY),
    "meV": (1e-3, _ENERGY),
    "J": (_ase.J, _ENERGY),
    "kJ": (_ase.kJ, _ENERGY),
    "cal": (_ase.kcal / 1000.0, _ENERGY),
    "kcal": (_ase.kcal, _ENERGY),
    "Ha": (_ase.Hartree, _ENERGY),
    "hartree": (_ase.Hartree, _ENERGY),
    "Hartree": (_ase.Hartree, _ENERGY),
    "Ry": (_ase.Rydberg, _ENERGY),
    # force
    "N": (_ase.J / _ase.m, _FORCE),
    "newton": (_ase.J / _ase.m, _FORCE),
    "Newton": (_ase.J / _ase.m, _FORCE),
    # time
    "fs": (_ase.fs, _TIME),
    "ps": (1e3 * _ase.fs, _TIME),
    "ns": (1e6 * _ase.fs, _TIME),
    "s": (_ase.s, _TIME),
    "sec": (_ase.s, _TIME),
    "second": (_ase.s, _TIME),
    # mass
    "u": (1.0, _MASS),
    "amu": (1.0, _MASS),
    "Da": (1.0, _MASS),
    "dalton": (1.0, _MASS),
    "g": (1e-3 * _ase.kg, _MASS),
    "kg": (_ase.kg, _MASS),
    # pressure (ASE: eV/Å³)
    "Pa": (_ase.Pascal, _PRESSURE),
    "kPa": (1e3 * _ase.Pascal, _PRESSURE),
    "MPa": (1e6 * _ase.Pascal, _PRESSURE),
    "GPa": (_ase.GPa, _PRESSURE),
    "bar": (_ase.bar, _PRESSURE),
    "atm": (101325.0 * _ase.Pascal, _PRESSURE),
    # amount of substance: dimensionless count (kJ mol-1 is an energy per particle)
    "mol": (_ase.mol, _NONE),
}

#: Unit strings that ``ase_cg`` writes into H5MD files.  They are the ones MDAnalysis's
#: H5MD reader understands (it knows neither ``Å`` nor ``eV``), so MDAnalysis reads our
#: files with its unit conversion on.  Values are stored in these units; reading
#: converts them back to ASE units with :func:`to_ase_factor`.
ASE_UNITS: dict[str, str] = {
    "length": "Angstrom",
    "energy": "kJ mol-1",
    "force": "kJ mol-1 Angstrom-1",
    "time": "fs",
    "mass": "u",
    "velocity": "Angstrom fs-1",
    "pressure": "bar",
}

_SUPERSCRIPTS = str.maketrans("⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹", "-+0123456789")
_TOKEN = re.compile(r"\s*(\(|\)|/|\*|·|\.(?!\d)|[^\s()/*·]+)")
_ATOM = re.compile(r"^(?P<symbol>[^\d^+\-]+?)\^?(?P<exponent>[+-]?\d+)?$")


def _fail(unit: str, why: str) -> InputError:
    known = ", ".join(sorted(_SYMBOLS))
    return InputError(
        f"cannot read unit string {unit!r}: {why}. Known unit symbols: {known}; combine them "
        "as in 'kJ mol-1 nm-1' or 'kcal/mol/Angstrom'. Fix the file's 'unit' attribute."
    )


def _parse(unit: str) -> tuple[float, tuple[int, int, int]]:
    """Return ``(factor to ASE units, dimension vector)`` of a unit string."""
    text = unicodedata.normalize("NFKC", unit.translate(_SUPERSCRIPTS)).replace("**", "^")
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or not match.group(1):
            if text[position:].strip():
                raise _fail(unit, f"unexpected text {text[position:]!r}")
            break
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        raise _fail(unit, "it is empty")
    tokens.reverse()  # pop() from the end takes the next token

    def term() -> tuple[float, tuple[int, int, int]]:
        if not tokens:
            raise _fail(unit, "it ends with an operator")
        token = tokens.pop()
        if token == "(":
            value, dims = product()
            if not tokens or tokens.pop() != ")":
                raise _fail(unit, "a '(' is not closed")
            return value, dims
        match = _ATOM.match(token)
        if match is None or match.group("symbol") not in _SYMBOLS:
            raise _fail(unit, f"unknown unit symbol {token!r}")
        value, dims = _SYMBOLS[match.group("symbol")]
        exponent = int(match.group("exponent") or 1)
        return value**exponent, tuple(d * exponent for d in dims)

    def product() -> tuple[float, tuple[int, int, int]]:
        value, dims = term()
        while tokens and tokens[-1] != ")":
            operator = tokens[-1]
            sign = 1
            if operator in ("*", "·", "."):
                tokens.pop()
            elif operator == "/":
                tokens.pop()
                sign = -1
            other_value, other_dims = term()
            value *= other_value**sign
            dims = tuple(a + sign * b for a, b in zip(dims, other_dims, strict=True))
        return value, dims

    value, dims = product()
    if tokens:
        raise _fail(unit, "unbalanced ')'")
    return value, dims


def to_ase_factor(unit: str, quantity: str) -> float:
    """Factor that converts a value given in ``unit`` into ASE units.

    Parameters
    ----------
    unit : str
        Unit string, e.g. ``"nm"``, ``"kJ mol-1 nm-1"``, ``"kcal/mol/Angstrom"``,
        ``"nm ps-1"``, ``"g mol-1"``.
    quantity : str
        One of ``"length"`` (→ Å), ``"energy"`` (→ eV), ``"force"`` (→ eV/Å),
        ``"time"`` (→ ASE time units), ``"mass"`` (→ amu), ``"velocity"``
        (→ Å / ASE time unit), ``"pressure"`` (→ eV/Å³).

    Returns
    -------
    float
        ``value_in_ase_units = value_in_unit * factor``.

    Raises
    ------
    InputError
        The string has an unknown symbol or bad syntax, or its dimension is not that
        of ``quantity``; the message names the string.
    """
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {sorted(QUANTITIES)}, got {quantity!r}")
    if not isinstance(unit, str):
        raise _fail(repr(unit), f"expected a string, got {type(unit).__name__}")
    value, dims = _parse(unit)
    if dims != QUANTITIES[quantity]:
        found = next((name for name, d in QUANTITIES.items() if d == dims), None)
        what = f"a {found}" if found else f"of dimension length^{dims[0]} mass^{dims[1]} "
        what += "" if found else f"time^{dims[2]}"
        raise InputError(
            f"unit string {unit!r} is {what}, but a {quantity} was expected: write the "
            f"{quantity} in a {quantity} unit (e.g. {ASE_UNITS[quantity]!r})."
        )
    return float(value)
