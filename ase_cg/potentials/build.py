"""Build a neural CG model from mapped data: a fitted physical prior plus an untrained network.

The network is SchNet (:class:`NeuralPotential`, distance-only messages) or PaiNN
(:class:`PaiNNPotential`, equivariant vector features: it can learn angular correlations such as
the tetrahedral O–O–O angles of one-site water), chosen by ``NeuralConfig.representation``.
The prior keeps CG MD stable where the training data never went; the network learns the
rest by force matching (:mod:`ase_cg.fitting.gradient`). From the mapped reference trajectory:

* bonds: for each pair of bead types, Boltzmann inversion of a Gaussian fitted to the bond
  lengths, ``k = k_B T / var(r)``, ``r0 = mean(r)`` (:class:`HarmonicBonds`);
* angles: the same for each bead-type triple a–b–c (a and c interchangeable), θ in radians
  (:class:`HarmonicAngles`);
* repulsion: ``σ_ab`` = the closest approach of two non-bonded beads of types a and b seen in any
  frame, so the repulsion ``ε (σ/r)^p`` costs ε (default k_B T) at the closest distance the data
  visited and rises steeply below it (:class:`Repulsion`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase.units import kB
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg.config import config_from_dict
from ase_cg.errors import InputError
from ase_cg.neighbors import neighbor_pairs
from ase_cg.potentials.base import CGModel, EnergyTerm, SystemTopology
from ase_cg.potentials.neural import NeuralPotential, NeuralTerm
from ase_cg.potentials.painn import PaiNNPotential
from ase_cg.potentials.prior import (
    HarmonicAngles,
    HarmonicBonds,
    Repulsion,
    gaussian_boltzmann_inversion,
)

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: values of ``NeuralConfig.representation``
REPRESENTATIONS = ("schnet", "painn")


class NeuralConfigError(InputError):
    """A :class:`NeuralConfig` with unknown keys or invalid values."""


@dataclass
class NeuralConfig:
    """Settings of a neural CG model (SchNet or PaiNN + prior); saved in the model's provenance."""

    representation: str = "schnet"
    """The network: ``"schnet"`` (:class:`NeuralPotential`, messages depend on distances only)
    or ``"painn"`` (:class:`PaiNNPotential`, equivariant vector features: angular many-body
    correlations, 2.5–4× the cost of a SchNet of the same width on a CPU)."""
    n_atom_basis: int = 64
    """Width of the bead feature vectors (PaiNN: of the scalar features; its vector features
    are 3 × as wide)."""
    n_filters: int = 64
    """Width of the continuous filters of each SchNet interaction block (SchNet only: PaiNN's
    filters are ``3 · n_atom_basis`` wide)."""
    n_interactions: int = 3
    """Number of interaction (message-passing) blocks; a bead feels beads up to
    ``n_interactions · cutoff`` away (in LAMMPS the features cross ranks once per block)."""
    shared_filters: bool = False
    """PaiNN only: one filter network for all interaction blocks."""
    shared_interactions: bool = False
    """PaiNN only: one set of interaction and mixing weights for all blocks."""
    n_rbf: int = 20
    """Number of Gaussians of the distance expansion on [0, cutoff]."""
    cutoff: float = 8.0
    """Network cutoff, Å. 8 Å covers the first and most of the second neighbour shell of liquid
    ethane CH3 beads (RDF first minimum 6.6 Å)."""
    head_hidden: list[int] | None = None
    """Hidden widths of the atom-wise energy MLP; None: ``[n_atom_basis // 2]`` (schnetpack's
    ``Atomwise`` default)."""
    head_activation: str = "silu"
    """Activation of the energy MLP: ``"silu"`` or ``"shifted_softplus"``."""
    dtype: str = "float32"
    """Weights' dtype: ``"float32"`` (fast, default) or ``"float64"``."""
    repulsion_epsilon: float | None = None
    """Repulsion energy at the closest observed approach σ, eV; None: k_B T."""
    repulsion_power: int = 12
    """Exponent p of the repulsion ``ε (σ/r)^p``."""
    repulsion_cutoff_factor: float = 1.25
    """Repulsion cutoff as a multiple of the largest σ (the repulsion and its force vanish
    there)."""
    prior_model: str | None = None
    """Path of a classical model file (``ase-cg train --kind classical``) whose terms (pair,
    bond, angle splines fitted by force matching) are the prior instead of the Boltzmann-inverted
    harmonic bonds + repulsion. The network term then starts as a zero correction to the best
    pair + bonded model and learns the many-body remainder; the prior is trained along with it.
    Its bead types must be the mapping's."""
    seed: int | None = None
    """Seed of the network weight initialisation (a private RNG stream; the global torch RNG
    state is left as it was). None: drawn from the global torch RNG."""

    def __post_init__(self) -> None:
        if self.representation not in REPRESENTATIONS:
            raise NeuralConfigError(
                f"NeuralConfig.representation={self.representation!r}; use one of "
                f"{list(REPRESENTATIONS)} (neural: representation: painn)"
            )
        if self.representation != "painn" and (self.shared_filters or self.shared_interactions):
            raise NeuralConfigError(
                "NeuralConfig.shared_filters / shared_interactions apply to representation "
                f"'painn' only, not {self.representation!r}; remove them or set representation: "
                "painn"
            )
        if self.dtype not in _DTYPES:
            raise NeuralConfigError(
                f"NeuralConfig.dtype={self.dtype!r}; use one of {sorted(_DTYPES)}"
            )
        if not self.cutoff > 0:
            raise NeuralConfigError(f"NeuralConfig.cutoff={self.cutoff!r} Å; it must be > 0")
        if not self.repulsion_cutoff_factor > 1:
            raise NeuralConfigError(
                f"NeuralConfig.repulsion_cutoff_factor={self.repulsion_cutoff_factor!r}; it "
                "must be > 1 (the cutoff lies beyond σ)"
            )

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "neural config") -> NeuralConfig:
        """A config from a dict (e.g. parsed YAML); unknown keys are an error."""
        return config_from_dict(values, cls, source=source, error=NeuralConfigError)

    def to_dict(self) -> dict:
        """The JSON-able fields."""
        return dataclasses.asdict(self)


def _minimum_image(vectors: np.ndarray, cell: np.ndarray, pbc: bool) -> np.ndarray:
    """Shortest periodic images of difference vectors (n, 3) in a cell (3, 3) of row vectors."""
    if not pbc:
        return vectors
    fractional = np.linalg.solve(cell.T, vectors.T).T
    return vectors - np.round(fractional) @ cell


def _frame_topology(mapping, atoms, names: list[str], exclusion_bonds: int) -> SystemTopology:
    if K.BEAD_TYPE not in atoms.arrays:
        raise InputError(
            f"CG frame has no arrays[{K.BEAD_TYPE!r}] (bead-type names); map the all-atom frames "
            "with CGMapping.map"
        )
    lookup = {name: index for index, name in enumerate(names)}
    bead_names = [str(name) for name in atoms.arrays[K.BEAD_TYPE]]
    unknown = sorted(set(bead_names) - set(lookup))
    if unknown:
        raise InputError(
            f"CG frame has bead types {unknown} that the mapping does not define ({names}); "
            "map the trajectory with the same CGMapping"
        )
    topo = mapping.topology(atoms)
    return SystemTopology(
        np.array([lookup[name] for name in bead_names], dtype=np.int64),
        topo["bonds"],
        topo["angles"],
        topo["dihedrals"],
        exclusion_bonds,
    )


def fit_prior(
    mapping,
    cg_trajectory: Iterable,
    *,
    temperature: float,
    search_cutoff: float,
    repulsion_epsilon: float | None = None,
    repulsion_power: int = 12,
    repulsion_cutoff_factor: float = 1.25,
    exclusion_bonds: int = 3,
) -> list[EnergyTerm]:
    """Prior terms (harmonic bonds and angles, repulsion) fitted to mapped CG frames.

    Parameters
    ----------
    mapping : ase_cg.mapping.CGMapping
    cg_trajectory : iterable of ase.Atoms
        CG frames as :meth:`CGMapping.map` writes them (``arrays["bead-type"]``,
        ``arrays["mol-id"]``, cell, pbc).
    temperature : float, K
        Temperature of the reference simulation.
    search_cutoff : float, Å
        Non-bonded approaches are looked for within this distance.
    repulsion_epsilon : float, eV, optional
        Default ``k_B T``.
    repulsion_power : int
    repulsion_cutoff_factor : float
        Repulsion cutoff = this × the largest σ.
    exclusion_bonds : int
        Pairs at most this many bonds apart are not non-bonded (no repulsion between them).

    Returns
    -------
    list of EnergyTerm
        ``HarmonicBonds`` if the molecules have bonds, ``HarmonicAngles`` if they have angles,
        and ``Repulsion``.

    Raises
    ------
    InputError
        If the trajectory is empty, frames are not CG frames of ``mapping``, or no non-bonded
        pair comes within ``search_cutoff``.
    """
    names = list(mapping.bead_types)
    n_types = len(names)
    bond_samples: dict[tuple[int, int], list[np.ndarray]] = {}
    angle_samples: dict[tuple[int, int, int], list[np.ndarray]] = {}
    closest = np.full((n_types, n_types), np.inf)
    n_frames = 0
    for atoms in tqdm(cg_trajectory, desc="fitting prior", unit="frame", disable=None):
        n_frames += 1
        topology = _frame_topology(mapping, atoms, names, exclusion_bonds)
        positions = atoms.get_positions()
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        pbc = bool(np.all(atoms.pbc))
        types = topology.bead_type_index
        if len(topology.bonds):
            a, b = topology.bonds[:, 0], topology.bonds[:, 1]
            lengths = np.linalg.norm(_minimum_image(positions[b] - positions[a], cell, pbc), axis=1)
            ta, tb = np.minimum(types[a], types[b]), np.maximum(types[a], types[b])
            for key in set(zip(ta.tolist(), tb.tolist(), strict=True)):
                bond_samples.setdefault(key, []).append(lengths[(ta == key[0]) & (tb == key[1])])
        if len(topology.angles):
            a, b, c = topology.angles.T
            u = _minimum_image(positions[a] - positions[b], cell, pbc)
            v = _minimum_image(positions[c] - positions[b], cell, pbc)
            theta = np.arctan2(np.linalg.norm(np.cross(u, v), axis=1), (u * v).sum(axis=1))
            ta, tc = np.minimum(types[a], types[c]), np.maximum(types[a], types[c])
            tb = types[b]
            for key in set(zip(ta.tolist(), tb.tolist(), tc.tolist(), strict=True)):
                select = (ta == key[0]) & (tb == key[1]) & (tc == key[2])
                angle_samples.setdefault(key, []).append(theta[select])
        i, j, shifts = neighbor_pairs(positions, cell, pbc, search_cutoff)
        keep = ~topology.excluded(i, j)
        i, j, shifts = i[keep], j[keep], shifts[keep]
        if len(i):
            distances = np.linalg.norm(positions[j] - positions[i] + shifts @ cell, axis=1)
            np.minimum.at(closest, (types[i], types[j]), distances)
    if n_frames == 0:
        raise InputError("the CG trajectory has no frames: cannot fit a prior")
    terms: list[EnergyTerm] = []
    if bond_samples:
        k = np.zeros((n_types, n_types))
        r0 = np.zeros((n_types, n_types))
        for (ta, tb), samples in bond_samples.items():
            k[ta, tb], r0[ta, tb] = gaussian_boltzmann_inversion(
                np.concatenate(samples), temperature
            )
            k[tb, ta], r0[tb, ta] = k[ta, tb], r0[ta, tb]
        terms.append(HarmonicBonds(n_types, k=k.tolist(), r0=r0.tolist()))
    if angle_samples:
        k = np.zeros((n_types,) * 3)
        theta0 = np.zeros((n_types,) * 3)
        for (ta, tb, tc), samples in angle_samples.items():
            k[ta, tb, tc], theta0[ta, tb, tc] = gaussian_boltzmann_inversion(
                np.concatenate(samples), temperature
            )
            k[tc, tb, ta], theta0[tc, tb, ta] = k[ta, tb, tc], theta0[ta, tb, tc]
        terms.append(HarmonicAngles(n_types, k=k.tolist(), theta0=theta0.tolist()))
    closest = np.minimum(closest, closest.T)
    observed = np.isfinite(closest)
    if not observed.any():
        raise InputError(
            f"no two non-bonded beads came within {search_cutoff} Å in {n_frames} frames: "
            "cannot place the repulsion; check the cell and pbc of the CG frames"
        )
    # a type pair never seen within the search cutoff gets the smallest σ that was seen
    sigma = np.where(observed, closest, closest[observed].min())
    epsilon = kB * temperature if repulsion_epsilon is None else float(repulsion_epsilon)
    terms.append(
        Repulsion(
            n_types,
            sigma=sigma.tolist(),
            epsilon=epsilon,
            power=repulsion_power,
            cutoff=float(repulsion_cutoff_factor * sigma.max()),
        )
    )
    return terms


def build_neural_model(
    mapping,
    cg_trajectory: Sequence,
    *,
    config: NeuralConfig,
    temperature: float,
    prior_model: CGModel | None = None,
) -> CGModel:
    """A CG model of a prior plus an untrained :class:`NeuralPotential` or :class:`PaiNNPotential`.

    Parameters
    ----------
    mapping : ase_cg.mapping.CGMapping
        Gives the bead types (in its ``bead_types`` order) and the bonded topology.
    cg_trajectory : sequence of ase.Atoms
        Mapped reference frames (:meth:`CGMapping.map`).
    config : NeuralConfig
    temperature : float, K
        Temperature of the reference (for the Boltzmann inversion).
    prior_model : CGModel, optional
        A fitted classical model (same bead types) whose terms are the prior, so the network
        learns only what they miss; without it the prior is fitted (:func:`fit_prior`). The
        file named by ``config.prior_model`` is loaded by the caller
        (:func:`ase_cg.pipeline.train_model` does).

    Returns
    -------
    CGModel
        Terms: the prior (see :func:`fit_prior`) then the network term
        (``config.representation``), in ``config.dtype``; the untrained network adds zero
        energy. ``provenance`` records the config and temperature.
    """
    if not temperature > 0:
        raise InputError(f"temperature={temperature!r} K; give the reference temperature (> 0)")
    names = list(mapping.bead_types)
    exclusion_bonds = 3
    if prior_model is not None:
        prior, exclusion_bonds = _prior_terms(prior_model, names)
    elif config.prior_model is not None:
        raise NeuralConfigError(
            f"NeuralConfig.prior_model is the file {config.prior_model}: load it with "
            "ase_cg.model.load_model and pass it as prior_model="
        )
    else:
        prior = fit_prior(
            mapping,
            cg_trajectory,
            temperature=temperature,
            search_cutoff=config.cutoff,
            repulsion_epsilon=config.repulsion_epsilon,
            repulsion_power=config.repulsion_power,
            repulsion_cutoff_factor=config.repulsion_cutoff_factor,
        )
    with torch.random.fork_rng(devices=[]):
        if config.seed is not None:
            torch.manual_seed(config.seed)
        neural = _network_term(config, len(names))
    provenance = {
        "builder": "ase_cg.potentials.build.build_neural_model",
        "neural_config": config.to_dict(),
        "temperature_K": float(temperature),
    }
    model = CGModel(
        names,
        [*prior, neural],
        mapping=mapping,
        exclusion_bonds=exclusion_bonds,
        provenance=provenance,
    )
    return model.to(_DTYPES[config.dtype])


def _network_term(config: NeuralConfig, n_types: int) -> NeuralTerm:
    """The untrained network term of ``config`` (SchNet or PaiNN) for ``n_types`` bead types."""
    common = {
        "n_atom_basis": config.n_atom_basis,
        "n_interactions": config.n_interactions,
        "n_rbf": config.n_rbf,
        "cutoff": config.cutoff,
        "head_hidden": config.head_hidden,
        "head_activation": config.head_activation,
    }
    if config.representation == "painn":
        return PaiNNPotential(
            n_types,
            shared_filters=config.shared_filters,
            shared_interactions=config.shared_interactions,
            **common,
        )
    return NeuralPotential(n_types, n_filters=config.n_filters, **common)


def _prior_terms(classical: CGModel, names: list[str]) -> tuple[list[EnergyTerm], int]:
    """The terms and bonded-exclusion depth of a classical prior model, checked."""
    if list(classical.bead_type_names) != names:
        raise NeuralConfigError(
            f"prior_model: its bead types {classical.bead_type_names} are not the mapping's "
            f"{names}; fit the prior with the same mapping"
        )
    if any(isinstance(t, NeuralTerm) for t in classical.terms):
        raise NeuralConfigError(
            "prior_model: a neural model cannot be the prior; give a classical model "
            "(ase-cg train --kind classical)"
        )
    return list(classical.terms), classical.exclusion_bonds
