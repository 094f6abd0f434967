"""Figures of fitted spline models (:func:`plot_classical`)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ase_cg.fitting.config import FitError
from ase_cg.potentials.base import CGModel
from ase_cg.potentials.classical import SplineTerm
from ase_cg.report import new_figure, save_figure


def plot_classical(model: CGModel, path: str | os.PathLike, *, n_points: int = 400) -> Path:
    """Plot every spline term of ``model`` (energy per type combination) to a PNG.

    One panel per term: solid lines over the sampled range, dashed over the extrapolation;
    angles and dihedrals in degrees. Written atomically.

    Parameters
    ----------
    model : CGModel
    path : str or Path
        Output ``.png``.
    n_points : int
        Points per curve.

    Returns
    -------
    Path of the written file.
    """
    terms = [term for term in model.terms if isinstance(term, SplineTerm)]
    if not terms:
        raise FitError("plot_classical: the model has no spline terms to plot")
    names = model.bead_type_names
    figure, axes = new_figure(1, len(terms), size=(4.2 * len(terms), 3.6))
    axes = np.atleast_1d(axes)
    for axis, term in zip(axes, terms, strict=True):
        angular = term.kind in ("angle", "dihedral", "threebody")
        scale = 180.0 / math.pi if angular else 1.0
        for index, combination in enumerate(term.combinations):
            if float(term.samples[index]) <= 0:
                continue
            lower, upper = float(term.lower[index]), float(term.upper[index])
            start, stop = term.default_range(combination)
            if term.kind == "pair":
                start = max(start, lower - 0.5)
            elif term.kind == "bond":
                width = upper - lower
                start, stop = max(lower - 0.5 * width, 0.0), upper + 0.5 * width
            x = np.linspace(start, stop, n_points)
            energy, _ = term.evaluate(x, combination)
            label = "-".join(names[t] for t in combination)
            inside = (x >= lower) & (x <= upper)
            (line,) = axis.plot(x[inside] * scale, energy[inside], label=label)
            for part in (x < lower, x > upper):
                if part.any():
                    axis.plot(x[part] * scale, energy[part], "--", color=line.get_color())
        sampled = [
            float(term.upper[i] - term.lower[i]) > 0 and float(term.samples[i]) > 0
            for i in range(len(term.combinations))
        ]
        if term.kind == "pair" and any(sampled):
            visible = [
                term.evaluate(np.linspace(float(term.lower[i]), term.grid.stop, n_points), c)[0]
                for i, c in enumerate(term.combinations)
                if sampled[i]
            ]
            low = min(v.min() for v in visible)
            axis.set_ylim(low - 0.1 * abs(low) - 1e-3, max(0.05, 3 * abs(low)))
        axis.axhline(0.0, color="0.7", lw=0.8)
        symbol = {"pair": "r (Å)", "bond": "r (Å)", "angle": "θ (deg)", "dihedral": "φ (deg)",
                  "threebody": "θ_jik (deg)"}  # fmt: skip
        axis.set_xlabel(symbol[term.kind])
        # the three-body f(θ) is the energy of a triple with both neighbours at g(r) = 1
        axis.set_ylabel("f(θ) (eV)" if term.kind == "threebody" else "energy (eV)")
        axis.set_title(type(term).__name__)
        axis.legend(fontsize=8)
    save_figure(figure, path, dpi=120)
    return Path(path)
