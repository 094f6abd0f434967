"""The cgtorch plugin on a GPU against all CPU cores of the same machine.

CG ethane boxes of ``bench/bench_lammps.py`` (pair + bond tables overlaid with a SchNet term, 2
interactions, 32 features, 6 Å cutoff, float32 unless ``--dtypes`` says otherwise) run NVT at
2 fs in LAMMPS with the plugin on ``device cuda`` (1 rank, and 2 ranks sharing the GPU) and on
``device cpu`` with one rank per core and one LibTorch thread per rank, the fastest CPU layout
measured. Reports bead-steps/s, ns/day and the GPU/CPU ratio for each size. (That the GPU gives
the CPU's energies and forces is checked by the plugin tests, which ``gpu_run.sh`` runs first.)

Usage: ``python bench/bench_gpu.py [--beads 10000 100000] [--output results.json]``.
``bench/gpu_run.sh`` runs it on a GPU machine after installing the offline bundle.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lammps import run_case  # noqa: E402  (a sibling script, not a package)


def gpu_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beads", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--dtypes", nargs="+", default=["f32"], choices=["f32", "f64"])
    parser.add_argument("--gpu-steps", type=int, default=100)
    parser.add_argument("--cpu-steps", type=int, default=20)
    parser.add_argument("--cpu-ranks", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=Path("bench_gpu.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("torch sees no CUDA device: this benchmark needs a GPU")
    report = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, GPU {gpu_name()}",
        "torch": torch.__version__,
        "command": " ".join(sys.argv),
        "results": [],
    }

    def record(result: dict) -> None:
        report["results"].append(result)
        args.output.write_text(json.dumps(report, indent=1))  # partial results survive a kill
        print(
            f"{result['case']:>10} {result['beads']:>7} {result['device']:>5} "
            f"{result['ranks']:>3} ranks {result['bead_steps_per_s']:>11.3g} bead-steps/s "
            f"{result['ns_per_day']:>8.3g} ns/day  ({result['wall_s']:.0f} s)",
            flush=True,
        )

    layouts = [("cuda", 1, args.gpu_steps), ("cuda", 2, args.gpu_steps)]
    layouts.append(("cpu", args.cpu_ranks, args.cpu_steps))
    for n_beads in args.beads:
        for dtype in args.dtypes:
            case = f"plugin-{dtype}"
            for device, ranks, steps in layouts:
                # one LibTorch thread per rank on the CPU; the GPU ranks keep a few for the host
                os.environ["OMP_NUM_THREADS"] = "1" if device == "cpu" else "4"
                start = time.perf_counter()
                try:
                    result = run_case(case, n_beads, ranks, steps, device=device)
                except Exception as error:  # record the failure and go on with the others
                    result = {
                        "case": case,
                        "beads": n_beads,
                        "device": device,
                        "ranks": ranks,
                        "error": f"{type(error).__name__}: {error}"[-2000:],
                    }
                    report["results"].append(result)
                    print(f"{case} {n_beads} {device} {ranks}: FAILED {result['error'][-300:]}")
                    continue
                result["wall_s"] = time.perf_counter() - start
                record(result)
    print("\nGPU over all CPU cores (bead-steps/s):")
    by_key = {(r["case"], r["beads"], r["device"], r["ranks"]): r for r in report["results"]}
    ratios = []
    for (case, beads, device, ranks), row in by_key.items():
        cpu = by_key.get((case, beads, "cpu", args.cpu_ranks))
        if device == "cuda" and cpu and "error" not in row and "error" not in cpu:
            ratio = row["bead_steps_per_s"] / cpu["bead_steps_per_s"]
            ratios.append({"case": case, "beads": beads, "gpu_ranks": ranks, "ratio": ratio})
            print(f"  {case} {beads} beads, {ranks} GPU rank(s): {ratio:.3g}x")
    report["gpu_over_cpu"] = ratios
    args.output.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
