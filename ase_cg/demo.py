"""The end-to-end demo: all-atom ethane → CG models → CG MD in ASE and LAMMPS → a report.

:func:`demo` runs the whole pipeline on the shipped reference ``data/ethane_aa.h5`` with no
arguments and no network, in about ten minutes on two CPU cores:

1. read the all-atom reference and learn a 2-bead mapping with the auto-encoder
   (:func:`ase_cg.autoencoder.learn_mapping`); it is used when it is the CH3|CH3 mapping,
   else the shipped ``data/ethane_mapping.json`` is (the report says which);
2. map the trajectory to beads (bead-sum forces);
3. fit the classical potential (splines, linear least squares) and train a small neural one
   (prior + SchNet) by force matching, through :func:`ase_cg.pipeline.train_model`;
4. run CG MD of both models in ASE (:class:`~ase_cg.calculator.CGCalculator`) and in LAMMPS
   (tables for the classical model, the ``cgtorch`` plugin for the neural one);
5. compare every run with the mapped reference (:func:`ase_cg.analysis.compare`) and time
   everything, wall clock and CPU.

The report folder (written by :func:`ase_cg._demo_report.write_demo_report`)::

    demo-report/
    ├── index.md             verdict table, speed table, figures, timings
    ├── index.html           the same page, self-contained (figures embedded)
    ├── metrics.json         every number of index.md
    ├── assignment.png       atoms → beads assignment of the mapping used
    ├── learned-mapping/     the auto-encoder's report (assignment probabilities, losses)
    ├── loss.png             force-matching error (held-out) of both models
    ├── potentials.png       the fitted classical pair and bond functions
    ├── rdf.png, bonds.png   overlays of every CG run on the mapped reference
    ├── compare/<run>/       the full ase-cg compare report of each run
    └── work/                mapped trajectory, configs, models, CG trajectories, LAMMPS decks
"""

from __future__ import annotations

import csv
import dataclasses
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from ase_cg._demo_report import write_demo_report
from ase_cg._paths import write_text_atomic
from ase_cg.analysis import compare
from ase_cg.autoencoder import AutoencoderConfig, learn_mapping
from ase_cg.errors import InputError
from ase_cg.io import H5MDTrajectory, read_h5md
from ase_cg.mapping import CGMapping, map_trajectory
from ase_cg.model import load_model
from ase_cg.pipeline import cg_temperature, simulate, train_model
from ase_cg.reference import ETHANE, generate_reference
from ase_cg.reference.speed import BenchmarkError, measure_gromacs, measure_lammps
from ase_cg.shipped import DATA_DIR, shipped_data
from lammps_interface.plugin import PluginBuildError, build_plugin

__all__ = ["DemoSizes", "demo"]

#: Timed steps of the demo's own all-atom speed runs (2 fs each; GROMACS times half of twice
#: as many).
ALLATOM_STEPS = 300


@dataclasses.dataclass(frozen=True)
class DemoSizes:
    """How big the demo runs are (the defaults fit ~10 minutes on 2 CPU cores)."""

    frames: int = 100
    """Reference frames used for fitting and training (spread over the file)."""
    steps: int = 500
    """CG MD steps of each ASE run (both models: ~0.3 s CPU per step at 432 beads)."""
    lammps_steps: int = 5000
    """CG MD steps of the classical model in LAMMPS (tables: fast)."""
    neural_lammps_steps: int = 250
    """CG MD steps of the neural model in LAMMPS (the LibTorch pair style)."""
    time_step_fs: float = 2.0
    """CG time step, fs."""
    frames_per_run: int = 40
    """Frames stored by each CG MD run."""
    epochs: int = 3
    """Passes of neural training over the training frames."""
    autoencoder_epochs: int = 40
    """Epochs of the auto-encoder that learns the mapping (per seed)."""
    autoencoder_frames: int = 6
    """Reference frames the auto-encoder learns from (216 molecules each: 1296 molecule
    samples; the auto-encoder costs ~10 s CPU per frame at 40 epochs)."""
    autoencoder_seeds: tuple = (1, 2)
    """Restarts of the auto-encoder (the best by validation loss is kept). Measured on the
    shipped reference with these sizes: seeds 1, 2 → CH3|CH3 (172 s CPU); seed 0 alone →
    C+2H | C+4H (then the shipped mapping is used)."""
    neural: tuple = (("n_atom_basis", 16), ("n_filters", 16), ("n_interactions", 2),
                     ("n_rbf", 12), ("cutoff", 6.0), ("seed", 0))  # fmt: skip
    """NeuralConfig fields of the demo's neural model (small: it trains in a minute or two)."""
    reference_molecules: int = 216
    """Molecules of the reference generated when no reference file exists."""
    reference_ps: float = 10.0
    """Production length of such a generated reference, ps."""

    @classmethod
    def quick(cls) -> DemoSizes:
        """Tiny sizes for smoke tests (about a minute)."""
        return cls(
            frames=10, steps=20, lammps_steps=100, neural_lammps_steps=10, epochs=1,
            autoencoder_epochs=4, autoencoder_frames=6, autoencoder_seeds=(0,),
            neural=(("n_atom_basis", 8), ("n_filters", 8), ("n_interactions", 1),
                    ("n_rbf", 8), ("cutoff", 5.0), ("seed", 0)),
            reference_molecules=27, reference_ps=0.6,
        )  # fmt: skip


class StageClock:
    """Wall and CPU time (this process and finished child processes) of each demo stage."""

    def __init__(self, n_stages: int, stream) -> None:
        self.n_stages = n_stages
        self.stream = stream
        self.done = 0
        self.start = time.perf_counter()
        self.rows: list[dict] = []

    @staticmethod
    def _cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def stage(self, title: str):
        clock = self

        class _Stage:
            def __enter__(self):
                clock.done += 1
                elapsed = time.perf_counter() - clock.start
                print(
                    f"[{clock.done}/{clock.n_stages}] {title} (at {elapsed:.0f} s)",
                    file=clock.stream,
                    flush=True,
                )
                self.wall, self.cpu = time.perf_counter(), clock._cpu()
                return self

            def __exit__(self, *exc):
                wall = time.perf_counter() - self.wall
                cpu = clock._cpu() - self.cpu
                self.result = {"stage": title, "wall_s": wall, "cpu_s": cpu}
                clock.rows.append(self.result)
                if exc[0] is None:
                    print(f"      done in {wall:.1f} s (CPU {cpu:.1f} s)", file=clock.stream)
                return False

        return _Stage()


def demo(
    output_dir: str | os.PathLike = "demo-report",
    *,
    reference: str | os.PathLike | None = None,
    mapping: str | os.PathLike | None = None,
    frames: int | None = None,
    steps: int | None = None,
    device: str = "cpu",
    quick: bool = False,
    ranks: int = 1,
    lammps: bool = True,
    seed: int = 0,
    progress: bool | None = None,
    stream=None,
) -> dict:
    """Run the whole CG pipeline on liquid ethane and write a report folder.

    Parameters
    ----------
    output_dir : path
        Report folder (created; files in it are replaced).
    reference : path, optional
        All-atom H5MD trajectory with forces and velocities. Default: the shipped
        ``data/ethane_aa.h5``; if that is missing, a reference is generated with
        :func:`ase_cg.reference.generate_reference` into ``output_dir/work/`` (LAMMPS, a few
        minutes; the report says so).
    mapping : path, optional
        CGMapping JSON; default the shipped CH3|CH3 ``data/ethane_mapping.json``.
    frames : int, optional
        Reference frames used to fit and train (spread evenly over the file); default 200
        (10 with ``quick``).
    steps : int, optional
        CG MD steps (2 fs each) of the ASE runs; default 500 (20 with ``quick``). The
        classical model runs 10 times as many in LAMMPS, the neural model half as many.
    device : str
        Where neural training and the ASE runs compute: ``"cpu"`` or ``"cuda"``.
    quick : bool
        Tiny sizes throughout (a smoke test of the pipeline; the numbers mean little).
    ranks : int
        MPI ranks of the LAMMPS runs.
    lammps : bool
        Run the LAMMPS engine too.
    seed : int
        Seed of training order, weights and MD noise.
    progress : bool, optional
        Progress bars of the stages (default: only on a terminal). Stage headers with times are
        always printed to ``stream``.
    stream : file, optional
        Where stage headers go (default ``sys.stderr``).

    Returns
    -------
    dict
        The metrics, also written to ``output_dir/metrics.json``: ``"runs"`` (per run its MD
        summary and comparison metrics), ``"training"``, ``"speed"``, ``"timings"``,
        ``"verdict"``, ``"files"``.

    Raises
    ------
    InputError
        A reference without forces, bad sizes, or an unknown device.
    """
    sizes = DemoSizes.quick() if quick else DemoSizes()
    replace = {k: v for k, v in (("frames", frames), ("steps", steps)) if v is not None}
    if "steps" in replace:
        replace["lammps_steps"] = 10 * replace["steps"]
        replace["neural_lammps_steps"] = max(1, replace["steps"] // 2)
    sizes = dataclasses.replace(sizes, **replace)
    if sizes.frames < 2 or sizes.steps < 1:
        raise InputError(f"demo: need frames ≥ 2 and steps ≥ 1, got {sizes.frames}, {sizes.steps}")
    if not (device == "cpu" or device.startswith("cuda")):
        raise InputError(f"demo: device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")
    stream = sys.stderr if stream is None else stream
    folder = Path(output_dir)
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    n_stages = 7 + (reference is None and not (DATA_DIR / "ethane_aa.h5").is_file())
    n_stages += mapping is None
    clock = StageClock(n_stages, stream)
    notes: list[str] = []

    # --- 1. reference and mapping
    if reference is None:
        reference = DATA_DIR / "ethane_aa.h5"
        if not reference.is_file():
            reference = work / "reference_aa.h5"
            with clock.stage(
                f"generating an all-atom reference ({sizes.reference_molecules} ethane, "
                f"{sizes.reference_ps:g} ps; data/ethane_aa.h5 is not there)"
            ):
                _generate_reference(reference, sizes, seed, progress)
            notes.append(
                f"`data/ethane_aa.h5` was missing: the reference was generated here "
                f"({sizes.reference_molecules} molecules, {sizes.reference_ps:g} ps)."
            )
    reference = Path(reference)
    mapping_path = Path(mapping) if mapping is not None else shipped_data("ethane_mapping.json")
    cg_mapping = CGMapping.load(mapping_path)
    learned = None
    if mapping is None:
        with clock.stage(
            f"learning a 2-bead mapping with the auto-encoder ({sizes.autoencoder_epochs} "
            f"epochs, {len(sizes.autoencoder_seeds)} seeds, {sizes.autoencoder_frames} frames)"
        ):
            learned = _learn_mapping(reference, cg_mapping, sizes, folder / "learned-mapping")
        if learned["same_as_shipped"]:
            mapping_path = work / "learned_mapping.json"
            cg_mapping = learned["mapping"]
            cg_mapping.save(mapping_path)
            notes.append(
                "The auto-encoder (Gumbel-softmax encoder + decoder + force matching) found the "
                "two CH3 groups; this learned mapping is used below "
                "([its report](learned-mapping/index.md))."
            )
        else:
            notes.append(
                f"The auto-encoder's groups {learned['groups']} are not the two CH3 groups with "
                "these short settings, so the shipped CH3|CH3 mapping "
                "(`data/ethane_mapping.json`) is used below "
                "([auto-encoder report](learned-mapping/index.md))."
            )
    else:
        notes.append(f"The mapping is `{mapping_path}`.")
    with clock.stage(f"mapping {reference} with {mapping_path.name}"):
        mapped = work / "mapped.h5"
        map_trajectory(reference, mapped, cg_mapping, progress=progress)
        with H5MDTrajectory(mapped) as trajectory:
            n_reference_frames = trajectory.n_frames
            n_beads = trajectory.n_atoms
            if not trajectory.has_forces:
                raise InputError(f"{reference}: has no forces; force matching needs them")
        with H5MDTrajectory(reference) as trajectory:
            n_atoms = trajectory.n_atoms
            reference_settings = trajectory.parameters.get("ase_cg_reference", {})
    stride = max(1, n_reference_frames // sizes.frames)
    n_train_frames = min(sizes.frames, n_reference_frames)

    # --- 2. models
    config = work / "train.yaml"
    _write_yaml(
        config,
        {
            "train": {
                "epochs": sizes.epochs,
                "batch_frames": 2,
                "frame_stride": stride,
                "max_frames": n_train_frames,
                "device": device,
                "seed": seed,
                "early_stopping": 0,
                "progress": bool(progress),
            },
            "neural": dict(sizes.neural),
            "classical": {"stride": stride, "stop": stride * n_train_frames},
        },
    )
    models = {}
    with clock.stage(f"fitting the classical potential on {n_train_frames} frames"):
        models["classical"] = train_model(
            mapped, work / "classical", kind="classical", mapping_path=mapping_path,
            config_path=config,
        )  # fmt: skip
    with clock.stage(
        f"training the neural potential ({sizes.epochs} epochs, {n_train_frames} frames, {device})"
    ):
        models["neural"] = train_model(
            mapped, work / "neural", kind="neural", mapping_path=mapping_path,
            config_path=config,
        )  # fmt: skip
    training = {
        "classical": load_model(models["classical"]).provenance.get("fit_report", {}),
        "neural": read_metrics(work / "neural" / "metrics.csv"),
    }

    # --- 3. CG MD
    runs = _plan_runs(sizes, lammps, notes)
    summaries = {}
    with clock.stage(f"CG MD: {', '.join(runs)}"):
        summaries = _run_md(
            runs, models, mapped, work, sizes, device, ranks, seed, progress, stream
        )

    # --- 4. comparison
    with clock.stage("comparing every CG run with the mapped reference"):
        comparisons = {}
        for name, summary in summaries.items():
            comparisons[name] = _compare_run(
                mapped, summary["trajectory"], folder / "compare" / name, name
            )

    # --- 5. all-atom speed
    with clock.stage("all-atom speed for the speed table"):
        n_molecules = int(reference_settings.get("n_molecules", n_atoms // 8))
        allatom = _allatom_speed(n_molecules, seed)

    # --- 6. report
    with clock.stage(f"writing the report to {folder}"):
        metrics = write_demo_report(
            folder,
            sizes=sizes,
            reference=reference,
            mapping=cg_mapping,
            mapping_path=mapping_path,
            n_atoms=n_atoms,
            n_beads=n_beads,
            n_reference_frames=n_reference_frames,
            n_train_frames=n_train_frames,
            training=training,
            summaries=summaries,
            comparisons=comparisons,
            allatom=allatom,
            clock=clock,
            notes=notes,
            quick=quick,
            learned=None
            if learned is None
            else {k: v for k, v in learned.items() if k != "mapping"},
        )
    total = time.perf_counter() - clock.start
    print(f"demo finished in {total:.0f} s: {folder / 'index.md'}", file=stream)
    return metrics


# ------------------------------------------------------------------------------ the stages


def _generate_reference(path: Path, sizes: DemoSizes, seed: int, progress) -> None:
    generate_reference(
        "ethane", output=path, n_molecules=sizes.reference_molecules,
        equilibration_ps=min(5.0, sizes.reference_ps), production_ps=sizes.reference_ps,
        stride=20, seed=seed, progress=progress is not False,
    )  # fmt: skip


def _learn_mapping(reference: Path, shipped, sizes: DemoSizes, folder: Path) -> dict:
    """Learn a mapping with the auto-encoder; is it the shipped one (same bead positions)?"""
    config = AutoencoderConfig(epochs=sizes.autoencoder_epochs, max_frames=sizes.autoencoder_frames)
    result = learn_mapping(
        reference, 2, config=config, seeds=sizes.autoencoder_seeds, output_dir=folder,
        progress=False,
    )  # fmt: skip
    frame = read_h5md(reference, index=0)
    beads = result.mapping.map(frame).positions
    expected = shipped.map(frame).positions
    differences = beads[:, None, :] - expected[None, :, :]
    cell = frame.cell.array
    differences -= np.round(differences @ np.linalg.inv(cell)) @ cell  # minimum image
    distances = np.linalg.norm(differences, axis=-1)
    same = len(beads) == len(expected) and bool(np.all(distances.min(axis=1) < 1e-4))
    return {
        "mapping": result.mapping,
        "groups": result.mapping.groups,
        "same_as_shipped": same,
        "best_seed": result.report.get("best_seed"),
    }


def _write_yaml(path: Path, values: dict) -> None:
    write_text_atomic(path, yaml.safe_dump(values, sort_keys=False))


def read_metrics(path: Path) -> list[dict]:
    """Rows of a training ``metrics.csv`` as floats."""
    with path.open() as stream:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(stream)]


def _plan_runs(sizes: DemoSizes, lammps: bool, notes: list[str]) -> dict[str, dict]:
    """The CG MD runs: name → model kind, engine, steps."""
    runs = {
        "classical-ase": {"kind": "classical", "engine": "ase", "steps": sizes.steps},
        "neural-ase": {"kind": "neural", "engine": "ase", "steps": sizes.steps},
    }
    if not lammps:
        notes.append("LAMMPS runs were switched off (`--no-lammps`).")
        return runs
    runs["classical-lammps"] = {
        "kind": "classical",
        "engine": "lammps",
        "steps": sizes.lammps_steps,
    }
    try:
        build_plugin()
    except PluginBuildError as error:
        notes.append(
            f"The neural model did not run in LAMMPS: the `cgtorch` plugin did not build "
            f"({str(error).splitlines()[0]})."
        )
        return runs
    runs["neural-lammps"] = {
        "kind": "neural",
        "engine": "lammps",
        "steps": sizes.neural_lammps_steps,
    }
    return runs


def _run_md(runs, models, start, work, sizes, device, ranks, seed, progress, stream) -> dict:
    """Run each CG MD from the last mapped reference frame; MD summaries with CPU times."""
    summaries = {}
    for name, run in runs.items():
        before = StageClock._cpu()
        summary = simulate(
            models[run["kind"]],
            engine=run["engine"],
            start=start,
            frame=-1,
            output=work / f"{name}.h5",
            temperature=_start_temperature(start),
            time_step_fs=sizes.time_step_fs,
            steps=run["steps"],
            interval=max(1, run["steps"] // sizes.frames_per_run),
            seed=seed,
            device=device if run["engine"] == "ase" else "cpu",
            progress=progress,
            ranks=ranks,
        )
        cpu = StageClock._cpu() - before
        summaries[name] = {
            **summary.as_dict(),
            **run,
            "cpu_s": cpu,
            "ranks": ranks if run["engine"] == "lammps" else 1,
        }
        print(
            f"      {name}: {summary.steps} steps, {summary.ns_per_day:.3g} ns/day, "
            f"T = {summary.temperature_K:.0f} K",
            file=stream,
        )
    return summaries


def _start_temperature(mapped: Path) -> float:
    """The reference temperature (K), from the mapped velocities of up to 50 frames."""
    with H5MDTrajectory(mapped) as trajectory:
        value = cg_temperature(trajectory, slice(0, min(50, trajectory.n_frames)))
    if value is None:
        raise InputError(f"{mapped}: the reference has no velocities to take its temperature")
    return round(value, 1)


def _compare_run(mapped: Path, trajectory: str, folder: Path, name: str) -> dict:
    return compare(mapped, trajectory, output_dir=folder, title=f"{name} vs all-atom (mapped)")


def _allatom_speed(n_molecules: int, seed: int) -> dict:
    """The fastest all-atom run a user would do of the reference liquid, measured now.

    Bonds to hydrogen constrained, 2 fs, the reference's cutoffs and long-range solver, one
    core: LAMMPS (SHAKE, PPPM) and GROMACS (LINCS, PME) when ``gmx`` is installed and the box
    holds its cutoff (:mod:`ase_cg.reference.speed`).
    """
    runs = [measure_lammps(ETHANE, n_molecules, steps=ALLATOM_STEPS, seed=seed)]
    skipped = ""
    try:
        gromacs = measure_gromacs(ETHANE, n_molecules, steps=2 * ALLATOM_STEPS, seed=seed)
    except BenchmarkError as error:  # e.g. a box too small for GROMACS's cutoff check
        gromacs, skipped = None, f"; GROMACS failed: {str(error).splitlines()[0]}"
    if gromacs is not None:
        runs.append(gromacs)
    best = max(runs, key=lambda r: r["ns_per_day"])
    others = ", ".join(f"{r['engine']} {r['ns_per_day']:.3g} ns/day" for r in runs)
    return {
        "ns_per_day": best["ns_per_day"],
        "n_atoms": best["n_atoms"],
        "time_step_fs": best["time_step_fs"],
        "ranks": best["cores"],
        "engine": best["engine"],
        "label": best["label"],
        "cpu_s_per_ns": 86400.0 / best["ns_per_day"] * best["cores"],
        "runs": runs,
        "source": f"measured now, fastest of {others} ({best['steps']} timed steps){skipped}",
    }
