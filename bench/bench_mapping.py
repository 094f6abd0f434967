"""Mapping throughput and memory: ``python bench/bench_mapping.py [--input FILE.h5]``.

Measures, for the 2-bead ethane mapping (``data/ethane_mapping.json``):

1. in-memory mapping (:meth:`SystemMapping.map_positions` / ``map_forces`` /
   ``map_velocities`` on arrays already in memory): frames/s and atoms/s;
2. end-to-end file mapping (:func:`ase_cg.mapping.map_trajectory`: read H5MD, map, write
   CG H5MD, gzip both ways): frames/s and atoms/s;
3. peak memory of a fresh process mapping a file of N frames and one of 4·N frames: resident
   set (``ru_maxrss``) and Python heap (``tracemalloc``, NumPy arrays included). With chunked
   streaming the heap does not grow with the file; RSS grows only by HDF5's own caches.

The input is the shipped all-atom reference ``data/ethane_aa.h5`` when it exists (or
``--input``), else a synthetic trajectory of 216 ethane molecules (1 728 atoms; random
rigid molecules, random forces and velocities) written to a temporary folder. Prints a
Markdown table (the "Mapping throughput" section of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "data" / "ethane_mapping.json"
REFERENCE = ROOT / "data" / "ethane_aa.h5"


def synthetic_ethane(path: Path, n_frames: int, *, seed: int = 0) -> None:
    """216 rigid ethane molecules on a 6×6×6 grid (4.6 Å apart), random per frame."""
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    from ase_cg.io import H5MDWriter

    rng = np.random.default_rng(seed)
    ethane = molecule("C2H6")
    template = ethane.positions - ethane.get_center_of_mass()
    n_mol = 216
    grid = np.stack(np.meshgrid(*[np.arange(6)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cell = np.eye(3) * 6 * 4.6
    numbers = np.tile(ethane.numbers, n_mol)
    masses = np.tile(ethane.get_masses(), n_mol)
    mol_ids = np.repeat(np.arange(n_mol), len(ethane))
    with H5MDWriter(path, species=numbers, masses=masses, mol_ids=mol_ids, time_step=1.0) as w:
        for step in range(n_frames):
            rotations = Rotation.random(n_mol, random_state=rng).as_matrix()
            centres = grid * 4.6 + rng.uniform(-0.3, 0.3, (n_mol, 3))
            xyz = np.einsum("mij,aj->mai", rotations, template) + centres[:, None]
            xyz = xyz.reshape(-1, 3) % np.diag(cell)
            w.append(
                xyz,
                cell,
                forces=rng.normal(size=xyz.shape),
                velocities=0.01 * rng.normal(size=xyz.shape),
                step=20 * step,
            )


def bench_in_memory(path: Path, repeats: int) -> dict:
    from ase_cg.io import H5MDTrajectory
    from ase_cg.mapping import CGMapping

    mapping = CGMapping.load(MAPPING)
    with H5MDTrajectory(path) as trajectory:
        frames = slice(0, min(trajectory.n_frames, 200))
        positions = trajectory.positions(frames)
        forces = trajectory.forces(frames)
        velocities = trajectory.velocities(frames) if trajectory.has_velocities else None
        cells = trajectory.cells(frames)
        t0 = time.perf_counter()
        system = mapping.system(trajectory[0])
        build = time.perf_counter() - t0
    n = len(positions)
    best_wall, best_cpu = np.inf, np.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        system.map_positions(positions, cells)
        system.map_forces(forces)
        if velocities is not None:
            system.map_velocities(velocities)
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return {
        "n_atoms": system.n_atoms,
        "n_beads": system.n_beads,
        "frames": n,
        "system_build_s": build,
    } | _rates(n, system.n_atoms, best_wall, best_cpu)


def _rates(n_frames: int, n_atoms: int, wall: float, cpu: float) -> dict:
    """Throughput per wall-clock second and per CPU second (the latter is less sensitive to
    other processes sharing the machine)."""
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "frames_per_s": n_frames / wall,
        "atoms_per_s": n_frames * n_atoms / wall,
        "frames_per_cpu_s": n_frames / cpu,
        "atoms_per_cpu_s": n_frames * n_atoms / cpu,
    }


def bench_read(path: Path, chunk_size: int) -> dict:
    """Reading alone, chunk by chunk (what map_trajectory cannot beat)."""
    from ase_cg.io import H5MDTrajectory

    with H5MDTrajectory(path) as trajectory:
        t0, c0 = time.perf_counter(), time.process_time()
        for frames in trajectory.iter_chunks(chunk_size):
            trajectory.positions(frames)
            trajectory.cells(frames)
            if trajectory.has_forces:
                trajectory.forces(frames)
            if trajectory.has_velocities:
                trajectory.velocities(frames)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n_frames, n_atoms = trajectory.n_frames, trajectory.n_atoms
    return _rates(n_frames, n_atoms, wall, cpu)


def bench_file(path: Path, out: Path, chunk_size: int, compression: str | None) -> dict:
    from ase_cg.io import H5MDTrajectory
    from ase_cg.mapping import CGMapping, map_trajectory

    mapping = CGMapping.load(MAPPING)
    with H5MDTrajectory(path) as trajectory:
        n_frames, n_atoms = trajectory.n_frames, trajectory.n_atoms
    t0, c0 = time.perf_counter(), time.process_time()
    map_trajectory(
        path, out, mapping, chunk_size=chunk_size, compression=compression, progress=False
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"frames": n_frames} | _rates(n_frames, n_atoms, wall, cpu)


def peak_memory_mib(path: Path, out: Path, chunk_size: int) -> tuple[float, float]:
    """Peak RSS and peak Python-heap (tracemalloc, includes NumPy arrays) in MiB of a fresh
    process that maps ``path``."""
    code = (
        "import resource, tracemalloc\n"
        "from ase_cg.mapping import CGMapping, map_trajectory\n"
        f"m = CGMapping.load({str(MAPPING)!r})\n"
        "tracemalloc.start()\n"
        f"map_trajectory({str(path)!r}, {str(out)!r}, m, chunk_size={chunk_size}, "
        "progress=False)\n"
        "heap = tracemalloc.get_traced_memory()[1] / 2**20\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, heap)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    rss, heap = result.stdout.strip().splitlines()[-1].split()
    return float(rss), float(heap)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None, help="all-atom H5MD file")
    parser.add_argument(
        "--frames", type=int, default=500, help="frames of the synthetic trajectory (N)"
    )
    parser.add_argument("--chunk-size", type=int, default=256, help="frames per chunk")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the in-memory timing")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    args = parser.parse_args(argv)

    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = args.input or (REFERENCE if REFERENCE.exists() else None)
        if source is None:
            source = tmp / "synthetic.h5"
            synthetic_ethane(source, args.frames)
            label = f"synthetic 216 × ethane, {args.frames} frames"
        else:
            label = str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source)
        memory = bench_in_memory(source, args.repeats)
        read = bench_read(source, args.chunk_size)
        file = bench_file(source, tmp / "cg.h5", args.chunk_size, "gzip")
        plain = bench_file(source, tmp / "cg_plain.h5", args.chunk_size, None)
        big = tmp / "big.h5"
        synthetic_ethane(big, 4 * args.frames, seed=1)
        small = tmp / "small.h5"
        synthetic_ethane(small, args.frames, seed=2)
        rss_small, heap_small = peak_memory_mib(small, tmp / "cg_small.h5", args.chunk_size)
        rss_big, heap_big = peak_memory_mib(big, tmp / "cg_big.h5", args.chunk_size)
        sizes = (small.stat().st_size / 2**20, big.stat().st_size / 2**20)

    results = {
        "input": label,
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "in_memory": memory,
        "file": file,
        "file_uncompressed_output": plain,
        "read_only": read,
        "peak_memory_mib": {
            "frames": [args.frames, 4 * args.frames],
            "rss": [rss_small, rss_big],
            "python_heap": [heap_small, heap_big],
            "file_mib": list(sizes),
        },
        "chunk_size": args.chunk_size,
        "load_average": load,
    }
    print(
        f"Input: {label}; {memory['n_atoms']} atoms → {memory['n_beads']} beads; "
        f"chunk {args.chunk_size} frames"
    )
    print(f"Load average at start: {load[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    print()
    print("| what | frames/s (wall) | frames/CPU-s | atoms/CPU-s |")
    print("|---|---|---|---|")
    rows = [
        ("in memory (positions + forces + velocities)", memory),
        ("reading only (H5MDTrajectory positions, forces, velocities, cells)", read),
        ("file → file (`map_trajectory`, gzip output)", file),
        ("file → file (`map_trajectory`, uncompressed output)", plain),
    ]
    for what, r in rows:
        print(
            f"| {what} | {r['frames_per_s']:.0f} | {r['frames_per_cpu_s']:.0f} | "
            f"{r['atoms_per_cpu_s']:.3g} |"
        )
    print()
    print(f"SystemMapping build (molecule matching): {memory['system_build_s'] * 1e3:.0f} ms")
    print(
        f"Peak memory mapping {args.frames} frames ({sizes[0]:.0f} MiB file): RSS "
        f"{rss_small:.0f} MiB, Python heap {heap_small:.0f} MiB; {4 * args.frames} frames "
        f"({sizes[1]:.0f} MiB file): RSS {rss_big:.0f} MiB, Python heap {heap_big:.0f} MiB"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
