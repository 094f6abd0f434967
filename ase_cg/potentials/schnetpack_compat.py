"""Load the weights of a schnetpack 2.1.1 SchNet or PaiNN into an ase_cg energy term.

schnetpack is optional: it is imported only when weights are loaded. Parameter correspondence
(schnetpack name → ours, inside ``NeuralPotential.network``)::

    representation.embedding.weight[type_map[t]]        → embedding.weight[t]
    representation.radial_basis.{offsets,widths}        → rbf_{offsets,widths}
    representation.interactions[l].in2f                 → interactions[l].in2f
    representation.interactions[l].filter_network[0|1]  → interactions[l].filter{1|2}
    representation.interactions[l].f2out[0|1]           → interactions[l].f2out{1|2}
    head.outnet[k]                                      → head[2k]   (activations in between)

PaiNN (:class:`~ase_cg.potentials.painn.PaiNNPotential`, inside its ``network``)::

    representation.embedding.weight[type_map[t]]                 → embedding.weight[t]
    representation.radial_basis.{offsets,widths}                 → rbf_{offsets,widths}
    representation.filter_net                                    → filter_net
    representation.interactions[l].interatomic_context_net[0|1]  → interactions[l].context{1|2}
    representation.mixing[l].mu_channel_mix                      → mixings[l].vector_mix
    representation.mixing[l].intraatomic_context_net[0|1]       → mixings[l].context{1|2}
    head.outnet[k]                                               → head[2k]

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


def _check_representation(spk, representation, name: str) -> None:
    """The radial basis, cutoff and embeddings of a schnetpack SchNet or PaiNN are supported."""
    if not isinstance(representation.radial_basis, spk.nn.GaussianRBF):
        raise SchnetpackCompatError(
            f"the {name}'s radial basis is {type(representation.radial_basis).__name__}; only "
            "GaussianRBF is supported"
        )
    if not isinstance(representation.cutoff_fn, spk.nn.CosineCutoff):
        raise SchnetpackCompatError(
            f"the {name}'s cutoff function is {type(representation.cutoff_fn).__name__}; only "
            "CosineCutoff is supported"
        )
    if len(representation.electronic_embeddings) > 0:
        raise SchnetpackCompatError(f"{name} electronic (charge/spin) embeddings are not supported")
    if not isinstance(representation.embedding, nn.Embedding):
        raise SchnetpackCompatError(
            f"the {name}'s nuclear embedding is {type(representation.embedding).__name__}; only "
            "torch.nn.Embedding is supported"
        )


def _checked_type_map(representation, type_map: Sequence[int]) -> list[int]:
    type_map = [int(z) for z in type_map]
    n_rows = representation.embedding.num_embeddings
    if not type_map or min(type_map) < 0 or max(type_map) >= n_rows:
        raise SchnetpackCompatError(
            f"type_map {type_map} must give, for each bead type, an embedding row (atomic "
            f"number) in [0, {n_rows})"
        )
    return type_map


def _head_layout(spk, head) -> tuple[list[int] | None, str]:
    """Hidden widths and activation of an ``Atomwise`` energy head (None, "silu" without one)."""
    if head is None:
        return None, "silu"
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
    if not isinstance(layers[-1].activation, nn.Identity):
        raise SchnetpackCompatError("the last Atomwise layer must have no activation")
    return head_hidden, names.pop() if names else "silu"


def _copy_head(head, network) -> None:
    if head is None:
        return
    ours = [layer for layer in network.head if isinstance(layer, nn.Linear)]
    for index, (source, target) in enumerate(zip(head.outnet, ours, strict=True)):
        _copy_linear(source, target, f"Atomwise layer {index}")


def load_schnetpack_weights(cls, representation, head, type_map: Sequence[int]):
    """Build ``cls`` (a :class:`NeuralPotential` class) from schnetpack modules.

    See :meth:`NeuralPotential.from_schnetpack` for the parameters.
    """
    spk = import_schnetpack()
    if not isinstance(representation, spk.representation.SchNet):
        raise SchnetpackCompatError(
            f"expected a schnetpack.representation.SchNet, got {type(representation).__name__}"
        )
    _check_representation(spk, representation, "SchNet")
    type_map = _checked_type_map(representation, type_map)
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
    head_hidden, head_activation = _head_layout(spk, head)

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
        _copy_head(head, network)
    return term


def load_schnetpack_painn_weights(cls, representation, head, type_map: Sequence[int]):
    """Build ``cls`` (a :class:`~ase_cg.potentials.painn.PaiNNPotential` class) from schnetpack
    modules.

    See :meth:`PaiNNPotential.from_schnetpack` for the parameters.
    """
    spk = import_schnetpack()
    if not isinstance(representation, spk.representation.PaiNN):
        raise SchnetpackCompatError(
            f"expected a schnetpack.representation.PaiNN, got {type(representation).__name__}"
        )
    _check_representation(spk, representation, "PaiNN")
    type_map = _checked_type_map(representation, type_map)
    interactions = list(representation.interactions)
    mixings = list(representation.mixing)
    activations = set()
    for index, (interaction, mixing) in enumerate(zip(interactions, mixings, strict=True)):
        for where, layer in (
            (
                f"interaction {index} interatomic_context_net[0]",
                interaction.interatomic_context_net[0],
            ),
            (f"mixing {index} intraatomic_context_net[0]", mixing.intraatomic_context_net[0]),
        ):
            activations.add(_activation_name(layer.activation, where))
    if len(activations) != 1:
        raise SchnetpackCompatError(
            f"the PaiNN blocks use different activations {sorted(activations)}; PaiNNPotential "
            "uses one"
        )
    shared_interactions = len(interactions) > 1 and interactions[0] is interactions[1]
    head_hidden, head_activation = _head_layout(spk, head)

    term = cls(
        len(type_map),
        n_atom_basis=representation.n_atom_basis,
        n_interactions=representation.n_interactions,
        n_rbf=representation.radial_basis.n_rbf,
        cutoff=float(representation.cutoff_fn.cutoff),
        head_hidden=head_hidden,
        head_activation=head_activation,
        activation=activations.pop(),
        shared_interactions=shared_interactions,
        shared_filters=bool(representation.share_filters),
        epsilon=float(mixings[0].epsilon),
    )
    network = term.network.to(representation.embedding.weight.dtype)
    with torch.no_grad():
        network.embedding.weight.copy_(representation.embedding.weight[type_map])
        network.rbf_offsets.copy_(representation.radial_basis.offsets)
        network.rbf_widths.copy_(representation.radial_basis.widths)
        _copy_linear(representation.filter_net, network.filter_net, "filter_net")
        blocks = zip(interactions, mixings, network.interactions, network.mixings, strict=True)
        for index, (interaction, mixing, our_interaction, our_mixing) in enumerate(blocks):
            context = interaction.interatomic_context_net
            _copy_linear(context[0], our_interaction.context1, f"interaction {index} context[0]")
            _copy_linear(context[1], our_interaction.context2, f"interaction {index} context[1]")
            context = mixing.intraatomic_context_net
            _copy_linear(mixing.mu_channel_mix, our_mixing.vector_mix, f"mixing {index} mu_mix")
            _copy_linear(context[0], our_mixing.context1, f"mixing {index} context[0]")
            _copy_linear(context[1], our_mixing.context2, f"mixing {index} context[1]")
        _copy_head(head, network)
    return term
