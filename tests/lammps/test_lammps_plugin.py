"""``pair_style cgtorch`` (the LibTorch plugin) against the same TorchScript module in PyTorch.

A two-layer many-body toy model obeys the plugin's layer-wise contract: a smoothly cut
Lennard-Jones pair energy plus a message-passing term that depends on each neighbour's
coordination number, so a bead's energy depends on beads up to 2·cutoff away and the plugin must
pass the first layer's features between ranks (and between periodic images). LAMMPS runs in
subprocesses (a plugin cannot be loaded twice in one process).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import vesin

from ase_cg.errors import InputError
from ase_cg.potentials.neural import evaluate_layers
from lammps_interface import run as run_module
from lammps_interface.plugin import PLUGIN_FILE, build_plugin, plugin_directory
from lammps_interface.run import LammpsRunError, evaluate, run_deck
from lammps_interface.torchscript import (
    METADATA_FILE,
    torchscript_metadata,
    write_torchscript_model,
)
from lammps_interface.units import EV_TO_KCAL_PER_MOL

CUTOFF = 6.0  # Å
SKIN = 2.0  # Å
BOX = 20.0  # Å
NAMES = ["A", "B"]
MASSES = [15.035, 20.0]  # amu


class ToyManyBody(torch.nn.Module):
    """E_i = ½ Σ_j φ(r_ij) + s_i m_i, with m_i = Σ_j f_c(r_ij) tanh(w_j n_j), n_j = Σ_k f_c(r_jk).

    φ is a Lennard-Jones energy times the cosine cutoff f_c (smooth at the cutoff); eV and Å.
    Two features per bead: layer 0 sums (n_i, ½ Σ φ) and sets x = (tanh(w_i n_i), ½ Σ φ); layer 1
    sums f_c x_j[0] over neighbours and sets x = (s_i m_i, ½ Σ φ); the energy is x[0] + x[1].
    """

    def __init__(self):
        super().__init__()
        self.cutoff = CUTOFF
        self.register_buffer("epsilon", torch.tensor([[0.010, 0.014], [0.014, 0.020]]))
        self.register_buffer("sigma", torch.tensor([[3.4, 3.6], [3.6, 3.8]]))
        self.register_buffer("weight", torch.tensor([0.3, 0.5]))
        self.register_buffer("strength", torch.tensor([0.02, -0.03]))

    @torch.jit.export
    def embed(self, bead_types: torch.Tensor) -> torch.Tensor:
        return torch.zeros(
            bead_types.shape[0], 2, dtype=self.weight.dtype, device=self.weight.device
        )

    @torch.jit.export
    def aggregate(
        self,
        layer: int,
        x: torch.Tensor,
        bead_types: torch.Tensor,
        pair_i: torch.Tensor,
        pair_j: torch.Tensor,
        pair_vectors: torch.Tensor,
    ) -> torch.Tensor:
        r = torch.linalg.norm(pair_vectors, dim=1)
        f_cut = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        if layer == 0:
            type_i = bead_types[pair_i]
            type_j = bead_types[pair_j]
            s6 = (self.sigma[type_i, type_j] / r) ** 6
            phi = 4.0 * self.epsilon[type_i, type_j] * (s6 * s6 - s6) * f_cut
            message_to_i = torch.stack([f_cut, 0.5 * phi], dim=1)
            message_to_j = message_to_i
        else:
            zero = torch.zeros_like(f_cut)
            message_to_i = torch.stack([f_cut * x[pair_j, 0], zero], dim=1)
            message_to_j = torch.stack([f_cut * x[pair_i, 0], zero], dim=1)
        summed = torch.zeros_like(x)
        return summed.index_add(0, pair_i, message_to_i).index_add(0, pair_j, message_to_j)

    @torch.jit.export
    def update(
        self, layer: int, x: torch.Tensor, aggregated: torch.Tensor, bead_types: torch.Tensor
    ) -> torch.Tensor:
        if layer == 0:
            first = torch.tanh(self.weight[bead_types] * aggregated[:, 0])
            return torch.stack([first, aggregated[:, 1]], dim=1)
        return torch.stack([self.strength[bead_types] * aggregated[:, 0], x[:, 1]], dim=1)

    @torch.jit.export
    def energies(self, x: torch.Tensor, bead_types: torch.Tensor) -> torch.Tensor:
        return x[:, 0] + x[:, 1]


def configuration(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """125 beads on a jittered 4 Å cubic lattice in a 20 Å box; bead types 0/1."""
    rng = np.random.default_rng(seed)
    grid = np.arange(5) * 4.0
    positions = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    positions = (positions + 1.0 + rng.uniform(-0.3, 0.3, positions.shape)) % BOX
    types = rng.integers(0, 2, len(positions))
    return positions, types


def reference(model, positions, types, dtype=torch.float64):
    """Energy (eV), forces (eV/Å), virial W = -dE/dε (eV) and per-bead energies in PyTorch."""
    cell = np.eye(3) * BOX
    i, j, shifts = vesin.NeighborList(cutoff=CUTOFF, full_list=False).compute(
        positions, cell, periodic=True, quantities="ijS"
    )
    x = torch.tensor(positions, dtype=dtype, requires_grad=True)
    strain = torch.zeros(3, 3, dtype=dtype, requires_grad=True)
    deformation = torch.eye(3, dtype=dtype) + strain
    x_strained = x @ deformation
    cell_strained = torch.tensor(cell, dtype=dtype) @ deformation
    pair_i = torch.tensor(i, dtype=torch.int64)
    pair_j = torch.tensor(j, dtype=torch.int64)
    shift = torch.tensor(shifts, dtype=dtype) @ cell_strained
    vectors = x_strained[pair_j] - x_strained[pair_i] + shift
    bead_types = torch.tensor(types, dtype=torch.int64)
    energies = evaluate_layers(model.to(dtype), 2, bead_types, pair_i, pair_j, vectors)
    energy = energies.sum()
    gradient, strain_gradient = torch.autograd.grad(energy, [x, strain])
    return {
        "energy": float(energy.detach()),
        "forces": -gradient.double().numpy(),
        "virial": -strain_gradient.double().numpy(),
        "bead_energies": energies.detach().double().numpy(),
    }


def write_system(directory, positions, types, model_file="model.pt", extra="", coeff="A B"):
    """LAMMPS data file and input (units real, no run) for the toy system."""
    lines = [
        "toy CG system (ase_cg test)",
        "",
        f"{len(positions)} atoms",
        "2 atom types",
        "",
        f"0.0 {BOX} xlo xhi",
        f"0.0 {BOX} ylo yhi",
        f"0.0 {BOX} zlo zhi",
        "",
        "Masses",
        "",
    ]
    lines += [f"{k + 1} {mass}" for k, mass in enumerate(MASSES)]
    lines += ["", "Atoms # atomic", ""]
    lines += [
        f"{n + 1} {t + 1} {float(x)!r} {float(y)!r} {float(z)!r}"
        for n, (t, (x, y, z)) in enumerate(zip(types, positions, strict=True))
    ]
    (directory / "data.toy").write_text("\n".join(lines) + "\n")
    deck = f"""units real
atom_style atomic
atom_modify map array
boundary p p p
read_data data.toy
neighbor {SKIN} bin
{extra}
pair_style cgtorch {model_file}
pair_coeff * * {coeff}
"""
    (directory / "in.toy").write_text(deck)
    return directory / "in.toy"


@pytest.fixture(scope="module")
def plugin():
    return build_plugin()


@pytest.fixture(scope="module")
def system(tmp_path_factory, plugin):
    directory = tmp_path_factory.mktemp("cgtorch")
    for name, dtype in (("model.pt", torch.float64), ("model32.pt", torch.float32)):
        write_torchscript_model(
            ToyManyBody(),
            directory / name,
            bead_type_names=NAMES,
            cutoff=CUTOFF,
            n_interactions=2,
            dtype=dtype,
        )
    positions, types = configuration()
    deck = write_system(directory, positions, types)
    return directory, deck, positions, types


def relative(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))


def test_plugin_is_found_through_its_folder(plugin):
    assert plugin.name == PLUGIN_FILE
    assert plugin_directory() == str(plugin.parent)
    assert build_plugin() == plugin  # cached: no second build


def test_entry_point_names_the_folder_without_compiling(tmp_path, monkeypatch):
    monkeypatch.setenv("ASE_CG_CACHE", str(tmp_path / "cache"))
    folder = Path(plugin_directory())
    assert folder.parent == tmp_path / "cache" / "plugins"
    assert not (tmp_path / "cache").exists()  # nothing built, nothing created


def test_lammps_runs_let_idle_openmp_threads_sleep(plugin, tmp_path, monkeypatch):
    """Spinning OpenMP waits collapse the plugin's speed when another process shares the cores
    (RELIABILITY.md): LAMMPS runs get OMP_WAIT_POLICY=PASSIVE unless the user chose a policy."""
    (tmp_path / "in.cg").write_text("pair_style cgtorch model.pt\n")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert run_module._environment(2, tmp_path)["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert run_module._environment(2, tmp_path)["OMP_WAIT_POLICY"] == "ACTIVE"


def test_open_lammps_has_the_plugin_in_python(plugin):
    """In a fresh interpreter without LD_LIBRARY_PATH: mpich found, pair_style cgtorch known."""
    code = (
        "from lammps_interface.run import open_lammps\n"
        "lmp = open_lammps()\n"
        "print('cgtorch:', lmp.has_style('pair', 'cgtorch'))\n"
        "lmp.close()\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LAMMPS_PLUGIN_PATH")
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cgtorch: True" in result.stdout


def test_lammps_equals_pytorch_float64(system):
    directory, deck, positions, types = system
    ref = reference(ToyManyBody(), positions, types)
    lmp = evaluate(deck)
    assert lmp.energy == pytest.approx(ref["energy"], rel=1e-10)
    assert relative(lmp.forces, ref["forces"]) < 1e-10
    assert relative(lmp.virial, ref["virial"]) < 1e-10
    assert relative(lmp.bead_energies, ref["bead_energies"]) < 1e-10
    assert lmp.bead_virials.sum(axis=0) == pytest.approx(
        ref["virial"][[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]], rel=1e-10
    )
    # the many-body part matters: without the message term the energy is clearly different
    assert abs(ref["energy"] - reference_pair_only(positions, types)) > 1e-3 * abs(ref["energy"])


def reference_pair_only(positions, types):
    model = ToyManyBody()
    model.strength.zero_()
    return reference(model, positions, types)["energy"]


def test_float32_model_close_to_float64(system):
    directory, _, positions, types = system
    sub = directory / "float32"
    sub.mkdir()
    deck = write_system(sub, positions, types, model_file="../model32.pt")
    ref = reference(ToyManyBody(), positions, types)
    lmp = evaluate(deck)
    assert lmp.energy == pytest.approx(ref["energy"], rel=1e-5)
    assert relative(lmp.forces, ref["forces"]) < 1e-5


@pytest.mark.mpi
def test_two_ranks_equal_one_rank(system):
    _, deck, _, _ = system
    one = evaluate(deck, ranks=1)
    two = evaluate(deck, ranks=2)
    assert two.energy == pytest.approx(one.energy, rel=1e-13)
    assert relative(two.forces, one.forces) < 1e-12
    assert relative(two.virial, one.virial) < 1e-12
    assert relative(two.bead_energies, one.bead_energies) < 1e-12


def test_forces_are_minus_the_energy_gradient_in_lammps(system):
    """Central difference of LAMMPS energies along a random direction of all beads."""
    directory, deck, positions, types = system
    direction = np.random.default_rng(3).normal(size=positions.shape)
    direction /= np.linalg.norm(direction)
    h = 1e-4  # Å
    energies = []
    for sign in (1, -1):
        sub = directory / f"fd{sign}"
        sub.mkdir(exist_ok=True)
        (sub / "model.pt").symlink_to(directory / "model.pt")
        energies.append(evaluate(write_system(sub, positions + sign * h * direction, types)).energy)
    numeric = (energies[0] - energies[1]) / (2 * h)
    analytic = -np.sum(evaluate(deck).forces * direction)
    assert numeric == pytest.approx(analytic, rel=1e-6)


def test_nve_energy_is_conserved(system):
    directory, _, positions, types = system
    directory = directory / "nve"
    directory.mkdir()
    (directory / "model.pt").symlink_to(directory.parent / "model.pt")
    run = """velocity all create 150.0 4928459 mom yes rot yes dist gaussian
fix nve all nve
timestep 2.0
thermo_style custom step temp pe etotal
thermo_modify format float %.12g
thermo 10
run 150
"""
    deck = write_system(directory, positions, types)
    (directory / "in.cg").write_text(deck.read_text() + run)
    outputs = run_deck(directory)
    rows = re.findall(r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", outputs["log"].read_text(), re.M)
    steps, temperature, _, total = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    assert steps[-1] == 150
    assert temperature.min() > 50.0  # it moved
    # drift of the total energy per bead in units of k_B T: bounded by 1e-4
    kt = 0.0019872043 * 150.0  # kcal/mol
    assert np.max(np.abs(total - total[0])) / len(positions) / kt < 1e-4


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist or cannot be read"),
        ("not_torchscript", "is not a TorchScript model file"),
        ("no_metadata", "has no 'cgtorch.json' metadata"),
        ("unknown_type", "bead type 'C' (LAMMPS type 2) is not in model"),
        ("newton_off", "needs 'newton on'"),
        ("units_metal", "needs 'units real'"),
        ("not_layered", "has no method 'embed'"),
        ("cutoff_mismatch", "cutoff mismatch"),
        ("bad_device", "device 'tpu' is unknown"),
    ],
)
def test_bad_input_gives_lammps_error(system, tmp_path, case, message):
    directory, _, positions, types = system
    model = tmp_path / "model.pt"
    if case != "missing":
        model.symlink_to(directory / "model.pt")
    kwargs = {}
    if case == "not_torchscript":
        model.unlink()
        model.write_text("not a model\n")
    elif case == "no_metadata":
        model.unlink()
        torch.jit.save(torch.jit.script(ToyManyBody().double()), str(model))
    elif case == "unknown_type":
        kwargs["coeff"] = "A C"
    elif case == "not_layered":
        # right metadata, but only a forward method (the contract of metadata version 1)
        model.unlink()
        metadata = torchscript_metadata(NAMES, CUTOFF, 2, torch.float64)
        scripted = torch.jit.script(torch.nn.Linear(3, 1).double())
        torch.jit.save(scripted, str(model), _extra_files={METADATA_FILE: json.dumps(metadata)})
    elif case == "cutoff_mismatch":  # metadata edited by hand: 5 Å, the module uses 6 Å
        model.unlink()
        metadata = torchscript_metadata(NAMES, CUTOFF - 1.0, 2, torch.float64)
        scripted = torch.jit.script(ToyManyBody().double())
        torch.jit.save(scripted, str(model), _extra_files={METADATA_FILE: json.dumps(metadata)})
    elif case == "newton_off":
        kwargs["extra"] = "newton off on"
    deck = write_system(tmp_path, positions, types, **kwargs)
    text = deck.read_text()
    if case == "units_metal":
        text = text.replace("units real", "units metal")
    elif case == "bad_device":
        text = text.replace("pair_style cgtorch model.pt", "pair_style cgtorch model.pt device tpu")
    deck.write_text(text)
    with pytest.raises(LammpsRunError) as error:
        evaluate(deck)
    assert message in str(error.value)
    assert "ERROR" in str(error.value)


def test_writer_refuses_modules_outside_the_contract(tmp_path):
    path = tmp_path / "model.pt"
    with pytest.raises(InputError, match="lacks the cgtorch method"):
        write_torchscript_model(
            torch.nn.Linear(3, 1), path, bead_type_names=NAMES, cutoff=CUTOFF, n_interactions=2
        )
    with pytest.raises(InputError, match="cutoff equal to the metadata's cutoff=5.0"):
        write_torchscript_model(
            ToyManyBody(), path, bead_type_names=NAMES, cutoff=5.0, n_interactions=2
        )
    assert not list(tmp_path.iterdir())


def test_unit_conversion_is_ase_s():
    from ase import units

    assert units.eV / (units.kcal / units.mol) == EV_TO_KCAL_PER_MOL


def device_deck(directory, positions, types, device: str):
    deck = write_system(directory, positions, types)
    text = deck.read_text().replace(
        "pair_style cgtorch model.pt", f"pair_style cgtorch model.pt device {device}"
    )
    deck.write_text(text)
    return deck


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_a_lammps_error(system, tmp_path):
    directory, _, positions, types = system
    (tmp_path / "model.pt").symlink_to(directory / "model.pt")
    with pytest.raises(LammpsRunError, match="torch sees no CUDA device"):
        evaluate(device_deck(tmp_path, positions, types, "cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU that torch sees")
def test_cuda_equals_pytorch_float64(system, tmp_path):
    """The plugin's CUDA path (data copied to the GPU and back) gives the CPU reference."""
    directory, _, positions, types = system
    (tmp_path / "model.pt").symlink_to(directory / "model.pt")
    ref = reference(ToyManyBody(), positions, types)
    lmp = evaluate(device_deck(tmp_path, positions, types, "cuda"))
    assert lmp.energy == pytest.approx(ref["energy"], rel=1e-10)
    assert relative(lmp.forces, ref["forces"]) < 1e-10
    assert relative(lmp.virial, ref["virial"]) < 1e-10
