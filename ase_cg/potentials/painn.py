"""PaiNN over CG beads: an equivariant many-body energy term, parameter-compatible with schnetpack.

The polarizable interaction neural network (Schütt, Unke, Gastegger, ICML 2021) in the form of
schnetpack 2.1.1's ``PaiNN`` representation followed by its ``Atomwise`` head. Each bead carries
scalar features ``q_i`` (F) and vector features ``μ_i`` (3 × F), so messages know directions
and the energy can depend on angles between neighbours (SchNet's messages know distances only;
one-site CG water needs the O–O–O angles). With ``r̂_ij = (r_j − r_i) / r_ij``:

.. math::

    q^{(0)}_i &= \\mathrm{Emb}(t_i), \\qquad \\mu^{(0)}_i = 0 \\\\
    \\phi_{ij} &= \\big(e(r_{ij}) A_l + a_l\\big)\\, f_c(r_{ij})
        = [\\phi^s_{ij}, \\phi^{r}_{ij}, \\phi^{v}_{ij}] \\in \\mathbb{R}^{3F} \\\\
    [s_j, s^r_j, s^v_j] &= \\sigma(q_j B_1 + b_1) B_2 + b_2 \\\\
    q_i &\\mathrel{+}= \\textstyle\\sum_j \\phi^s_{ij} \\odot s_j, \\qquad
    \\mu_i \\mathrel{+}= \\textstyle\\sum_j \\phi^{r}_{ij} \\odot s^r_j\\, \\hat r_{ij}
        + \\phi^{v}_{ij} \\odot s^v_j \\odot \\mu_j \\\\
    U_i &= \\mu_i V, \\quad W_i = \\mu_i V', \\quad
    [a^{ss}_i, a^{vv}_i, a^{sv}_i] = \\sigma\\big([q_i, \\sqrt{\\lVert U_i\\rVert^2 + \\epsilon}]
        C_1 + c_1\\big) C_2 + c_2 \\\\
    q_i &\\mathrel{+}= a^{ss}_i + a^{sv}_i \\odot \\langle U_i, W_i\\rangle, \\qquad
    \\mu_i \\mathrel{+}= a^{vv}_i \\odot W_i \\\\
    E_i &= \\mathrm{MLP}(q^{(L)}_i) + \\Delta_{t_i}

with schnetpack's Gaussian basis ``e`` on [0, r_c] and cosine cutoff ``f_c`` (shared with
:mod:`ase_cg.potentials.neural`), σ SiLU by default, the filter weights ``A_l`` one slice per
interaction of one dense layer (or one slice for all, ``shared_filters``), and the sums over all
neighbours within ``r_c`` (no exclusions: the term is many-body). Vector features are
translation-invariant and rotate with the configuration, so the energy is invariant.

Like :class:`~ase_cg.potentials.neural.SchNetEnergy`, the filter ``φ_ij`` depends only on the
distance and is computed once per undirected pair (the pair carries messages both ways, the
direction flipped, ``r̂_ji = −r̂_ij``, for the message into ``j``).

Speed: the cost is the per-pair vector messages, (3 × F) per pair and direction, memory bound on
a CPU. On 800 CH3 beads at liquid-ethane density with a 7 Å cutoff (about 13 000 pairs), one
CPU thread, an energy + forces call takes about 2.5× as long as a SchNet of the same width for
one layer of 16 features, and 4× for two layers of 32 (float32 weights; 24 vs 10 ms and
93 vs 23 ms). The first layer skips the ``φ^v`` messages (its vector features are zero).

LAMMPS: :meth:`PaiNNPotential.lammps_module` gives the plugin's layer-wise view with the features
packed as ``x = [q | μ]`` (n, 4F), ``μ`` flattened (3, F) row-major, so ``pair_style cgtorch``
exchanges the vector features between MPI ranks like any feature (the plugin is unchanged);
``aggregate`` returns the packed message sums (n, 4F), ``update`` adds them and applies the
per-bead mixing. The exported module evaluates the filters exactly: SchNet's filter tables
(:class:`~ase_cg.potentials.neural.FilterTable`, ``neural_filter_spacing``) do not apply to it.

Bead-type embeddings: one row per bead type; :meth:`PaiNNPotential.from_schnetpack` copies row
``type_map[t]`` of schnetpack's atomic-number table into row ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as functional
from torch import Tensor, nn

from ase_cg.potentials.base import register_term
from ase_cg.potentials.neural import (
    ACTIVATIONS,
    NeuralPotentialError,
    NeuralTerm,
    activation_module,
    atomwise_head,
    check_sizes,
    dense_layer,
    gaussian_basis,
    register_gaussian_basis,
    undirected_pairs,
)
from ase_cg.potentials.schnetpack_compat import load_schnetpack_painn_weights


class PaiNNInteraction(nn.Module):
    """One PaiNN interaction block (equivariant messages), schnetpack's layout.

    ``context1`` and ``context2`` are schnetpack's ``interatomic_context_net[0|1]``.
    """

    def __init__(self, n_atom_basis: int, activation: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.n_atom_basis = n_atom_basis
        self.context1 = dense_layer(n_atom_basis, n_atom_basis, dtype=dtype)
        self.activation = activation_module(activation)
        self.context2 = dense_layer(n_atom_basis, 3 * n_atom_basis, dtype=dtype)

    def forward(
        self,
        x: Tensor,
        filters: list[Tensor],
        directions: Tensor,
        pair_i: Tensor,
        pair_j: Tensor,
        vector_features: bool = True,
    ) -> Tensor:
        """The messages of each pair summed into both of its beads, packed (n_beads, 4F).

        Parameters
        ----------
        x : (n_beads, 4F)
            Packed features ``[q | μ]``.
        filters : three (n_pairs, F)
            The layer's filters ``φ^s, φ^r, φ^v`` of the pairs (envelope and multiplicity
            weight included).
        directions : (n_pairs, 3)
            Unit vectors ``r̂_ij`` from ``i`` to ``j``.
        pair_i, pair_j : (n_pairs,) int64
            Each pair once; ``i`` gets ``j``'s message along ``r̂_ij``, ``j`` gets ``i``'s along
            ``−r̂_ij``.
        vector_features : bool
            False when every ``μ`` is zero (the first layer): the ``φ^v`` messages are skipped.
        """
        width = self.n_atom_basis
        n_beads = x.shape[0]
        context = self.context2(self.activation(self.context1(x[:, :width])))
        # slice the per-bead (n, 3F) tensors, not per-pair ones: the per-pair work is the cost
        scalar = context[:, :width]
        radial = context[:, width : 2 * width]
        vector = context[:, 2 * width :]
        dq = torch.zeros(n_beads, width, dtype=x.dtype, device=x.device)
        dq = dq.index_add(0, pair_i, filters[0] * scalar.index_select(0, pair_j))
        dq = dq.index_add(0, pair_j, filters[0] * scalar.index_select(0, pair_i))
        along = directions.unsqueeze(2)
        mu_to_i = (filters[1] * radial.index_select(0, pair_j)).unsqueeze(1) * along
        mu_to_j = (filters[1] * radial.index_select(0, pair_i)).unsqueeze(1) * -along
        if vector_features:
            mu = x[:, width:].reshape(n_beads, 3, width)
            mu_to_i = mu_to_i + (filters[2] * vector.index_select(0, pair_j)).unsqueeze(
                1
            ) * mu.index_select(0, pair_j)
            mu_to_j = mu_to_j + (filters[2] * vector.index_select(0, pair_i)).unsqueeze(
                1
            ) * mu.index_select(0, pair_i)
        dmu = torch.zeros(n_beads, 3, width, dtype=x.dtype, device=x.device)
        dmu = dmu.index_add(0, pair_i, mu_to_i).index_add(0, pair_j, mu_to_j)
        return torch.cat([dq, dmu.reshape(n_beads, 3 * width)], dim=1)


class PaiNNMixing(nn.Module):
    """One PaiNN mixing block (per-bead update of scalar and vector features).

    ``vector_mix`` is schnetpack's ``mu_channel_mix``; ``context1``, ``context2`` its
    ``intraatomic_context_net[0|1]``.
    """

    def __init__(
        self, n_atom_basis: int, activation: str, epsilon: float, dtype: torch.dtype
    ) -> None:
        super().__init__()
        self.n_atom_basis = n_atom_basis
        self.epsilon = float(epsilon)
        self.vector_mix = dense_layer(n_atom_basis, 2 * n_atom_basis, bias=False, dtype=dtype)
        self.context1 = dense_layer(2 * n_atom_basis, n_atom_basis, dtype=dtype)
        self.activation = activation_module(activation)
        self.context2 = dense_layer(n_atom_basis, 3 * n_atom_basis, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        """Mixed packed features (n_beads, 4F) from packed features (n_beads, 4F)."""
        width = self.n_atom_basis
        n_beads = x.shape[0]
        q = x[:, :width]
        mu = x[:, width:].reshape(n_beads, 3, width)
        mixed = self.vector_mix(mu)
        mu_u, mu_w = mixed[:, :, :width], mixed[:, :, width:]
        norm_u = torch.sqrt((mu_u * mu_u).sum(dim=1) + self.epsilon)
        context = self.context2(self.activation(self.context1(torch.cat([q, norm_u], dim=1))))
        q = q + context[:, :width] + context[:, 2 * width :] * (mu_u * mu_w).sum(dim=1)
        mu = mu + context[:, width : 2 * width].unsqueeze(1) * mu_w
        return torch.cat([q, mu.reshape(n_beads, 3 * width)], dim=1)


class PaiNNEnergy(nn.Module):
    """Per-bead PaiNN energies from bead types and directed pair vectors.

    The computational core of :class:`PaiNNPotential` and of its exported LAMMPS module; inputs
    are plain tensors and the graph has no data-dependent Python numbers (it scripts with
    TorchScript). Features are packed ``x = [q | μ]`` (n_beads, 4F).

    Parameters
    ----------
    n_types, n_atom_basis, n_interactions, n_rbf : int
    cutoff : float, Å
    head_hidden : list of int
    head_activation, activation : {"silu", "shifted_softplus"}
        Of the output MLP, and of the interaction and mixing blocks.
    shared_interactions : bool
        One interaction and one mixing block used by every layer.
    shared_filters : bool
        One filter slice (3F wide) used by every layer.
    epsilon : float
        Added to the squared norm of the vector features before the square root.
    dtype : torch.dtype
        Of the weights; inputs are cast to it, energies cast back to the input dtype.
    """

    def __init__(
        self,
        n_types: int,
        n_atom_basis: int,
        n_interactions: int,
        n_rbf: int,
        cutoff: float,
        head_hidden: list[int],
        head_activation: str,
        activation: str,
        shared_interactions: bool,
        shared_filters: bool,
        epsilon: float,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.n_atom_basis = n_atom_basis
        self.shared_filters = bool(shared_filters)
        self.embedding = nn.Embedding(n_types, n_atom_basis, dtype=dtype)
        register_gaussian_basis(self, self.cutoff, n_rbf, dtype)
        n_filter_sets = 1 if shared_filters else n_interactions
        self.filter_net = dense_layer(n_rbf, n_filter_sets * 3 * n_atom_basis, dtype=dtype)
        if shared_interactions:
            interaction = PaiNNInteraction(n_atom_basis, activation, dtype)
            mixing = PaiNNMixing(n_atom_basis, activation, epsilon, dtype)
            self.interactions = nn.ModuleList([interaction] * n_interactions)
            self.mixings = nn.ModuleList([mixing] * n_interactions)
        else:
            self.interactions = nn.ModuleList(
                PaiNNInteraction(n_atom_basis, activation, dtype) for _ in range(n_interactions)
            )
            self.mixings = nn.ModuleList(
                PaiNNMixing(n_atom_basis, activation, epsilon, dtype) for _ in range(n_interactions)
            )
        self.head = atomwise_head(n_atom_basis, head_hidden, head_activation, dtype)
        self.register_buffer("type_energy_shift", torch.zeros(n_types, dtype=dtype))

    def forward(
        self, bead_types: Tensor, pair_i: Tensor, pair_j: Tensor, pair_vectors: Tensor
    ) -> Tensor:
        """Per-bead energies (n_beads,) in eV, in the dtype of ``pair_vectors``.

        Parameters
        ----------
        bead_types : (n_beads,) int64
        pair_i, pair_j : (n_pairs,) int64
            Directed pairs, all pairs closer than the cutoff, each in both directions.
        pair_vectors : (n_pairs, 3) float, Å
            ``x_j − x_i``.
        """
        undirected = undirected_pairs(pair_i, pair_j)
        pair_i, pair_j = pair_i.index_select(0, undirected), pair_j.index_select(0, undirected)
        vectors = pair_vectors.index_select(0, undirected)
        basis, envelope = self.pair_basis(vectors)
        # a bead's own periodic images keep both directions, each at half weight
        envelope = torch.where(pair_i == pair_j, 0.5 * envelope, envelope)
        directions = self.pair_directions(vectors)
        x = self.embed(bead_types)
        for index, (interaction, mixing) in enumerate(
            zip(self.interactions, self.mixings, strict=True)
        ):
            filters = self.layer_filters(index, basis, envelope)
            aggregated = interaction(x, filters, directions, pair_i, pair_j, index > 0)
            x = mixing(x + aggregated)
        return self.readout(x, bead_types).to(pair_vectors.dtype)

    def embed(self, bead_types: Tensor) -> Tensor:
        """Initial packed features (n_beads, 4F): the type embedding and zero vectors."""
        q = self.embedding(bead_types)
        return torch.cat([q, q.new_zeros(q.shape[0], 3 * self.n_atom_basis)], dim=1)

    def pair_basis(self, pair_vectors: Tensor) -> tuple[Tensor, Tensor]:
        """Gaussian expansion (n_pairs, n_rbf) and cosine envelope (n_pairs,) of the distances."""
        vectors = pair_vectors.to(self.rbf_offsets.dtype)
        distances = torch.sqrt((vectors * vectors).sum(dim=1))
        return gaussian_basis(distances, self.rbf_offsets, self.rbf_widths, self.cutoff)

    def pair_directions(self, pair_vectors: Tensor) -> Tensor:
        """Unit vectors (n_pairs, 3) along ``pair_vectors`` (n_pairs, 3), in the weights' dtype."""
        vectors = pair_vectors.to(self.rbf_offsets.dtype)
        return vectors / torch.sqrt((vectors * vectors).sum(dim=1, keepdim=True))

    def layer_filters(self, layer: int, basis: Tensor, envelope: Tensor) -> list[Tensor]:
        """Filters ``φ^s, φ^r, φ^v`` (three (n_pairs, F)) of interaction ``layer``, envelope
        included: the layer's rows of ``filter_net`` (one dense layer for all layers)."""
        width = self.n_atom_basis
        first = 0 if self.shared_filters else 3 * layer * width
        weight, bias = self.filter_net.weight, self.filter_net.bias
        scale = envelope.unsqueeze(1)
        return [
            functional.linear(
                basis,
                weight.narrow(0, first + k * width, width),
                bias.narrow(0, first + k * width, width),
            )
            * scale
            for k in range(3)
        ]

    def aggregate(
        self,
        layer: int,
        x: Tensor,
        filters: list[Tensor],
        directions: Tensor,
        pair_i: Tensor,
        pair_j: Tensor,
    ) -> Tensor:
        """Interaction ``layer``'s message sums (n_beads, 4F); see :class:`PaiNNInteraction`.

        The first layer's vector features are zero (:meth:`embed`), so its ``φ^v`` messages are
        skipped.
        """
        aggregated = torch.empty(0)
        for index, interaction in enumerate(self.interactions):
            if index == layer:
                aggregated = interaction(x, filters, directions, pair_i, pair_j, layer > 0)
        return aggregated

    def update(self, layer: int, x: Tensor, aggregated: Tensor) -> Tensor:
        """Packed features after interaction ``layer``: the message sums added, then mixed."""
        updated = x
        for index, mixing in enumerate(self.mixings):
            if index == layer:
                updated = mixing(x + aggregated)
        return updated

    def readout(self, x: Tensor, bead_types: Tensor) -> Tensor:
        """Per-bead energies (n_beads,), eV, from the packed last features (n_beads, 4F)."""
        q = x[:, : self.n_atom_basis]
        return self.head(q).squeeze(1) + self.type_energy_shift.index_select(0, bead_types)


class LAMMPSPaiNNModule(nn.Module):
    """The LAMMPS plugin's view of a :class:`PaiNNPotential` (``pair_style cgtorch``).

    Same methods as :class:`~ase_cg.potentials.neural.LAMMPSNeuralModule` (see
    :mod:`lammps_interface.torchscript` for the contract) on packed features ``[q | μ]``
    (n, 4F); messages are (n, 4F) too (M = F in the contract's terms). ``aggregate`` takes the
    half list and evaluates the layer's filters exactly from the pair vectors.
    """

    def __init__(self, network: PaiNNEnergy) -> None:
        super().__init__()
        self.network = network
        self.cutoff = network.cutoff  # Å, checked against the metadata by the plugin

    @torch.jit.export
    def embed(self, bead_types: Tensor) -> Tensor:
        return self.network.embed(bead_types)

    @torch.jit.export
    def aggregate(
        self,
        layer: int,
        x: Tensor,
        bead_types: Tensor,
        pair_i: Tensor,
        pair_j: Tensor,
        pair_vectors: Tensor,
    ) -> Tensor:
        basis, envelope = self.network.pair_basis(pair_vectors)
        filters = self.network.layer_filters(layer, basis, envelope)
        directions = self.network.pair_directions(pair_vectors)
        return self.network.aggregate(layer, x, filters, directions, pair_i, pair_j)

    @torch.jit.export
    def update(self, layer: int, x: Tensor, aggregated: Tensor, bead_types: Tensor) -> Tensor:
        return self.network.update(layer, x, aggregated)

    @torch.jit.export
    def energies(self, x: Tensor, bead_types: Tensor) -> Tensor:
        return self.network.readout(x, bead_types)


@register_term
class PaiNNPotential(NeuralTerm):
    """PaiNN message passing over beads: a many-body energy term (see the module docstring).

    Parameters
    ----------
    n_types : int
        Number of bead types (rows of the embedding table).
    n_atom_basis : int
        Width F of the scalar features (the vector features are 3 × F).
    n_interactions : int
        Number of interaction + mixing blocks (message-passing layers).
    n_rbf : int
        Number of Gaussians on [0, cutoff].
    cutoff : float, Å
    head_hidden : list of int, optional
        Hidden widths of the atom-wise output MLP; default ``[n_atom_basis // 2]``
        (schnetpack's ``Atomwise`` default).
    head_activation : {"silu", "shifted_softplus"}
        Activation of the output MLP.
    activation : {"silu", "shifted_softplus"}
        Activation of the interaction and mixing blocks (schnetpack's PaiNN default: SiLU).
    shared_interactions : bool
        One set of interaction and mixing weights for all layers.
    shared_filters : bool
        One filter slice for all layers.
    epsilon : float
        Stabiliser of the vector-feature norm, ``sqrt(|U|² + ε)`` (schnetpack's 1e-8).

    Notes
    -----
    Weights are float32 unless the model is converted; inputs are cast to the weights' dtype
    and energies returned in the input dtype. The last head layer starts at zero, so an
    untrained term adds no energy. The LAMMPS export evaluates the filters exactly (no filter
    tables); ``lammps_module`` accepts ``filter_spacing`` for the export's sake and ignores it.
    """

    def __init__(
        self,
        n_types: int,
        *,
        n_atom_basis: int = 64,
        n_interactions: int = 3,
        n_rbf: int = 20,
        cutoff: float = 8.0,
        head_hidden: Sequence[int] | None = None,
        head_activation: str = "silu",
        activation: str = "silu",
        shared_interactions: bool = False,
        shared_filters: bool = False,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__()
        check_sizes(
            "PaiNNPotential",
            (
                ("n_types", n_types, 1),
                ("n_atom_basis", n_atom_basis, 1),
                ("n_interactions", n_interactions, 1),
                ("n_rbf", n_rbf, 2),
            ),
        )
        if not cutoff > 0:
            raise NeuralPotentialError(f"PaiNNPotential: cutoff={cutoff!r} Å; it must be > 0")
        for name, value in (("head_activation", head_activation), ("activation", activation)):
            if value not in ACTIVATIONS:
                raise NeuralPotentialError(
                    f"PaiNNPotential: {name}={value!r}; use one of {ACTIVATIONS}"
                )
        if not (epsilon >= 0 and math.isfinite(epsilon)):
            raise NeuralPotentialError(f"PaiNNPotential: epsilon={epsilon!r}; it must be ≥ 0")
        if head_hidden is None:
            head_hidden = [max(1, n_atom_basis // 2)]
        self.n_types = int(n_types)
        self.n_atom_basis = int(n_atom_basis)
        self.n_interactions = int(n_interactions)
        self.n_rbf = int(n_rbf)
        self._cutoff = float(cutoff)
        self.head_hidden = [int(width) for width in head_hidden]
        self.head_activation = head_activation
        self.activation = activation
        self.shared_interactions = bool(shared_interactions)
        self.shared_filters = bool(shared_filters)
        self.epsilon = float(epsilon)
        self.network = PaiNNEnergy(
            self.n_types,
            self.n_atom_basis,
            self.n_interactions,
            self.n_rbf,
            self._cutoff,
            self.head_hidden,
            head_activation,
            activation,
            self.shared_interactions,
            self.shared_filters,
            self.epsilon,
            torch.float32,
        )

    def config(self) -> dict:
        return {
            "n_types": self.n_types,
            "n_atom_basis": self.n_atom_basis,
            "n_interactions": self.n_interactions,
            "n_rbf": self.n_rbf,
            "cutoff": self._cutoff,
            "head_hidden": list(self.head_hidden),
            "head_activation": self.head_activation,
            "activation": self.activation,
            "shared_interactions": self.shared_interactions,
            "shared_filters": self.shared_filters,
            "epsilon": self.epsilon,
        }

    def lammps_module(self, filter_spacing: float | None = None) -> LAMMPSPaiNNModule:
        """A TorchScript-able copy of the network with the LAMMPS plugin's calling convention.

        The copy is detached from training and in evaluation mode; see
        :class:`LAMMPSPaiNNModule`. ``filter_spacing`` is ignored: PaiNN's filters are
        evaluated exactly.
        """
        return LAMMPSPaiNNModule(self._frozen_network()).eval()

    @classmethod
    def from_schnetpack(
        cls, representation, head=None, *, type_map: Sequence[int]
    ) -> PaiNNPotential:
        """A term with the weights of a schnetpack 2.1.1 ``PaiNN`` (and ``Atomwise`` head).

        Parameters
        ----------
        representation : schnetpack.representation.PaiNN
            With ``GaussianRBF`` radial basis, ``CosineCutoff``, SiLU or shifted-softplus
            activation, an ``nn.Embedding`` nuclear embedding and no electronic embeddings;
            shared or per-interaction filters and blocks.
        head : schnetpack.atomistic.Atomwise, optional
            Energy head (``n_out=1``, sum aggregation) on the scalar representation. Without it
            the head is freshly initialised (its last layer zero).
        type_map : sequence of int
            ``type_map[t]`` is the atomic number whose schnetpack embedding row becomes the
            embedding of bead type ``t``.

        Raises
        ------
        SchnetpackCompatError
            If the schnetpack modules have a layout this class cannot represent.
        """
        return load_schnetpack_painn_weights(cls, representation, head, type_map)
