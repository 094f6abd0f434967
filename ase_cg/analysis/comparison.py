"""Comparison of a CG run with its all-atom reference: both analysed the same way, and a
report folder written (``index.md``, ``index.html``, ``metrics.json``, PNG figures).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ase_cg import __version__
from ase_cg import _keys as K
from ase_cg.analysis._frames import (
    AnalysisError,
    cell_half_width,
    check_periodic,
    frames_of,
    iter_frames,
    mol_ids_of,
    particle_types,
)
from ase_cg.analysis._sections import (
    bonded_section,
    density_section,
    diffusion_section,
    local_order_section,
    pressure_section,
    rdf_section,
    stored_pressures,
    summary_section,
)
from ase_cg.analysis.bonded import BONDED, as_index_array, topology_from_bonds
from ase_cg.analysis.order import FIRST_SHELL_CUTOFF, frame_angles, frame_order_parameters
from ase_cg.analysis.radial import RDFAccumulator
from ase_cg.analysis.transport import Unwrapper, centres_of_mass
from ase_cg.mapping import CGMapping
from ase_cg.report import (
    Section,
    write_json,
    write_report,
)
from ase_cg.trajectory import MappedTrajectory, cg_trajectory
from ase_cg.units import AMU_PER_A3_TO_G_PER_CM3

__all__ = ["COMPARE_BIN_WIDTH", "COMPARE_R_MAX", "compare"]

#: Default RDF bin width of :func:`compare`, Å (VOTCA's usual 0.01 nm).
COMPARE_BIN_WIDTH = 0.1
#: Default largest RDF distance of :func:`compare` (when the box allows it), Å.
COMPARE_R_MAX = 15.0


def _type_key(names) -> str:
    """Canonical name of a bonded term or pair by its types: the smaller of both directions."""
    names = tuple(str(n) for n in names)
    return "-".join(min(names, names[::-1]))


@dataclass
class _Observed:
    """Everything :func:`compare` measures on one trajectory, gathered in one pass."""

    label: str
    n_frames: int = 0
    n_beads: int = 0
    n_molecules: int = 0
    bead_types: tuple = ()
    rdf: RDFAccumulator | None = None
    bonded: dict | None = None  # kind -> type key -> list of (n_terms,) arrays
    densities: list | None = None
    times: list | None = None
    centres: list | None = None  # (n_molecules or n_beads, 3) continuous positions per frame
    msd_of: str = "beads"
    # one-bead molecules only: per frame, neighbour angles (degrees) and q of every bead
    shell_angles: list | None = None
    order_parameters: list | None = None
    order_skipped: str | None = None  # why the local order is not measured


def _observe(frames, label, topology, pairs, r_max, n_bins, shell_cutoff) -> _Observed:
    """One pass over a CG (or mapped) trajectory: RDF counts, bonded values, density, MSD input,
    and for one-bead molecules the neighbour angles and tetrahedral order."""
    observed = _Observed(
        label=label, rdf=RDFAccumulator(r_max, n_bins, pairs, True, label, n_blocks=2)
    )
    observed.bonded = {kind: {} for kind, _, _ in BONDED}
    observed.densities, observed.times, observed.centres = [], [], []
    unwrapper = Unwrapper()
    groups = {}
    first = frames[0]
    names = particle_types(first)
    mol_ids = mol_ids_of(first, 0, label, needed=True)
    masses = first.get_masses()
    observed.n_beads = len(first)
    observed.n_molecules = len(np.unique(mol_ids))
    observed.bead_types = tuple(sorted(set(names.tolist())))
    molecular = observed.n_molecules < len(first)
    observed.msd_of = "molecule centres of mass" if molecular else "beads"
    if molecular:
        observed.order_skipped = "molecules of more than one bead"
    else:
        observed.shell_angles, observed.order_parameters = [], []
    for kind, width, _ in BONDED:
        terms = as_index_array(topology.get(kind, ()), width, kind, len(first))
        keys = np.array([_type_key(names[t]) for t in terms])
        groups[kind] = {key: terms[keys == key] for key in sorted(set(keys.tolist()))}
    for frame, atoms in enumerate(iter_frames(frames, desc=f"analysing {label}")):
        if len(atoms) != observed.n_beads:
            raise AnalysisError(
                f"{label}, frame {frame}: {len(atoms)} beads, frame 0 has {observed.n_beads}; "
                "the analysis needs a fixed number of particles"
            )
        observed.rdf.add(atoms, frame, block=int(2 * frame >= len(frames)))
        if observed.order_skipped is None:
            try:
                observed.shell_angles.append(frame_angles(atoms, shell_cutoff, frame, label))
                observed.order_parameters.append(frame_order_parameters(atoms, frame, label))
            except AnalysisError as error:  # e.g. a box too small for the shell: no section
                observed.order_skipped = str(error)
        cell, volume = check_periodic(atoms, frame, label)
        observed.densities.append(masses.sum() / volume * AMU_PER_A3_TO_G_PER_CM3)
        for kind, _, function in BONDED:
            for key, terms in groups[kind].items():
                observed.bonded[kind].setdefault(key, []).append(function(atoms, terms))
        continuous = unwrapper.add(atoms.positions, cell)
        observed.centres.append(
            centres_of_mass(continuous, mol_ids, masses) if molecular else continuous.copy()
        )
        observed.times.append(atoms.info.get("time"))
        observed.n_frames += 1
    if getattr(frames, "times", None) is not None:
        observed.times = list(np.asarray(frames.times, dtype=float))
    return observed


def _smallest_half_width(frames) -> float:
    """Smallest half perpendicular box width over all frames, Å (cells only are read)."""
    source = frames.source if isinstance(frames, MappedTrajectory) else frames
    if callable(getattr(source, "cells", None)):
        cells = source.cells()
    else:
        cells = [np.asarray(source[i].cell[:]) for i in range(len(source))]
    return min(cell_half_width(np.asarray(cell, dtype=np.float64)) for cell in cells)


def _describe(source, frames) -> str:
    """How the report names an input: its path, else what was given."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    if getattr(source, "path", None) is not None:  # an open H5MDTrajectory
        return str(source.path)
    return f"{len(frames)} ase.Atoms frames given in memory"


def _topology_of(frames, mapping, given) -> dict:
    """Bonded topology of a CG trajectory: from the mapping, else the file's bonds, else given."""
    if isinstance(frames, MappedTrajectory):
        return frames.topology
    if mapping is not None:
        return mapping.topology(frames[0])
    bonds = getattr(frames, "bonds", None)
    if bonds is not None:
        return topology_from_bonds(bonds)
    return given or {}


def compare(
    reference,
    cg,
    *,
    mapping=None,
    output_dir="report",
    r_max: float | None = None,
    n_bins: int | None = None,
    bond_bins: int = 80,
    angle_bins: int = 90,
    dihedral_bins: int = 72,
    shell_cutoff: float | None = None,
    fit_range_fs: tuple[float, float] | None = None,
    topology: dict | None = None,
    title: str = "CG vs all-atom comparison",
) -> dict:
    """Compare a CG run with its all-atom reference and write a report folder.

    The reference is mapped to beads first when ``mapping`` is given (frame by frame: one
    all-atom frame in memory at a time); otherwise both inputs must already be CG (bead types
    in ``arrays["bead-type"]``). Both are then analysed identically:

    - intermolecular RDF of every bead-type pair (:func:`rdf` normalisation), compared by
      :func:`max_abs_difference` and :func:`integrated_absolute_error`;
    - bond, angle and dihedral distributions per type (from the mapping's topology, else from
      the bonds stored in the H5MD files), compared by :func:`jensen_shannon` on common bins;
    - density per frame (mean, standard deviation, relative difference);
    - pressure, when both trajectories store it (``observables/pressure``: mean, block error,
      difference);
    - MSD of molecule centres of mass (of beads for one-bead molecules), diffusion coefficient
      by :func:`diffusion_coefficient`, and the ratio D_CG / D_AA;
    - for one-bead molecules (every molecule one bead, e.g. CG water): the distribution of the
      angles j–i–k between neighbours within ``shell_cutoff``
      (:func:`neighbor_angle_distribution`, compared by :func:`max_abs_difference` and
      :func:`jensen_shannon`) and of the tetrahedral order parameter q
      (:func:`tetrahedral_order`, compared by the difference of the means).

    Written to ``output_dir``::

        report/
        ├── index.md          Markdown tables of every number below, figure links
        ├── metrics.json      the returned dict
        ├── rdf_<A>-<B>.png   g(r) overlay with a difference panel, per bead-type pair
        ├── bonds.png, angles.png, dihedrals.png   (those the topology has)
        ├── density.png
        ├── local_order.png   neighbour angles and q (one-bead molecules only)
        └── msd.png           (when both trajectories carry frame times)

    Parameters
    ----------
    reference : sequence of ase.Atoms, path of an H5MD file, or ase_cg.trajectory object
        All-atom (mapped with ``mapping``) or CG reference trajectory (a CG one is used as it
        is, with or without ``mapping``).
    cg : sequence of ase.Atoms, path of an H5MD file, or ase_cg.trajectory object
        CG trajectory (``arrays["bead-type"]`` and ``arrays["mol-id"]``).
    mapping : CGMapping or path of a mapping JSON file, optional
        Maps the reference; also gives both sides' bonded topology.
    output_dir : str or path
        Report folder (created; files in it are replaced).
    r_max : float, Å, optional
        Largest RDF distance; default the smaller of 15 Å and 98 % of half the shortest
        perpendicular box width of any frame of either trajectory.
    n_bins : int, optional
        RDF bins; default one per 0.1 Å.
    bond_bins, angle_bins, dihedral_bins : int
        Bins of the bonded distributions (common to both sides; bonds and angles span both
        sides' observed ranges, dihedrals −180°..180°); ``angle_bins`` also bins the
        neighbour angles of one-bead molecules (0°..180°).
    shell_cutoff : float, Å, optional
        First-shell radius of the neighbour angles of one-bead molecules; default
        :data:`FIRST_SHELL_CUTOFF` (3.18 Å, water's O–O shell; give the first minimum of g(r)
        for other liquids).
    fit_range_fs : (float, float), fs, optional
        Lag times of the diffusion fit, for both runs; default 10 %–50 % of each run's own
        time span.
    topology : dict, optional
        Bead ``"bonds"`` (n, 2), ``"angles"`` (n, 3), ``"dihedrals"`` (n, 4) of both
        trajectories (same bead order), for inputs that carry none (in-memory frames without
        a mapping); a mapping or the bonds stored in an H5MD file take precedence.
    title : str
        Title of ``index.md``.

    Returns
    -------
    dict
        The metrics, also in ``metrics.json`` (None where not computable):

        - ``"rdf"``: per pair ``"A-B"``: ``max_abs_difference``, ``integrated_absolute_error``
          (Å), ``first_peak_reference`` / ``first_peak_cg`` (``r_A``, ``g``), and
          ``halves_max_abs_difference_reference`` / ``_cg``: max |Δg| between the first and the
          second half of that run, its noise level on these bins;
        - ``"bonds"``, ``"angles"``, ``"dihedrals"``: per type ``"A-B"``, ``"A-B-C"``, …:
          ``jensen_shannon`` (nats), ``halves_jensen_shannon_reference`` / ``_cg``,
          ``mean_*`` and ``std_*`` (Å or degrees), or ``only_in`` when one side lacks it;
        - ``"density"``: ``reference_g_cm3``, ``cg_g_cm3``, their ``*_std_g_cm3``,
          ``relative_difference`` (CG/AA − 1);
        - ``"pressure"``: when both trajectories store ``observables/pressure``:
          ``reference_bar``, ``cg_bar``, their block ``*_error_bar``, ``difference_bar``;
          else ``skipped`` with the reason;
        - ``"diffusion"``: ``reference_cm2_s``, ``cg_cm2_s``, ``*_A2_fs``, ``ratio``
          (D_CG / D_AA), ``*_fit_range_fs``, ``of`` (molecule centres of mass or beads), or
          ``skipped`` with the reason;
        - ``"local_order"``: for one-bead molecules, ``shell_cutoff_A``,
          ``angle_max_abs_difference`` (1/degree), ``angle_jensen_shannon`` (nats),
          ``halves_angle_max_abs_difference_reference`` / ``_cg`` (the noise of that
          difference), ``mean_angle_*`` (degrees), ``mean_q_reference``, ``mean_q_cg``,
          ``std_q_*``, ``mean_q_error_*`` (5-block standard error, None for < 5 frames),
          ``mean_q_difference`` (CG − AA); else ``skipped`` with the reason;
        - ``"inputs"``, ``"parameters"`` (``r_max_A``, ``n_bins``), ``"files"``.

    Raises
    ------
    AnalysisError
        Inputs without bead types (an all-atom reference without ``mapping``), different bead
        types on both sides, non-periodic frames, a changing number of beads.
    """
    if shell_cutoff is None:
        shell_cutoff = FIRST_SHELL_CUTOFF
    if not shell_cutoff > 0.0:
        raise AnalysisError(
            f"compare: shell_cutoff = {shell_cutoff} Å; give the positive first-shell radius of "
            "one-bead molecules (the first minimum of their g(r))"
        )
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise AnalysisError(f"compare: output_dir {folder} exists and is not a folder")
    mapping_source = None
    if mapping is not None and not hasattr(mapping, "system"):
        mapping_source = str(mapping)
        mapping = CGMapping.load(mapping)

    with (
        frames_of(reference, "reference") as reference_frames,
        frames_of(cg, "cg") as cg_frames,
    ):
        if mapping is not None:  # all-atom frames are mapped, CG frames pass
            reference_frames = cg_trajectory(
                reference_frames, mapping, split_constraints="allow", atoms_arrays=()
            )
        sides = {"reference": reference_frames, "cg": cg_frames}
        sources = {
            "reference": _describe(reference, reference_frames),
            "cg": _describe(cg, cg_frames),
        }
        first = {side: frames[0] for side, frames in sides.items()}
        types = {}
        for side, atoms in first.items():
            if K.BEAD_TYPE not in atoms.arrays:
                hint = (
                    "it looks all-atom: pass the mapping (--mapping FILE)"
                    if side == "reference"
                    else "give a CG trajectory (written by ase-cg simulate or ase-cg map)"
                )
                raise AnalysisError(
                    f"compare: the {side} trajectory ({sources[side]}) has no bead types "
                    f"(arrays['{K.BEAD_TYPE}']); {hint}"
                )
            types[side] = sorted(set(particle_types(atoms).tolist()))
        if types["reference"] != types["cg"]:
            raise AnalysisError(
                f"compare: bead types differ: reference {types['reference']}, CG {types['cg']}; "
                "compare a CG run with the reference mapped by the same mapping"
            )
        bead_types = types["cg"]
        pairs = [(a, b) for k, a in enumerate(bead_types) for b in bead_types[k:]]
        if r_max is None:
            for side, atoms in first.items():
                check_periodic(atoms, 0, side)
            largest = min(_smallest_half_width(frames) for frames in sides.values())
            r_max = min(COMPARE_R_MAX, 0.98 * largest)
        if n_bins is None:
            n_bins = max(1, int(round(r_max / COMPARE_BIN_WIDTH)))
        pressures = {side: stored_pressures(frames) for side, frames in sides.items()}
        observed = {}
        for side, frames in sides.items():
            label = "reference" if side == "reference" else "CG"
            observed[side] = _observe(
                frames,
                label,
                _topology_of(frames, mapping, topology),
                pairs,
                r_max,
                n_bins,
                shell_cutoff,
            )
        inputs = {
            side: {
                "source": _describe(source, sides[side]),
                "n_frames": observed[side].n_frames,
                "n_beads": observed[side].n_beads,
                "n_molecules": observed[side].n_molecules,
            }
            for side, source in (("reference", reference), ("cg", cg))
        }

    folder.mkdir(parents=True, exist_ok=True)
    metrics: dict = {
        "inputs": {**inputs, "mapping": mapping_source, "bead_types": bead_types},
        "parameters": {"r_max_A": float(r_max), "n_bins": int(n_bins)},
    }
    sections: list[Section] = []
    for part, part_sections in (
        rdf_section(folder, observed, pairs, r_max, n_bins),
        bonded_section(
            folder,
            observed,
            {"bonds": bond_bins, "angles": angle_bins, "dihedrals": dihedral_bins},
        ),
        density_section(folder, observed),
        local_order_section(folder, observed, shell_cutoff, angle_bins),
        pressure_section(pressures),
        diffusion_section(folder, observed, fit_range_fs),
    ):
        metrics.update(part)
        sections += part_sections
    sections.insert(0, summary_section(metrics, inputs))
    intro = (
        f"Bead types: {', '.join(bead_types)}. "
        + (f"Reference mapped to beads with `{mapping_source}`. " if mapping_source else "")
        + (
            "Reference mapped to beads with the given mapping. "
            if mapping is not None and not mapping_source
            else ""
        )
        + f"Written by ase_cg {__version__} (`ase_cg.analysis.compare`); the numbers are also in "
        "`metrics.json`."
    )
    figures = [f.path for section in sections for f in section.figures]
    metrics["files"] = {"index": "index.md", "metrics": "metrics.json", "figures": figures}
    write_report(folder, title, sections, intro=intro)
    write_json(folder / "metrics.json", metrics)
    return metrics
