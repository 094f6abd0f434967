"""Write ase_cg models for LAMMPS.

TorchScript file for ``pair_style cgtorch`` (:func:`write_torchscript_model`)
-----------------------------------------------------------------------------
A scripted ``torch.nn.Module`` with the contract

.. code-block:: text

    forward(bead_types   : int64 (n_all,)      model bead-type index of each local+ghost bead,
            pair_i       : int64 (n_pairs,)    first bead of each directed pair (i->j and j->i),
            pair_j       : int64 (n_pairs,)    second bead,
            pair_vectors : float (n_pairs, 3)  r_j - r_i, Å, every pair closer than the cutoff,
            n_local      : int)                beads [0, n_local) are owned by the LAMMPS rank
        -> float (n_all,)                      per-bead energies, eV

and its metadata in the TorchScript extra file ``cgtorch.json`` (the model knows itself; LAMMPS
asks the user for nothing but the type names)::

    {"format": "ase_cg.cgtorch", "version": 1,
     "bead_type_names": ["CH3", ...],     # pair_coeff * * NAME... refers to these
     "cutoff": 6.0,                       # Å, pairs closer than this are passed
     "n_interactions": 3,                 # message-passing layers K: ghost shell K * cutoff
     "dtype": "float64",                  # float32 | float64, the dtype of pair_vectors
     "units": {"energy": "eV", "length": "Angstrom"}}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from ase_cg.errors import InputError

#: Name of the TorchScript extra file holding the model's metadata.
METADATA_FILE = "cgtorch.json"
#: ``format`` tag and ``version`` of that metadata, checked by the plugin.
METADATA_FORMAT = "ase_cg.cgtorch"
METADATA_VERSION = 1

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def torchscript_metadata(
    bead_type_names: list[str], cutoff: float, n_interactions: int, dtype: torch.dtype
) -> dict:
    """The ``cgtorch.json`` metadata dictionary, validated.

    Parameters
    ----------
    bead_type_names : list of str
        Bead-type names in the order of the model's type indices.
    cutoff : float
        Å, pair cutoff of the many-body term.
    n_interactions : int
        Number of message-passing layers K (the LAMMPS ghost shell must be K·cutoff + skin).
    dtype : torch.float32 or torch.float64
        Floating dtype of the module (``pair_vectors`` are passed in it).
    """
    names = [str(name) for name in bead_type_names]
    if not names or len(set(names)) != len(names) or any(not n or n.split() != [n] for n in names):
        raise InputError(
            f"bead_type_names {names!r}: need at least one name, all distinct and without "
            "whitespace (LAMMPS pair_coeff refers to them)"
        )
    if not float(cutoff) > 0.0:
        raise InputError(f"cutoff={cutoff!r} Å: the many-body cutoff must be positive")
    if int(n_interactions) < 1:
        raise InputError(f"n_interactions={n_interactions!r}: need at least one layer")
    if dtype not in _DTYPES:
        raise InputError(f"dtype {dtype}: the plugin runs float32 or float64 models")
    return {
        "format": METADATA_FORMAT,
        "version": METADATA_VERSION,
        "bead_type_names": names,
        "cutoff": float(cutoff),
        "n_interactions": int(n_interactions),
        "dtype": _DTYPES[dtype],
        "units": {"energy": "eV", "length": "Angstrom"},
    }


def write_torchscript_model(
    module: torch.nn.Module,
    path: str | os.PathLike,
    *,
    bead_type_names: list[str],
    cutoff: float,
    n_interactions: int,
    dtype: torch.dtype = torch.float64,
) -> Path:
    """Script ``module`` (the contract in this module's docstring) and save it for the plugin.

    The module is moved to CPU and ``dtype``, its parameters are frozen
    (``requires_grad=False``, the plugin differentiates with respect to the pair vectors only),
    and the file is written atomically with the ``cgtorch.json`` metadata.

    Parameters
    ----------
    module : torch.nn.Module
        Scriptable module obeying the ``forward`` contract; it is not modified (a copy is
        scripted).
    path : path
        Output file (``.pt``).
    bead_type_names, cutoff, n_interactions, dtype
        See :func:`torchscript_metadata`.

    Returns
    -------
    Path
        ``path``.
    """
    import copy

    metadata = torchscript_metadata(bead_type_names, cutoff, n_interactions, dtype)
    module = copy.deepcopy(module).to(device="cpu", dtype=dtype).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    scripted = torch.jit.script(module)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        torch.jit.save(scripted, temporary, _extra_files={METADATA_FILE: json.dumps(metadata)})
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path
