"""The demo's report: verdicts, the Markdown and HTML page, metrics and figures.

:func:`write_demo_report` writes what :func:`ase_cg.demo.demo` measured into its report folder
(the layout is drawn in :mod:`ase_cg.demo`): a verdict per CG run from the thresholds
:data:`MATCH` and :data:`CLOSE`, speed and timing tables, and the figures.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ase_cg.analysis import bond_distribution, rdf
from ase_cg.io import H5MDTrajectory
from ase_cg.report import (
    AA_COLOR,
    AA_LABEL,
    FigureLink,
    Section,
    Table,
    new_figure,
    save_figure,
    write_json,
    write_report,
)

#: Verdict thresholds: RDF max |Δg| and bond-length Jensen–Shannon divergence (nats).
MATCH = {"rdf": 0.1, "bond_js": 0.02}
CLOSE = {"rdf": 0.25, "bond_js": 0.1}


def judge_run(comparison: dict) -> tuple[str, float | None, float | None]:
    """Verdict of one CG run (matches / close / differs), worst RDF max |Δg| and bond JS.

    ``comparison`` is the metrics dict of :func:`ase_cg.analysis.compare`.
    """
    rdf_errors = [v["max_abs_difference"] for v in comparison.get("rdf", {}).values()]
    bonds = [
        v["jensen_shannon"] for v in comparison.get("bonds", {}).values() if "jensen_shannon" in v
    ]
    worst_rdf = max(rdf_errors) if rdf_errors else None
    worst_bond = max(bonds) if bonds else None
    values = [(worst_rdf, "rdf"), (worst_bond, "bond_js")]
    if any(v is None or not np.isfinite(v) for v, _ in values):
        return "–", worst_rdf, worst_bond
    if all(v <= MATCH[k] for v, k in values):
        return "✅ matches", worst_rdf, worst_bond
    if all(v <= CLOSE[k] for v, k in values):
        return "🟡 close", worst_rdf, worst_bond
    return "❌ differs", worst_rdf, worst_bond


def write_demo_report(folder: Path, **kw) -> dict:
    """Write the demo report (index.md, index.html, metrics.json, figures) into ``folder``.

    ``kw`` holds what :func:`ase_cg.demo.demo` measured and used (``sizes``, ``mapping``,
    ``training``, ``summaries``, ``comparisons``, ``allatom``, ``clock``, ``notes``, ...);
    returns the metrics written to metrics.json.
    """
    sizes = kw["sizes"]  # DemoSizes
    summaries, comparisons = kw["summaries"], kw["comparisons"]
    files = {}
    files["assignment"] = plot_assignment(kw["mapping"], folder / "assignment.png")
    files["loss"] = plot_losses(kw["training"], folder / "loss.png")
    source = folder / "work" / "classical" / "potentials.png"
    if source.exists():
        os.replace(source, folder / "potentials.png")
        files["potentials"] = folder / "potentials.png"
    files.update(plot_overlays(folder, kw["mapping"], summaries))

    # verdict table
    verdict_rows, verdicts = [], {}
    for name, comparison in comparisons.items():
        verdict, worst_rdf, worst_bond = judge_run(comparison)
        verdicts[name] = verdict
        diffusion = comparison.get("diffusion", {}) or {}
        summary = summaries[name]
        pressure = comparison.get("pressure", {}) or {}
        verdict_rows.append([
            name, verdict, worst_rdf, worst_bond, diffusion.get("ratio"),
            pressure.get("difference_bar"), summary["temperature_K"], summary["thermostat"],
            f"[report](compare/{name}/index.md)",
        ])  # fmt: skip
    verdict_table = Table(
        [
            "run",
            "verdict",
            "RDF max abs Δg",
            "bond JS (nats)",
            "D_CG / D_AA",
            "P_CG − P_AA (bar)",
            "T (K)",
            "thermostat",
            "details",
        ],
        verdict_rows,
        caption=(
            f"✅ matches: RDF max abs Δg ≤ {MATCH['rdf']} and bond-length Jensen–Shannon ≤ "
            f"{MATCH['bond_js']}; 🟡 close: ≤ {CLOSE['rdf']} and ≤ {CLOSE['bond_js']}; "
            "❌ otherwise. Diffusion of a CG liquid is expected to be faster (smoother landscape); "
            "Bussi and Nosé–Hoover thermostats leave it as the dynamics make it."
        ),
    )

    # speed table: per simulated ns
    allatom = kw["allatom"]
    speed_rows = [[
        allatom["label"], allatom["engine"], allatom["n_atoms"], allatom["time_step_fs"],
        allatom["ranks"], allatom["ns_per_day"], 86400.0 / allatom["ns_per_day"],
        allatom["cpu_s_per_ns"], 1.0,
    ]]  # fmt: skip
    speed = {"allatom": allatom, "cg": {}}
    for name, summary in summaries.items():
        simulated_ns = summary["simulated_ps"] * 1e-3
        wall_per_ns = summary["wall_s"] / simulated_ns
        cpu_per_ns = summary["cpu_s"] / simulated_ns
        speedup = summary["ns_per_day"] / allatom["ns_per_day"]
        speed["cg"][name] = {
            "ns_per_day": summary["ns_per_day"],
            "wall_s_per_ns": wall_per_ns,
            "cpu_s_per_ns": cpu_per_ns,
            "speedup_vs_allatom": speedup,
        }
        speed_rows.append([
            f"CG {summary['kind']}", summary["engine"], summary["n_beads"],
            summary["time_step_fs"], summary["ranks"], summary["ns_per_day"], wall_per_ns,
            cpu_per_ns, speedup,
        ])  # fmt: skip
    speed_table = Table(
        ["model", "engine", "particles", "time step (fs)", "ranks", "ns/day", "wall s per ns",
         "CPU s per ns", "speed-up"],
        speed_rows,
        caption=f"All-atom speed: {allatom['source']}. CG: the demo's own runs (wall time "
        "includes set-up and, for LAMMPS, export and start-up; CPU time counts every process).",
    )  # fmt: skip

    training = kw["training"]
    classical = training["classical"].get("validation") or training["classical"].get("train")
    neural_rows = training["neural"]
    best = min(neural_rows, key=lambda r: r["validation_loss"])
    training_table = Table(
        [
            "model",
            "held-out mean abs ΔF² per bead (eV²/Å²)",
            "Var(F_ins) per bead (eV²/Å²)",
            "fraction unexplained",
        ],
        [
            [
                "classical (splines)",
                classical["all"]["force_mse"],
                classical["all"]["force_variance"],
                classical["all"]["fraction_unexplained"],
            ],
            [
                "neural (prior + SchNet)",
                # the trainer's loss is per force component: ×3 for |ΔF|² per bead
                3.0 * best["validation_loss"],
                3.0 * best["force_variance"],
                best["validation_fvu"],
            ],
        ],  # fmt: skip
        caption="Force matching on held-out frames (the last time block). The mapped force is "
        "noisy, so even a perfect CG potential leaves a large fraction unexplained.",
    )
    timing_table = Table(
        ["stage", "wall (s)", "CPU (s)"],
        [[r["stage"], r["wall_s"], r["cpu_s"]] for r in kw["clock"].rows],
        caption="CPU counts this process and its finished child processes (LAMMPS, MPI).",
    )
    sections = [
        Section(
            "Does the CG liquid match the all-atom one?",
            "Every CG run is compared with the all-atom reference mapped to the same beads.",
            tables=[verdict_table],
            figures=[
                FigureLink(
                    files["rdf"].name, "Bead–bead RDF: every CG run on the mapped reference"
                ),
                FigureLink(files["bonds"].name, "CG bond-length distributions"),
            ],
        ),
        Section("Speed per simulated nanosecond", tables=[speed_table]),
        Section(
            "Mapping",
            f"{kw['n_atoms']} atoms → {kw['n_beads']} beads. " + " ".join(kw["notes"]),
            figures=[FigureLink(files["assignment"].name, "Atom → bead assignment")],
        ),
        Section(
            "Force matching",
            f"{kw['n_train_frames']} of {kw['n_reference_frames']} reference frames, spread "
            f"over the trajectory; neural model {dict(sizes.neural)}, {sizes.epochs} epochs.",
            tables=[training_table],
            figures=[
                FigureLink(files["loss"].name, "Held-out fraction of force variance unexplained")
            ]
            + (
                [FigureLink("potentials.png", "Fitted classical functions")]
                if "potentials" in files
                else []
            ),
        ),  # fmt: skip
        Section("Where the time went", tables=[timing_table]),
    ]
    intro = (
        f"Liquid ethane: all-atom reference `{kw['reference']}`, mapping "
        f"`{kw['mapping_path'].name}`. CG MD steps of {sizes.time_step_fs:g} fs: "
        f"{sizes.steps} in ASE, "
        f"{sizes.lammps_steps} (classical) and {sizes.neural_lammps_steps} (neural) in LAMMPS."
        + (" **Quick mode: tiny sizes, the numbers only show that the pipeline runs.**"
           if kw["quick"] else "")
    )  # fmt: skip
    write_report(folder, "ase_cg demo: coarse-grained liquid ethane", sections, intro=intro)
    metrics = {
        "sizes": dataclasses.asdict(sizes),
        "reference": str(kw["reference"]),
        "mapping": str(kw["mapping_path"]),
        "runs": {n: {"md": summaries[n], "comparison": comparisons[n]} for n in summaries},
        "verdict": verdicts,
        "training": {"classical": training["classical"], "neural": neural_rows},
        "speed": speed,
        "timings": kw["clock"].rows,
        "notes": kw["notes"],
        "learned_mapping": kw["learned"],
        "files": {k: str(v) for k, v in files.items()},
    }
    write_json(folder / "metrics.json", metrics)
    return metrics


def plot_assignment(mapping, path: Path) -> Path:
    """Heat map of E (beads × atoms) of every molecule type."""
    types = mapping.molecule_types
    figure, axes = new_figure(1, len(types), size=(4.8 * len(types), 2.8))
    axes = np.atleast_1d(axes)
    for axis, name in zip(axes, types, strict=True):
        matrix = mapping.position_matrix(name)
        template = mapping.templates[name]
        image = axis.imshow(matrix, cmap="Blues", vmin=0.0, aspect="auto")
        axis.set_xticks(range(matrix.shape[1]), [
            f"{s}{i}" for i, s in enumerate(template.get_chemical_symbols())
        ])  # fmt: skip
        axis.set_yticks(range(matrix.shape[0]), [
            f"{b} {i}" for i, b in enumerate(mapping.bead_names[name])
        ])  # fmt: skip
        axis.set_xlabel("atom (template order)")
        axis.set_title(f"{name}: position weights E")
        figure.colorbar(image, ax=axis, label="weight")
    return save_figure(figure, path)


def plot_losses(training: dict, path: Path) -> Path:
    """Held-out force-matching error of both models over training."""
    figure, axis = new_figure(size=(6.0, 3.8))
    rows = training["neural"]
    if rows:
        epochs = [r["epoch"] for r in rows]
        axis.plot(epochs, [r["validation_fvu"] for r in rows], "o-", label="neural (held out)")
    classical = training["classical"].get("validation") or training["classical"].get("train")
    if classical:
        axis.axhline(
            classical["all"]["fraction_unexplained"], color="k", ls="--",
            label="classical splines (held out)",
        )  # fmt: skip
    axis.set_xlabel("epoch")
    axis.set_ylabel("fraction of force variance unexplained")
    axis.set_title("Force matching")
    axis.legend()
    return save_figure(figure, path)


def plot_overlays(folder: Path, mapping, summaries: dict) -> dict[str, Path]:
    """RDF and bond-length overlays of the mapped reference and every CG run."""
    mapped = folder / "work" / "mapped.h5"
    with H5MDTrajectory(mapped) as trajectory:
        cell = trajectory.cells(slice(0, 1))[0]
        bonds = trajectory.bonds
    widths = np.abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    r_max = min(15.0, 0.49 * float(widths.min()))
    n_bins = max(10, int(r_max / 0.1))
    pairs = [(a, b) for i, a in enumerate(mapping.bead_types) for b in mapping.bead_types[i:]]
    sources = {AA_LABEL: mapped} | {n: Path(s["trajectory"]) for n, s in summaries.items()}
    colours = {AA_LABEL: AA_COLOR}
    figure, axes = new_figure(1, len(pairs), size=(5.5 * len(pairs), 4.0))
    axes = np.atleast_1d(axes)
    for axis, pair in zip(axes, pairs, strict=True):
        for label, path in sources.items():
            r, g = rdf(path, r_max, n_bins, types=pair)
            width = 2.5 if label == AA_LABEL else 1.2
            axis.plot(r, g, label=label, color=colours.get(label), lw=width)
        axis.axhline(1.0, color="grey", lw=0.5)
        axis.set_xlabel("r (Å)")
        axis.set_ylabel(f"g(r) {pair[0]}–{pair[1]}")
        axis.legend(fontsize="small")
    out = {"rdf": save_figure(figure, folder / "rdf.png")}
    figure, axis = new_figure(size=(5.5, 4.0))
    if bonds is not None and len(bonds):
        lengths = [bond_distribution(p, bonds, bins=60) for p in sources.values()]
        lo = min(c[0] for c, _ in lengths)
        hi = max(c[-1] for c, _ in lengths)
        for label, path in sources.items():
            centres, density = bond_distribution(path, bonds, bins=60, range=(lo, hi))
            width = 2.5 if label == AA_LABEL else 1.2
            axis.plot(centres, density, label=label, color=colours.get(label), lw=width)
        axis.set_xlabel("bond length (Å)")
        axis.set_ylabel("probability density (1/Å)")
        axis.legend(fontsize="small")
    out["bonds"] = save_figure(figure, folder / "bonds.png")
    return out
