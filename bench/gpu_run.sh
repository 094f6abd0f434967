#!/usr/bin/env bash
# GPU checks of ase_cg in one command, on a bare CUDA machine with Python 3.12 and a CUDA torch
# but no registry, no LAMMPS and no mpich:
#
#   python3 bench/gpu_bundle.py      # here, with internet: the offline wheels in .whl/ (31 MiB)
#   bash bench/gpu_run.sh            # there, in the repository root, with .whl/ beside it
#
# 1. installs the bundle offline into a venv (/tmp/ase_cg-gpu) that also sees the machine's
#    own packages (torch, numpy, h5py, ...), with ase_cg itself from this checkout;
# 2. compiles the cgtorch plugin against that torch (CUDA) and the LAMMPS of the bundle;
# 3. runs bench/bench_gpu.py: the plugin on the GPU against all CPU cores, 10 000 and
#    100 000 beads, float32;
# 4. runs the CUDA tests and the plugin tests, whose `device auto` decks then run on the GPU.
# Results go to $OUT (default ./gpu-results): a log per stage (install, environment, plugin,
# tests, aoti, bench), pytest.xml and bench_gpu.json. Each stage runs under its own time limit and a failed stage
# does not stop the later ones; the exit code is that of the first failed stage.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/gpu-results}
WHEELS=${WHEELS:-$ROOT/.whl}
# resolved now: PATH gets the venv first below
PYTHON=$(command -v "${PYTHON:-python3}")
VENV=${VENV:-/tmp/ase_cg-gpu}
mkdir -p "$OUT"
cd "$ROOT" || exit 1
status=0
stage() {  # stage NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, remember a failure
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    echo "=== $name (limit ${limit}s)"
    timeout "$limit" "$@" > >(tee "$OUT/$name.log") 2>&1
    rc=$?
    echo "=== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
    return 0
}

install() {
    rm -rf "$VENV"
    "$PYTHON" -m venv --without-pip "$VENV" || return 1
    local base site
    # the folders holding the machine's torch and pip (its python3 may see them through
    # PYTHONPATH or a venv of its own, which a new venv does not inherit)
    base=$("$PYTHON" -c 'import os, sys, pip, torch
dirs = {os.path.dirname(os.path.dirname(m.__file__)) for m in (pip, torch)}
dirs |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
print("\n".join(sorted(dirs)))')
    echo "$PYTHON is $(command -v "$PYTHON"); its torch and pip are in: $base"
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$base" >"$site/machine-packages.pth"   # torch, numpy, h5py, ... of the machine
    "$VENV/bin/python" -m pip install -q --no-index --no-deps --ignore-installed --no-compile "$WHEELS"/*.whl || return 1
    ln -sf liblammps.so.0 "$site/lammps/liblammps.so"  # the bundle drops this duplicate
    # ase_cg from this checkout; the editable install gives the lammps.plugins entry point
    "$VENV/bin/python" -m pip install -q --no-index --no-deps --ignore-installed --no-build-isolation -e "$ROOT" \
        || echo "(editable install failed: using PYTHONPATH only)"
}

environment() {
    nvidia-smi || true
    "$VENV/bin/python" - <<'EOF'
import platform, torch, ase, h5py, numpy
from importlib import metadata
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
print("lammps", metadata.version("lammps"), "mpich", metadata.version("mpich"), "ase",
      ase.__version__, "h5py", h5py.__version__, "numpy", numpy.__version__)
EOF
}

export ROOT WHEELS PYTHON VENV
export -f install environment
export PATH="$VENV/bin:$PATH" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export ASE_CG_CACHE=/tmp/ase_cg-cache
stage install 120 bash -c install
stage environment 30 bash -c environment
stage plugin 180 "$VENV/bin/python" -c \
    "from lammps_interface.plugin import build_plugin; print(build_plugin())"
stage bench 160 "$VENV/bin/python" bench/bench_gpu.py --gpu-steps 50 --output "$OUT/bench_gpu.json"
# AOTInductor loading crashed the interpreter on the GPU machine: its test runs on its own
aoti=tests/lammps/test_neural_export.py::test_aoti_package_equals_eager
stage tests 200 "$VENV/bin/python" -m pytest -q -p no:cacheprovider -o addopts="-ra" \
    --tb=short tests/lammps/test_cuda.py tests/lammps/test_lammps_plugin.py tests/lammps/test_neural_export.py \
    tests/lammps/test_lammps_export.py tests/lammps/test_md_lammps.py --deselect "$aoti" \
    "tests/unit/test_mapping.py::test_pseudo_inverse_force_map_on_cuda" --junitxml="$OUT/pytest.xml"
stage aoti 60 "$VENV/bin/python" -X faulthandler -m pytest -q -p no:cacheprovider \
    -o addopts="-ra" --tb=short "$aoti"
exit "$status"
