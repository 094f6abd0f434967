"""Load the weights of a schnetpack 2.1.1 SchNet into :class:`~ase_cg.potentials.NeuralPotential`.

schnetpack is optional: it is imported only when weights are loaded. Parameter correspondence
(schnetpack name → ours, inside ``NeuralPotential.network``)::

    representation.embedding.weight[type_map[t]]        → embedding.weight[t]
    representation.radial_basis.{offsets,widths}        → rbf_{offsets,widths}
    representation.interactions[l].in2f                 → interactions[l].in2f
    representation.interactions[l].filter_network[0|1]  → interactions[l].filter{1|2}
    representation.interactions[l].f2out[0|1]           → interactions[l].f2out{1|2}
    head.outnet[k]                                      → head[2k]   (activations in between)

The cutoff is ``representation.cutoff_fn.cutoff``. schnetpack's per-atom offsets (the
``AddOffsets`` post-processing) are not part of the network: give them with
:meth:`NeuralPotential.set_energy_shift` if the model used them.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torch.utils.data.dataloader as dataloader
from torch import nn

from ase_cg.errors import InputError


class SchnetpackCompatError(InputError):
    """A schnetpack module whose layout :class:`NeuralPotential` cannot represent."""


def import_schnetpack():
    """``import schnetpack``, working around its import failure on torch ≥ 2.13.

    schnetpack 2.1.1 imports ``T_co`` from ``torch.utils.data.dataloader``, which torch 2.13 no
    longer defines; the name is restored on that module if it is missing (the fix
    upstream made). Raises ``ImportError`` if schnetpack is not installed.
    """
    if not hasattr(dataloader, "T_co"):
        dataloader.T_co = typing.TypeVar("T_co", covariant=True)
    import schnetpack  # optional: the schnetpack extra

    return schnetpack


def _activation_name(activation, where: str) -> str:
    spk = import_schnetpack()
    if activation is spk.nn.activations.shifted_softplus:
        return "shifted_softplus"
    if activation is F.silu or isinstance(activation, nn.SiLU):
        return "silu"
    raise SchnetpackCompatError(
        f"schnetpack {where} uses the activation {activation!r}; NeuralPotential supports "
        "shifted_softplus (SchNet's) and silu (Atomwise's default)"
    )


def _copy_linear(source: nn.Linear, target: nn.Linear, where: str) -> None:
    if source.weight.shape != target.weight.shape:
        raise SchnetpackCompatError(
            f"schnetpack {where} has weight shape {tuple(source.weight.shape)}, expected "
            f"{tuple(target.weight.shape)}"
        )
    if (source.bias is None) != (target.bias is None):
        raise SchnetpackCompatError(f"schnetpack {where}: bias present in one model only")
    target.weight.copy_(source.weight)
    if source.bias is not None:
        target.bias.copy_(source.bias)


def load_schnetpack_weights(cls, representation, head, type_map: Sequence[int]):
    """Build ``cls`` (a :class:`NeuralPotential` class) from schnetpack modules.

    See :meth:`NeuralPotential.from_schnetpack` for the parameters.
    """
    spk = import_schnetpack()
    if not isinstance(representation, spk.representation.SchNet):
        raise SchnetpackCompatError(
            f"expected a schnetpack.representation.SchNet, got {type(representation).__name__}"
        )
    if not isinstance(representation.radial_basis, spk.nn.GaussianRBF):
        raise SchnetpackCompatError(
            f"the SchNet's radial basis is {type(representation.radial_basis).__name__}; only "
            "GaussianRBF is supported"
        )
    if not isinstance(representation.cutoff_fn, spk.nn.CosineCutoff):
        raise SchnetpackCompatError(
            f"the SchNet's cutoff function is {type(representation.cutoff_fn).__name__}; only "
            "CosineCutoff is supported"
        )
    if len(representation.electronic_embeddings) > 0:
        raise SchnetpackCompatError("SchNet electronic (charge/spin) embeddings are not supported")
    if not isinstance(representation.embedding, nn.Embedding):
        raise SchnetpackCompatError(
            f"the SchNet's nuclear embedding is {type(representation.embedding).__name__}; only "
            "torch.nn.Embedding is supported"
        )
    type_map = [int(z) for z in type_map]
    n_rows = representation.embedding.num_embeddings
    if not type_map or min(type_map) < 0 or max(type_map) >= n_rows:
        raise SchnetpackCompatError(
            f"type_map {type_map} must give, for each bead type, an embedding row (atomic "
            f"number) in [0, {n_rows})"
        )
    interactions = list(representation.interactions)
    for index, block in enumerate(interactions):
        for name, activation in (
            ("filter_network[0]", block.filter_network[0].activation),
            ("f2out[0]", block.f2out[0].activation),
        ):
            if _activation_name(activation, f"interaction {index} {name}") != "shifted_softplus":
                raise SchnetpackCompatError(
                    f"schnetpack interaction {index} {name} uses {activation!r}; the SchNet "
                    "interaction of NeuralPotential uses shifted_softplus"
                )
    head_hidden, head_activation = None, "silu"
    if head is not None:
        if not isinstance(head, spk.atomistic.Atomwise):
            raise SchnetpackCompatError(
                f"head must be a schnetpack.atomistic.Atomwise, got {type(head).__name__}"
            )
        if head.n_out != 1 or head.aggregation_mode != "sum":
            raise SchnetpackCompatError(
                f"the Atomwise head has n_out={head.n_out}, aggregation_mode="
                f"{head.aggregation_mode!r}; an energy head needs n_out=1 and 'sum'"
            )
        layers = list(head.outnet)
        head_hidden = [layer.out_features for layer in layers[:-1]]
        names = {
            _activation_name(layer.activation, f"Atomwise layer {k}")
            for k, layer in enumerate(layers[:-1])
        }
        if len(names) > 1:
            raise SchnetpackCompatError("the Atomwise hidden layers use different activations")
        head_activation = names.pop() if names else "silu"
        if not isinstance(layers[-1].activation, nn.Identity):
            raise SchnetpackCompatError("the last Atomwise layer must have no activation")

    term = cls(
        len(type_map),
        n_atom_basis=representation.n_atom_basis,
        n_filters=representation.n_filters,
        n_interactions=len(interactions),
        n_rbf=representation.radial_basis.n_rbf,
        cutoff=float(representation.cutoff_fn.cutoff),
        head_hidden=head_hidden,
        head_activation=head_activation,
    )
    network = term.network.to(representation.embedding.weight.dtype)
    with torch.no_grad():
        network.embedding.weight.copy_(representation.embedding.weight[type_map])
        network.rbf_offsets.copy_(representation.radial_basis.offsets)
        network.rbf_widths.copy_(representation.radial_basis.widths)
        for index, (source, target) in enumerate(
            zip(interactions, network.interactions, strict=True)
        ):
            where = f"interaction {index}"
            _copy_linear(source.in2f, target.in2f, f"{where} in2f")
            _copy_linear(source.filter_network[0], target.filter1, f"{where} filter_network[0]")
            _copy_linear(source.filter_network[1], target.filter2, f"{where} filter_network[1]")
            _copy_linear(source.f2out[0], target.f2out1, f"{where} f2out[0]")
            _copy_linear(source.f2out[1], target.f2out2, f"{where} f2out[1]")
        if head is not None:
            ours = [layer for layer in network.head if isinstance(layer, nn.Linear)]
            for index, (source, target) in enumerate(zip(head.outnet, ours, strict=True)):
                _copy_linear(source, target, f"Atomwise layer {index}")
    return term
