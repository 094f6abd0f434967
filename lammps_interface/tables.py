"""LAMMPS tables of the pairwise and bonded energy terms of a :class:`~ase_cg.potentials.CGModel`.

Each term is evaluated exactly as the model evaluates it: through its own ``forward`` on a small
*probe graph* (:class:`~ase_cg.potentials.CGGraph`) holding one instance per grid point (two beads
at distance r, a bond of length r, an angle θ, a dihedral φ), so any term of kind ``pair``,
``bond``, ``angle`` or ``dihedral`` can be tabulated, and all terms of one kind are summed into one
table per bead-type combination. Forces ``−dV/dx`` come from autograd on the grid coordinate.

Table files (``units real``), one section per bead-type combination, keyed ``A_B`` / ``A_B_C`` /
``A_B_C_D``::

    pair.table      N n R rlo rhi            r (Å)     E (kcal/mol)  F = −dE/dr (kcal/mol/Å)
    bond.table      N n                      r (Å)     E             F = −dE/dr
    angle.table     N n                      θ (deg)   E             F = −dE/dθ (kcal/mol/deg)
    dihedral.table  N n RADIANS              φ (rad)   E             F = −dE/dφ (kcal/mol/rad)

A three-body term (:class:`~ase_cg.potentials.ThreeBodySpline`) becomes ``pair_style
sw/angle/table``: a Stillinger–Weber file whose two-body part is off (A = 0) and whose entries
point at the angular functions f(θ), written as angle tables (:func:`write_threebody_files`).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ase_cg._paths import write_text_atomic
from ase_cg.errors import InputError
from ase_cg.potentials.base import CGGraph
from lammps_interface.units import EV_TO_KCAL_PER_MOL

# rad: angle-table grid ends at 0 and π are evaluated this far inside (no bending direction there)
_STRAIGHT = 1e-7

#: Number of beads of one instance of each tabulated kind.
ARITY = {"pair": 2, "bond": 2, "angle": 3, "dihedral": 4}


@dataclass(frozen=True)
class Table:
    """One tabulated function of one bead-type combination, in ASE units.

    Attributes
    ----------
    kind : {"pair", "bond", "angle", "dihedral"}
    types : tuple of int
        Bead-type indices (model order), ``ARITY[kind]`` of them.
    x : (n,) float64
        Grid: Å for pair/bond, rad for angle/dihedral.
    energy : (n,) float64, eV
    force : (n,) float64, eV/Å or eV/rad (``−dV/dx``)
    """

    kind: str
    types: tuple[int, ...]
    x: np.ndarray
    energy: np.ndarray
    force: np.ndarray


def _probe_graph(kind: str, types: tuple[int, ...], x: torch.Tensor) -> CGGraph:
    """A graph with one instance of ``kind`` per grid value ``x`` (n,), beads typed ``types``."""
    n, k = x.shape[0], ARITY[kind]
    dtype, device = x.dtype, x.device
    index = torch.arange(n * k, device=device).reshape(n, k)
    bead_types = torch.tensor(types, dtype=torch.int64, device=device).repeat(n)
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    no_pairs = torch.zeros(0, dtype=torch.int64, device=device)
    empty = {
        "pair_i": no_pairs,
        "pair_j": no_pairs,
        "pair_vectors": torch.zeros(0, 3, dtype=dtype, device=device),
        "pair_excluded": torch.zeros(0, dtype=torch.bool, device=device),
        "bonds": torch.zeros(0, 2, dtype=torch.int64, device=device),
        "bond_vectors": torch.zeros(0, 3, dtype=dtype, device=device),
        "angles": torch.zeros(0, 3, dtype=torch.int64, device=device),
        "angle_vectors": torch.zeros(0, 2, 3, dtype=dtype, device=device),
        "dihedrals": torch.zeros(0, 4, dtype=torch.int64, device=device),
        "dihedral_vectors": torch.zeros(0, 3, 3, dtype=dtype, device=device),
    }
    along = torch.stack([x, zero, zero], dim=1)
    if kind == "pair":  # both directed pairs i->j and j->i
        empty["pair_i"] = torch.stack([index[:, 0], index[:, 1]], 1).reshape(-1)
        empty["pair_j"] = torch.stack([index[:, 1], index[:, 0]], 1).reshape(-1)
        empty["pair_vectors"] = torch.stack([along, -along], 1).reshape(-1, 3)
        empty["pair_excluded"] = torch.zeros(2 * n, dtype=torch.bool, device=device)
    elif kind == "bond":
        empty["bonds"] = index
        empty["bond_vectors"] = along
    elif kind == "angle":  # vectors from the vertex to the outer beads, angle x between them
        first = torch.stack([one, zero, zero], dim=1)
        second = torch.stack([torch.cos(x), torch.sin(x), zero], dim=1)
        empty["angles"] = index
        empty["angle_vectors"] = torch.stack([first, second], dim=1)
    else:  # dihedral: b1 = e_x, b2 = e_z, b3 = -(cos x, sin x, 0) gives dihedral angle x
        b1 = torch.stack([one, zero, zero], dim=1)
        b2 = torch.stack([zero, zero, one], dim=1)
        b3 = torch.stack([-torch.cos(x), -torch.sin(x), zero], dim=1)
        empty["dihedrals"] = index
        empty["dihedral_vectors"] = torch.stack([b1, b2, b3], dim=1)
    return CGGraph(
        bead_types=bead_types,
        system_index=torch.zeros(n * k, dtype=torch.int64, device=device),
        **empty,
    )


def tabulate_terms(terms, kind: str, types: tuple[int, ...], x: np.ndarray) -> Table:
    """Sum of the energies of ``terms`` (all of ``kind``) for one bead-type combination.

    Parameters
    ----------
    terms : list of EnergyTerm
        Terms of kind ``kind`` (float64); each is evaluated through its ``forward`` on a probe
        graph.
    kind : {"pair", "bond", "angle", "dihedral"}
    types : tuple of int
        Bead-type indices, ``ARITY[kind]`` of them (angle: vertex in the middle).
    x : (n,) float
        Grid in Å (pair, bond) or rad (angle, dihedral).

    Returns
    -------
    Table
    """
    if len(types) != ARITY[kind]:
        raise InputError(f"a {kind} table needs {ARITY[kind]} bead types, got {types}")
    x = np.asarray(x, dtype=np.float64).copy()
    evaluate_at = x
    if kind == "angle":  # straight angles have no direction of bending: evaluate just inside
        evaluate_at = np.clip(x, _STRAIGHT, math.pi - _STRAIGHT)
    grid = torch.tensor(evaluate_at, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        graph = _probe_graph(kind, tuple(int(t) for t in types), grid)
        n, k = grid.shape[0], ARITY[kind]
        energy = torch.zeros(n, dtype=torch.float64)
        for term in terms:
            bead_energies = term(graph).to(torch.float64)
            energy = energy + bead_energies.reshape(n, k).sum(dim=1)
        if energy.requires_grad:
            (derivative,) = torch.autograd.grad(energy.sum(), grid)
        else:
            derivative = torch.zeros_like(grid)
    return Table(
        kind=kind,
        types=tuple(int(t) for t in types),
        x=x,
        energy=energy.detach().numpy().copy(),
        force=-derivative.detach().numpy().copy(),
    )


def force_range(table: Table, tolerance: float) -> float:
    """Smallest grid point of ``table`` beyond which ``|F| < tolerance`` everywhere.

    Parameters
    ----------
    table : Table
        A pair table (grid ascending, Å).
    tolerance : float, eV/Å
        Force magnitude taken as zero; must be positive.

    Returns
    -------
    float, Å
        The grid point after the last one where ``|F| >= tolerance`` (the table's first point
        if there is none, its last if the force is not small at the end).
    """
    if not tolerance > 0.0:
        raise InputError(f"force tolerance {tolerance!r} eV/Å: it must be positive")
    above = np.flatnonzero(np.abs(table.force) >= tolerance)
    if above.size == 0:
        return float(table.x[0])
    return float(table.x[min(int(above[-1]) + 1, len(table.x) - 1)])


def pair_force_range(
    terms, n_types: int, tolerance: float, start: float, stop: float, spacing: float = 0.01
) -> float:
    """Smallest r beyond which the summed pair force of every bead-type pair stays below tolerance.

    The pair terms are evaluated as the model evaluates them (:func:`tabulate_terms`) on a grid
    of ``spacing`` from ``start`` to ``stop``; the result is the largest :func:`force_range` of
    the bead-type combinations, so cutting the pair interaction there drops only forces smaller
    than ``tolerance``.

    Parameters
    ----------
    terms : list of EnergyTerm
        Pair terms (kind ``"pair"``), float64.
    n_types : int
        Number of bead types.
    tolerance : float, eV/Å
    start, stop : float, Å
        Range searched (``stop`` is normally the terms' cutoff).
    spacing : float, default 0.01
        Å, grid spacing (the resolution of the answer).

    Returns
    -------
    float, Å
    """
    if not stop > start or not spacing > 0.0:
        raise InputError(
            f"pair force range: need stop > start and spacing > 0, got {start}, {stop}, {spacing}"
        )
    grid = np.linspace(start, stop, int(math.ceil((stop - start) / spacing)) + 1)
    combinations = [(a, b) for a in range(n_types) for b in range(a, n_types)]
    return max(force_range(tabulate_terms(terms, "pair", c, grid), tolerance) for c in combinations)


def table_key(table: Table, bead_type_names: list[str]) -> str:
    """Section keyword of ``table`` in its file, e.g. ``CH3_CH3``."""
    return "_".join(bead_type_names[t] for t in table.types)


def _header(table: Table) -> str:
    n = len(table.x)
    if table.kind == "pair":
        return f"N {n} R {float(table.x[0])!r} {float(table.x[-1])!r}"
    if table.kind == "dihedral":
        return f"N {n} RADIANS"
    if table.kind == "bond":  # EQ: the bond length SHAKE/RATTLE hold a constrained bond at
        return f"N {n} EQ {equilibrium(table)!r}"
    return f"N {n}"


def equilibrium(table: Table) -> float:
    """Position of the energy minimum of ``table`` (parabola through the lowest grid point and
    its neighbours), in the grid's units."""
    k = int(np.clip(np.argmin(table.energy), 1, len(table.x) - 2))
    (x0, x1), (e0, e1, e2) = table.x[k - 1 : k + 1], table.energy[k - 1 : k + 2]
    curvature = e0 - 2.0 * e1 + e2
    if curvature <= 0:
        return float(x1)
    return float(x1 + 0.5 * (x1 - x0) * (e0 - e2) / curvature)


def _columns(table: Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid, energy and force in the units LAMMPS ``units real`` tables expect."""
    energy = table.energy * EV_TO_KCAL_PER_MOL
    force = table.force * EV_TO_KCAL_PER_MOL
    if table.kind == "angle":  # LAMMPS reads θ in degrees and −dE/dθ per degree
        return np.degrees(table.x), energy, force * (math.pi / 180.0)
    return table.x, energy, force


def write_table_file(path: str | os.PathLike, tables: list[Table], bead_type_names: list[str]):
    """Write ``tables`` (all of one kind) as one LAMMPS table file, atomically.

    Returns
    -------
    dict
        Section keyword of each table, keyed by its bead-type tuple.
    """
    path = Path(path)
    lines = [f"# ase_cg {tables[0].kind} tables, LAMMPS units real (kcal/mol, Angstrom)", ""]
    keys = {}
    for table in tables:
        key = table_key(table, bead_type_names)
        keys[table.types] = key
        x, energy, force = _columns(table)
        bad = ~(np.isfinite(energy) & np.isfinite(force))
        if bad.any():
            raise InputError(
                f"{path}: table {key} has a non-finite energy or force at x = "
                f"{x[np.argmax(bad)]!r} ({int(bad.sum())} of {len(x)} points); the model is "
                "not finite there (check its parameters, or raise the table's inner end)"
            )
        lines += [key, _header(table), ""]
        lines += [
            f"{i + 1} {xi!r} {ei!r} {fi!r}"
            for i, (xi, ei, fi) in enumerate(
                zip(x.tolist(), energy.tolist(), force.tolist(), strict=True)
            )
        ]
        lines.append("")
    write_text_atomic(path, "\n".join(lines))
    return keys


def write_threebody_files(
    term, sw_path: str | os.PathLike, table_path: str | os.PathLike,
    bead_type_names: list[str], n_points: int,
) -> None:  # fmt: skip
    """Write a :class:`~ase_cg.potentials.ThreeBodySpline` for ``pair_style sw/angle/table``.

    The Stillinger–Weber file has one entry per ordered type triple (centre first), with
    σ = 1 Å, a = the term's cutoff, γ = its screening length (so ``exp(γσ/(r − aσ))`` is the
    term's g(r)) and A = 0 (no two-body part; ε, λ, cos θ0, B, p, q are unused); each entry
    names the angle-table section of its f(θ) (θ in degrees, f in kcal/mol, −df/dθ per degree).

    Parameters
    ----------
    term : ThreeBodySpline
    sw_path, table_path : path
        The ``.sw`` file and the angle-table file it refers to (by file name: keep them in one
        folder, LAMMPS's working directory).
    bead_type_names : list of str
    n_points : int
        Points of each angle table (and LAMMPS's interpolation of it).
    """
    theta = np.linspace(0.0, math.pi, int(n_points))
    tables = []
    for combination in term.combinations:
        energy, force = term.evaluate(np.clip(theta, _STRAIGHT, math.pi - _STRAIGHT), combination)
        tables.append(Table("angle", tuple(combination), theta, energy, force))
    keys = write_table_file(table_path, tables, bead_type_names)
    names = list(bead_type_names)
    lines = [
        "# ase_cg three-body term for pair_style sw/angle/table (two-body part off: A = 0)",
        "# centre neighbour neighbour  epsilon sigma a lambda gamma costheta0 A B p q tol  "
        "table keyword style N",
    ]
    for centre, j, k in itertools.product(range(len(names)), repeat=3):
        combination = tuple(term.combinations[int(term.combination_index(
            torch.tensor([[j, centre, k]]))[0])])  # fmt: skip
        lines.append(
            f"{names[centre]} {names[j]} {names[k]}  1.0 1.0 {term.range!r} 1.0 "
            f"{term.screening!r} 0.0 0.0 0.0 0.0 0.0 0.0  {Path(table_path).name} "
            f"{keys[combination]} spline {int(n_points)}"
        )
    write_text_atomic(Path(sw_path), "\n".join(lines) + "\n")
