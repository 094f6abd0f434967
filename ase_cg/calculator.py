"""An ASE calculator for CG models: energies, forces, stress and per-bead energies of CG beads.

:class:`CGCalculator` evaluates a :class:`ase_cg.potentials.CGModel` on CG ``ase.Atoms`` (as made
by :meth:`ase_cg.mapping.CGMapping.map` or :func:`ase_cg.start.build_cg_box`): one bead per atom,
bead-type names in ``atoms.arrays["bead-type"]`` and molecule ids in ``atoms.arrays["mol-id"]``.
It follows ASE's calculator contract, so ASE's MD integrators, optimizers and workflows drive CG
models like any other potential.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from ase.calculators.calculator import (
    Calculator,
    CalculatorSetupError,
    PropertyNotImplementedError,
    all_changes,
)
from ase.stress import full_3x3_to_voigt_6_stress

from ase_cg import _keys as K
from ase_cg.beads import bead_types_of
from ase_cg.errors import ASECGError, InputError
from ase_cg.model import load_model
from ase_cg.neighbors import closest_pair
from ase_cg.potentials import CGModel, NeuralTerm, make_batch

_TOPOLOGY_ARRAYS = (K.BEAD_TYPE, K.MOL_ID)
_TOPOLOGY_CHANGES = ("numbers", *_TOPOLOGY_ARRAYS)
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class CGAtomsError(InputError, CalculatorSetupError):
    """CG ``ase.Atoms`` that the model cannot evaluate (types, molecule ids, cell, pbc).

    Both a :class:`ValueError` and ASE's :class:`~ase.calculators.calculator.CalculatorSetupError`.
    """


class NonFiniteResultError(ASECGError, ArithmeticError):
    """The model gave a non-finite energy, force or stress (usually overlapping beads).

    Attributes
    ----------
    bead : int
        The first bead of the closest pair when two beads are closer than 1 Å, else the first
        bead with a non-finite force (0 if the forces are finite).
    """

    def __init__(self, message: str, bead: int):
        super().__init__(message)
        self.bead = bead


class CGCalculator(Calculator):
    """ASE calculator evaluating a CG model on CG beads.

    The model gives the potential energy as a sum of per-bead energies,

    .. math::

        E = \\sum_I e_I, \\qquad F_I = -\\frac{\\partial E}{\\partial x_I}, \\qquad
        \\sigma = \\frac{1}{V} \\frac{\\partial E}{\\partial \\varepsilon}\\Big|_{\\varepsilon=0},

    with forces and stress from autograd inside :class:`~ase_cg.potentials.CGModel` (the strain
    ε deforms positions and cell together, so σ includes every periodic image). ``free_energy``
    equals ``energy`` (a classical potential has no electronic entropy), ``energies`` are the
    per-bead ``e_I``, and ``stress`` is in Voigt order ``xx, yy, zz, yz, xz, xy`` (eV/Å³, ASE's
    sign). All results are float64 NumPy arrays, whatever dtype the model runs in.

    The bead types, bonds, angles and dihedrals are looked up once per set of atoms (with
    ``model.topology(atoms)``) and again only when the number of beads or the ``bead-type`` /
    ``mol-id`` arrays change. The neighbour list holds all pairs within ``model.cutoff + skin``
    and is reused until a bead has moved more than ``skin / 2`` from where it was when the list
    was built (then no pair can have come from beyond the skin into the cutoff), or the cell or
    the periodicity changed. Positions are taken afresh on every call.

    Parameters
    ----------
    model_or_path : CGModel or str or os.PathLike
        A model, or the path of a model file (loaded with :func:`ase_cg.model.load_model`). An
        in-memory model is copied, so the calculator never changes the caller's model.
    device : str or torch.device
        Where the model runs ("cpu", "cuda", "cuda:1", ...).
    dtype : torch.dtype or {"float32", "float64"}, optional
        Convert the model's weights to this dtype; default: leave them as they are (a neural
        model may keep float32 weights next to a float64 prior). Positions, cell and pair
        vectors enter the model in float64 whatever the weights' dtype.
    skin : float, Å
        Neighbour-list skin. 0 rebuilds the list whenever a bead moves.
    compile : bool, default False
        Compile the networks of the neural terms with ``torch.compile`` (TorchInductor, dynamic
        pair and bead counts; needs a C++ compiler). The first call takes about half a minute
        longer; later ones of a SchNet term run about 2× faster on CPU (bench_calculator.py).
        The model, its parameters and its ``state_dict`` are unchanged.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator` (``label``, ``directory``).

    Attributes
    ----------
    model : CGModel
        The model in evaluation mode, parameters without gradients.
    neighbor_list_builds : int
        How many times a neighbour list was built (the reuse test and benchmarks read it).

    Examples
    --------
    >>> from ase_cg.calculator import CGCalculator
    >>> from ase_cg.md import build_cg_box
    >>> calc = CGCalculator("data/ethane_classical.pt")  # doctest: +SKIP
    >>> atoms = build_cg_box(calc.model, 100, 0.55, seed=1)  # doctest: +SKIP
    >>> atoms.calc = calc  # doctest: +SKIP
    >>> atoms.get_forces().shape  # doctest: +SKIP
    (200, 3)
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(
        self,
        model_or_path: CGModel | str | os.PathLike,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        skin: float = 1.0,
        compile: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(model_or_path, CGModel):
            model = copy.deepcopy(model_or_path)
        elif isinstance(model_or_path, (str, os.PathLike)):
            model = load_model(model_or_path)
        else:
            raise TypeError(
                "CGCalculator needs a CGModel or the path of a model file, got "
                f"{type(model_or_path).__name__}"
            )
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
            dtype = _DTYPES[dtype]
        if skin < 0 or not np.isfinite(skin):
            raise ValueError(f"skin must be a finite distance ≥ 0 Å, got {skin!r}")
        self.device = torch.device(device)
        self.skin = float(skin)
        model = model.to(device=self.device)
        if dtype is not None:
            model = model.to(dtype=dtype)
        self.model = model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        if compile:
            for term in self.model.terms:
                if isinstance(term, NeuralTerm):
                    # in place (nn.Module.compile): module tree and state_dict keys stay as
                    # they are, so calc.model can still be saved
                    term.network.compile(dynamic=True)
        self.neighbor_list_builds = 0
        self._topology = None
        self._batch = None
        self._list_positions = None
        self._list_cell = None
        self._list_periodic = None

    def check_state(self, atoms, tol=1e-15):
        """ASE's system changes plus changes of the ``bead-type`` and ``mol-id`` arrays.

        Those arrays define the topology but are not among ASE's ``all_changes``; without them a
        change of bead types alone would return stale cached results.
        """
        changes = super().check_state(atoms, tol=tol)
        for key in _TOPOLOGY_ARRAYS:
            old = None if self.atoms is None else self.atoms.arrays.get(key)
            new = atoms.arrays.get(key)
            if (old is None) != (new is None) or (old is not None and not np.array_equal(old, new)):
                changes.append(key)
        return changes

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        """Fill ``self.results`` with every implemented property (stress only with a cell).

        Parameters
        ----------
        atoms : ase.Atoms, optional
            CG beads; default: the atoms of the last calculation.
        properties : list of str, optional
            Ignored beyond ASE's bookkeeping: all properties come from one model call.
        system_changes : list of str
        """
        if properties is None:
            properties = self.implemented_properties
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        periodic = self._check_cell(atoms)
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError(
                "stress needs a periodic cell (atoms.pbc all True and a 3D atoms.cell)"
            )
        if self._topology is None or any(c in system_changes for c in _TOPOLOGY_CHANGES):
            self._topology = self._batch = None  # an error below must not leave a stale one
            self._topology = self._read_topology(atoms)
        positions = np.asarray(atoms.positions, dtype=np.float64)
        cell = np.asarray(atoms.cell.array, dtype=np.float64)
        if self._needs_new_list(positions, cell) or periodic != self._list_periodic:
            self._batch = make_batch(
                positions,
                cell,
                self._topology,
                self.model.cutoff + self.skin,
                pbc=periodic,
                dtype=torch.float64,
                device=self.device,
            )
            self._list_positions, self._list_cell = positions.copy(), cell.copy()
            self._list_periodic = periodic
            self.neighbor_list_builds += 1
        else:
            self._batch[K.POSITIONS] = torch.as_tensor(
                positions, dtype=torch.float64, device=self.device
            )
        output = self.model(self._batch, compute_forces=True, compute_stress=periodic)
        energy = float(output[K.ENERGY].detach().sum().cpu())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": _numpy(output[K.FORCES]),
            "energies": _numpy(output[K.BEAD_ENERGIES]),
        }
        if periodic:
            self.results["stress"] = full_3x3_to_voigt_6_stress(_numpy(output[K.STRESS][0]))
        self._check_finite(positions, cell, periodic)

    def _check_finite(self, positions: np.ndarray, cell: np.ndarray, periodic: bool) -> None:
        """Raise :class:`NonFiniteResultError` naming the beads if a result is not finite."""
        forces = self.results["forces"]
        bad_forces = ~np.isfinite(forces).all(axis=1)
        what = [
            name
            for name, bad in (
                ("energy", not np.isfinite(self.results["energy"])),
                (f"force on bead {int(np.argmax(bad_forces))}", bad_forces.any()),
                (
                    "stress",
                    "stress" in self.results and not np.isfinite(self.results["stress"]).all(),
                ),
            )
            if bad
        ]
        if not what:
            return

        self.results = {}
        pair = closest_pair(positions, cell, periodic, 1.0)
        if pair is not None:
            i, j, distance = pair
            raise NonFiniteResultError(
                f"the model gave a non-finite {' and '.join(what)}: beads {i} and {j} overlap "
                f"(distance {distance:.3g} Å); move them apart (or relax the structure)",
                bead=i,
            )
        raise NonFiniteResultError(
            f"the model gave a non-finite {' and '.join(what)}; no two beads are closer than "
            "1 Å, so check the model's parameters and the bead positions",
            bead=int(np.argmax(bad_forces)),
        )

    def _needs_new_list(self, positions: np.ndarray, cell: np.ndarray) -> bool:
        """Whether the neighbour list must be rebuilt for ``positions`` in ``cell``."""
        if self._batch is None or not np.array_equal(cell, self._list_cell):
            return True
        if self.skin == 0.0:
            return not np.array_equal(positions, self._list_positions)
        displacement = np.einsum(
            "ij,ij->i", positions - self._list_positions, positions - self._list_positions
        )
        return bool(displacement.max(initial=0.0) > (0.5 * self.skin) ** 2)

    def _check_cell(self, atoms) -> bool:
        """True for fully periodic atoms, False for none; raises for anything else."""
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            raise CGAtomsError(
                f"atoms.pbc is {pbc.tolist()}: CGCalculator handles fully periodic systems "
                "or isolated ones; set atoms.pbc = True (with a cell) or atoms.pbc = False"
            )
        if pbc.all() and atoms.cell.rank < 3:
            raise CGAtomsError(
                f"atoms.pbc is True but the cell {atoms.cell.array.tolist()} has no volume; "
                "set atoms.cell to the periodic box (Å) or atoms.pbc = False"
            )
        if not np.all(np.isfinite(atoms.positions)):
            bead = int(np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))[0])
            raise CGAtomsError(f"bead {bead} has a non-finite position {atoms.positions[bead]}")
        return bool(pbc.all())

    def _read_topology(self, atoms):
        """The model's topology of ``atoms``, with errors that say what to fix."""
        model = self.model
        names = bead_types_of(atoms)
        if names is None:
            raise CGAtomsError(
                f"the atoms carry no bead types: set atoms.arrays[{K.BEAD_TYPE!r}] to one name "
                f"per bead (the model knows {model.bead_type_names}); CGMapping.map() and "
                "ase_cg.start.build_cg_box() do this"
            )
        known = set(model.bead_type_names)
        unknown = [index for index, name in enumerate(names) if str(name) not in known]
        if unknown:
            kinds = sorted({str(names[index]) for index in unknown})
            raise CGAtomsError(
                f"bead {unknown[0]} has type {str(names[unknown[0]])!r}, which the model does not "
                f"know ({len(unknown)} beads of types {kinds}); the model's bead types are "
                f"{model.bead_type_names}: map the atoms with the model's mapping"
            )
        if model.mapping is not None and K.MOL_ID not in atoms.arrays:
            raise CGAtomsError(
                f"the model has bonded topology (mapping of {list(model.mapping.groups)}) but the "
                f"atoms have no molecule ids: set atoms.arrays[{K.MOL_ID!r}] (one int per bead) "
                "or map the atoms with CGMapping.map()"
            )
        try:
            return model.topology(atoms)
        except CGAtomsError:
            raise
        except ValueError as error:
            raise CGAtomsError(f"the atoms do not match the model's mapping: {error}") from None


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float64 NumPy copy of ``tensor``."""
    return tensor.detach().cpu().to(torch.float64).numpy().copy()
