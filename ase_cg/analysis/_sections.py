"""The sections of the :func:`ase_cg.analysis.compare` report: metrics, tables and figures
of the RDF, bonded distributions, density, local order of one-bead molecules, pressure,
diffusion, and the summary.
"""

from __future__ import annotations

import numpy as np
from ase import units

from ase_cg.analysis._plots import (
    BONDED_LABEL,
    plot_bonded,
    plot_density,
    plot_local_order,
    plot_msd,
    plot_rdf,
)
from ase_cg.analysis.bonded import BONDED, bin_edges
from ase_cg.analysis.metrics import integrated_absolute_error, jensen_shannon, max_abs_difference
from ase_cg.analysis.order import Q_RANGE
from ase_cg.analysis.transport import check_times, diffusion_coefficient, msd_fft
from ase_cg.report import (
    AA_LABEL,
    CG_LABEL,
    FigureLink,
    Section,
    Table,
)

_BONDED_TITLE = {"bonds": "Bond-length", "angles": "Bond-angle", "dihedrals": "Dihedral-angle"}


def _first_peak(r: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """Position (Å) and height of the first maximum of g(r).

    The first local maximum (of a 3-bin running mean, against bin noise) after g first exceeds
    1; the global maximum when g never does.
    """
    above = np.flatnonzero(g > 1.0)
    if len(above) == 0:
        k = int(np.argmax(g))
        return float(r[k]), float(g[k])
    smooth = np.convolve(g, np.ones(3) / 3, mode="same")
    k = int(above[0])
    while k + 1 < len(g) and smooth[k + 1] >= smooth[k]:
        k += 1
    k = max(0, k - 1) + int(np.argmax(g[max(0, k - 1) : k + 2]))
    return float(r[k]), float(g[k])


def _js_or_disjoint(p, q) -> float:
    """:func:`jensen_shannon`, or ln 2 when one histogram is empty (all values off the bins)."""
    if np.sum(p) == 0 or np.sum(q) == 0:
        return float(np.log(2.0))
    return jensen_shannon(p, q)


def _times_or_none(times) -> np.ndarray | None:
    if times is None or any(t is None for t in times) or len(times) < 3:
        return None
    return np.asarray(times, dtype=np.float64)


def rdf_section(folder, observed, pairs, r_max, n_bins) -> tuple[dict, list]:
    """RDF metrics, table and figures of :func:`compare`."""
    metrics, sections = {}, []
    r, g_ref = observed["reference"].rdf.result()
    _, g_cg = observed["cg"].rdf.result()
    halves = {}  # max |Δg| between the first and the second half of each run: its noise
    for side in observed:
        if observed[side].n_frames >= 2:
            first_half = observed[side].rdf.result(0)[1]
            second_half = observed[side].rdf.result(1)[1]
            halves[side] = np.max(np.abs(first_half - second_half), axis=1)
    metrics["rdf"] = {}
    rdf_rows, rdf_figures = [], []
    for k, (a, b) in enumerate(pairs):
        key = f"{a}-{b}"
        entry = {
            "max_abs_difference": max_abs_difference(g_ref[k], g_cg[k]),
            "integrated_absolute_error": integrated_absolute_error(r, g_ref[k], g_cg[k]),
            "first_peak_reference": dict(zip(("r_A", "g"), _first_peak(r, g_ref[k]), strict=True)),
            "first_peak_cg": dict(zip(("r_A", "g"), _first_peak(r, g_cg[k]), strict=True)),
            "halves_max_abs_difference_reference": (
                float(halves["reference"][k]) if "reference" in halves else None
            ),
            "halves_max_abs_difference_cg": float(halves["cg"][k]) if "cg" in halves else None,
        }
        metrics["rdf"][key] = entry
        rdf_rows.append(
            [
                key,
                entry["max_abs_difference"],
                entry["integrated_absolute_error"],
                entry["first_peak_reference"]["r_A"],
                entry["first_peak_cg"]["r_A"],
                entry["first_peak_reference"]["g"],
                entry["first_peak_cg"]["g"],
                entry["halves_max_abs_difference_reference"],
                entry["halves_max_abs_difference_cg"],
            ]
        )
        name = plot_rdf(folder, key, r, g_ref[k], g_cg[k], entry)
        rdf_figures.append(
            FigureLink(
                name,
                f"Intermolecular RDF {key}: {AA_LABEL} vs {CG_LABEL}, with the difference below.",
            )
        )
    sections.append(
        Section(
            "Radial distribution functions",
            f"Intermolecular bead–bead g(r) up to {r_max:.2f} Å in {n_bins} bins, pairs within one "
            "molecule excluded (and from the normalisation, so g → 1 at large r). max |Δg| is the "
            "largest difference over all bins; IAE = ∫|g_CG − g_AA| dr. The last two columns "
            "are the max |Δg| between the first and the second half of each run: the "
            "statistical noise of g on these bins (each half has half the frames, so this is "
            "about √2 × the noise of a full-length comparison); a max |Δg| near them is noise.",
            [
                Table(
                    [
                        "pair",
                        "max |Δg|",
                        "IAE (Å)",
                        "peak r AA (Å)",
                        "peak r CG (Å)",
                        "peak g AA",
                        "peak g CG",
                        "halves AA",
                        "halves CG",
                    ],
                    rdf_rows,
                )
            ],
            rdf_figures,
        )
    )

    return metrics, sections


def bonded_section(folder, observed, bins_of) -> tuple[dict, list]:
    """Bond, angle and dihedral metrics, tables and figures of :func:`compare`."""
    metrics, sections = {}, []
    bonded_tables, bonded_figures = [], []
    for kind, _, _ in BONDED:
        values = {s: observed[s].bonded[kind] for s in observed}
        keys = sorted(set(values["reference"]) | set(values["cg"]))
        metrics[kind] = {}
        histograms, rows = {}, []
        for key in keys:
            if key not in values["reference"] or key not in values["cg"]:
                only = "reference" if key in values["reference"] else "CG"
                metrics[kind][key] = {"only_in": only}
                rows.append([key, f"only in the {only}", "–", None, None, None])
                continue
            ref_values = np.concatenate(values["reference"][key])
            cg_values = np.concatenate(values["cg"][key])
            if kind == "dihedrals":
                value_range = (-180.0, 180.0)
            else:
                pooled = np.concatenate([ref_values, cg_values])
                low, high = np.percentile(pooled, [0.05, 99.95])
                pad = 0.05 * max(high - low, 1e-3)
                value_range = (low - pad, high + pad)
            edges = bin_edges(bins_of[kind], value_range, kind)
            p_ref = np.histogram(ref_values, bins=edges, density=True)[0]
            p_cg = np.histogram(cg_values, bins=edges, density=True)[0]
            js = _js_or_disjoint(p_ref, p_cg)
            # JS between the two halves of each run: its finite-sample floor on these bins
            halves = {}
            for side in ("reference", "cg"):
                per_frame = values[side][key]
                if len(per_frame) >= 2:
                    middle = (len(per_frame) + 1) // 2
                    halves[side] = _js_or_disjoint(
                        *(
                            np.histogram(np.concatenate(part), bins=edges)[0]
                            for part in (per_frame[:middle], per_frame[middle:])
                        )
                    )
            entry = {
                "jensen_shannon": js,
                "halves_jensen_shannon_reference": halves.get("reference"),
                "halves_jensen_shannon_cg": halves.get("cg"),
                "mean_reference": float(ref_values.mean()),
                "std_reference": float(ref_values.std()),
                "mean_cg": float(cg_values.mean()),
                "std_cg": float(cg_values.std()),
            }
            metrics[kind][key] = entry
            histograms[key] = (0.5 * (edges[1:] + edges[:-1]), p_ref, p_cg, js)
            rows.append(
                [
                    key,
                    f"{entry['mean_reference']:.4g} ± {entry['std_reference']:.2g}",
                    f"{entry['mean_cg']:.4g} ± {entry['std_cg']:.2g}",
                    js,
                    entry["halves_jensen_shannon_reference"],
                    entry["halves_jensen_shannon_cg"],
                ]
            )
        if not keys:
            continue
        unit = BONDED_LABEL[kind][0].split("(")[-1].rstrip(")")
        bonded_tables.append(
            Table(
                [
                    "type",
                    f"AA mean ± std ({unit})",
                    f"CG mean ± std ({unit})",
                    "JS (nats)",
                    "JS halves AA",
                    "JS halves CG",
                ],
                rows,
                caption=kind,
            )
        )
        if histograms:
            name = plot_bonded(folder, kind, histograms)
            bonded_figures.append(
                FigureLink(name, f"{_BONDED_TITLE[kind]} distributions: {AA_LABEL} vs {CG_LABEL}.")
            )
    if bonded_tables:
        sections.append(
            Section(
                "Bonded distributions",
                "Minimum-image distributions on common bins; JS is the Jensen–Shannon divergence "
                "of the two histograms (0 = identical, ln 2 ≈ 0.693 = no overlap). 'JS halves' "
                "compares the first and the second half of one run: the floor that sampling "
                "noise sets on these bins (with half the samples each, so about twice the floor "
                "of the full-length comparison).",
                bonded_tables,
                bonded_figures,
            )
        )

    return metrics, sections


def density_section(folder, observed) -> tuple[dict, list]:
    """Density metrics, table and figure of :func:`compare`."""
    metrics, sections = {}, []
    rho = {s: np.asarray(observed[s].densities) for s in observed}

    def spread(values):  # standard deviation, rounding noise of a constant volume shown as 0
        std = float(values.std())
        return std if std > 1e-12 * abs(float(values.mean())) else 0.0

    metrics["density"] = {
        "reference_g_cm3": float(rho["reference"].mean()),
        "reference_std_g_cm3": spread(rho["reference"]),
        "cg_g_cm3": float(rho["cg"].mean()),
        "cg_std_g_cm3": spread(rho["cg"]),
        "relative_difference": float(rho["cg"].mean() / rho["reference"].mean() - 1.0),
    }
    times = {s: _times_or_none(observed[s].times) for s in observed}
    name = plot_density(folder, {s: (times[s], rho[s]) for s in observed})
    d = metrics["density"]
    sections.append(
        Section(
            "Density",
            "Mass density of each frame (total bead mass / cell volume); constant in NVT runs.",
            [
                Table(
                    ["", "mean (g/cm³)", "std (g/cm³)"],
                    [
                        [AA_LABEL, d["reference_g_cm3"], d["reference_std_g_cm3"]],
                        [CG_LABEL, d["cg_g_cm3"], d["cg_std_g_cm3"]],
                        ["relative difference (CG/AA − 1)", d["relative_difference"], None],
                    ],
                )
            ],
            [FigureLink(name, "Density of each frame.")],
        )
    )

    return metrics, sections


def local_order_section(folder, observed, shell_cutoff, angle_bins) -> tuple[dict, list]:
    """Neighbour-angle and tetrahedral-order metrics, table and figure of :func:`compare`
    (one-bead molecules on both sides; otherwise only the reason in the metrics)."""
    skipped = [
        f"{observed[s].label}: {observed[s].order_skipped}"
        for s in observed
        if observed[s].order_skipped is not None
    ]
    if skipped:
        return {"local_order": {"skipped": "; ".join(skipped)}}, []
    angle_edges = bin_edges(angle_bins, (0.0, 180.0), "angle_bins")
    q_edges = np.linspace(*Q_RANGE, 201)
    angles = {s: np.concatenate(observed[s].shell_angles) for s in observed}
    q = {s: np.concatenate(observed[s].order_parameters) for s in observed}
    have_angles = all(len(values) for values in angles.values())

    def density(values, edges):
        if len(values) == 0:
            return np.zeros(len(edges) - 1)
        return np.histogram(values, bins=edges, density=True)[0]

    p_angle = {s: density(angles[s], angle_edges) for s in observed}
    p_q = {s: density(q[s], q_edges) for s in observed}
    halves = {}  # max |Δp| between the first and the second half of each run: its noise
    for side in observed:
        per_frame = observed[side].shell_angles
        middle = (len(per_frame) + 1) // 2
        parts = [np.concatenate(part) for part in (per_frame[:middle], per_frame[middle:])]
        if len(per_frame) >= 2 and all(len(part) for part in parts):
            halves[side] = max_abs_difference(*(density(part, angle_edges) for part in parts))
    metrics = {"shell_cutoff_A": float(shell_cutoff)}
    metrics["angle_max_abs_difference"] = (
        max_abs_difference(p_angle["reference"], p_angle["cg"]) if have_angles else None
    )
    metrics["angle_jensen_shannon"] = (
        jensen_shannon(p_angle["reference"], p_angle["cg"]) if have_angles else None
    )
    for side in observed:
        metrics[f"halves_angle_max_abs_difference_{side}"] = halves.get(side)
    for side in observed:
        metrics[f"mean_angle_{side}"] = float(angles[side].mean()) if len(angles[side]) else None
        per_frame = np.array([values.mean() for values in observed[side].order_parameters])
        error = _block_error(per_frame)
        metrics[f"mean_q_{side}"] = float(q[side].mean())
        metrics[f"std_q_{side}"] = float(q[side].std())
        metrics[f"mean_q_error_{side}"] = None if np.isnan(error) else error
    metrics["mean_q_difference"] = metrics["mean_q_cg"] - metrics["mean_q_reference"]
    name = plot_local_order(
        folder,
        (0.5 * (angle_edges[1:] + angle_edges[:-1]), p_angle["reference"], p_angle["cg"]),
        (0.5 * (q_edges[1:] + q_edges[:-1]), p_q["reference"], p_q["cg"]),
        shell_cutoff,
        metrics,
    )

    def counted(side):
        n_beads = observed[side].n_beads * observed[side].n_frames
        return len(angles[side]) / n_beads

    table = Table(
        ["", "mean angle (°)", "angles per bead", "mean q", "std q", "error of mean q"],
        [
            [
                AA_LABEL if side == "reference" else CG_LABEL,
                metrics[f"mean_angle_{side}"],
                counted(side),
                metrics[f"mean_q_{side}"],
                metrics[f"std_q_{side}"],
                metrics[f"mean_q_error_{side}"],
            ]
            for side in observed
        ],
    )
    comparison = Table(
        ["metric", "value"],
        [
            ["max |Δp| of the angle distribution (1/°)", metrics["angle_max_abs_difference"]],
            ["JS of the angle distributions (nats)", metrics["angle_jensen_shannon"]],
            [
                "max |Δp| between halves, AA (1/°)",
                metrics["halves_angle_max_abs_difference_reference"],
            ],
            ["max |Δp| between halves, CG (1/°)", metrics["halves_angle_max_abs_difference_cg"]],
            ["Δ mean q (CG − AA)", metrics["mean_q_difference"]],
        ],
    )
    text = (
        f"Every molecule is one bead. Angles j–i–k between each bead i and every pair of its "
        f"neighbours j, k within {shell_cutoff:.3g} Å (the first shell; minimum image), on "
        f"{len(angle_edges) - 1} bins over 0°–180°; the tetrahedral order parameter "
        "q = 1 − 3/8 Σ_{j<k} (cos ψ_jk + 1/3)² of each bead's four nearest neighbours "
        "(Errington & Debenedetti 2001: 1 for a perfect tetrahedron, mean 0 for an ideal gas). "
        "Pair potentials reproduce g(r) but usually not these. The error of mean q is the "
        "standard error from 5 blocks of frames."
    )
    if not have_angles:
        text += (
            f" No bead of the {' or '.join(s for s in observed if not len(angles[s]))} run has "
            f"two neighbours within {shell_cutoff:.3g} Å: give the first minimum of g(r) as the "
            "shell cutoff (--shell-cutoff)."
        )
    figure = FigureLink(name, f"Neighbour-angle and q distributions: {AA_LABEL} vs {CG_LABEL}.")
    return {"local_order": metrics}, [
        Section("Local order (one-bead molecules)", text, [table, comparison], [figure])
    ]


def stored_pressures(frames) -> np.ndarray | None:
    """Per-frame pressure (bar) stored with a trajectory (``observables/pressure``), or None."""
    if "pressure" not in getattr(frames, "observable_names", ()):
        return None
    return np.asarray(frames.observable("pressure")) / units.bar


def _block_error(values: np.ndarray, n_blocks: int = 5) -> float:
    """Standard error of the mean of a correlated series from ``n_blocks`` block means."""
    if len(values) < n_blocks:
        return float("nan")
    means = [block.mean() for block in np.array_split(values, n_blocks)]
    return float(np.std(means, ddof=1) / np.sqrt(n_blocks))


def pressure_section(pressures: dict) -> tuple[dict, list]:
    """Pressure metrics and table of :func:`compare` (when both runs store their pressure)."""
    missing = [side for side, values in pressures.items() if values is None]
    if missing:
        reason = (
            f"no observables/pressure in the {' and '.join(missing)} trajectory (ase-cg "
            "reference and ase-cg simulate store it; ase-cg reference --add-pressure FILE adds "
            "it to an older reference)"
        )
        return {"pressure": {"skipped": reason}}, [Section("Pressure", reason, [], [])]
    p = pressures
    metrics = {
        "reference_bar": float(p["reference"].mean()),
        "reference_error_bar": _block_error(p["reference"]),
        "cg_bar": float(p["cg"].mean()),
        "cg_error_bar": _block_error(p["cg"]),
        "difference_bar": float(p["cg"].mean() - p["reference"].mean()),
    }
    table = Table(
        ["", "mean (bar)", "standard error (bar, 5 blocks)"],
        [
            [AA_LABEL, metrics["reference_bar"], metrics["reference_error_bar"]],
            [CG_LABEL, metrics["cg_bar"], metrics["cg_error_bar"]],
            ["difference (CG − AA)", metrics["difference_bar"], None],
        ],
    )
    text = (
        "Mean pressure (kinetic + virial) of the stored frames; for an NVT CG run at the "
        "reference's volume the two should agree (ase-cg refine corrects it)."
    )
    return {"pressure": metrics}, [Section("Pressure", text, [table], [])]


def diffusion_section(folder, observed, fit_range_fs) -> tuple[dict, list]:
    """MSD, diffusion coefficients, table and figure of :func:`compare`."""
    metrics, sections = {}, []
    times = {s: _times_or_none(observed[s].times) for s in observed}
    if any(t is None for t in times.values()):
        reasons = [
            f"the {observed[s].label} run has "
            + ("fewer than 3 frames" if observed[s].n_frames < 3 else "no frame times")
            for s, t in times.items()
            if t is None
        ]
        metrics["diffusion"] = {"skipped": "; ".join(reasons)}
        sections.append(Section("Diffusion", f"Skipped: {metrics['diffusion']['skipped']}."))
    else:
        curves = {}
        for side in observed:
            check_times(times[side], len(times[side]), observed[side].label)
            lags = times[side] - times[side][0]
            values = msd_fft(np.stack(observed[side].centres))
            fit_range = fit_range_fs or (0.1 * lags[-1], 0.5 * lags[-1])
            curves[side] = (lags, values, diffusion_coefficient(lags, values, fit_range))
        fits = {side: curves[side][2] for side in curves}
        metrics["diffusion"] = {
            "of": observed["cg"].msd_of,
            "reference_cm2_s": fits["reference"].cm2_per_s,
            "cg_cm2_s": fits["cg"].cm2_per_s,
            "reference_A2_fs": fits["reference"].a2_per_fs,
            "cg_A2_fs": fits["cg"].a2_per_fs,
            "ratio": float(fits["cg"].cm2_per_s / fits["reference"].cm2_per_s),
            "reference_fit_range_fs": list(fits["reference"].fit_range_fs),
            "cg_fit_range_fs": list(fits["cg"].fit_range_fs),
        }
        name = plot_msd(folder, curves, f"MSD of {observed['cg'].msd_of}")
        dm = metrics["diffusion"]

        def ps(fit):
            return f"{fit.fit_range_fs[0] / 1000:.3g}–{fit.fit_range_fs[1] / 1000:.3g}"

        sections.append(
            Section(
                "Diffusion",
                f"Mean-squared displacement of {dm['of']} (unwrapped, averaged over time "
                "origins); D from a line MSD = 6Dt + c fitted over the lag times in the table "
                "(default 10 %–50 % of each run's span: past the ballistic start, before the "
                "noisy long lags; give a common range with --fit-range). CG dynamics are "
                "usually faster than all-atom (smoother free-energy surface, less friction): "
                "the ratio measures that speed-up.",
                [
                    Table(
                        ["", "D (cm²/s)", "D (Å²/fs)", "fit range (ps)"],
                        [
                            [
                                AA_LABEL,
                                dm["reference_cm2_s"],
                                dm["reference_A2_fs"],
                                ps(fits["reference"]),
                            ],
                            [CG_LABEL, dm["cg_cm2_s"], dm["cg_A2_fs"], ps(fits["cg"])],
                            ["ratio D_CG / D_AA", dm["ratio"], None, ""],
                        ],
                    )
                ],
                [
                    FigureLink(
                        name,
                        "MSD up to half of each run's span, with the fitted lines (black, "
                        "dotted) over their fit ranges.",
                    )
                ],
            )
        )

    return metrics, sections


def summary_section(metrics, inputs) -> Section:
    """The first section of the report: one row per quantity, both values and the metric."""

    def pm(mean, std, digits=4):
        return f"{mean:.{digits}g} ± {std if std > 1e-9 * abs(mean) else 0.0:.2g}"

    summary_rows = []

    def row(quantity, reference, cg, metric, value):
        summary_rows.append([quantity, reference, cg, metric, value])

    for key, v in metrics["rdf"].items():
        peaks = [f"{v[f'first_peak_{s}']['r_A']:.3g} Å, {v[f'first_peak_{s}']['g']:.3g}"
                 for s in ("reference", "cg")]  # fmt: skip
        row(f"RDF {key}: first peak r (Å), g", *peaks, "max |Δg|", v["max_abs_difference"])
    for kind, _, _ in BONDED:
        unit = BONDED_LABEL[kind][0].split("(")[-1].rstrip(")")
        for key, v in metrics[kind].items():
            if "jensen_shannon" in v:
                row(f"{kind[:-1]} {key} ({unit})", pm(v["mean_reference"], v["std_reference"]),
                    pm(v["mean_cg"], v["std_cg"]), "JS divergence (nats)",
                    v["jensen_shannon"])  # fmt: skip
    d = metrics["density"]
    row("density (g/cm³)", pm(d["reference_g_cm3"], d["reference_std_g_cm3"]),
        pm(d["cg_g_cm3"], d["cg_std_g_cm3"]), "CG/AA − 1", d["relative_difference"])  # fmt: skip
    lo = metrics["local_order"]
    if "skipped" not in lo:
        if lo["angle_max_abs_difference"] is not None:
            row(f"neighbour angle within {lo['shell_cutoff_A']:.3g} Å (°), mean",
                f"{lo['mean_angle_reference']:.4g}", f"{lo['mean_angle_cg']:.4g}",
                "max |Δp| (1/°)", lo["angle_max_abs_difference"])  # fmt: skip
        row("tetrahedral order q", pm(lo["mean_q_reference"], lo["std_q_reference"]),
            pm(lo["mean_q_cg"], lo["std_q_cg"]), "Δ mean q (CG − AA)",
            lo["mean_q_difference"])  # fmt: skip
    pr = metrics["pressure"]
    if "cg_bar" in pr:
        row("pressure (bar)", pm(pr["reference_bar"], pr["reference_error_bar"]),
            pm(pr["cg_bar"], pr["cg_error_bar"]), "CG − AA (bar)",
            pr["difference_bar"])  # fmt: skip
    dm = metrics["diffusion"]
    if "ratio" in dm:
        row("D (cm²/s)", f"{dm['reference_cm2_s']:.3e}", f"{dm['cg_cm2_s']:.3e}", "D_CG / D_AA",
            dm["ratio"])  # fmt: skip
    input_rows = [
        [
            AA_LABEL if s == "reference" else CG_LABEL,
            v["source"],
            v["n_frames"],
            v["n_beads"],
            v["n_molecules"],
        ]
        for s, v in inputs.items()
    ]
    return Section(
        "Summary",
        "",
        [
            Table(["quantity", AA_LABEL, CG_LABEL, "metric", "value"], summary_rows),
            Table(["trajectory", "source", "frames", "beads", "molecules"], input_rows),
        ],
    )
