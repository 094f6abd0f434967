"""The TorchScript file of ``pair_style cgtorch``: its contract, its metadata and its writers.

This module is the one Python owner of the plugin contract (the C++ side reads it in
``lammps_interface/src/pair_cgtorch.cpp``). :func:`write_torchscript_model` writes any module
that keeps the contract; :func:`write_neural_term` writes a network term (SchNet,
:class:`~ase_cg.potentials.neural.NeuralPotential`, or PaiNN,
:class:`~ase_cg.potentials.painn.PaiNNPotential`, whose features ``[q | μ]`` pack its vector
features so they cross ranks like any feature); :func:`export_aoti` compiles one ahead of time
with AOTInductor (a package for Python use; the plugin loads TorchScript).

A scripted ``torch.nn.Module`` of a message-passing model with ``K`` layers, ``F`` features and
``M`` message channels per bead, with four methods (``n`` beads, ``p`` pairs):

.. code-block:: text

    embed(bead_types : int64 (n,))                               -> float (n, F)
        initial features from the model bead-type indices
    aggregate(layer : int, x : float (n, F), bead_types : int64 (n,),
              pair_i : int64 (p,), pair_j : int64 (p,), pair_vectors : float (p, 3))
                                                                  -> float (n, M)
        the messages of each listed pair (r_j - r_i in Å, each pair once) summed into
        both of its beads: row i gets j's message, row j gets i's
    update(layer : int, x : float (m, F), aggregated : float (m, M), bead_types : int64 (m,))
                                                                  -> float (m, F)
        the new features of beads whose sums are complete
    energies(x : float (m, F), bead_types : int64 (m,))          -> float (m,)
        per-bead energies, eV

and a float attribute ``cutoff`` (Å, pairs closer than this are passed; it must equal the
metadata's). The plugin calls them layer by layer on each MPI rank: ``aggregate`` over the
rank's half neighbour list and its local and ghost beads, sums the ghosts' rows into their
owners, ``update`` on the local beads, and copies the new features to the ghosts, so only
features cross rank boundaries and the ghost shell is one cutoff (plus skin) for any ``K``.
Its metadata is in the TorchScript extra file ``cgtorch.json`` (the model knows itself; LAMMPS
asks the user for nothing but the type names)::

    {"format": "ase_cg.cgtorch", "version": 2,
     "bead_type_names": ["CH3", ...],     # pair_coeff * * NAME... refers to these
     "cutoff": 6.0,                       # Å, pairs closer than this are passed
     "n_interactions": 3,                 # message-passing layers K
     "dtype": "float64",                  # float32 | float64, the dtype of pair_vectors
     "units": {"energy": "eV", "length": "Angstrom"}}
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ase_cg._paths import atomic_path
from ase_cg.errors import InputError
from ase_cg.neighbors import neighbor_pairs
from ase_cg.potentials.neural import EnergyAndPairGradient, NeuralPotential, NeuralTerm

#: name of the TorchScript extra file holding the metadata (read by the plugin)
METADATA_FILE = "cgtorch.json"
#: ``format`` and ``version`` of that metadata
METADATA_FORMAT = "ase_cg.cgtorch"
METADATA_VERSION = 2
#: default grid spacing (Å) of the filter tables of exported SchNet terms
#: (:class:`~ase_cg.potentials.neural.FilterTable`; None or 0 evaluates the filter networks;
#: PaiNN terms are always exported with exact filters)
FILTER_SPACING = 0.002

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}
#: the methods ``pair_style cgtorch`` calls (``torch.jit.export`` them)
CONTRACT_METHODS = ("embed", "aggregate", "update", "energies")


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
        Number of message-passing layers K (``layer`` runs over 0 … K − 1).
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
        Scriptable module with the four methods of the contract; it is not modified (a copy
        is scripted).
    path : path
        Output file (``.pt``).
    bead_type_names, cutoff, n_interactions, dtype
        See :func:`torchscript_metadata`.

    Returns
    -------
    Path
        ``path``.
    """
    metadata = torchscript_metadata(bead_type_names, cutoff, n_interactions, dtype)
    missing = [name for name in CONTRACT_METHODS if not callable(getattr(module, name, None))]
    if missing:
        raise InputError(
            f"{type(module).__name__} lacks the cgtorch method(s) {missing}: the plugin calls "
            f"{', '.join(CONTRACT_METHODS)} (see lammps_interface.torchscript)"
        )
    if not isinstance(getattr(module, "cutoff", None), float) or module.cutoff != float(cutoff):
        raise InputError(
            f"{type(module).__name__}.cutoff is {getattr(module, 'cutoff', None)!r}; the module "
            f"needs a float attribute cutoff equal to the metadata's cutoff={float(cutoff)!r} Å"
        )
    module = copy.deepcopy(module).to(device="cpu", dtype=dtype).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    scripted = torch.jit.script(module)
    with atomic_path(path) as temporary:
        torch.jit.save(scripted, temporary, _extra_files={METADATA_FILE: json.dumps(metadata)})
    return Path(path)


def write_neural_term(
    term: NeuralTerm,
    path: str | os.PathLike,
    bead_type_names: list[str],
    *,
    dtype: torch.dtype | None = None,
    filter_spacing: float | None = FILTER_SPACING,
) -> Path:
    """Write a SchNet or PaiNN term (its ``lammps_module``) for the plugin.

    Parameters
    ----------
    term : NeuralPotential or PaiNNPotential
    path : path
        Output ``.pt`` file, written atomically.
    bead_type_names : list of str
        One name per bead type of the term, in index order (the CGModel's).
    dtype : torch.float32 or torch.float64, optional
        Weights' dtype in the file; default the term's.
    filter_spacing : float or None, Å
        Grid spacing of the filter tables the plugin reads instead of evaluating each
        interaction's filter network (:class:`~ase_cg.potentials.neural.FilterTable`); None or
        0: the networks themselves (exact, slower). SchNet only: a PaiNN term is written with
        exact filters whatever the spacing.
    """
    if not isinstance(term, NeuralTerm):
        raise InputError(
            f"write_neural_term: {type(term).__name__} is not a network term; the plugin runs "
            "NeuralPotential (SchNet) and PaiNNPotential terms"
        )
    spacing = (filter_spacing or None) if isinstance(term, NeuralPotential) else None
    module = term.lammps_module(spacing)
    if len(bead_type_names) != term.n_types:
        raise InputError(
            f"bead_type_names {list(bead_type_names)!r}: the term has {term.n_types} bead types; "
            "pass the CGModel's bead_type_names"
        )
    return write_torchscript_model(
        module,
        path,
        bead_type_names=list(bead_type_names),
        cutoff=float(term.cutoff),
        n_interactions=term.n_interactions,
        dtype=dtype or module.network.rbf_offsets.dtype,
    )


def _example_inputs(term: NeuralTerm, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """A small random periodic bead configuration with its pair list, for tracing."""
    rng = np.random.default_rng(0)
    box = 2.5 * term.cutoff
    n_beads = 40
    positions = rng.uniform(0.0, box, (n_beads, 3))
    cell = np.eye(3) * box
    pair_i, pair_j, shifts = neighbor_pairs(positions, cell, True, term.cutoff)
    vectors = positions[pair_j] - positions[pair_i] + shifts @ cell
    return (
        torch.as_tensor(rng.integers(0, term.n_types, n_beads), dtype=torch.int64),
        torch.as_tensor(pair_i),
        torch.as_tensor(pair_j),
        torch.as_tensor(vectors, dtype=dtype),
    )


def export_aoti(
    term: NeuralTerm,
    path: str | os.PathLike,
    bead_type_names: list[str],
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Compile ``term`` ahead of time (``torch.export`` + AOTInductor) into a ``.pt2`` package.

    The package runs :class:`EnergyAndPairGradient`: energies and their pair-vector gradient in
    one call, with no autograd or Python at run time, and fused kernels (on this machine's CPU
    2–3× faster than the eager or TorchScript module). Pair and bead counts are dynamic. Load it
    with ``torch._inductor.aoti_load_package(path)`` (Python) or
    ``torch::inductor::AOTIModelPackageLoader`` (C++); the metadata of
    :func:`write_neural_term` is in ``get_metadata()["cgtorch.json"]``.

    Compiling takes minutes and the package is specific to the host's CPU/GPU, compiler and torch
    version: compile it where it will run.

    Parameters
    ----------
    term : NeuralPotential or PaiNNPotential
    path : path of the ``.pt2`` package, written atomically
    bead_type_names : list of str
        As for :func:`write_neural_term`.
    dtype : torch.dtype, optional
        Default the term's.
    """
    # heavy: the AOTInductor compiler, needed only for this package format
    import torch._inductor
    from torch.fx.experimental.proxy_tensor import make_fx

    network = term.lammps_module().network
    dtype = dtype or network.rbf_offsets.dtype
    info = torchscript_metadata(bead_type_names, term.cutoff, term.n_interactions, dtype)
    module = EnergyAndPairGradient(network.to(dtype)).eval()
    example = _example_inputs(term, dtype)
    # autograd inside the function: trace the forward and backward into one graph first
    traced = make_fx(module, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*example)
    n_all = torch.export.Dim("n_all", min=2)
    n_pairs = torch.export.Dim("n_pairs", min=2)
    program = torch.export.export(
        traced,
        example,
        dynamic_shapes=({0: n_all}, {0: n_pairs}, {0: n_pairs}, {0: n_pairs}),
    )
    with atomic_path(path, suffix=".pt2") as temporary:
        torch._inductor.aoti_compile_and_package(
            program,
            package_path=str(temporary),
            inductor_configs={"aot_inductor.metadata": {METADATA_FILE: json.dumps(info)}},
        )
    return Path(path)
