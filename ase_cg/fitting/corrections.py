"""Corrections added to a fitted model: one IBI step for the structure, a pressure ramp for the
pressure (both as pair splines that export to LAMMPS tables).
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch
from ase import units
from ase.units import kB
from torch import Tensor

from ase_cg import _keys as K
from ase_cg.analysis import rdf
from ase_cg.fitting.config import FitError
from ase_cg.potentials.base import CGModel, build_graph, make_batch
from ase_cg.potentials.classical import PairSpline
from ase_cg.trajectory import cg_trajectory, is_cg, opened

#: Å, inner end of the exported pair tables (lammps_interface.export's default table_inner)
TABLE_INNER = 0.5


def ibi_pair_correction(
    bead_type_names: list[str],
    rdfs: dict,
    *,
    temperature: float,
    cutoff: float,
    taper_width: float = 1.5,
    damping: float = 1.0,
    min_g: float = 0.1,
    spacing: float = 0.1,
):
    r"""One iterative-Boltzmann-inversion step as a pair term to add to a force-matched model.

    .. math:: \Delta V_{ab}(r) = \alpha k_B T \ln[g^{CG}_{ab}(r) / g^{ref}_{ab}(r)]

    Force matching gives the best pair + many-body forces, not the exact structure: orientational
    correlations that no function of the bead positions fitted to the noisy mapped force
    captures leave a small RDF bias (for CG ethane, the split first peak). This
    term removes it where both RDFs are sampled (g > ``min_g``); below that the first sampled
    value is held (no force), the result is smoothed over three bins, tapered to zero over the
    last ``taper_width`` before ``cutoff`` (cosine), and fitted by least squares to a cubic
    B-spline (:class:`~ase_cg.potentials.classical.PairSpline`, zero energy, force and curvature
    at ``cutoff``), so it exports to LAMMPS tables like any pair term.

    Parameters
    ----------
    bead_type_names : list of str
        The model's bead types (the term's type indices follow this order).
    rdfs : dict
        ``{(name_a, name_b): (r, g_reference, g_cg)}``: intermolecular RDFs on the same bins
        (Å; :func:`ase_cg.analysis.rdf`); pairs not given get no correction.
    temperature : float, K
    cutoff : float, Å
        Range of the correction (at most the RDFs' largest ``r``).
    taper_width : float, Å
    damping : float
        α of the update (1: the full Boltzmann-inverted difference).
    min_g : float
        RDF values below this count as unsampled.
    spacing : float, Å
        Knot spacing of the spline.

    Returns
    -------
    PairSpline
        Energies in eV; append it to the model's terms.
    """
    if not temperature > 0 or not cutoff > taper_width > 0 or not damping > 0:
        raise FitError(
            f"ibi_pair_correction: temperature={temperature!r} K, cutoff={cutoff!r} Å, "
            f"taper_width={taper_width!r} Å and damping={damping!r} must be positive, with "
            "taper_width < cutoff"
        )
    lookup = {name: index for index, name in enumerate(bead_type_names)}
    corrections = {}
    for (name_a, name_b), (r, g_reference, g_cg) in rdfs.items():
        if name_a not in lookup or name_b not in lookup:
            raise FitError(
                f"ibi_pair_correction: RDF of ({name_a!r}, {name_b!r}), but the model's bead "
                f"types are {bead_type_names}"
            )
        r, g_reference, g_cg = (np.asarray(a, dtype=np.float64) for a in (r, g_reference, g_cg))
        if not (r.shape == g_reference.shape == g_cg.shape) or r.ndim != 1 or r[-1] < cutoff:
            raise FitError(
                f"ibi_pair_correction: RDF of ({name_a!r}, {name_b!r}) must be three equal 1-D "
                f"arrays reaching the cutoff {cutoff} Å (r ends at {r[-1] if r.size else None})"
            )
        sampled = (g_reference > min_g) & (g_cg > min_g)
        if not sampled.any():
            raise FitError(
                f"ibi_pair_correction: RDF of ({name_a!r}, {name_b!r}) is nowhere above {min_g}"
            )
        delta = np.zeros_like(r)
        delta[sampled] = np.log(g_cg[sampled] / g_reference[sampled])
        first = int(np.argmax(sampled))
        delta[:first] = delta[first]
        delta = np.convolve(np.pad(delta, 1, mode="edge"), np.ones(3) / 3.0, mode="valid")
        ramp = np.clip((cutoff - r) / taper_width, 0.0, 1.0)
        delta *= 0.5 * (1.0 - np.cos(np.pi * ramp)) * damping * kB * temperature
        key = tuple(sorted((lookup[name_a], lookup[name_b])))
        corrections[key] = (r, delta)
    return _pair_spline_through(len(bead_type_names), corrections, cutoff, spacing)


def _pair_spline_through(n_types: int, curves: dict, cutoff: float, spacing: float):
    """PairSpline fitted by least squares to ``curves`` ``{(type_a, type_b): (r, energy)}``
    (Å, eV; sorted type-index pairs), zero energy, force and curvature at ``cutoff``."""
    # the grid starts at the LAMMPS tables' inner end, so the spline's below-range
    # extrapolation (a repulsive wall meant for fitted pair terms) is never reached
    start = TABLE_INNER
    n_intervals = max(4, int(round((cutoff - start) / spacing)))
    term = PairSpline(n_types, start, cutoff, n_intervals)
    x = np.linspace(start, cutoff, 20 * n_intervals + 1)
    with torch.no_grad():
        for key, (r, energy) in curves.items():
            row = int(term.combination_index(torch.tensor([key]))[0])
            term.coefficients[row] = _spline_coefficients(term, x, np.interp(x, r, energy))
    return term


def pressure_ramp(
    n_types: int,
    amplitude: float,
    cutoff: float,
    *,
    taper_width: float = 1.0,
    spacing: float = 0.1,
):
    r"""The pressure-correction pair term :math:`ΔV(r) = A (1 − r/r_c)` for every type pair.

    Its force :math:`−ΔV' = A/r_c` is constant, so it shifts the pressure without reshaping
    the first shells much; to first order (structure held) it adds

    .. math::

        ΔP = \frac{1}{3V} \Big\langle \sum_{pairs} r\,(−ΔV'(r)) \Big\rangle
           = \frac{2π}{3} \sum_{ab} ρ_a ρ_b \int_0^{r_c} r^3 g_{ab}(r)\,(−ΔV'_{ab}(r))\,dr
           = \frac{2π ρ^2}{3} \frac{A}{r_c} \int_0^{r_c} r^3 g(r)\,dr \quad (\text{one type}),

    positive (more repulsion) for ``A > 0``. The ramp is smoothed to zero energy and force over
    the last ``taper_width`` before ``r_c`` (cosine, as the IBI term) and fitted to a cubic
    B-spline, so it exports to LAMMPS tables; :func:`pressure_correction` measures its ΔP on CG
    frames with the spline itself, taper included.

    Parameters
    ----------
    n_types : int
        Bead types of the model.
    amplitude : float, eV
        ``A`` (the value at r = 0 of the untapered ramp).
    cutoff : float, Å
    taper_width : float, Å
    spacing : float, Å
        Knot spacing.

    Returns
    -------
    PairSpline
    """
    if not cutoff > taper_width > 0 or not math.isfinite(amplitude):
        raise FitError(
            f"pressure_ramp: need cutoff > taper_width > 0 Å and a finite amplitude, got "
            f"cutoff={cutoff!r}, taper_width={taper_width!r}, amplitude={amplitude!r}"
        )
    r = np.linspace(0.0, cutoff, int(round(cutoff / 0.01)) + 1)
    taper = np.clip((cutoff - r) / taper_width, 0.0, 1.0)
    energy = amplitude * (1.0 - r / cutoff) * 0.5 * (1.0 - np.cos(np.pi * taper))
    pairs = [(a, b) for a in range(n_types) for b in range(a, n_types)]
    return _pair_spline_through(n_types, {pair: (r, energy) for pair in pairs}, cutoff, spacing)


def term_pressure(model: CGModel, term, cg, *, max_frames: int = 5) -> float:
    """Mean virial pressure (bar) of one energy ``term`` alone on CG frames.

    ``−tr σ / 3`` of a model made of ``term`` with ``model``'s bead types, mapping and
    exclusions: the first-order pressure change from adding ``term`` to ``model`` (structure
    held).

    Parameters
    ----------
    model : CGModel
        Gives bead types, mapping (bonded topology) and exclusions.
    term : EnergyTerm
    cg : path of an H5MD file or sequence of ase.Atoms
        Periodic CG frames.
    max_frames : int
        At most this many frames, evenly spread.
    """
    alone = CGModel(
        list(model.bead_type_names),
        [copy.deepcopy(term)],
        mapping=model.mapping,
        exclusion_bonds=model.exclusion_bonds,
    ).double()
    pressures = []
    with opened(cg) as frames:
        n = len(frames)
        picks = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
        for index in picks:
            atoms = frames[int(index)]
            if not atoms.pbc.all():
                raise FitError("term_pressure: the CG frames must be periodic")
            batch = make_batch(
                atoms.positions[None], atoms.cell.array[None], alone.topology(atoms), alone.cutoff
            )
            stress = alone(batch, compute_stress=True)[K.STRESS][0].detach().numpy()
            pressures.append(-np.trace(stress) / 3.0 / units.bar)
    return float(np.mean(pressures))


def pressure_correction(
    model: CGModel,
    cg,
    pressure_change: float,
    *,
    cutoff: float | None = None,
    taper_width: float = 1.0,
    max_frames: int = 5,
) -> CGModel:
    """``model`` plus a pressure ramp (:func:`pressure_ramp`) sized to shift its pressure by
    ``pressure_change`` to first order.

    The ramp's pressure per unit amplitude is measured on frames of a CG run of ``model``:
    ``ΔP(A) = A · p₁`` with ``p₁ = −tr σ₁ / 3`` the stress of the unit-amplitude spline on
    those frames (its exact virial, structure held); then ``A = pressure_change / p₁``. The
    liquid relaxes under the new term, so the realised change is usually somewhat smaller:
    iterate (:func:`ase_cg.refine.refine`).

    Parameters
    ----------
    model : CGModel
        Classical or neural; the ramp is appended as one more pair term.
    cg : path of an H5MD file or sequence of ase.Atoms
        CG frames of a run of ``model`` (bead types, molecule ids; periodic).
    pressure_change : float, bar
        Wanted change, e.g. ``P_ref − P_CG``.
    cutoff : float, Å, optional
        Range of the ramp; default the model's largest pair-term cutoff (≥ 8 Å).
    taper_width : float, Å
    max_frames : int
        At most this many frames, evenly spread, are used.

    Returns
    -------
    CGModel
        A new model; ``provenance["pressure_correction"]`` lists the ramps added so far
        (amplitude eV, cutoff Å, requested and predicted bar). ``model`` is not changed.
    """
    cutoff = _correction_cutoff(model, cutoff)
    names = list(model.bead_type_names)
    unit = pressure_ramp(len(names), 1.0, cutoff, taper_width=taper_width)
    per_unit_bar = term_pressure(model, unit, cg, max_frames=max_frames)
    if not abs(per_unit_bar) > 0:
        raise FitError("pressure_correction: the ramp has no pressure on these frames")
    amplitude = float(pressure_change) / per_unit_bar
    term = pressure_ramp(len(names), amplitude, cutoff, taper_width=taper_width)
    provenance = dict(model.provenance)
    provenance["pressure_correction"] = [
        *provenance.get("pressure_correction", []),
        {
            "amplitude_eV": amplitude,
            "cutoff_A": cutoff,
            "taper_width_A": float(taper_width),
            "requested_bar": float(pressure_change),
            "bar_per_eV": per_unit_bar,
        },
    ]
    return _with_term(model, term, provenance)


def structural_correction(
    model: CGModel,
    reference,
    cg,
    *,
    temperature: float,
    cutoff: float | None = None,
    r_max: float = 13.0,
    bin_width: float = 0.1,
    damping: float = 1.0,
) -> CGModel:
    """``model`` plus one IBI step (:func:`ibi_pair_correction`) for every bead-type pair.

    Parameters
    ----------
    model : CGModel
        The model that produced ``cg`` (force-matched, classical or neural).
    reference : path of an H5MD file or sequence of ase.Atoms
        All-atom reference (mapped with ``model.mapping``) or an already mapped CG one.
    cg : path of an H5MD file or sequence of ase.Atoms
        A CG MD run of ``model`` at the reference's state point.
    temperature : float, K
    cutoff : float, Å, optional
        Range of the correction; default the model's largest pair-term cutoff (≥ 8 Å).
    r_max, bin_width : float, Å
        RDF range and bin width (``r_max`` must not exceed half the shortest box width).
    damping : float
        α of the update.

    Returns
    -------
    CGModel
        A new model: the same terms plus the correction term; its
        ``provenance["structural_correction"]`` records the inputs. ``model`` is not changed.
    """
    cutoff = _correction_cutoff(model, cutoff)
    if cutoff > r_max:
        raise FitError(f"structural_correction: cutoff {cutoff} Å exceeds r_max {r_max} Å")
    n_bins = int(round(r_max / bin_width))
    names = list(model.bead_type_names)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    rdfs: dict = {}
    with opened(reference) as ref_frames, opened(cg) as cg_frames:
        ref_frames = _as_cg(ref_frames, model, "structural_correction")
        for a, b in pairs:
            r, g_reference = rdf(ref_frames, r_max, n_bins, types=(a, b))
            _, g_cg = rdf(cg_frames, r_max, n_bins, types=(a, b))
            if g_reference.any() and g_cg.any():
                rdfs[(a, b)] = (r, g_reference, g_cg)
    term = ibi_pair_correction(names, rdfs, temperature=temperature, cutoff=cutoff, damping=damping)
    provenance = dict(model.provenance)
    provenance["structural_correction"] = {
        "reference": str(reference) if isinstance(reference, str | os.PathLike) else None,
        "cg": str(cg) if isinstance(cg, str | os.PathLike) else None,
        "temperature_K": float(temperature),
        "cutoff_A": cutoff,
        "damping": float(damping),
        "max_abs_difference_before": {
            f"{a}-{b}": float(np.abs(g_cg - g_ref).max())
            for (a, b), (_, g_ref, g_cg) in rdfs.items()
        },
    }
    return _with_term(model, term, provenance)


def _as_cg(frames, model: CGModel, who: str):
    """``frames`` as CG frames: mapped with ``model.mapping`` when they are all-atom."""
    if is_cg(frames):
        return frames
    if model.mapping is None:
        raise FitError(
            f"{who}: the reference is all-atom and the model has no mapping to map it with; "
            "give a mapped (CG) reference"
        )
    return cg_trajectory(frames, model.mapping, split_constraints="allow", atoms_arrays=())


def _correction_cutoff(model: CGModel, cutoff: float | None) -> float:
    """Range of a correction term, Å: ``cutoff``, else the model's largest pair-term cutoff
    (at least 8 Å)."""
    if cutoff is not None:
        return float(cutoff)
    pair_cutoffs = [t.cutoff for t in model.terms if getattr(t, "kind", None) == "pair"]
    return float(max([8.0, *pair_cutoffs]))


def _with_term(model: CGModel, term, provenance: dict) -> CGModel:
    """A new model: ``model``'s terms plus ``term`` (in the model's dtype), with ``provenance``."""
    return CGModel(
        list(model.bead_type_names),
        [*model.terms, term.to(model.dtype)],
        mapping=model.mapping,
        exclusion_bonds=model.exclusion_bonds,
        provenance=provenance,
    )


def threebody_correction(
    model: CGModel,
    reference,
    cg,
    *,
    temperature: float,
    damping: float = 1.0,
    bin_width: float = 2.0,
    min_fraction: float = 0.05,
    max_frames: int = 20,
) -> CGModel:
    r"""``model`` with the angular function of its three-body term corrected by one
    Boltzmann-inversion step on the screened angle distribution.

    For each type triple c of the :class:`~ase_cg.potentials.classical.ThreeBodySpline` term,
    :math:`p_c(\theta)` is the distribution of the angles j–i–k of its triples weighted by the
    screening ``w = g(r_ij) g(r_ik)`` (the factor the term multiplies ``f(θ)`` by), and

    .. math:: \Delta f_c(\theta) = \frac{\alpha k_B T}{\bar w_c}
              \ln\frac{p^{CG}_c(\theta)}{p^{ref}_c(\theta)}, \qquad
              \bar w_c = \frac{\sum w^2}{\sum w}\ (\text{reference triples}),

    the IBI update of :func:`ibi_pair_correction` carried to the angle (a triple's angular
    energy is ``f(θ) w``; ``w̄`` is the mean screening of the triples that make up ``p``).
    Where either distribution is below ``min_fraction`` of the reference's peak the first and
    last sampled values are held; the result is smoothed over three bins, its mean over the
    reference distribution is removed (a constant shift of ``f`` would act as an extra pair
    term, not as an angular one) and it is added to the term's spline coefficients by least
    squares, so the model keeps one three-body term and exports as before. No closed theory
    gives this step for a three-body term: like IBI it is a fixed-point iteration, to be
    repeated with the MD it corrects (:func:`ase_cg.refine.refine`).

    Parameters
    ----------
    model : CGModel
        Has one ``ThreeBodySpline`` term.
    reference : path of an H5MD file or sequence of ase.Atoms
        All-atom reference (mapped with ``model.mapping``) or an already mapped CG one.
    cg : path of an H5MD file or sequence of ase.Atoms
        A CG MD run of ``model`` at the reference's state point.
    temperature : float, K
    damping : float
        α of the update.
    bin_width : float, degrees
    min_fraction : float
        Bins below this fraction of the reference's peak count as unsampled.
    max_frames : int
        At most this many frames of each trajectory, evenly spread.

    Returns
    -------
    CGModel
        A new model; ``provenance["threebody_correction"]`` holds the max |Δp| (1/deg) of each
        type triple before the step. ``model`` is not changed.
    """
    positions = [i for i, t in enumerate(model.terms) if getattr(t, "kind", None) == "threebody"]
    if len(positions) != 1:
        raise FitError(
            f"threebody_correction: the model has {len(positions)} three-body terms; one is needed"
        )
    if not temperature > 0 or not damping > 0 or not bin_width > 0:
        raise FitError(
            f"threebody_correction: temperature={temperature!r} K, damping={damping!r} and "
            f"bin_width={bin_width!r} deg must be positive"
        )
    index = positions[0]
    term = model.terms[index]
    edges = np.radians(np.arange(0.0, 180.0 + 0.5 * bin_width, bin_width))
    with opened(reference) as ref_frames, opened(cg) as cg_frames:
        ref_frames = _as_cg(ref_frames, model, "threebody_correction")
        p_ref, w_bar = _screened_angles(model, term, ref_frames, edges, max_frames)
        p_cg, _ = _screened_angles(model, term, cg_frames, edges, max_frames)
    centres = 0.5 * (edges[1:] + edges[:-1])
    kt = kB * float(temperature)
    correction = torch.zeros_like(term.coefficients)
    before = {}
    names = list(model.bead_type_names)
    for combination in range(len(term.combinations)):
        reference_p, cg_p = p_ref[combination], p_cg[combination]
        if not reference_p.any() or not cg_p.any():
            continue
        label = "-".join(names[t] for t in term.combinations[combination])
        before[label] = float(np.abs(cg_p - reference_p).max() * np.radians(1.0))
        sampled = (reference_p > min_fraction * reference_p.max()) & (
            cg_p > min_fraction * reference_p.max()
        )
        delta = np.zeros_like(centres)
        delta[sampled] = np.log(cg_p[sampled] / reference_p[sampled])
        first, last = int(np.argmax(sampled)), len(sampled) - 1 - int(np.argmax(sampled[::-1]))
        delta[:first], delta[last + 1 :] = delta[first], delta[last]
        delta = np.convolve(np.pad(delta, 1, mode="edge"), np.ones(3) / 3.0, mode="valid")
        delta -= np.sum(delta * reference_p) / np.sum(reference_p)
        delta *= damping * kt / w_bar[combination]
        correction[combination] = _spline_coefficients(term, centres, delta)
    if not before:
        raise FitError("threebody_correction: no type triple has triples in both trajectories")
    corrected = copy.deepcopy(term)
    with torch.no_grad():
        corrected.coefficients += correction.to(corrected.coefficients)
    provenance = dict(model.provenance)
    provenance["threebody_correction"] = {
        "temperature_K": float(temperature),
        "damping": float(damping),
        "max_abs_difference_before_per_deg": before,
    }
    terms = list(model.terms)
    terms[index] = corrected
    return CGModel(
        names, terms, mapping=model.mapping, exclusion_bonds=model.exclusion_bonds,
        provenance=provenance,
    )  # fmt: skip


def _screened_angles(model: CGModel, term, frames, edges: np.ndarray, max_frames: int):
    """Screening-weighted angle densities (n_combinations, n_bins), 1/rad, of ``term``'s
    triples over up to ``max_frames`` frames, and each combination's ``Σw² / Σw``."""
    n_comb = len(term.combinations)
    counts = np.zeros((n_comb, len(edges) - 1))
    sum_w, sum_w2 = np.zeros(n_comb), np.zeros(n_comb)
    n = len(frames)
    picks = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    for pick in picks:
        atoms = frames[int(pick)]
        batch = make_batch(
            atoms.positions[None], atoms.cell.array[None], model.topology(atoms), term.cutoff
        )
        graph = build_graph(batch, batch[K.POSITIONS], batch[K.CELL])
        with torch.no_grad():
            theta, combination, _, _ = term.design_coordinates(graph)
            w = term.design_screening(graph)[0]
        theta, combination, w = theta.numpy(), combination.numpy(), w.numpy()
        for c in range(n_comb):
            chosen = combination == c
            counts[c] += np.histogram(theta[chosen], edges, weights=w[chosen])[0]
            sum_w[c] += w[chosen].sum()
            sum_w2[c] += (w[chosen] ** 2).sum()
    totals = counts.sum(axis=1, keepdims=True)
    density = np.divide(counts, totals * np.diff(edges), out=np.zeros_like(counts),
                        where=totals > 0)  # fmt: skip
    return density, np.divide(sum_w2, sum_w, out=np.ones_like(sum_w), where=sum_w > 0)


def _spline_coefficients(term, x: np.ndarray, values: np.ndarray) -> Tensor:
    """Least-squares B-spline coefficients (n_basis,) of ``term``'s grid through
    ``values`` at ``x`` (the trailing fixed coefficients stay zero)."""
    grid = torch.as_tensor(x, dtype=torch.float64)
    rows = torch.zeros(len(grid), dtype=torch.int64)
    eye = torch.eye(term.grid.n_basis, dtype=torch.float64)
    basis = [term.grid.evaluate(eye[k : k + 1], rows, grid) for k in range(len(eye))]
    design = torch.stack(basis, 1)
    solution, *_ = np.linalg.lstsq(design[:, : term.n_free].numpy(), values, rcond=None)
    coefficients = torch.zeros(term.grid.n_basis, dtype=torch.float64)
    coefficients[: term.n_free] = torch.from_numpy(solution)
    return coefficients
