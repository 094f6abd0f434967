"""Scale: streaming training/mapping from a large H5MD file with bounded memory; a 100 000-bead
CG ethane run in LAMMPS on 1 and 2 ranks.

``stream``
    Writes two synthetic all-atom ethane H5MD files (4096 molecules, 32 768 atoms, float32
    positions and forces, no compression; the large one ~1.5 GB, the small one 1/8 of it), then
    in a fresh process per file: (a) maps every frame on the fly, reading mini-batches of 8
    frames (``ForceMatchingData.read``, the trainer's data path), and (b) runs one epoch of
    force-matching training (prior + small SchNet, float64) on 8 frames spread over the file.
    Reports the peak resident memory (``ru_maxrss``) of each process next to the file size.
``lammps``
    Exports a 100 000-bead CG ethane box (``--case tables``: repulsive prior + pair spline +
    harmonic bond, the model of ``bench/bench_lammps.py``; ``--case plugin``: the same plus its
    SchNet term in the ``cgtorch`` plugin, float32) and runs the same NVT steps (20 for tables,
    10 for the plugin) on each of ``--ranks`` (default 1 2; more ranks than cores still checks
    that the results do not depend on the decomposition); compares the final positions and
    forces (dump) and the thermo output with the 1-rank run.

Results go to ``bench/results/scale.json``; RELIABILITY.md quotes them.
Usage: ``.venv/bin/python bench/bench_scale.py stream|lammps|all [--workdir DIR] [--gib 1.4]
[--case tables|plugin] [--ranks 1 2 4]``.
(DDP training on 2 processes is tested in
``tests/integration/test_pipeline.py::test_two_process_training_matches_one_process``.)
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.json"
N_MOLECULES = 4096  # 16³ lattice sites
LATTICE = 4.5  # Å: ethane's liquid density (0.55 g/cm³ ↔ 91 Å³ per molecule)


def write_allatom(path: Path, n_frames: int) -> float:
    """Synthetic all-atom ethane trajectory (lattice of jittered molecules, random forces).

    Returns the seconds it took.
    """
    from ase_cg.io import H5MDWriter
    from ase_cg.mapping import CGMapping

    start = time.perf_counter()
    template = CGMapping.load(ROOT / "data" / "ethane_mapping.json").to_dict()
    template = template["molecule_types"][0]
    atom_positions = np.array(template["positions"])
    n_per = len(atom_positions)
    grid = (np.arange(16) + 0.5) * LATTICE
    sites = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    cell = np.eye(3) * 16 * LATTICE
    rng = np.random.default_rng(0)
    with H5MDWriter(
        path,
        species=template["species"] * N_MOLECULES,
        masses=template["masses"] * N_MOLECULES,
        mol_ids=np.repeat(np.arange(N_MOLECULES), n_per),
        bonds=(np.array(template["bonds"])[None] + n_per * np.arange(N_MOLECULES)[:, None, None]),
        compression=None,
        dtype=np.float32,
        time_step=1.0,
    ) as writer:
        base = (sites[:, None, :] + atom_positions[None]).reshape(-1, 3)
        for frame in range(n_frames):
            jitter = rng.normal(0.0, 0.02, base.shape)
            forces = rng.normal(0.0, 1.0, base.shape)
            writer.append(base + jitter, cell, forces=forces, step=frame * 10)
    return time.perf_counter() - start


def child_stream(path: str, mode: str) -> None:
    """One measurement in this (fresh) process; prints a JSON line with the peak RSS."""
    import torch

    from ase_cg.fitting import ForceMatchingData, TrainConfig, train
    from ase_cg.mapping import CGMapping

    torch.set_num_threads(1)
    mapping = CGMapping.load(ROOT / "data" / "ethane_mapping.json")
    data = ForceMatchingData(path, mapping=mapping)
    start = time.perf_counter()
    result = {"mode": mode, "frames": data.n_frames}
    if mode == "map":
        total = 0.0
        for first in range(0, data.n_frames, 8):
            positions, _, forces = data.read(np.arange(first, min(first + 8, data.n_frames)))
            total += float(forces.sum())
        result["beads"] = int(positions.shape[1])
        result["checksum"] = total
    else:
        from ase_cg.potentials import CGModel, HarmonicBonds, Repulsion
        from ase_cg.potentials.neural import NeuralPotential

        torch.manual_seed(0)
        model = CGModel(
            mapping.bead_types,
            [
                HarmonicBonds(1, k=21.0, r0=1.69),
                Repulsion(1, sigma=3.4, epsilon=0.01, power=12, cutoff=5.0),
                NeuralPotential(
                    1, n_atom_basis=8, n_filters=8, n_interactions=1, n_rbf=8, cutoff=5.0
                ),
            ],
            mapping=mapping,
        )
        config = TrainConfig(
            epochs=1,
            batch_frames=2,
            frame_stride=max(1, data.n_frames // 10),
            max_frames=10,
            dtype="float64",
            progress=False,
            early_stopping=0,
        )
        with tempfile.TemporaryDirectory() as output:
            trained = train(model, data, output, config)
        result["steps"] = trained.steps
        result["validation_fvu"] = trained.validation["fvu"]
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


#: bytes per frame of the synthetic file: 32 768 atoms × (positions + forces) × 3 × float32
FRAME_BYTES = 8 * N_MOLECULES * 2 * 3 * 4


def bench_stream(workdir: Path, gib: float) -> dict:
    rows = []
    frames_large = int(gib * 2**30 / FRAME_BYTES)
    for n_frames in (frames_large // 8, frames_large):
        path = workdir / f"aa_{n_frames}.h5"
        seconds = write_allatom(path, n_frames)
        size = path.stat().st_size
        print(f"wrote {path} ({size / 2**30:.2f} GiB, {n_frames} frames) in {seconds:.0f} s")
        for mode in ("map", "train"):
            out = subprocess.run(
                [sys.executable, __file__, "_child", str(path), mode],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            row = json.loads(out.strip().splitlines()[-1])
            row.update(file_gib=size / 2**30, write_seconds=seconds)
            rows.append(row)
            print(json.dumps(row))
        path.unlink()
    return {"stream": rows}


def bench_lammps(
    workdir: Path, case: str = "tables", ranks_list=(1, 2), n_beads: int = 100_000
) -> dict:
    import torch

    from ase_cg.io import H5MDTrajectory
    from ase_cg.md import build_cg_box
    from lammps_interface import export
    from lammps_interface.run import run_deck

    spec = importlib.util.spec_from_file_location("bench_lammps", ROOT / "bench/bench_lammps.py")
    bench_lammps_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_lammps_module)
    model = bench_lammps_module.ethane_model(neural=case == "plugin")
    steps = 10 if case == "plugin" else 20
    start = time.perf_counter()
    atoms = build_cg_box(model, n_beads // 2, 0.5495, seed=1)
    build_seconds = time.perf_counter() - start
    runs = {}
    for ranks in ranks_list:
        directory = workdir / f"lammps_{case}_{ranks}"
        export(
            model,
            directory,
            atoms=atoms,
            neural_dtype=torch.float32 if case == "plugin" else None,
            temperature=180.0,
            timestep=2.0,
            steps=steps,
            dump_every=steps,
        )
        start = time.perf_counter()
        outputs = run_deck(directory, ranks, variables={"seed": "12345"})
        wall = time.perf_counter() - start
        with H5MDTrajectory(outputs["h5md"]) as trajectory:
            last = [len(trajectory) - 1]
            runs[ranks] = {
                "positions": trajectory.positions(last)[0],
                "forces": trajectory.forces(last)[0],
                "wall_s": wall,
                "thermo": [
                    line
                    for line in outputs["log"].read_text().splitlines()
                    if line.strip().startswith(str(steps) + " ")
                ],
            }
        print(f"{case}, {ranks} rank(s): {wall:.1f} s wall")
    first = runs[ranks_list[0]]
    result = {
        "case": case,
        "beads": n_beads,
        "steps": steps,
        "build_box_s": build_seconds,
        "wall_s": {ranks: run["wall_s"] for ranks, run in runs.items()},
        "max_force_eV_A": float(np.abs(first["forces"]).max()),
        "thermo": {ranks: run["thermo"] for ranks, run in runs.items()},
        "versus_first": {
            ranks: {
                "max_position_difference_A": float(
                    np.abs(first["positions"] - run["positions"]).max()
                ),
                "max_force_difference_eV_A": float(np.abs(first["forces"] - run["forces"]).max()),
            }
            for ranks, run in runs.items()
            if ranks != ranks_list[0]
        },
    }
    print(json.dumps(result, indent=1))
    return {f"lammps_{case}": result}


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        child_stream(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["stream", "lammps", "all"])
    parser.add_argument(
        "--gib", type=float, default=1.4, help="size of the large streamed file, GiB"
    )
    parser.add_argument("--case", choices=["tables", "plugin"], default="tables")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="MPI ranks to compare")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for the temporary files (default: a new temporary folder)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="bench_scale") as workdir:
        workdir = Path(workdir)
        results = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
            f"{__import__('os').cpu_count()} cores",
        }
        if args.what in ("stream", "all"):
            results.update(bench_stream(workdir, args.gib))
        if args.what in ("lammps", "all"):
            results.update(bench_lammps(workdir, args.case, tuple(args.ranks)))
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    old["runs"].append(results)
    RESULTS.write_text(json.dumps(old, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
