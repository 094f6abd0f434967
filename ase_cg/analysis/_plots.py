"""The figures of :func:`ase_cg.analysis.compare`: RDF, bonded distributions, MSD, density,
local order of one-bead molecules."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ase_cg.report import (
    AA_COLOR,
    AA_LABEL,
    CG_COLOR,
    CG_LABEL,
    new_figure,
    save_figure,
)

BONDED_LABEL = {
    "bonds": ("bond length (Å)", "1/Å"),
    "angles": ("bond angle (°)", "1/°"),
    "dihedrals": ("dihedral angle (°)", "1/°"),
}


def plot_rdf(folder, key, r, g_ref, g_cg, metrics) -> str:
    figure, (top, bottom) = new_figure(2, 1, size=(6.4, 5.2), height_ratios=(3, 1.2), sharex=True)
    top.plot(r, g_ref, color=AA_COLOR, lw=2.2, label=AA_LABEL)
    top.plot(r, g_cg, color=CG_COLOR, lw=1.4, ls="--", label=CG_LABEL)
    top.axhline(1.0, color="0.6", lw=0.8, ls=":")
    top.set_ylabel("g(r)")
    top.set_title(f"Intermolecular RDF, {key.replace('-', '–')}")
    # g ≈ 1 at large r, 0 at small r: the lower right corner is free in any liquid
    top.legend(
        frameon=False,
        loc="lower right",
        title=f"max |Δg| = {metrics['max_abs_difference']:.3f}, "
        f"IAE = {metrics['integrated_absolute_error']:.3f} Å",
        title_fontsize=9,
    )
    top.set_ylim(bottom=0.0)
    bottom.plot(r, g_cg - g_ref, color="0.2", lw=1.2)
    bottom.axhline(0.0, color="0.6", lw=0.8, ls=":")
    bottom.set_ylabel("Δg (CG − AA)")
    bottom.set_xlabel("r (Å)")
    bottom.set_xlim(0.0, r[-1] + 0.5 * (r[1] - r[0]))
    name = f"rdf_{key}.png"
    save_figure(figure, Path(folder) / name)
    return name


def plot_bonded(folder, kind, histograms) -> str:
    n = len(histograms)
    n_cols = min(n, 3)
    n_rows = -(-n // n_cols)
    figure, axes = new_figure(n_rows, n_cols, size=(4.2 * n_cols, 3.4 * n_rows))
    axes = np.atleast_1d(axes).ravel()
    xlabel, unit = BONDED_LABEL[kind]
    for ax, (key, (centres, p_ref, p_cg, js)) in zip(axes, histograms.items(), strict=False):
        ax.plot(centres, p_ref, color=AA_COLOR, lw=2.2, drawstyle="steps-mid", label=AA_LABEL)
        ax.plot(
            centres, p_cg, color=CG_COLOR, lw=1.4, ls="--", drawstyle="steps-mid", label=CG_LABEL
        )
        ax.set_title(f"{key.replace('-', '–')}   (JS = {js:.3g})", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"probability density ({unit})")
        ax.set_ylim(bottom=0.0)
        if kind == "dihedrals":
            ax.set_xlim(-180.0, 180.0)
            ax.set_xticks(np.arange(-180, 181, 60))
        ax.legend(frameon=False, fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    name = f"{kind}.png"
    save_figure(figure, Path(folder) / name)
    return name


def plot_msd(folder, curves, title) -> str:
    figure, ax = new_figure(size=(6.4, 4.4))
    for label, color, style, (t, values, fit) in (
        (AA_LABEL, AA_COLOR, "-", curves["reference"]),
        (CG_LABEL, CG_COLOR, "--", curves["cg"]),
    ):
        shown = t <= 0.5 * t[-1] if len(t) > 4 else slice(None)
        ax.plot(
            t[shown] / 1000.0,
            values[shown],
            color=color,
            lw=2.2 if style == "-" else 1.6,
            ls=style,
            label=f"{label}: D = {fit.cm2_per_s:.3g} cm²/s",
        )
        line_t = np.linspace(*fit.fit_range_fs, 20)
        ax.plot(
            line_t / 1000.0,
            fit.intercept_a2 + 2 * fit.dimensions * fit.a2_per_fs * line_t,
            color="k",
            lw=1.0,
            ls=":",
        )
    ax.plot([], [], color="k", lw=1.0, ls=":", label="linear fits (Einstein)")
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.set_title(title)
    ax.set_xlim(left=0.0)
    ax.set_ylim(bottom=0.0)
    ax.legend(frameon=False, fontsize=9, loc="upper left")
    name = "msd.png"
    save_figure(figure, Path(folder) / name)
    return name


def plot_density(folder, series) -> str:
    figure, ax = new_figure(size=(6.4, 3.4))
    for label, color, style, (t, values) in (
        (AA_LABEL, AA_COLOR, "-", series["reference"]),
        (CG_LABEL, CG_COLOR, "--", series["cg"]),
    ):
        x, xlabel = (np.arange(len(values)), "frame") if t is None else (t / 1000.0, "time (ps)")
        ax.plot(
            x, values, color=color, ls=style, lw=1.6, label=f"{label}: {np.mean(values):.4f} g/cm³"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density (g/cm³)")
    ax.set_title("Mass density")
    ax.legend(frameon=False, fontsize=9)
    name = "density.png"
    save_figure(figure, Path(folder) / name)
    return name


def plot_local_order(folder, angles, order, shell_cutoff, metrics) -> str:
    """Neighbour-angle and q distributions, each as ``(centres, p_ref, p_cg)``, side by side."""
    figure, (left, right) = new_figure(1, 2, size=(11.0, 4.0))
    for ax, (centres, p_ref, p_cg) in ((left, angles), (right, order)):
        ax.plot(centres, p_ref, color=AA_COLOR, lw=2.2, drawstyle="steps-mid", label=AA_LABEL)
        ax.plot(
            centres, p_cg, color=CG_COLOR, lw=1.4, ls="--", drawstyle="steps-mid", label=CG_LABEL
        )
        ax.set_ylim(bottom=0.0)
    left.set_xlabel("neighbour angle j–i–k (°)")
    left.set_ylabel("probability density (1/°)")
    left.set_xlim(0.0, 180.0)
    left.set_xticks(np.arange(0, 181, 30))
    left.axvline(np.degrees(np.arccos(-1.0 / 3.0)), color="0.6", lw=0.8, ls=":")
    difference = metrics["angle_max_abs_difference"]
    left.set_title(
        f"Neighbours within {shell_cutoff:.3g} Å"
        + ("" if difference is None else f"   (max |Δp| = {difference:.3g} /°)"),
        fontsize=10,
    )
    left.legend(frameon=False, fontsize=8)
    seen = np.flatnonzero((order[1] > 0) | (order[2] > 0))
    low = order[0][seen[0]] if len(seen) else -3.0
    right.set_xlim(max(-3.0, low - 0.05), 1.0)
    right.set_xlabel("tetrahedral order q")
    right.set_ylabel("probability density")
    right.set_title(
        f"q of the four nearest   (Δ mean q = {metrics['mean_q_difference']:+.3f})", fontsize=10
    )
    for side, color, style in (("reference", AA_COLOR, "-"), ("cg", CG_COLOR, "--")):
        right.axvline(metrics[f"mean_q_{side}"], color=color, lw=0.8, ls=style)
    right.legend(frameon=False, fontsize=8)
    name = "local_order.png"
    save_figure(figure, Path(folder) / name)
    return name
