"""SchNet over CG beads: a many-body neural energy term, parameter-compatible with schnetpack.

The network (Schütt et al., J. Chem. Phys. 148, 241722 (2018)) in the form of schnetpack 2.1.1's
``SchNet`` representation followed by its ``Atomwise`` head:

.. math::

    x^{(0)}_i &= \\mathrm{Emb}(t_i) \\\\
    e_k(r) &= \\exp\\!\\big(-(r - \\mu_k)^2 / 2w_k^2\\big), \\qquad
    f_c(r) = \\tfrac12\\big(1 + \\cos(\\pi r / r_c)\\big)\\,[r < r_c] \\\\
    W_{ij} &= \\big(\\mathrm{ssp}(e(r_{ij}) A_1 + a_1) A_2 + a_2\\big)\\, f_c(r_{ij}) \\\\
    x^{(l+1)}_i &= x^{(l)}_i + \\mathrm{ssp}\\Big(\\big[\\textstyle\\sum_j
        (x^{(l)}_j B) \\odot W_{ij}\\big] C_1 + c_1\\Big) C_2 + c_2 \\\\
    E_i &= \\mathrm{MLP}(x^{(L)}_i) + \\Delta_{t_i}

with ``ssp(x) = ln(1 + eˣ) − ln 2``, the sum over all neighbours ``j`` within ``r_c`` (bonded
ones included: the term is many-body, it applies no exclusions) and ``Δ`` an optional per-type
energy shift. The term returns per-bead energies; :class:`~ase_cg.potentials.CGModel` sums them and
derives forces and stress by autograd.

Speed: the filter ``W_ij`` depends only on ``|r_ij|``, so it is computed once per undirected pair
(the list holds both directions; pairs with ``i < j`` carry messages both ways, a bead's own
periodic images keep both directions at half weight), which halves the dominant
(pairs × filters) work. Measured on 1 000 beads at 8 Å (bench/bench_neural.py): about 2.5× faster
than schnetpack's SchNet for energy + forces with the same weights. The forward has no
data-dependent Python numbers, so it scripts (TorchScript) and exports (``torch.export``).

For the LAMMPS plugin (``pair_style cgtorch``), :meth:`NeuralPotential.lammps_module` gives the
network with the plugin's layer-by-layer methods; :mod:`lammps_interface.torchscript` writes it
(and :func:`lammps_interface.torchscript.export_aoti` compiles it ahead of time). By default the
exported module reads each interaction's filter from a :class:`FilterTable` (W and dW/dr on a
0.002 Å grid: forces within a few 1e-6 of the network's) instead of evaluating the Gaussian
basis and the filter network on every pair, which takes the plugin from 32 to 55 ns/day on one
core for the shipped ethane model (BENCHMARKS.md).

The building blocks shared with the PaiNN term (:mod:`ase_cg.potentials.painn`) live here:
:func:`dense_layer`, :func:`atomwise_head`, :func:`gaussian_basis`, :func:`undirected_pairs`
and the :class:`NeuralTerm` base class.

Bead-type embeddings: schnetpack embeds by atomic number (a 100-row table); here the table has
one row per bead type. :meth:`NeuralPotential.from_schnetpack` copies row ``type_map[t]`` of
schnetpack's table into row ``t`` of ours.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ase_cg.errors import InputError
from ase_cg.potentials.base import CGGraph, EnergyTerm, register_term
from ase_cg.potentials.schnetpack_compat import load_schnetpack_weights

#: activations of the networks' blocks and heads
ACTIVATIONS = ("silu", "shifted_softplus")
_DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}


class NeuralPotentialError(InputError):
    """Invalid settings of a :class:`NeuralPotential` or of its export."""


def shifted_softplus(x: Tensor) -> Tensor:
    """``ln(1 + eˣ) − ln 2`` (zero at zero), SchNet's activation."""
    return F.softplus(x) - math.log(2.0)


class ShiftedSoftplus(nn.Module):
    """:func:`shifted_softplus` as a module (for ``nn.Sequential`` heads)."""

    def forward(self, x: Tensor) -> Tensor:
        return shifted_softplus(x)


def dense_layer(n_in: int, n_out: int, *, bias: bool = True, dtype: torch.dtype) -> nn.Linear:
    """A linear layer initialised as schnetpack's ``Dense`` (Xavier-uniform weight, zero bias)."""
    layer = nn.Linear(n_in, n_out, bias=bias, dtype=dtype)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def activation_module(name: str) -> nn.Module:
    """The activation ``name`` (one of ``"silu"``, ``"shifted_softplus"``) as a module."""
    return nn.SiLU() if name == "silu" else ShiftedSoftplus()


def atomwise_head(
    n_in: int, hidden: Sequence[int], activation: str, dtype: torch.dtype
) -> nn.Sequential:
    """schnetpack's ``Atomwise`` MLP ``n_in → hidden… → 1``, its last layer zero.

    Linear layers at even indices, ``activation`` between them; the zero last layer makes an
    untrained term add zero energy (an untrained model is exactly its prior).
    """
    sizes = [n_in, *hidden, 1]
    layers: list[nn.Module] = []
    for index in range(len(sizes) - 1):
        layers.append(dense_layer(sizes[index], sizes[index + 1], dtype=dtype))
        if index < len(sizes) - 2:
            layers.append(activation_module(activation))
    nn.init.zeros_(layers[-1].weight)
    return nn.Sequential(*layers)


def register_gaussian_basis(module: nn.Module, cutoff: float, n_rbf: int, dtype) -> None:
    """Give ``module`` the buffers ``rbf_offsets`` and ``rbf_widths`` (n_rbf,) of schnetpack's
    ``GaussianRBF``: ``n_rbf`` Gaussians evenly spaced on [0, ``cutoff``] Å, each as wide as the
    spacing (computed in float64, stored in ``dtype``)."""
    offsets = torch.linspace(0.0, cutoff, n_rbf, dtype=torch.float64)
    widths = torch.full_like(offsets, cutoff / (n_rbf - 1))
    module.register_buffer("rbf_offsets", offsets.to(dtype))
    module.register_buffer("rbf_widths", widths.to(dtype))


def gaussian_basis(
    distances: Tensor, offsets: Tensor, widths: Tensor, cutoff: float
) -> tuple[Tensor, Tensor]:
    """schnetpack's ``GaussianRBF`` (n_pairs, n_rbf) and ``CosineCutoff`` (n_pairs,) of distances.

    ``distances`` (n_pairs,), Å, in the dtype of ``offsets`` and ``widths`` (n_rbf,); pairs at
    or beyond ``cutoff`` get a zero envelope.
    """
    coefficients = -0.5 / (widths * widths)
    basis = torch.exp(coefficients * (distances.unsqueeze(1) - offsets) ** 2)
    envelope = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return basis, envelope * (distances < cutoff).to(distances.dtype)


def undirected_pairs(pair_i: Tensor, pair_j: Tensor) -> Tensor:
    """Indices (n_undirected,) of the pairs with ``i <= j`` in a list holding both directions.

    Such a pair carries messages both ways; a bead's own periodic images (``i == j``) keep both
    of their directions, each to be weighted by one half.
    """
    return torch.nonzero(pair_i <= pair_j).squeeze(1)


class SchNetInteraction(nn.Module):
    """One SchNet interaction block (continuous-filter convolution), schnetpack's layout.

    Parameters
    ----------
    n_atom_basis, n_rbf, n_filters : int
    """

    def __init__(self, n_atom_basis: int, n_rbf: int, n_filters: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.in2f = dense_layer(n_atom_basis, n_filters, bias=False, dtype=dtype)
        self.filter1 = dense_layer(n_rbf, n_filters, dtype=dtype)
        self.filter2 = dense_layer(n_filters, n_filters, dtype=dtype)
        self.f2out1 = dense_layer(n_filters, n_atom_basis, dtype=dtype)
        self.f2out2 = dense_layer(n_atom_basis, n_atom_basis, dtype=dtype)

    def aggregate(
        self, x: Tensor, basis: Tensor, envelope: Tensor, pair_i: Tensor, pair_j: Tensor
    ) -> Tensor:
        """Filtered neighbour features summed per bead, (n_beads, n_filters).

        Each listed pair carries messages both ways (j → i and i → j): the filter depends only
        on the distance, so it is computed once per undirected pair.

        Parameters
        ----------
        x : (n_beads, n_atom_basis)
        basis : (n_pairs, n_rbf)
            Gaussian expansion of the pair distances.
        envelope : (n_pairs,)
            Cosine cutoff of the pair distances (times the pair's multiplicity weight).
        pair_i, pair_j : (n_pairs,) int64
            Undirected pairs (each once).
        """
        return self.aggregate_filtered(x, self.filters(basis, envelope), pair_i, pair_j)

    def filters(self, basis: Tensor, envelope: Tensor) -> Tensor:
        """The continuous filters W (n_pairs, n_filters) of the pairs, envelope included."""
        return self.filter2(shifted_softplus(self.filter1(basis))) * envelope.unsqueeze(1)

    def aggregate_filtered(
        self, x: Tensor, filters: Tensor, pair_i: Tensor, pair_j: Tensor
    ) -> Tensor:
        """:meth:`aggregate` from the pairs' filters (n_pairs, n_filters)."""
        h = self.in2f(x)
        aggregated = torch.zeros(h.shape[0], h.shape[1], dtype=h.dtype, device=h.device)
        aggregated = aggregated.index_add(0, pair_i, h.index_select(0, pair_j) * filters)
        return aggregated.index_add(0, pair_j, h.index_select(0, pair_i) * filters)

    def update(self, aggregated: Tensor) -> Tensor:
        """The residual feature update (n_beads, n_atom_basis) from :meth:`aggregate`'s sums."""
        return self.f2out2(shifted_softplus(self.f2out1(aggregated)))


class SchNetEnergy(nn.Module):
    """Per-bead SchNet energies from bead types and directed pair vectors.

    The computational core shared by :class:`NeuralPotential` (eager, on a :class:`CGGraph`) and
    the exported LAMMPS module. Its inputs are plain tensors, its graph has no data-dependent
    Python numbers, so it scripts with TorchScript and traces with ``torch.export``.

    Parameters
    ----------
    n_types, n_atom_basis, n_filters, n_interactions, n_rbf : int
    cutoff : float, Å
    head_hidden : list of int
        Hidden layer widths of the atom-wise output MLP.
    head_activation : {"silu", "shifted_softplus"}
    dtype : torch.dtype
        Of the weights; inputs are cast to it, outputs cast back to the input dtype.
    """

    def __init__(
        self,
        n_types: int,
        n_atom_basis: int,
        n_filters: int,
        n_interactions: int,
        n_rbf: int,
        cutoff: float,
        head_hidden: list[int],
        head_activation: str,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.embedding = nn.Embedding(n_types, n_atom_basis, dtype=dtype)
        register_gaussian_basis(self, self.cutoff, n_rbf, dtype)
        self.interactions = nn.ModuleList(
            SchNetInteraction(n_atom_basis, n_rbf, n_filters, dtype) for _ in range(n_interactions)
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
            Directed pairs, all pairs closer than the cutoff (pairs beyond it contribute exactly
            zero), each in both directions: ``(i, j)`` is listed if and only if ``(j, i)`` is.
        pair_vectors : (n_pairs, 3) float, Å
            ``x_j − x_i``.
        """
        # the list holds every pair in both directions with the same distance: keep i < j, which
        # then carries messages both ways; a bead's own periodic images (i == j) keep both of
        # their directions, each at half weight
        undirected = undirected_pairs(pair_i, pair_j)
        pair_i, pair_j = pair_i.index_select(0, undirected), pair_j.index_select(0, undirected)
        basis, envelope = self.pair_basis(pair_vectors.index_select(0, undirected))
        envelope = torch.where(pair_i == pair_j, 0.5 * envelope, envelope)
        x = self.embedding(bead_types)
        for interaction in self.interactions:
            x = x + interaction.update(interaction.aggregate(x, basis, envelope, pair_i, pair_j))
        return self.readout(x, bead_types).to(pair_vectors.dtype)

    def pair_basis(self, pair_vectors: Tensor) -> tuple[Tensor, Tensor]:
        """Gaussian expansion (n_pairs, n_rbf) and cosine envelope (n_pairs,) of the distances.

        ``pair_vectors`` (n_pairs, 3), Å, are cast to the weights' dtype; pairs at or beyond
        the cutoff get a zero envelope.
        """
        vectors = pair_vectors.to(self.rbf_offsets.dtype)
        distances = torch.sqrt((vectors * vectors).sum(dim=1))
        return gaussian_basis(distances, self.rbf_offsets, self.rbf_widths, self.cutoff)

    def readout(self, x: Tensor, bead_types: Tensor) -> Tensor:
        """Per-bead energies (n_beads,), eV, from the last features (n_beads, n_atom_basis)."""
        return self.head(x).squeeze(1) + self.type_energy_shift.index_select(0, bead_types)


class FilterTable(nn.Module):
    """One interaction's filter W(r) (envelope included) tabulated on a uniform grid in r.

    The filter network depends on the distance alone, so at run time it can be read from a
    table: W by linear interpolation between the grid values, and dW/dr by linear interpolation
    between the exact derivatives at the grid points (taken by autograd of the network in
    float64 when the table is built). The derivative table, not the slope of the interpolated W,
    is what autograd sees (``W = lerp(W).detach() + (r − r.detach()) · lerp(dW/dr)``), so forces
    are continuous and accurate to O(h²) like LAMMPS's own tables; so is the energy. Per pair
    and layer it replaces the Gaussian basis, two dense layers and the softplus by one row
    gather and two multiply-adds.

    Parameters
    ----------
    network : SchNetEnergy
    layer : int
        The interaction whose filter is tabulated.
    spacing : float, Å
        Largest grid spacing h (errors: h²/8 times the largest second derivative of W, in W;
        h²/8 times the third, in dW/dr).
    """

    def __init__(self, network: SchNetEnergy, layer: int, spacing: float) -> None:
        super().__init__()
        if not spacing > 0:
            raise InputError(f"filter table spacing must be > 0 Å, got {spacing!r}")
        n_cells = int(math.ceil(network.cutoff / spacing))
        self.spacing = float(network.cutoff / n_cells)
        self.cutoff = network.cutoff
        self.n_cells = n_cells
        exact = copy.deepcopy(network).double()
        distances = torch.arange(n_cells + 1, dtype=torch.float64) * self.spacing

        def filters_at(r: Tensor) -> Tensor:
            basis, envelope = exact.pair_basis(torch.stack([r, 0.0 * r, 0.0 * r], dim=1))
            return exact.interactions[layer].filters(basis, envelope)

        # each row depends on its own distance only: one forward-mode pass gives every dW/dr
        values, slopes = torch.func.jvp(filters_at, (distances,), (torch.ones_like(distances),))
        rows = torch.cat(
            [values[:-1], values[1:] - values[:-1], slopes[:-1], slopes[1:] - slopes[:-1]], 1
        )
        self.n_filters = int(values.shape[1])
        self.register_buffer("rows", rows.to(network.rbf_offsets.dtype))

    def forward(self, pair_vectors: Tensor) -> Tensor:
        """Filters (n_pairs, n_filters) of pair vectors (n_pairs, 3), Å; zero at r ≥ cutoff."""
        vectors = pair_vectors.to(self.rows.dtype)
        distances = torch.sqrt((vectors * vectors).sum(dim=1))
        position = distances.detach() * (1.0 / self.spacing)
        cell = torch.clamp(position.floor(), max=float(self.n_cells - 1))
        fraction = (position - cell).unsqueeze(1)
        rows = self.rows.index_select(0, cell.long())
        n = self.n_filters
        value = rows[:, :n] + fraction * rows[:, n : 2 * n]
        slope = rows[:, 2 * n : 3 * n] + fraction * rows[:, 3 * n :]
        offset = (distances - distances.detach()).unsqueeze(1)
        inside = (distances < self.cutoff).to(vectors.dtype).unsqueeze(1)
        return (value + offset * slope) * inside


class LAMMPSNeuralModule(nn.Module):
    """The LAMMPS plugin's view of a :class:`NeuralPotential` (``pair_style cgtorch``).

    The plugin runs the network layer by layer and exchanges features between MPI ranks after
    each layer, so every rank computes only the pairs of its own beads (see
    :mod:`lammps_interface.torchscript` for the contract). The exported methods:

    - ``embed(bead_types) -> (n, n_atom_basis)``: the initial features;
    - ``aggregate(layer, x, bead_types, pair_i, pair_j, pair_vectors) -> (n, n_filters)``: the
      filtered messages of each listed (half-list) pair summed into both of its beads;
    - ``update(layer, x, aggregated, bead_types) -> (n, n_atom_basis)``: the new features of
      beads whose sums are complete;
    - ``energies(x, bead_types) -> (n,)``: per-bead energies in eV.

    :func:`evaluate_layers` chains them for one process that owns every bead.
    """

    def __init__(self, network: SchNetEnergy, filter_spacing: float | None = None) -> None:
        super().__init__()
        self.network = network
        self.cutoff = network.cutoff  # Å, checked against the metadata by the plugin
        layers = range(len(network.interactions)) if filter_spacing else ()
        self.filter_tables = nn.ModuleList(
            FilterTable(network, layer, filter_spacing) for layer in layers
        )
        self.tabulated = bool(filter_spacing)

    @torch.jit.export
    def embed(self, bead_types: Tensor) -> Tensor:
        return self.network.embedding(bead_types)

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
        aggregated = torch.empty(0)
        if self.tabulated:
            filters = torch.empty(0)
            for index, table in enumerate(self.filter_tables):
                if index == layer:
                    filters = table(pair_vectors)
            for index, interaction in enumerate(self.network.interactions):
                if index == layer:
                    aggregated = interaction.aggregate_filtered(x, filters, pair_i, pair_j)
            return aggregated
        basis, envelope = self.network.pair_basis(pair_vectors)
        for index, interaction in enumerate(self.network.interactions):
            if index == layer:
                aggregated = interaction.aggregate(x, basis, envelope, pair_i, pair_j)
        return aggregated

    @torch.jit.export
    def update(self, layer: int, x: Tensor, aggregated: Tensor, bead_types: Tensor) -> Tensor:
        updated = x
        for index, interaction in enumerate(self.network.interactions):
            if index == layer:
                updated = x + interaction.update(aggregated)
        return updated

    @torch.jit.export
    def energies(self, x: Tensor, bead_types: Tensor) -> Tensor:
        return self.network.readout(x, bead_types)


def evaluate_layers(
    module: nn.Module,
    n_interactions: int,
    bead_types: Tensor,
    pair_i: Tensor,
    pair_j: Tensor,
    pair_vectors: Tensor,
) -> Tensor:
    """Per-bead energies (n,) in eV of a module with the plugin's layer-wise methods.

    What ``pair_style cgtorch`` does on one MPI rank that owns every bead, written in Python:
    ``embed``, then ``aggregate`` and ``update`` for each of the ``n_interactions`` layers, then
    ``energies`` (see :mod:`lammps_interface.torchscript` for the contract).

    Parameters
    ----------
    module : the :class:`LAMMPSNeuralModule` (or any module with the four methods)
    n_interactions : int
    bead_types : (n,) int64
    pair_i, pair_j : (p,) int64
        Every pair within the cutoff, once (a half list); periodic images of one bead included.
    pair_vectors : (p, 3) float, Å
        ``r_j − r_i``.
    """
    x = module.embed(bead_types)
    for layer in range(n_interactions):
        aggregated = module.aggregate(layer, x, bead_types, pair_i, pair_j, pair_vectors)
        x = module.update(layer, x, aggregated, bead_types)
    return module.energies(x, bead_types)


class EnergyAndPairGradient(nn.Module):
    """A network's per-bead energies and their gradient, for ahead-of-time compilation.

    ``forward(bead_types, pair_i, pair_j, pair_vectors)`` with the inputs of
    :class:`SchNetEnergy` returns ``(energies (n,) eV; gradient (n_pairs, 3) eV/Å)``, where
    ``gradient`` is ``∂(Σ E)/∂pair_vectors``: forces are ``f[i] += g``, ``f[j] −= g`` and the
    virial ``−r ⊗ g``. The gradient is taken inside, so the compiled package needs no autograd
    at run time.
    """

    def __init__(self, network: SchNetEnergy) -> None:
        super().__init__()
        self.network = network

    def forward(
        self, bead_types: Tensor, pair_i: Tensor, pair_j: Tensor, pair_vectors: Tensor
    ) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            vectors = pair_vectors.detach().requires_grad_(True)
            energies = self.network(bead_types, pair_i, pair_j, vectors)
            (gradient,) = torch.autograd.grad(energies.sum(), vectors)
        return energies.detach(), gradient


class NeuralTerm(EnergyTerm):
    """Base of the message-passing energy terms (SchNet: :class:`NeuralPotential`; PaiNN:
    :class:`~ase_cg.potentials.painn.PaiNNPotential`).

    A subclass holds its network on plain tensors as ``self.network`` (``forward(bead_types,
    pair_i, pair_j, pair_vectors) -> (n_beads,)`` per-bead energies, a ``type_energy_shift``
    buffer, an ``rbf_offsets`` buffer in the weights' dtype) and sets ``n_types``,
    ``n_interactions`` and ``_cutoff``; it implements ``config()`` and
    ``lammps_module(filter_spacing=None)`` (the plugin's layer-wise view, see
    :mod:`lammps_interface.torchscript`).
    """

    kind = "manybody"
    n_types: int
    n_interactions: int
    _cutoff: float
    network: nn.Module

    @property
    def cutoff(self) -> float:
        return self._cutoff

    @property
    def message_passing_layers(self) -> int:
        return self.n_interactions

    def forward(self, graph: CGGraph) -> Tensor:
        """Per-bead energies (n_beads,) in eV, over all pairs of the graph within the cutoff."""
        return self.network(graph.bead_types, graph.pair_i, graph.pair_j, graph.pair_vectors)

    def set_energy_shift(self, shift: Sequence[float]) -> None:
        """Set the per-type energy shift Δ (n_types,) in eV, added to every bead of that type."""
        values = torch.as_tensor(shift, dtype=torch.float64)
        if values.shape != (self.n_types,):
            raise NeuralPotentialError(
                f"energy shift has shape {tuple(values.shape)}; give one value (eV) per bead "
                f"type: ({self.n_types},)"
            )
        shift_buffer = self.network.type_energy_shift
        shift_buffer.copy_(values.to(shift_buffer.dtype))

    def lammps_module(self, filter_spacing: float | None = None) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement lammps_module()")

    def _frozen_network(self) -> nn.Module:
        """A copy of the network detached from training, for the plugin's module."""
        network = copy.deepcopy(self.network)
        for parameter in network.parameters():
            parameter.requires_grad_(False)
        return network


def check_sizes(owner: str, sizes: Sequence[tuple[str, object, int]]) -> None:
    """Raise :class:`NeuralPotentialError` unless each ``(name, value, least)`` is an integer
    ``value ≥ least`` (``owner`` names the class in the message)."""
    for name, value, least in sizes:
        if int(value) != value or value < least:
            raise NeuralPotentialError(
                f"{owner}: {name}={value!r}; it must be an integer ≥ {least}"
            )


@register_term
class NeuralPotential(NeuralTerm):
    """SchNet message passing over beads: a many-body energy term (see the module docstring).

    Parameters
    ----------
    n_types : int
        Number of bead types (rows of the embedding table).
    n_atom_basis : int
        Width of the bead feature vectors.
    n_filters : int
        Width of the continuous filters.
    n_interactions : int
        Number of interaction (message-passing) blocks.
    n_rbf : int
        Number of Gaussians on [0, cutoff].
    cutoff : float, Å
    head_hidden : list of int, optional
        Hidden widths of the atom-wise output MLP; default schnetpack's ``Atomwise`` default
        (two layers, halving: ``[n_atom_basis // 2]``).
    head_activation : {"silu", "shifted_softplus"}
        Activation of the output MLP (schnetpack's ``Atomwise`` uses SiLU).

    Notes
    -----
    Weights are float32 unless the model is converted (``model.to(torch.float64)``); inputs are
    cast to the weights' dtype and energies returned in the input dtype. The last head layer starts
    at zero, so an untrained term adds no energy.
    """

    def __init__(
        self,
        n_types: int,
        *,
        n_atom_basis: int = 64,
        n_filters: int = 64,
        n_interactions: int = 3,
        n_rbf: int = 20,
        cutoff: float = 8.0,
        head_hidden: Sequence[int] | None = None,
        head_activation: str = "silu",
    ) -> None:
        super().__init__()
        check_sizes(
            "NeuralPotential",
            (
                ("n_types", n_types, 1),
                ("n_atom_basis", n_atom_basis, 1),
                ("n_filters", n_filters, 1),
                ("n_interactions", n_interactions, 1),
                ("n_rbf", n_rbf, 2),
            ),
        )
        if not cutoff > 0:
            raise NeuralPotentialError(f"NeuralPotential: cutoff={cutoff!r} Å; it must be > 0")
        if head_activation not in ACTIVATIONS:
            raise NeuralPotentialError(
                f"NeuralPotential: head_activation={head_activation!r}; use one of {ACTIVATIONS}"
            )
        if head_hidden is None:
            head_hidden = [max(1, n_atom_basis // 2)]
        self.n_types = int(n_types)
        self.n_atom_basis = int(n_atom_basis)
        self.n_filters = int(n_filters)
        self.n_interactions = int(n_interactions)
        self.n_rbf = int(n_rbf)
        self._cutoff = float(cutoff)
        self.head_hidden = [int(width) for width in head_hidden]
        self.head_activation = head_activation
        self.network = SchNetEnergy(
            self.n_types,
            self.n_atom_basis,
            self.n_filters,
            self.n_interactions,
            self.n_rbf,
            self._cutoff,
            self.head_hidden,
            head_activation,
            torch.float32,
        )

    def config(self) -> dict:
        return {
            "n_types": self.n_types,
            "n_atom_basis": self.n_atom_basis,
            "n_filters": self.n_filters,
            "n_interactions": self.n_interactions,
            "n_rbf": self.n_rbf,
            "cutoff": self._cutoff,
            "head_hidden": list(self.head_hidden),
            "head_activation": self.head_activation,
        }

    def lammps_module(self, filter_spacing: float | None = None) -> LAMMPSNeuralModule:
        """A TorchScript-able copy of the network with the LAMMPS plugin's calling convention.

        The copy is detached from training (parameters do not require gradients) and in
        evaluation mode; see :class:`LAMMPSNeuralModule` for the signature. With
        ``filter_spacing`` (Å) each interaction's filter network is read from a
        :class:`FilterTable` of that spacing instead of being evaluated.
        """
        return LAMMPSNeuralModule(self._frozen_network(), filter_spacing).eval()

    @classmethod
    def from_schnetpack(
        cls, representation, head=None, *, type_map: Sequence[int]
    ) -> NeuralPotential:
        """A term with the weights of a schnetpack 2.1.1 ``SchNet`` (and ``Atomwise`` head).

        Parameters
        ----------
        representation : schnetpack.representation.SchNet
            With ``GaussianRBF`` radial basis, ``CosineCutoff``, shifted-softplus activation, an
            ``nn.Embedding`` nuclear embedding and no electronic embeddings.
        head : schnetpack.atomistic.Atomwise, optional
            Energy head (``n_out=1``, sum aggregation, SiLU or shifted-softplus MLP). Without it
            the head is freshly initialised (its last layer zero).
        type_map : sequence of int
            ``type_map[t]`` is the atomic number whose schnetpack embedding row becomes the
            embedding of bead type ``t``; its length is the number of bead types.

        Raises
        ------
        SchnetpackCompatError
            If the schnetpack modules have a layout this class cannot represent.
        """
        return load_schnetpack_weights(cls, representation, head, type_map)
