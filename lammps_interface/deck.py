"""Write ase_cg models as LAMMPS runs: data file, tables, the plugin's TorchScript, input deck.

The TorchScript file and its contract are :mod:`lammps_interface.torchscript`'s.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import numpy as np
import torch
from ase.calculators.lammps import Prism

from ase_cg import _keys as K
from ase_cg._paths import write_text_atomic
from ase_cg.errors import InputError
from ase_cg.md import ENSEMBLES
from ase_cg.model import load_model, reference_state
from ase_cg.start import build_cg_box, read_start
from lammps_interface.plugin import build_plugin
from lammps_interface.run import DATA_FILE, DUMP_FILE
from lammps_interface.tables import (
    ARITY,
    pair_force_range,
    tabulate_terms,
    write_table_file,
    write_threebody_files,
)
from lammps_interface.torchscript import FILTER_SPACING, write_neural_term
from lammps_interface.units import ATM_TO_BAR, EV_TO_KCAL_PER_MOL, FS_TO_ASE_TIME

#: eV/Å, default force below which ``export(pair_cutoff="auto")`` takes the pair force as zero
PAIR_FORCE_TOLERANCE = 2.0e-3

# --- the whole model: data file, tables, TorchScript, input deck ------------------------------

#: File names inside an export directory.
SYSTEM_FILE = "system.in"
DECK_FILE = "in.cg"
NEURAL_FILE = "cgtorch.pt"
#: devices of ``pair_style cgtorch FILE device DEVICE``
NEURAL_DEVICES = ("auto", "cpu", "cuda")
TABLE_FILES = {kind: f"{kind}.table" for kind in ("pair", "bond", "angle", "dihedral")}
THREEBODY_FILE = "threebody.sw"
THREEBODY_TABLE_FILE = "threebody.table"


def _canonical(types: tuple[int, ...]) -> tuple[int, ...]:
    return min(types, types[::-1])


def _bonded_types(topology, type_index: np.ndarray) -> dict[str, list[tuple[int, ...]]]:
    """Canonical bead-type tuples present among the bonds, angles and dihedrals."""
    found = {}
    for kind, indices in (
        ("bond", topology.bonds),
        ("angle", topology.angles),
        ("dihedral", topology.dihedrals),
    ):
        tuples = {_canonical(tuple(int(t) for t in type_index[row])) for row in indices}
        found[kind] = sorted(tuples)
    return found


def _bond_range(terms, types: tuple[int, int]) -> tuple[float, float]:
    """Bond-table range (Å) covering what every bond term of this type pair treats as sampled."""
    low, high = [], []
    for term in terms:
        if hasattr(term, "default_range"):  # spline terms: half the sampled minimum to 1.5 x max
            lo, hi = term.default_range(types)
            low.append(lo)
            high.append(hi)
        elif hasattr(term, "r0"):  # harmonic bonds
            r0 = float(term.r0[types[0], types[1]])
            if r0 > 0:
                low.append(0.5 * r0)
                high.append(1.5 * r0)
    if not low:
        return 0.5, 4.0
    return max(min(low), 1e-3), max(high)


def _masses(model, atoms, type_index: np.ndarray) -> list[float]:
    """Mass (amu) of each model bead type, from the atoms or else from the model's mapping."""
    names = model.bead_type_names
    masses = [None] * len(names)
    for index, mass in zip(type_index, atoms.get_masses(), strict=True):
        masses[index] = float(mass)
    if model.mapping is not None:
        for name, mass in model.mapping.bead_masses.items():
            if name in names and masses[names.index(name)] is None:
                masses[names.index(name)] = float(mass)
    missing = [names[k] for k, mass in enumerate(masses) if mass is None]
    if missing:
        raise InputError(
            f"no mass for bead types {missing}: they are absent from the atoms and the model has "
            "no mapping that gives their mass"
        )
    return masses


def write_data_file(
    path: str | os.PathLike, model, atoms, *, velocities: bool = False
) -> dict[str, list[tuple[int, ...]]]:
    """LAMMPS data file (``atom_style molecular``, ``units real``) of CG ``atoms``.

    With ``velocities`` the atoms' velocities go into a ``Velocities`` section (Å/fs).

    LAMMPS atom type ``k + 1`` is the model's bead type ``k``; bond/angle/dihedral types number
    the canonical bead-type tuples present, in sorted order. Positions are wrapped into the cell
    and rotated into LAMMPS's frame (the identity for orthorhombic cells).

    Returns
    -------
    dict
        ``kind`` → list of canonical bead-type tuples; LAMMPS type ``n + 1`` is entry ``n``.
    """
    if not all(atoms.pbc):
        raise InputError("the LAMMPS export needs periodic atoms (atoms.pbc all True)")
    topology = model.topology(atoms)
    type_index = topology.bead_type_index
    masses = _masses(model, atoms, type_index)
    types = _bonded_types(topology, type_index)
    prism = Prism(np.asarray(atoms.cell))
    xhi, yhi, zhi, xy, xz, yz = (float(v) for v in prism.get_lammps_prism())
    positions = prism.vector_to_lammps(atoms.positions, wrap=True)
    mol_ids = np.asarray(atoms.arrays.get(K.MOL_ID, np.arange(len(atoms))))
    mol_ids = np.unique(mol_ids, return_inverse=True)[1] + 1
    names = model.bead_type_names
    counts = {"bond": topology.bonds, "angle": topology.angles, "dihedral": topology.dihedrals}
    lines = [
        f"ase_cg CG configuration, {len(atoms)} beads (units real, atom_style molecular)",
        "",
        f"{len(atoms)} atoms",
    ]
    lines += [f"{len(counts[kind])} {kind}s" for kind in counts]
    lines += [f"{len(names)} atom types"]
    lines += [f"{len(types[kind])} {kind} types" for kind in counts]
    lines += [
        "",
        f"0.0 {xhi!r} xlo xhi",
        f"0.0 {yhi!r} ylo yhi",
        f"0.0 {zhi!r} zlo zhi",
    ]
    if prism.is_skewed():
        lines.append(f"{xy!r} {xz!r} {yz!r} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{k + 1} {mass!r}  # {names[k]}" for k, mass in enumerate(masses)]
    lines += ["", "Atoms # molecular", ""]
    lines += [
        f"{n + 1} {int(m)} {int(t) + 1} {float(x)!r} {float(y)!r} {float(z)!r}"
        for n, (m, t, (x, y, z)) in enumerate(zip(mol_ids, type_index, positions, strict=True))
    ]
    for kind, indices in counts.items():
        if len(indices) == 0:
            continue
        number = {combination: n + 1 for n, combination in enumerate(types[kind])}
        lines += ["", f"{kind.capitalize()}s", ""]
        for n, row in enumerate(indices):
            key = _canonical(tuple(int(t) for t in type_index[row]))
            beads = " ".join(str(int(b) + 1) for b in row)
            lines.append(f"{n + 1} {number[key]} {beads}")
    if velocities:
        v = prism.vector_to_lammps(atoms.get_velocities() * FS_TO_ASE_TIME)
        lines += ["", "Velocities", ""]
        lines += [
            f"{n + 1} {float(a)!r} {float(b)!r} {float(c)!r}" for n, (a, b, c) in enumerate(v)
        ]
    write_text_atomic(Path(path), "\n".join(lines) + "\n")
    return types


def export(
    model,
    directory: str | os.PathLike,
    *,
    atoms=None,
    table_points: int = 2000,
    table_inner: float = 0.5,
    neural_dtype: torch.dtype | None = None,
    neural_device: str = "auto",
    neural_filter_spacing: float | None = FILTER_SPACING,
    skin: float = 2.0,
    pair_cutoff: float | str | None = None,
    pair_force_tolerance: float = PAIR_FORCE_TOLERANCE,
    pair_table_style: str = "spline",
    neighbor_every: int = 1,
    neighbor_delay: int = 0,
    temperature: float | None = None,
    timestep: float = 2.0,
    steps: int = 10000,
    dump_every: int = 100,
    constrain_bonds: bool = False,
    ensemble: str = "nvt",
    pressure: float = 1.01325,
    velocities: bool = False,
    first_step: int = 0,
) -> dict[str, Path]:
    """Write a :class:`~ase_cg.potentials.CGModel` as a LAMMPS run in ``directory``.

    Every pair and bonded term becomes a LAMMPS table (``pair_style table``, ``bond_style
    table`` …, all terms of one kind summed); a many-body term (SchNet) goes to the ``cgtorch``
    plugin as TorchScript, overlaid on the pair table with ``pair_style hybrid/overlay``. Pair
    tables exclude beads at most ``model.exclusion_bonds`` bonds apart, as the model does; the
    many-body term sees every pair::

        directory/
        ├── in.cg            # run deck: include system.in, NVT/NVE/NPT, dump, run
        ├── system.in        # units real, read_data, styles, coefficients, exclusions
        ├── data.cg          # beads, masses, molecules, bonds, angles, dihedrals (if atoms given)
        ├── pair.table …     # one per kind present, sections keyed by bead-type names
        ├── threebody.sw     # three-body term (+ threebody.table, its f(θ))
        └── cgtorch.pt       # many-body term (neural models only)

    Parameters
    ----------
    model : CGModel
    directory : path
        Created if missing; files in it are replaced.
    atoms : ase.Atoms, optional
        Periodic CG start configuration (``bead-type`` and ``mol-id`` arrays, masses). Without
        it no data file is written and the tables cover the bonded type combinations of the
        model's mapping templates; give ``data.cg`` yourself then.
    table_points : int, default 2000
        Points of every table (file and LAMMPS's interpolation).
    table_inner : float, default 0.5
        Å, inner end of the pair table (LAMMPS stops if two beads come closer, bonded ones
        included, so keep it below the shortest bond).
    neural_dtype : torch.float32 or torch.float64, optional
        Precision of the exported many-body term; default the term's own.
    neural_device : {"auto", "cpu", "cuda"}, default "auto"
        Where the plugin runs the many-body term: ``auto`` takes a GPU when torch sees one
        (ranks on a node share its GPUs round-robin), else the CPU.
    neural_filter_spacing : float or None, default 0.002
        Å, grid spacing of the tables the plugin reads each interaction's filter from
        (:class:`~ase_cg.potentials.neural.FilterTable`: errors O(h²), 5e-6 of the largest
        force at 0.002 Å for the shipped ethane model); None or 0 evaluates the filter networks.
        SchNet terms only: a PaiNN term is exported with exact filters.
    skin : float, default 2.0
        Å, neighbour skin (``neighbor`` command); the ghost shell is the cutoff + skin.
    pair_cutoff : float or "auto", optional
        Å, where the pair table ends (pairs farther apart feel no pair force). Default: the
        pair terms' own cutoff. ``"auto"``: the smallest distance beyond which the summed pair
        force of every bead-type pair stays below ``pair_force_tolerance``
        (:func:`lammps_interface.tables.pair_force_range`). A shorter range is faster (fewer
        neighbours) but drops the force tail, which moves the pressure.
    pair_force_tolerance : float, default PAIR_FORCE_TOLERANCE
        eV/Å, force taken as zero by ``pair_cutoff="auto"``.
    pair_table_style : {"spline", "linear"}, default "spline"
        How LAMMPS interpolates the pair table between its ``table_points`` points (``linear``
        is cheaper per pair; with 2000 points both follow the model closely).
    neighbor_every, neighbor_delay : int, default 1, 0
        ``neigh_modify every N delay D check yes``: look every N steps (and not before D steps
        after the last build) whether an atom moved half the skin; LAMMPS counts the builds
        that came too late as "dangerous builds" in its log.
    temperature : float, optional
        K, default of the deck's ``temperature`` variable (override with ``-var temperature``);
        default the model's training temperature (:func:`ase_cg.model.reference_state`).
    timestep : float, default 2.0
        fs, default of the deck's ``timestep`` variable.
    steps : int, default 10000
        Default of the deck's ``steps`` variable.
    dump_every : int, default 100
        Steps between trajectory frames (``dump.cg.lammpstrj``: id, mol, type, unwrapped
        positions, velocities, forces).
    constrain_bonds : bool, default False
        Hold every bond at the minimum of its bond table (``fix shake``; ``fix rattle``, which
        also constrains the velocities, for NVE), which allows a time step several times larger
        for stiff CG bonds.
    ensemble : {"nvt", "nve", "npt"}, default "nvt"
        ``fix nvt`` (Nosé–Hoover chain, damping 100 time steps), ``fix nve``, or ``fix npt``
        (isotropic, thermostat as NVT, barostat damping 1000 time steps); velocities start at
        ``temperature`` in every case.
    pressure : float, default 1.01325
        bar, default of the NPT deck's ``pressure`` variable (written in atm, LAMMPS's real
        unit).
    velocities : bool, default False
        Start from the velocities of ``atoms`` (written to the data file) instead of drawing
        them at ``temperature``: to continue a run.
    first_step : int, default 0
        Step number of the start configuration (``reset_timestep``): to continue a run, whose
        dump then carries on its step numbers.

    Returns
    -------
    dict
        ``"deck"``, ``"system"``, ``"data"`` (if written), ``"<kind>_table"`` for each table
        file and ``"neural"`` (if written) → path.

    Raises
    ------
    InputError
        If the model has a term the export cannot represent (more than one many-body term, a
        term of an unknown kind), or the atoms do not fit the model.
    """
    if int(table_points) < 10:
        raise InputError(f"table_points={table_points}: use at least 10 (default 2000)")
    for name, value in (("table_inner", table_inner), ("timestep", timestep)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{name}={value!r}: it must be a positive number (Å, fs)")
    if velocities and (atoms is None or not atoms.has("momenta")):
        raise InputError("velocities=True needs atoms that carry velocities")
    if ensemble not in ENSEMBLES:
        raise InputError(f"ensemble={ensemble!r}: the LAMMPS deck runs one of {list(ENSEMBLES)}")
    if pair_table_style not in ("spline", "linear"):
        raise InputError(
            f"pair_table_style={pair_table_style!r}: LAMMPS tables here are 'spline' or 'linear'"
        )
    if int(neighbor_every) < 1 or int(neighbor_delay) < 0:
        raise InputError(
            f"neighbor_every={neighbor_every}, neighbor_delay={neighbor_delay}: need every >= 1 "
            "and delay >= 0 (steps)"
        )
    if neural_device not in NEURAL_DEVICES:
        raise InputError(
            f"neural_device={neural_device!r}: the cgtorch plugin runs on one of {NEURAL_DEVICES}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    by_kind: dict[str, list] = {
        "pair": [], "bond": [], "angle": [], "dihedral": [], "manybody": [], "threebody": []
    }  # fmt: skip
    for term in model.terms:
        if term.kind not in by_kind:
            raise InputError(
                f"energy term {type(term).__name__} has kind {term.kind!r}; the LAMMPS export "
                f"handles {sorted(by_kind)}"
            )
        by_kind[term.kind].append(term)
    if len(by_kind["manybody"]) > 1:
        raise InputError(
            f"the model has {len(by_kind['manybody'])} many-body terms; the LAMMPS export "
            "supports one (one cgtorch plugin instance)"
        )
    if len(by_kind["threebody"]) > 1:
        raise InputError(
            f"the model has {len(by_kind['threebody'])} three-body terms; the LAMMPS export "
            "writes one (one sw/angle/table style)"
        )
    if temperature is None:
        temperature = reference_state(model).get("temperature_K")
        if temperature is None:
            raise InputError("the model records no training temperature: give temperature (K)")
    outputs: dict[str, Path] = {}
    n_types = len(model.bead_type_names)
    names = model.bead_type_names

    if atoms is not None:
        outputs["data"] = directory / DATA_FILE
        bonded = write_data_file(outputs["data"], model, atoms, velocities=velocities)
    else:
        bonded = _template_bonded_types(model)

    float64 = copy.deepcopy(model).to(torch.float64)
    terms = {kind: [t for t in float64.terms if t.kind == kind] for kind in ARITY}
    n = int(table_points)
    style_lines: list[str] = []

    # pair tables and pair styles
    pair_cutoff = _pair_cutoff(
        pair_cutoff, terms["pair"], n_types, float(table_inner), float(pair_force_tolerance)
    )
    manybody = by_kind["manybody"][0] if by_kind["manybody"] else None
    threebody = next((t for t in float64.terms if t.kind == "threebody"), None)
    if threebody is not None and any(bonded[kind] for kind in ("bond", "angle", "dihedral")):
        # sw/angle/table sees every neighbour; the model's term skips bonded (excluded) pairs
        raise InputError(
            "the LAMMPS export of a three-body term needs a system without bonds (one-bead "
            "molecules such as CG water): LAMMPS's sw/angle/table cannot skip bonded neighbours"
        )
    combinations = [(a, b) for a in range(n_types) for b in range(a, n_types)]
    if terms["pair"]:
        grid = np.linspace(float(table_inner), pair_cutoff, n)
        tables = [tabulate_terms(terms["pair"], "pair", c, grid) for c in combinations]
        outputs["pair_table"] = directory / TABLE_FILES["pair"]
        keys = write_table_file(outputs["pair_table"], tables, names)
    exclusion = [0.0 if k <= model.exclusion_bonds else 1.0 for k in (1, 2, 3)]
    excluded = " ".join(f"{f:.1f}" for f in exclusion)
    if manybody is not None:
        outputs["neural"] = directory / NEURAL_FILE
        write_neural_term(
            manybody, outputs["neural"], list(names), dtype=neural_dtype,
            filter_spacing=neural_filter_spacing,
        )  # fmt: skip
        build_plugin()  # cached; `lmp -in in.cg` finds it through the entry point
    # pair sub-styles: (declaration, pair_coeff arguments after the types, special factors)
    substyles: list[tuple[str, list[tuple[str, str]], str]] = []
    if terms["pair"]:
        coefficients = [
            (f"{a + 1} {b + 1}", f"{TABLE_FILES['pair']} {keys[(a, b)]} {pair_cutoff!r}")
            for a, b in combinations
        ]
        substyles.append((f"table {pair_table_style} {n}", coefficients, excluded))
    if manybody is not None:
        substyles.append(
            (f"cgtorch {NEURAL_FILE} device {neural_device}", [("* *", " ".join(names))],
             "1.0 1.0 1.0")
        )  # fmt: skip
    if threebody is not None:
        outputs["threebody"] = directory / THREEBODY_FILE
        write_threebody_files(
            threebody, outputs["threebody"], directory / THREEBODY_TABLE_FILE, list(names), n
        )
        substyles.append(("sw/angle/table", [("* *", f"{THREEBODY_FILE} {' '.join(names)}")],
                          "1.0 1.0 1.0"))  # fmt: skip
    if len(substyles) == 1:
        declaration, coefficients, special = substyles[0]
        style_lines += [f"special_bonds lj/coul {special}", f"pair_style {declaration}"]
        style_lines += [f"pair_coeff {types} {rest}" for types, rest in coefficients]
    elif substyles:
        # A global special factor of exactly 0 drops the pair from the neighbour list (the
        # many-body terms must see it) and LAMMPS refuses per-style overrides of 0 or 1 globals,
        # so the global factor is 0.5 where the table needs 0 and each sub-style sets its own.
        glob = " ".join("0.5" if f == 0.0 else "1.0" for f in exclusion)
        declarations = " ".join(declaration for declaration, _, _ in substyles)
        style_lines += [
            f"special_bonds lj/coul {glob}",
            f"pair_style hybrid/overlay {declarations}",
        ]
        for declaration, coefficients, _ in substyles:
            name = declaration.split()[0]
            style_lines += [f"pair_coeff {types} {name} {rest}" for types, rest in coefficients]
        style_lines += [
            f"pair_modify pair {declaration.split()[0]} special lj {special}"
            for declaration, _, special in substyles
        ]
    else:
        style_lines += ["pair_style zero 1.0", "pair_coeff * *"]

    # bonded tables
    for kind in ("bond", "angle", "dihedral"):
        present = bonded[kind]
        if not present:
            continue
        if not terms[kind]:  # topology without energy: keep it for the exclusions
            style_lines += [f"{kind}_style zero", f"{kind}_coeff *"]
            continue
        tables = []
        for combination in present:
            if kind == "bond":
                lo, hi = _bond_range(terms[kind], combination)
                grid = np.linspace(lo, hi, n)
            elif kind == "angle":
                grid = np.linspace(0.0, math.pi, n)
            else:
                grid = -math.pi + 2.0 * math.pi * np.arange(n) / n
            tables.append(tabulate_terms(terms[kind], kind, combination, grid))
        outputs[f"{kind}_table"] = directory / TABLE_FILES[kind]
        keys = write_table_file(outputs[f"{kind}_table"], tables, names)
        style_lines.append(f"{kind}_style table spline {n}")
        style_lines += [
            f"{kind}_coeff {number + 1} {TABLE_FILES[kind]} {keys[combination]}"
            for number, combination in enumerate(present)
        ]

    system = [
        "# ase_cg CG model for LAMMPS (written by lammps_interface.export)",
        f"# bead types (LAMMPS atom types 1..{n_types}): {' '.join(names)}",
        "# energies kcal/mol, lengths Angstrom (model: eV, Angstrom; 1 eV = "
        f"{EV_TO_KCAL_PER_MOL!r} kcal/mol)",
        f"# pair table cutoff {pair_cutoff!r} Angstrom",
        "units real",
        "atom_style molecular",
        "boundary p p p",
        "atom_modify map array",
        f"read_data {DATA_FILE}",
        *style_lines,
        f"neighbor {float(skin)!r} bin",
        f"neigh_modify delay {int(neighbor_delay)} every {int(neighbor_every)} check yes",
        "",
    ]
    outputs["system"] = directory / SYSTEM_FILE
    write_text_atomic(outputs["system"], "\n".join(system))
    constraint = []
    if constrain_bonds and bonded["bond"]:
        types = " ".join(str(k + 1) for k in range(len(bonded["bond"])))
        # NVE: RATTLE (SHAKE plus the velocity constraint), so the energy of the constrained
        # system is conserved (the first thermo line, before the first step has put the bonds
        # at their length, is not yet constrained); with a thermostat SHAKE does, for less
        # communication (RATTLE cost the 10 000-bead tables a quarter of their speed on 2 ranks)
        style = "rattle" if ensemble == "nve" else "shake"
        constraint = [f"fix constrain all {style} 1.0e-8 100 0 b {types}"]
    thermostat = "temp ${temperature} ${temperature} $(100.0*v_timestep)"
    integrators = {
        "nvt": ("NVT (Nose-Hoover)", [], f"fix integrate all nvt {thermostat}"),
        "nve": ("NVE (velocity Verlet)", [], "fix integrate all nve"),
        "npt": (
            "NPT (Nose-Hoover, isotropic)",
            [f"variable pressure index {float(pressure) / ATM_TO_BAR!r}  # atm"],
            f"fix integrate all npt {thermostat} iso ${{pressure}} ${{pressure}} "
            "$(1000.0*v_timestep)",
        ),
    }
    title, ensemble_variables, integrate = integrators[ensemble]
    deck = [
        f"# ase_cg CG MD: {title}, override with -var NAME VALUE",
        f"include {SYSTEM_FILE}",
        f"variable temperature index {float(temperature)!r}",
        *ensemble_variables,
        f"variable timestep index {float(timestep)!r}",
        f"variable steps index {int(steps)}",
        f"variable dump_every index {int(dump_every)}",
        "variable seed index 4928459",
        *(
            []
            if velocities
            else ["velocity all create ${temperature} ${seed} mom yes rot yes dist gaussian"]
        ),
        *([f"reset_timestep {int(first_step)}"] if first_step else []),
        integrate,
        *constraint,
        "timestep ${timestep}",
        "thermo_style custom step time temp pe ke etotal press density",
        "thermo ${dump_every}",
        f"dump trajectory all custom ${{dump_every}} {DUMP_FILE} id mol type xu yu zu vx vy vz "
        "fx fy fz",
        "dump_modify trajectory sort id format float %.10g",
        "run ${steps}",
        "",
    ]
    outputs["deck"] = directory / DECK_FILE
    write_text_atomic(outputs["deck"], "\n".join(deck))
    return outputs


def _pair_cutoff(
    requested: float | str | None, terms, n_types: int, inner: float, tolerance: float
) -> float:
    """Å, end of the pair table: the terms' cutoff, a given value, or where the force vanishes."""
    own = max((t.cutoff for t in terms), default=0.0)
    if requested is None or not terms:
        return own
    if requested == "auto":
        return pair_force_range(terms, n_types, tolerance, inner, own)
    if isinstance(requested, str):
        raise InputError(f"pair_cutoff={requested!r}: give a distance in Å or 'auto'")
    if not inner < float(requested) <= own:
        raise InputError(
            f"pair_cutoff={requested!r} Å: it must lie above table_inner={inner} Å and at or "
            f"below the pair terms' cutoff {own} Å"
        )
    return float(requested)


def _template_bonded_types(model) -> dict[str, list[tuple[int, ...]]]:
    """Bonded bead-type combinations of every molecule type of the model's mapping."""
    found = {"bond": set(), "angle": set(), "dihedral": set()}
    if model.mapping is not None:
        names = model.bead_type_names
        for molecule in model.mapping.bead_topology.values():
            type_index = np.array([names.index(name) for name in molecule["bead_types"]])
            for kind in found:
                for row in molecule[f"{kind}s"]:
                    found[kind].add(_canonical(tuple(int(t) for t in type_index[row])))
    return {kind: sorted(values) for kind, values in found.items()}


def export_lammps(
    model_path: str | os.PathLike,
    directory: str | os.PathLike,
    *,
    start: str | os.PathLike | None = None,
    frame: int = -1,
    n_molecules: int | None = None,
    density: float | None = None,
    seed: int | None = None,
    **options,
) -> dict[str, Path]:
    """``ase-cg export-lammps``: load a model file, get a start structure, :func:`export` it.

    Parameters
    ----------
    model_path : path
        Model file (:func:`ase_cg.model.save_model`).
    directory : path
        Export folder.
    start : path, optional
        Start structure (H5MD or ASE-readable, CG or all-atom mapped with the model's mapping);
        without it a box of ``n_molecules`` at ``density`` (g/cm³) is built.
    frame : int, default -1
        Frame of ``start``.
    n_molecules, density, seed
        New box (:func:`ase_cg.start.build_cg_box`); ``density`` defaults to the model's training
        density.
    **options
        Passed to :func:`export` (``table_points``, ``temperature``, ``timestep`` …).
    """
    model = load_model(model_path)
    if density is None:
        density = reference_state(model).get("density_g_cm3")
    if start is not None:
        atoms = read_start(Path(start), frame, model)
    elif n_molecules is not None and density is not None:
        atoms = build_cg_box(model, n_molecules, density, seed=seed)
    else:
        raise InputError(
            "export-lammps needs a start structure (--start FILE) or a new box "
            "(--n-molecules N --density RHO)"
        )
    return export(model, directory, atoms=atoms, **options)
