"""Multiscale coarse-graining: classical spline potentials fitted by force matching.

The classical CG energy is linear in its spline coefficients ``c``, so the CG force on every bead
of every frame is ``F = G(x) c`` with ``G`` the (negative) derivative of the basis functions
(built analytically: basis derivative × coordinate gradient, scattered onto beads; for the
three-body term ``f(θ) g(r_ij) g(r_ik)`` also the basis value × the screening's gradient). Force
matching (Izvekov & Voth 2005; Noid et al. 2008) minimises

.. math::

    L(c) = \\frac{1}{3 n} \\sum_{\\text{frames}} |F_{ref} − G c|^2
           + λ_s \\sum_{\\text{functions}} h^{-5} |Δ^3 c|^2 + λ_r |c|^2

over the ``n`` bead-frames, whose minimum solves the normal equations
``(GᵀG/3n + R) c = Gᵀ F_ref / 3n``. ``GᵀG`` and ``GᵀF_ref`` are summed over chunks of frames, so
memory does not grow with the trajectory. The smoothness term ``h^{-5}|Δ³c|²`` approximates
``∫ (d²F/dx²)² dx`` (third differences of the energy coefficients = second derivative of the
force): it leaves harmonic (linear-force) terms unbiased. The small ridge ``λ_r`` makes the
system definite for basis functions the data does not reach.

After the solve, each combination's sampled range ``[lower, upper]`` is where its histogram has at
least ``min_samples`` samples per interval; outside it the terms extrapolate repulsively (see
:mod:`ase_cg.potentials.classical`). Combinations sampled by no data keep zero coefficients and
get only the extrapolation walls.

Pressure matching (Das & Andersen, J. Chem. Phys. 132, 164106 (2010)): force matching pins the
forces, not the pressure, which weighs the small long-range forces by r³ρ²; an FM model can be
off by hundreds of bar. The virial of the spline model is linear in ``c`` too, so the
instantaneous virial equation of every training frame is one more least-squares row. With the
all-atom pressure ``P_t`` of frame ``t`` (kinetic + virial, ``observables/pressure`` of the
file, or ``ClassicalConfig.pressure``), the CG model in CG MD at the same temperature has the
pressure

.. math::

    P^{CG} = \\frac{1}{3V} \\Big(\\sum_I M_I |V_I|^2 + W(R)\\Big), \\qquad
    W(R) = \\sum_I R_I \\cdot F_I = -\\sum_{\\text{distances } x} x\\, V'(x) = w(R) \\cdot c,

(angles and dihedrals do not change under a uniform dilation and add nothing to ``W``; the
three-body term adds its screening's ``−B(θ)(r_ij ∂w/∂r_ij + r_ik ∂w/∂r_ik)``;
periodic images through the pair vectors). Equal mean pressures need
``⟨w c⟩ = ⟨3 V P_t − K_t⟩`` with ``K_t`` the CG kinetic term: ``Σ_I M_I |V_I|²`` of the mapped
bead velocities when the frames have them (its mean is ``3 N_beads k_B T`` for a centre-of-mass
map, as in CG MD), else ``3 N_beads k_B T`` with ``ClassicalConfig.temperature``. Each frame
adds the row

.. math::

    λ_P \\,\\big(\\tfrac{w_t c + K_t}{3 V_t} − P_t\\big)^2 \\quad(\\text{pressures in bar})

averaged over frames, next to the mean squared force residual per component (eV²/Å²), so
``λ_P = pressure_weight`` is in (eV/Å)² per bar². The per-frame fluctuation of ``P_t`` that no
CG configuration explains adds a constant to the loss; the mean mismatch shrinks as λ_P grows.
For an FM model the pressure direction is soft (tail forces are small), so a λ_P that matches
the mean pressure to a bar changes the force residual by well under 1 %; too large a λ_P fits the
virial's frame-to-frame fluctuation as well and costs force residual. The report gives both
(``"pressure"``, ``"train"``).

Held-out frames (the last ``validation_fraction`` of the selected frames, a time block) are
evaluated through the finished :class:`~ase_cg.potentials.CGModel`, extrapolation included, and
reported as the fraction of mapped-force variance left unexplained, per bead type.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.linalg
import torch
from ase import units
from ase.units import kB
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg.fitting.config import ClassicalConfig, FitError
from ase_cg.fitting.frames import (
    describe_source,
    frame_selections,
    graph_chunks,
    open_cg_frames,
    resolve_topology,
)
from ase_cg.potentials._splines import basis_weights
from ase_cg.potentials.base import CGModel, make_batch
from ase_cg.potentials.classical import SPLINE_TERMS, SplineTerm


# --- grids -----------------------------------------------------------------------------------
def _grid_from_range(low, high, spacing, clip=(-math.inf, math.inf)) -> tuple[float, float, int]:
    """Grid over ``[low, high]`` widened by a quarter of the range plus two knots each side (the
    range comes from a subset of frames; the rest may reach a little further)."""
    margin = 2 * spacing + 0.25 * (high - low)
    start = max(low - margin, clip[0])
    stop = min(high + margin, clip[1])
    n = max(1, math.ceil((stop - start) / spacing - 1e-9))
    return start, stop, n


def _scan_ranges(source, indices, topology, config, pbc, kinds, disable, n_scan=20):
    """Min/max of each coordinate kind over up to ``n_scan`` frames spread over ``indices``."""
    probes = {
        "pair": SPLINE_TERMS["pair"](1, 0.0, config.pair_cutoff, 1),
        "bond": SPLINE_TERMS["bond"](1, 0.0, 1.0, 1),
        "angle": SPLINE_TERMS["angle"](1, 0.0, math.pi, 1),
    }
    subset = indices[np.unique(np.linspace(0, len(indices) - 1, n_scan).round().astype(int))]
    ranges = {kind: [math.inf, -math.inf] for kind in kinds}
    cutoff = config.pair_cutoff if "pair" in kinds else 0.0
    for graph, _, _, _ in graph_chunks(
        source, subset, topology, cutoff, pbc, config.chunk_size, disable, "scan ranges"
    ):
        graph = graph._replace(bead_types=torch.zeros_like(graph.bead_types))
        for kind in kinds:
            x = probes[kind].design_coordinates(graph)[0]
            if len(x):
                ranges[kind][0] = min(ranges[kind][0], float(x.min()))
                ranges[kind][1] = max(ranges[kind][1], float(x.max()))
    return ranges


def _build_terms(n_types, topology, config, ranges) -> list[SplineTerm]:
    floors = {
        "force_floor": kB * config.temperature / config.wall_width,
        "stiffness_floor": kB * config.temperature / config.wall_width**2,
    }
    terms = []
    if "pair" in config.terms:
        if config.pair_r_min is not None:
            r_min = config.pair_r_min
        elif math.isfinite(ranges.get("pair", [math.inf])[0]):
            r_min = max(ranges["pair"][0] - 0.5, 0.0)  # scanned on a subset: leave room
        else:
            r_min = 0.5 * config.pair_cutoff
        h = config.pair_spacing
        n = max(4, math.ceil((config.pair_cutoff - r_min) / h - 1e-9))
        start = config.pair_cutoff - n * h
        if start < 0:
            n = int(config.pair_cutoff // h)
            start = config.pair_cutoff - n * h
        terms.append(SPLINE_TERMS["pair"](n_types, start, config.pair_cutoff, n, **floors))
    for kind, count, spacing, fixed, clip in (
        ("bond", len(topology.bonds), config.bond_spacing, config.bond_range, (0.0, math.inf)),
        ("angle", len(topology.angles), config.angle_spacing, config.angle_range, (0.0, math.pi)),
    ):
        if kind not in config.terms or count == 0:
            continue
        if fixed is not None:
            start, stop = fixed
            n = max(1, math.ceil((stop - start) / spacing - 1e-9))
        else:
            start, stop, n = _grid_from_range(*ranges[kind], spacing, clip)
        terms.append(SPLINE_TERMS[kind](n_types, start, stop, n, **floors))
    if "dihedral" in config.terms and len(topology.dihedrals):
        terms.append(SPLINE_TERMS["dihedral"](n_types, config.dihedral_intervals, **floors))
    if "threebody" in config.terms:
        n = max(1, math.ceil(math.pi / config.threebody_spacing - 1e-9))
        terms.append(
            SPLINE_TERMS["threebody"](
                n_types, 0.0, math.pi, n, cutoff=config.threebody_cutoff,
                screening=config.threebody_screening, **floors,
            )
        )  # fmt: skip
    return terms


# --- normal equations --------------------------------------------------------------------------
class _NormalEquations:
    """Running sums GᵀG, GᵀF, FᵀF over chunks, and per-combination sample histograms."""

    def __init__(self, terms: list[SplineTerm]) -> None:
        self.terms = terms
        self.offsets = np.cumsum([0] + [len(t.combinations) * t.n_free for t in terms])
        self.n_columns = int(self.offsets[-1])
        self.gram = torch.zeros(self.n_columns, self.n_columns, dtype=torch.float64)
        self.projection = torch.zeros(self.n_columns, dtype=torch.float64)
        self.force_squared = 0.0
        self.force_sum = torch.zeros(3, dtype=torch.float64)
        self.n_rows = 0
        self.n_bead_frames = 0
        self.histograms = [
            torch.zeros(len(t.combinations), t.grid.n_intervals, dtype=torch.float64) for t in terms
        ]
        self.pressure_gram = torch.zeros_like(self.gram)
        self.pressure_projection = torch.zeros_like(self.projection)
        self.pressure_rows_sum = torch.zeros_like(self.projection)
        self.pressure_target_sum = 0.0
        self.pressure_residual_sum = 0.0
        self.pressure_residual_squared = 0.0
        self.n_pressure_frames = 0

    def design_matrix(self, graph) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense G (3 n_beads, n_columns) of one chunk, F_model = G c, and the virial rows w
        (n_frames, n_columns), W_model = w c (eV): ``−x dB/dx`` summed over each frame's
        distances (pair and bond terms; angles and dihedrals add nothing; the three-body term
        through its screening)."""
        n_rows = 3 * graph.n_beads
        n_frames = int(graph.system_index.max()) + 1 if graph.n_beads else 0
        flat = torch.zeros(n_rows * self.n_columns, dtype=torch.float64)
        virial = torch.zeros(n_frames * self.n_columns, dtype=torch.float64)
        for index, term in enumerate(self.terms):
            x, combination, beads, gradients = term.design_coordinates(graph)
            if not term.periodic:
                inside = (x >= term.grid.start) & (x <= term.grid.stop)
                x, combination = x[inside], combination[inside]
                beads, gradients = beads[inside], gradients[inside]
            if len(x) == 0:
                continue
            interval, basis, u = term.grid.locate(x)
            self.histograms[index].view(-1).index_add_(
                0, combination * term.grid.n_intervals + interval, torch.ones_like(x)
            )
            value, derivative = basis_weights(u)[:2]
            derivative = derivative / term.grid.spacing  # (n, 4) dB/dx
            if term.fixed_tail:  # coefficients held at zero: add nothing to a valid column
                fixed = basis >= term.n_free
                derivative = derivative.masked_fill(fixed, 0.0)
                basis = basis.masked_fill(fixed, 0)
            columns = int(self.offsets[index]) + combination.unsqueeze(1) * term.n_free + basis
            rows = 3 * beads.unsqueeze(-1) + torch.arange(3)  # (n, k, 3)
            values = -derivative[:, :, None, None] * gradients[:, None, :, :]  # (n, 4, k, 3)
            frame = graph.system_index[beads[:, 0]]
            virial_keys = frame.unsqueeze(1) * self.n_columns + columns
            if term.kind == "threebody":  # E = Σ c B(θ) w(r_ij, r_ik): both factors move
                w, w_gradients, w_dilation = term.design_screening(graph)
                values = values * w[:, None, None, None] - (
                    value[:, :, None, None] * w_gradients[:, None, :, :]
                )
                virial_rows = -w_dilation.unsqueeze(1) * value
                virial.index_add_(0, virial_keys.reshape(-1), virial_rows.reshape(-1))
            elif term.kind in ("pair", "bond"):
                virial_rows = -x.unsqueeze(1) * derivative
                virial.index_add_(0, virial_keys.reshape(-1), virial_rows.reshape(-1))
            keys = rows[:, None, :, :] * self.n_columns + columns[:, :, None, None]
            flat.index_add_(0, keys.reshape(-1), values.reshape(-1))
        return flat.view(n_rows, self.n_columns), virial.view(n_frames, self.n_columns)

    def add(self, graph, reference_forces: torch.Tensor, pressure=None) -> None:
        """Add one chunk; ``pressure``: ``(target (n,), kinetic (n,), volume (n,))`` of its
        frames (bar, eV, Å³) for the pressure rows."""
        design, virial = self.design_matrix(graph)
        target = reference_forces.reshape(-1)
        self.gram += design.T @ design
        self.projection += design.T @ target
        self.force_squared += float(target @ target)
        self.force_sum += reference_forces.sum(0)
        self.n_rows += target.shape[0]
        self.n_bead_frames += reference_forces.shape[0]
        if pressure is not None:
            target_bar, kinetic, volume = (torch.as_tensor(a).double() for a in pressure)
            scale = 1.0 / (3.0 * volume * units.bar)  # eV → bar
            rows = virial * scale[:, None]  # (n, n_columns): P_model − P_kinetic, bar per c
            residual = target_bar - kinetic * scale  # what the virial must supply, bar
            self.pressure_gram += rows.T @ rows
            self.pressure_projection += rows.T @ residual
            self.pressure_rows_sum += rows.sum(0)
            self.pressure_target_sum += float(target_bar.sum())
            self.pressure_residual_sum += float(residual.sum())
            self.pressure_residual_squared += float(residual @ residual)
            self.n_pressure_frames += len(residual)

    def penalty(self, config: ClassicalConfig) -> np.ndarray:
        """Regularisation matrix R (n_columns, n_columns)."""
        penalty = config.ridge * np.eye(self.n_columns)
        if config.smoothness == 0:
            return penalty
        for index, term in enumerate(self.terms):
            differences = term.grid.difference_matrix(3)[:, : term.n_free]
            block = differences.T @ differences * config.smoothness / term.grid.spacing**5
            for combination in range(len(term.combinations)):
                first = self.offsets[index] + combination * term.n_free
                penalty[first : first + term.n_free, first : first + term.n_free] += block
        return penalty


def _solve(equations: _NormalEquations, config: ClassicalConfig) -> np.ndarray:
    """Coefficients (n_columns,) of the regularised least-squares problem; unsampled
    combinations are left out (zero)."""
    gram = equations.gram.numpy() / equations.n_rows
    rhs = equations.projection.numpy() / equations.n_rows
    if config.pressure_weight > 0:
        weight = config.pressure_weight / equations.n_pressure_frames
        gram = gram + weight * equations.pressure_gram.numpy()
        rhs = rhs + weight * equations.pressure_projection.numpy()
    matrix = gram + equations.penalty(config)
    active = np.zeros(equations.n_columns, dtype=bool)
    for index, term in enumerate(equations.terms):
        sampled = equations.histograms[index].sum(1).numpy() > 0
        for combination in np.flatnonzero(sampled):
            first = equations.offsets[index] + combination * term.n_free
            active[first : first + term.n_free] = True
    solution = np.zeros(equations.n_columns)
    if not active.any():
        return solution
    # least squares on the (symmetric) normal matrix: directions that neither data nor penalty
    # determine (relative singular value < machine precision) get zero instead of noise
    sub = matrix[np.ix_(active, active)]
    scale = 1.0 / np.sqrt(np.clip(np.diag(sub), 1e-300, None))  # Jacobi scaling: conditioning
    scaled = scipy.linalg.lstsq(sub * scale[:, None] * scale[None, :], rhs[active] * scale)[0]
    solution[active] = scaled * scale
    return solution


def _install(equations: _NormalEquations, solution: np.ndarray, config: ClassicalConfig) -> None:
    """Write coefficients, sampled ranges and sample counts into the terms."""
    for index, term in enumerate(equations.terms):
        histogram = equations.histograms[index].numpy()
        n_comb = len(term.combinations)
        block = solution[equations.offsets[index] : equations.offsets[index + 1]]
        coefficients = np.zeros((n_comb, term.grid.n_basis))
        coefficients[:, : term.n_free] = block.reshape(n_comb, term.n_free)
        lower = np.full(n_comb, term.grid.start)
        upper = np.full(n_comb, term.grid.stop)
        knots = term.grid.knots()
        for combination in range(n_comb):
            well_sampled = np.flatnonzero(histogram[combination] >= config.min_samples)
            if len(well_sampled) == 0:
                well_sampled = np.flatnonzero(histogram[combination] > 0)
            if len(well_sampled) and not term.periodic:
                lower[combination] = knots[well_sampled[0]]
                if term.extrapolate_upper:
                    upper[combination] = knots[well_sampled[-1] + 1]
        with torch.no_grad():
            term.coefficients.copy_(torch.as_tensor(coefficients))
            term.lower.copy_(torch.as_tensor(lower))
            term.upper.copy_(torch.as_tensor(upper))
            term.samples.copy_(torch.as_tensor(histogram.sum(1)))
            if term.kind in ("bond", "angle", "dihedral"):  # defined up to a constant: min = 0
                for combination in np.flatnonzero(histogram.sum(1) > 0):
                    x = torch.linspace(float(lower[combination]), float(upper[combination]), 512)
                    rows = torch.full((512,), int(combination), dtype=torch.int64)
                    term.coefficients[combination] -= term.energy(x.double(), rows).min()


# --- pressure rows -----------------------------------------------------------------------------
def _pressure_source(source, config: ClassicalConfig, where: str):
    """``(target, kinetic)`` descriptions for the pressure rows, or None without a pressure.

    target: ``"config"`` or ``"file"``; kinetic: ``"velocities"`` (Σ M V² of the frames) or
    ``"temperature"`` (3 N k_B T)."""
    if config.pressure is not None:
        target = "config"
    elif "pressure" in getattr(source, "observable_names", ()):
        target = "file"
    elif config.pressure_weight > 0:
        raise FitError(
            f"{where}: pressure matching (pressure_weight={config.pressure_weight}) needs the "
            "reference pressure, and the file has no observables/pressure; give it "
            "(ClassicalConfig.pressure, bar; --pressure BAR on the command line) or map a "
            "reference that stores it (ase-cg reference writes it; ase-cg reference "
            "--add-pressure FILE adds it to an older one)"
        )
    else:
        return None
    with_velocities = getattr(source, "has_velocities", False)
    kinetic = "velocities" if with_velocities and getattr(source, "has_masses", True) else None
    return target, kinetic or "temperature"


def _pressure_rows_input(source, selection, config, pressure_source):
    """``(target (n,) bar, kinetic (n,) eV, volume (n,) Å³)`` of a chunk's frames."""
    target, kinetic = pressure_source
    volume = np.abs(np.linalg.det(source.cells(selection)))
    n = len(volume)
    if target == "config":
        pressure = np.full(n, float(config.pressure))
    else:
        pressure = np.asarray(source.observable("pressure", selection)) / units.bar
    if kinetic == "velocities":
        velocities = source.velocities(selection)
        energy = np.einsum("i,fia,fia->f", np.asarray(source.masses), velocities, velocities)
    else:
        energy = np.full(n, 3.0 * source.n_atoms * kB * config.temperature)
    return pressure, energy, volume


# --- held-out report ---------------------------------------------------------------------------
def _force_statistics(model, source, indices, topology, pbc, names, config, disable) -> dict:
    """Force-matching error and mapped-force variance per bead type on ``indices``."""
    n_types = len(names)
    sq_error = np.zeros(n_types)
    sq_force = np.zeros(n_types)
    force_sum = np.zeros((n_types, 3))
    counts = np.zeros(n_types)
    types = topology.bead_type_index
    bar = tqdm(total=len(indices), desc="validate", unit="frame", disable=disable)
    for selection, n in frame_selections(indices, config.chunk_size):
        batch = make_batch(
            source.positions(selection), source.cells(selection), topology, model.cutoff, pbc=pbc
        )
        reference = source.forces(selection).reshape(-1, 3)
        predicted = model(batch)[K.FORCES].detach().numpy()
        bead_types = np.tile(types, n)
        bar.update(n)
        error = ((predicted - reference) ** 2).sum(1)
        np.add.at(sq_error, bead_types, error)
        np.add.at(sq_force, bead_types, (reference**2).sum(1))
        np.add.at(force_sum, bead_types, reference)
        np.add.at(counts, bead_types, 1)
    bar.close()
    return _summarise(names, sq_error, sq_force, force_sum, counts)


def _summarise(names, sq_error, sq_force, force_sum, counts) -> dict:
    def entry(error, squared, total, count):
        mse = error / count
        variance = squared / count - float((total / count) @ (total / count))
        return {
            "force_mse": float(mse),
            "force_variance": float(variance),
            "fraction_unexplained": float(mse / variance) if variance > 0 else math.nan,
            "n_bead_frames": int(count),
        }

    out = {
        name: entry(sq_error[i], sq_force[i], force_sum[i], counts[i])
        for i, name in enumerate(names)
        if counts[i] > 0
    }
    out["all"] = entry(sq_error.sum(), sq_force.sum(), force_sum.sum(0), counts.sum())
    return out


# --- the public function -------------------------------------------------------------------------
def fit_classical(
    trajectory,
    mapping_or_topology,
    *,
    config: ClassicalConfig | None = None,
    bead_type_names: list[str] | None = None,
    progress: bool | None = None,
) -> tuple[CGModel, dict]:
    """Fit pair and bonded spline potentials to mapped forces (multiscale coarse-graining).

    Parameters
    ----------
    trajectory : path, ase_cg.trajectory.Trajectory or ArrayTrajectory
        Frames with forces: a CG H5MD file (``ase-cg map`` output), any
        :mod:`ase_cg.trajectory` object (a :class:`~ase_cg.trajectory.MappedTrajectory`, an
        open ``H5MDTrajectory`` …), or arrays wrapped in :class:`ArrayTrajectory`. All-atom
        frames (a file path or object) are mapped with the mapping as they are read. Read in
        chunks.
    mapping_or_topology : ase_cg.mapping.CGMapping or SystemTopology
        A mapping (bead types and bonded topology come from the frames' ``bead-type`` and
        ``mol-id``; the model carries the mapping), or the topology of the CG system directly
        (the model then has no mapping: give it one before using it on ``ase.Atoms``).
    config : ClassicalConfig, optional
        Grids, regularisation, frames, chunking (defaults: ``ClassicalConfig()``).
    bead_type_names : list of str, optional
        Names of the topology's bead-type indices (topology input only; default: the file's
        bead-type names sorted, else ``B0, B1, …``).
    progress : bool or None
        Show progress bars (``None``: only on a terminal).

    Returns
    -------
    model : CGModel
        Float64 model with one spline term per fitted kind.
    report : dict
        ``"validation"`` and ``"train"``: per bead-type name and ``"all"``, the force-matching
        error ``force_mse`` (mean over beads of |ΔF|², eV²/Å²), the mapped-force variance
        ``force_variance`` (eV²/Å²) and their ratio ``fraction_unexplained`` (validation: held-out
        frames through the model; ``None`` without held-out frames; train: ``"all"`` only,
        from the normal equations); ``"n_train_frames"``, ``"n_validation_frames"``,
        ``"n_coefficients"``, ``"fit_seconds"``, ``"frames_per_second"`` (accumulation),
        ``"samples"`` (per term and type combination), ``"pressure"`` (with a reference
        pressure: mean ``"reference_bar"`` and fitted-model ``"model_bar"`` pressure of the
        training frames, its ``"kinetic_bar"`` part and where that came from; else None).

    Raises
    ------
    FitError
        Trajectory without forces, bead counts that do not match, too few frames.
    """
    config = ClassicalConfig() if config is None else config
    disable = None if progress is None else not progress
    source, owned = open_cg_frames(trajectory, mapping_or_topology)
    try:
        return _fit(source, mapping_or_topology, config, bead_type_names, disable)
    finally:
        if owned:
            source.close()


def _fit(source, mapping_or_topology, config, bead_type_names, disable):
    where = describe_source(source)
    if not getattr(source, "has_forces", True):
        raise FitError(
            f"{where}: the trajectory has no forces; force matching needs mapped all-atom "
            "forces (write forces in the reference run, then map with ase-cg map)"
        )
    names, topology, mapping = resolve_topology(
        source, mapping_or_topology, bead_type_names, config.exclusion_bonds
    )
    if topology.n_beads != source.n_atoms:
        raise FitError(
            f"{where}: {source.n_atoms} particles per frame but the topology has "
            f"{topology.n_beads} beads; use the mapping/topology of this CG trajectory"
        )
    indices = np.arange(source.n_frames)[config.start : config.stop : config.stride]
    n_validation = int(round(config.validation_fraction * len(indices)))
    if config.validation_fraction > 0 and len(indices) >= 2:
        n_validation = max(n_validation, 1)
    train, validation = (
        indices[: len(indices) - n_validation],
        indices[len(indices) - n_validation :],
    )
    if len(train) == 0:
        raise FitError(
            f"{where}: no training frames (selected {len(indices)} of {source.n_frames} with "
            f"start={config.start}, stop={config.stop}, stride={config.stride}, "
            f"validation_fraction={config.validation_fraction})"
        )
    pbc_attr = getattr(source, "pbc", True)
    pbc = bool(np.all(pbc_attr))
    kinds = []
    if "pair" in config.terms and config.pair_r_min is None:
        kinds.append("pair")
    if "bond" in config.terms and len(topology.bonds) and config.bond_range is None:
        kinds.append("bond")
    if "angle" in config.terms and len(topology.angles) and config.angle_range is None:
        kinds.append("angle")
    started = time.perf_counter()
    ranges = _scan_ranges(source, train, topology, config, pbc, kinds, disable) if kinds else {}
    terms = _build_terms(len(names), topology, config, ranges)
    if not terms:
        raise FitError(f"config.terms={config.terms} leaves nothing to fit for this topology")
    equations = _NormalEquations(terms)
    cutoff = max(term.cutoff for term in terms)
    accumulate_start = time.perf_counter()
    pressure_source = _pressure_source(source, config, where)
    for graph, forces, _, selection in graph_chunks(
        source, train, topology, cutoff, pbc, config.chunk_size, disable, "force matching"
    ):
        pressure = None
        if pressure_source is not None:
            pressure = _pressure_rows_input(source, selection, config, pressure_source)
        equations.add(graph, forces, pressure)
    accumulate_seconds = time.perf_counter() - accumulate_start
    solution = _solve(equations, config)
    _install(equations, solution, config)
    fit_seconds = time.perf_counter() - started

    gram = equations.gram.numpy()
    rhs = equations.projection.numpy()
    train_error = float(solution @ gram @ solution - 2 * solution @ rhs + equations.force_squared)
    mean_force = equations.force_sum.numpy() / equations.n_bead_frames
    train_variance = equations.force_squared / equations.n_bead_frames - float(
        mean_force @ mean_force
    )
    train_mse = train_error / equations.n_bead_frames
    pressure_report = None
    if equations.n_pressure_frames:
        n = equations.n_pressure_frames
        kinetic_bar = (equations.pressure_target_sum - equations.pressure_residual_sum) / n
        pressure_report = {
            "reference_bar": equations.pressure_target_sum / n,
            "model_bar": kinetic_bar + float(equations.pressure_rows_sum.numpy() @ solution) / n,
            "kinetic_bar": kinetic_bar,
            "kinetic_from": pressure_source[1],
            "pressure_weight": config.pressure_weight,
            "n_frames": n,
        }
    samples = {
        f"{type(term).__name__}": {
            "-".join(names[t] for t in combination): float(term.samples[i])
            for i, combination in enumerate(term.combinations)
        }
        for term in terms
    }
    report = {
        "n_train_frames": int(len(train)),
        "n_validation_frames": int(len(validation)),
        "n_coefficients": int(equations.n_columns),
        "fit_seconds": fit_seconds,
        "frames_per_second": len(train) / accumulate_seconds if accumulate_seconds > 0 else None,
        "train": {
            "all": {
                "force_mse": train_mse,
                "force_variance": train_variance,
                "fraction_unexplained": train_mse / train_variance if train_variance > 0 else None,
                "n_bead_frames": int(equations.n_bead_frames),
            }
        },
        "validation": None,
        "samples": samples,
        "pressure": pressure_report,
    }
    provenance = {
        "method": "force matching (multiscale coarse-graining), ase_cg.fitting.fit_classical",
        "data": where,
        "fit_config": config.to_dict(),
        "train_frames": [int(train[0]), int(train[-1]), int(config.stride)],
    }
    model = CGModel(
        names,
        terms,
        mapping=mapping,
        exclusion_bonds=config.exclusion_bonds,
        provenance=provenance,
    ).double()
    if len(validation):
        report["validation"] = _force_statistics(
            model, source, validation, topology, pbc, names, config, disable
        )
        model.provenance["validation_fraction_unexplained"] = report["validation"]["all"][
            "fraction_unexplained"
        ]
    model.provenance["train_fraction_unexplained"] = report["train"]["all"]["fraction_unexplained"]
    return model, report
