"""Benchmark: classical spline CG potential for ethane (CH3|CH3) fitted by force matching.

Maps the all-atom reference to CG (unless a CG file is given), fits pair + bond splines with
:func:`ase_cg.fitting.fit_classical`, and prints one JSON record: held-out fraction of mapped-force
variance unexplained (per bead type), fit time, throughput (frames/s, bead-frames/s) and the
peak resident memory of the process.

Usage::

    .venv/bin/python bench/bench_classical.py                       # data/ethane_aa.h5
    .venv/bin/python bench/bench_classical.py --stride 2 --output /tmp/classical
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--aa",
        type=Path,
        default=REPO / "data" / "ethane_aa.h5",
        help="all-atom H5MD reference (default: data/ethane_aa.h5)",
    )
    parser.add_argument(
        "--mapping",
        type=Path,
        default=REPO / "data" / "ethane_mapping.json",
        help="CGMapping JSON (default: data/ethane_mapping.json)",
    )
    parser.add_argument(
        "--cg",
        type=Path,
        default=None,
        help="already mapped CG H5MD file (default: map --aa to a temporary file)",
    )
    parser.add_argument("--cutoff", type=float, default=10.0, help="pair cutoff, Å (default 10)")
    parser.add_argument("--stride", type=int, default=1, help="use every n-th frame (default 1)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=180.0,
        help="temperature of the reference, K (default 180)",
    )
    parser.add_argument(
        "--smoothness",
        type=float,
        default=None,
        help="ClassicalConfig.smoothness (default: the config default)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="folder for model.pt, classical.png and report.json (default: none)",
    )
    args = parser.parse_args(argv)  # fmt: skip

    import torch

    from ase_cg.fitting import ClassicalConfig, fit_classical, plot_classical
    from ase_cg.io import H5MDTrajectory
    from ase_cg.mapping import CGMapping, map_trajectory
    from ase_cg.model import save_model

    torch.set_num_threads(args.threads)
    mapping = CGMapping.load(args.mapping)
    with tempfile.TemporaryDirectory() as scratch:
        cg_path = args.cg
        map_seconds = None
        if cg_path is None:
            cg_path = Path(scratch) / "cg.h5"
            started = time.perf_counter()
            map_trajectory(args.aa, cg_path, mapping)
            map_seconds = time.perf_counter() - started
        with H5MDTrajectory(cg_path) as trajectory:
            n_beads = trajectory.n_atoms
            extra = {} if args.smoothness is None else {"smoothness": args.smoothness}
            config = ClassicalConfig(
                pair_cutoff=args.cutoff, stride=args.stride, temperature=args.temperature, **extra
            )
            started = time.perf_counter()
            model, report = fit_classical(trajectory, mapping, config=config)
            wall = time.perf_counter() - started
    result = {
        "benchmark": "classical spline fit, ethane CH3|CH3",
        "reference": str(args.aa if args.cg is None else args.cg),
        "n_beads": n_beads,
        "threads": args.threads,
        "smoothness": config.smoothness,
        "map_seconds": map_seconds,
        "fit_wall_seconds": wall,
        "n_train_frames": report["n_train_frames"],
        "n_validation_frames": report["n_validation_frames"],
        "n_coefficients": report["n_coefficients"],
        "accumulate_frames_per_second": report["frames_per_second"],
        "accumulate_bead_frames_per_second": report["frames_per_second"] * n_beads,
        "validation": report["validation"],
        "train": report["train"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        save_model(model, args.output / "model.pt")
        plot_classical(model, args.output / "classical.png")
        (args.output / "report.json").write_text(json.dumps(result, indent=1) + "\n")
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
