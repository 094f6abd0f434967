"""The water demo: one-site CG water where many-body terms matter (``ase-cg demo --system water``).

Pair potentials reproduce the O–O radial distribution of water but not the tetrahedral order of
its first shell; a three-body or many-body term can. On an all-atom SPC/E reference (the shipped
``data/water_aa.h5``, or one generated here when it is missing) mapped to one bead per molecule
(centre of mass, ``data/water_mapping.json``), on the same frames and pair cutoff:

* ``pair``: pair splines fitted by force matching;
* ``pair + three-body``: pair splines and a Stillinger–Weber-type angular term
  (:class:`~ase_cg.potentials.ThreeBodySpline`) fitted together, run in LAMMPS as
  ``sw/angle/table``;
* ``neural``: a SchNet term trained on top of the ``pair`` model (its prior), run in LAMMPS
  through the ``cgtorch`` plugin;

each runs NVT in LAMMPS at the reference volume and temperature and is compared with the
mapped reference (:func:`ase_cg.analysis.compare`): RDF, the neighbour-angle distribution within
the first shell, the tetrahedral order parameter q, the pressure. The report folder::

    water-report/
    ├── index.md, metrics.json   the comparison table, timings
    ├── compare/<model>/         the full ase-cg compare report of each run (local_order.png …)
    └── work/                    mapped reference, configs, models, CG runs, LAMMPS decks
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import yaml

from ase_cg._paths import write_text_atomic
from ase_cg.analysis import compare
from ase_cg.demo import StageClock, read_metrics
from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory
from ase_cg.mapping import CGMapping, map_trajectory
from ase_cg.model import load_model
from ase_cg.pipeline import simulate, train_model
from ase_cg.reference import WATER, generate_reference
from ase_cg.shipped import DATA_DIR, shipped_data

__all__ = ["PAIR_CUTOFF", "WaterDemoSizes", "fit_water_models", "run_and_compare", "water_demo"]

#: Å, pair range of every water model (SPC/E's g(r) is within ±0.02 of 1 beyond ~9 Å).
PAIR_CUTOFF = 9.0
#: K, the SPC/E reference's temperature.
TEMPERATURE = 300.0


@dataclasses.dataclass(frozen=True)
class WaterDemoSizes:
    """How big the water demo runs are (the defaults fit ~10 minutes on 2 CPU cores)."""

    frames: int = 100
    """Reference frames used to fit and train (spread over the file)."""
    steps: int = 10000
    """NVT steps (2 fs) of each classical model in LAMMPS."""
    neural_steps: int = 1000
    """NVT steps (2 fs) of the neural model in LAMMPS (the plugin: slower per step)."""
    neural_frames: int = 30
    """Frames the neural term trains on (SchNet training on 1000 beads costs ~1 s CPU per
    frame and epoch: the demo's budget)."""
    epochs: int = 2
    """Passes of neural training over its frames."""
    neural: tuple = (("n_atom_basis", 16), ("n_filters", 16), ("n_interactions", 2),
                     ("n_rbf", 12), ("cutoff", 5.0), ("seed", 0))  # fmt: skip
    """NeuralConfig fields of the demo's SchNet term."""
    reference_molecules: int = 216
    """Molecules of the reference generated when the shipped one is missing."""
    reference_frames: int = 40
    """Frames of such a generated reference (0.5 ps apart)."""

    @classmethod
    def quick(cls) -> WaterDemoSizes:
        """Tiny sizes for smoke tests (about a minute)."""
        return cls(
            frames=8, steps=200, neural_steps=20, neural_frames=4, epochs=1,
            neural=(("n_atom_basis", 8), ("n_filters", 8), ("n_interactions", 1),
                    ("n_rbf", 8), ("cutoff", 4.5), ("seed", 0)),
            reference_molecules=64, reference_frames=10,
        )  # fmt: skip


def fit_water_models(
    mapped: str | os.PathLike,
    mapping_path: str | os.PathLike,
    work: str | os.PathLike,
    *,
    frames: int,
    neural: dict | None = None,
    neural_frames: int | None = None,
    epochs: int = 3,
    seed: int = 0,
    temperature: float = TEMPERATURE,
) -> dict[str, dict]:
    """Fit the pair and pair + three-body models (and train the neural one) on mapped water.

    Parameters
    ----------
    mapped : path
        Mapped (one-bead) reference with forces.
    mapping_path : path
        The mapping JSON recorded in the models.
    work : path
        Folder of the models (``<work>/<slug>/model.pt``) and their configs.
    frames : int
        Frames to fit on, spread over the file (the last 20 % of them held out).
    neural : dict, optional
        NeuralConfig fields of a SchNet term trained on top of the pair model; None: no neural
        model.
    neural_frames : int, optional
        Frames the neural term trains on, spread over the file (default ``frames``).
    epochs, seed : int
        Neural training.
    temperature : float, K

    Returns
    -------
    dict
        Model name → ``{"path", "fraction_unexplained"}`` (held-out force residual).
    """
    work = Path(work)
    with H5MDTrajectory(mapped) as trajectory:
        stride = max(1, trajectory.n_frames // frames)
    selection = {"stride": stride, "stop": stride * frames}
    models = {}
    for name, terms in (("pair", ["pair"]), ("pair + three-body", ["pair", "threebody"])):
        folder = work / slug(name)
        config = folder / "fit.yaml"
        _write_yaml(config, {"classical": {"terms": terms, "pair_cutoff": PAIR_CUTOFF,
                                           **selection}})  # fmt: skip
        path = train_model(mapped, folder, kind="classical", mapping_path=mapping_path,
                           config_path=config, temperature=temperature)  # fmt: skip
        report = load_model(path).provenance["fit_report"]
        models[name] = {
            "path": path,
            "fraction_unexplained": report["validation"]["all"]["fraction_unexplained"],
        }
    if neural is not None:
        neural_frames = frames if neural_frames is None else int(neural_frames)
        with H5MDTrajectory(mapped) as trajectory:
            neural_stride = max(1, trajectory.n_frames // neural_frames)
        folder = work / "neural"
        config = folder / "train.yaml"
        _write_yaml(config, {
            "train": {"epochs": epochs, "batch_frames": 2, "frame_stride": neural_stride,
                      "max_frames": neural_frames, "seed": seed, "early_stopping": 0,
                      "progress": False},
            "neural": {**neural, "prior_model": str(models["pair"]["path"])},
        })  # fmt: skip
        path = train_model(mapped, folder, kind="neural", mapping_path=mapping_path,
                           config_path=config, temperature=temperature)  # fmt: skip
        rows = read_metrics(folder / "metrics.csv")
        models["neural"] = {"path": path, "fraction_unexplained": rows[-1]["validation_fvu"]}
    return models


def run_and_compare(
    models: dict[str, dict],
    mapped: str | os.PathLike,
    work: str | os.PathLike,
    compare_dir: str | os.PathLike,
    *,
    steps: dict[str, int],
    temperature: float = TEMPERATURE,
    ranks: int = 1,
    seed: int = 11,
) -> list[dict]:
    """NVT in LAMMPS of each model from the reference's last frame, compared with it.

    Parameters
    ----------
    models : dict
        As returned by :func:`fit_water_models` (name → ``{"path", "fraction_unexplained"}``).
    mapped : path
        The mapped reference (start structure and comparison target).
    work, compare_dir : path
        Folders of the runs (``nvt_<slug>.h5`` and its LAMMPS folder) and of the comparison
        reports (``<compare_dir>/<slug>/``).
    steps : dict
        NVT steps (2 fs) per model name.

    Returns
    -------
    list of dict
        One row per model: ``fraction_unexplained``, ``rdf_max_abs_dg``,
        ``angle_max_abs_difference`` (per degree) and the reference's own halves noise of it,
        ``angle_jensen_shannon``, ``mean_q_reference``/``_cg``/``_difference``/``error_cg``,
        ``pressure_bar`` and ``reference_pressure_bar`` (when the reference has one),
        ``ns_per_day`` of the run, ``steps``.
    """
    work, compare_dir = Path(work), Path(compare_dir)
    rows = []
    for name, model in models.items():
        run = work / f"nvt_{slug(name)}.h5"
        started = time.perf_counter()
        simulate(model["path"], engine="lammps", start=mapped, output=run, ensemble="nvt",
                 temperature=temperature, time_step_fs=2.0, steps=steps[name],
                 interval=max(1, steps[name] // 100), seed=seed, ranks=ranks,
                 progress=False)  # fmt: skip
        seconds = time.perf_counter() - started
        metrics = compare(mapped, run, output_dir=compare_dir / slug(name))
        order = metrics["local_order"]
        pressure = metrics.get("pressure") or {}
        rows.append({
            "model": name,
            "fraction_unexplained": model["fraction_unexplained"],
            "rdf_max_abs_dg": max(v["max_abs_difference"] for v in metrics["rdf"].values()),
            "angle_max_abs_difference": order["angle_max_abs_difference"],
            "angle_halves_noise_reference": order["halves_angle_max_abs_difference_reference"],
            "angle_jensen_shannon": order["angle_jensen_shannon"],
            "mean_q_reference": order["mean_q_reference"],
            "mean_q_cg": order["mean_q_cg"],
            "mean_q_error_cg": order.get("mean_q_error_cg"),
            "mean_q_difference": order["mean_q_difference"],
            "pressure_bar": pressure.get("cg_bar"),
            "reference_pressure_bar": pressure.get("reference_bar"),
            "steps": steps[name],
            "ns_per_day": steps[name] * 2e-6 / seconds * 86400.0,
        })  # fmt: skip
    return rows


def comparison_table(rows: list[dict]) -> str:
    """Markdown table of :func:`run_and_compare`'s rows, with the all-atom values on top."""

    def number(value, fmt):
        return "—" if value is None else format(value, fmt)

    first = rows[0]
    noise = number(first["angle_halves_noise_reference"], ".4f")
    lines = [
        "| model | held-out FVU | RDF max abs Δg | angle max abs Δp (1/deg) | mean q | "
        "pressure (bar) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| all-atom SPC/E (mapped) | — | — | {noise} (its halves) | "
        f"{first['mean_q_reference']:.3f} | "
        f"{number(first['reference_pressure_bar'], '.0f')} |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {number(row['fraction_unexplained'], '.3f')} | "
            f"{row['rdf_max_abs_dg']:.3f} | {row['angle_max_abs_difference']:.4f} | "
            f"{row['mean_q_cg']:.3f} | {number(row['pressure_bar'], '.0f')} |"
        )
    return "\n".join(lines)


def water_demo(
    output_dir: str | os.PathLike = "water-report",
    *,
    reference: str | os.PathLike | None = None,
    frames: int | None = None,
    steps: int | None = None,
    neural: bool = True,
    quick: bool = False,
    ranks: int = 1,
    seed: int = 0,
    stream=None,
) -> dict:
    """Run the water case (see the module docstring) and write a report folder.

    Parameters
    ----------
    output_dir : path
        Report folder (created; files in it are replaced).
    reference : path, optional
        All-atom SPC/E H5MD with forces; default the shipped ``data/water_aa.h5``, generated
        (small) into ``output_dir/work`` when missing.
    frames, steps : int, optional
        Frames to fit on; NVT steps of the classical models (the neural model runs a tenth).
    neural : bool
        Train and run the neural model too.
    quick : bool
        Tiny sizes (a smoke test; the numbers mean little).
    ranks : int
        MPI ranks of the LAMMPS runs.
    seed : int
    stream : file, optional
        Where stage headers go (default ``sys.stderr``).

    Returns
    -------
    dict
        The metrics written to ``metrics.json``: ``"rows"`` (:func:`run_and_compare`),
        ``"reference"``, ``"timings"``.
    """
    sizes = WaterDemoSizes.quick() if quick else WaterDemoSizes()
    if frames is not None:
        sizes = dataclasses.replace(sizes, frames=int(frames))
    if steps is not None:
        sizes = dataclasses.replace(sizes, steps=int(steps), neural_steps=max(1, int(steps) // 10))
    if sizes.frames < 2 or sizes.steps < 1:
        raise InputError(f"water demo: need frames ≥ 2 and steps ≥ 1, got {sizes.frames}, "
                         f"{sizes.steps}")  # fmt: skip
    stream = sys.stderr if stream is None else stream
    folder = Path(output_dir)
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    if reference is None and (DATA_DIR / "water_aa.h5").is_file() and not quick:
        reference = DATA_DIR / "water_aa.h5"
    clock = StageClock(3 + (reference is None), stream)
    if reference is None:
        reference = work / "water_aa.h5"
        with clock.stage(f"generating an SPC/E reference ({sizes.reference_molecules} molecules)"):
            generate_reference(WATER.name, output=reference, n_molecules=sizes.reference_molecules,
                               npt=True, equilibration_ps=5.0,
                               production_ps=sizes.reference_frames * 0.5, stride=250, seed=seed,
                               progress=False)  # fmt: skip
    mapping_path = shipped_data("water_mapping.json")
    mapped = work / "mapped.h5"
    with clock.stage(f"mapping {reference} to one bead per molecule"):
        map_trajectory(reference, mapped, CGMapping.load(mapping_path), progress=False)
    what = "pair and pair + three-body models" + (", the neural model" if neural else "")
    with clock.stage(f"fitting the {what} on {sizes.frames} frames"):
        models = fit_water_models(
            mapped, mapping_path, work, frames=sizes.frames,
            neural=dict(sizes.neural) if neural else None, neural_frames=sizes.neural_frames,
            epochs=sizes.epochs, seed=seed,
        )  # fmt: skip
    steps_of = {name: sizes.neural_steps if name == "neural" else sizes.steps for name in models}
    with clock.stage(f"CG MD in LAMMPS and comparison: {', '.join(models)}"):
        rows = run_and_compare(models, mapped, work, folder / "compare", steps=steps_of,
                               ranks=ranks, seed=seed + 11)  # fmt: skip
    metrics = {"reference": str(reference), "frames": sizes.frames, "rows": rows,
               "timings": clock.rows}  # fmt: skip
    write_text_atomic(folder / "metrics.json", json.dumps(metrics, indent=1, default=str))
    write_text_atomic(folder / "index.md", _report(metrics, models))
    total = time.perf_counter() - clock.start
    print(f"water demo finished in {total:.0f} s: {folder / 'index.md'}", file=stream)
    return metrics


def slug(name: str) -> str:
    """Folder-safe name of a model: ``pair + three-body`` → ``pair_three-body``."""
    return name.replace(" + ", "_").replace(" ", "_")


def _report(metrics: dict, models: dict) -> str:
    rows = metrics["rows"]
    lines = [
        "# One-site CG water: pair vs three-body vs neural",
        "",
        f"Reference: `{metrics['reference']}` (all-atom SPC/E, mapped to the molecules' centres "
        f"of mass); {metrics['frames']} frames fitted, the last 20 % held out. Every model runs "
        "NVT in LAMMPS at the reference's volume and 300 K (2 fs) from its last frame.",
        "",
        comparison_table(rows),
        "",
        "The angle is j–i–k between neighbours j, k of a bead i within the first shell (3.18 Å); "
        "q is the tetrahedral order of the four nearest neighbours (Errington–Debenedetti). "
        "A pair potential cannot hold both the RDF and the tetrahedral order; the three-body "
        "and neural terms are there for it.",
        "",
    ]
    for row in rows:
        name = slug(row["model"])
        lines += [
            f"## {row['model']}",
            "",
            f"![local order](compare/{name}/local_order.png) ![rdf](compare/{name}/rdf_W-W.png)",
            "",
            f"Full comparison: [compare/{name}/index.md](compare/{name}/index.md); model "
            f"`{models[row['model']]['path']}`; {row['ns_per_day']:.0f} ns/day in this run "
            "(export included).",
            "",
        ]
    lines += ["## Timings", "", "| stage | wall (s) | CPU (s) |", "|---|---:|---:|"]
    lines += [f"| {t['stage']} | {t['wall_s']:.1f} | {t['cpu_s']:.1f} |"
              for t in metrics["timings"]]  # fmt: skip
    return "\n".join(lines) + "\n"


def _write_yaml(path: Path, values: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, yaml.safe_dump(values, sort_keys=False))
