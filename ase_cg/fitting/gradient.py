"""Force-matching training of CG models by gradient descent (neural models and any CGModel).

The loss is the mean squared difference between the model's CG forces and the instantaneous
mapped all-atom forces F_ins,

.. math::

    L = \\langle |F_\\mathrm{ins} + \\nabla_z V_\\mathrm{CG}(z)|^2 \\rangle ,

averaged over beads and Cartesian components. Its minimum is not zero (F_ins is a noisy estimate
of the mean force), so every report puts it next to the variance of F_ins: the *fraction of
force variance unexplained* (FVU = L / Var F_ins) is what tells a good model from a bad one.

Frames are split in time blocks (training first, validation last), so correlated neighbouring
frames do not leak between the two sets. Mini-batches are read from the H5MD file as needed,
so memory does not grow with the trajectory. Checkpoints are written atomically; ``resume=True``
continues a killed run to the same result as an uninterrupted one (batches of an epoch are a
deterministic permutation of the seed and the epoch number).

Data parallelism: with ``torch.distributed`` initialised (``torchrun --nproc-per-node N`` or
:func:`train_distributed`), each process computes gradients on its share of every mini-batch
and the gradients are averaged with ``all_reduce`` before each optimiser step. This is what
``DistributedDataParallel`` does; it is written out because DDP's reducer does not support the
double backward that force matching needs (forces are themselves gradients).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ase_cg import _keys as K
from ase_cg._paths import atomic_path
from ase_cg.errors import ASECGError, InputError
from ase_cg.fitting.config import TrainConfig
from ase_cg.mapping import CGMapping
from ase_cg.model import atomic_torch_save, load_model, save_model
from ase_cg.potentials import CGModel, SystemTopology, make_batch
from ase_cg.report import new_figure, save_figure
from ase_cg.trajectory import cg_trajectory, open_trajectory

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.csv"


class TrainingDiverged(ASECGError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class ForceMatchingData:
    """Mapped frames (CG positions, cells, forces) read lazily from a trajectory.

    Parameters
    ----------
    path : path or ase_cg.trajectory.Trajectory
        A CG trajectory with forces (``ase-cg map`` output), or an all-atom one when
        ``mapping`` is given (frames are then mapped as they are read, with the bead-sum
        force map): an H5MD file, a file MDAnalysis reads, or a trajectory object.
    mapping : CGMapping, optional
    """

    def __init__(self, path, *, mapping=None) -> None:
        source = open_trajectory(path)
        self.path = Path(str(getattr(source, "path", None) or type(source).__name__))
        if not source.has_forces:
            raise InputError(
                f"{self.path}: has no forces (particles/*/force): force matching needs the "
                "all-atom forces of every frame"
            )
        self.mapping = mapping
        self.trajectory = cg_trajectory(source, mapping, what="force matching data")
        self.n_frames = len(self.trajectory)

    def cg_atoms(self):
        """The first frame as CG ``ase.Atoms`` (bead types, mol ids): gives the topology."""
        return self.trajectory[0]

    def read(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CG ``positions`` (n, n_beads, 3) Å, ``cells`` (n, 3, 3) Å, ``forces`` eV/Å."""
        frames = np.sort(np.asarray(frames, dtype=np.int64))
        trajectory = self.trajectory
        return trajectory.positions(frames), trajectory.cells(frames), trajectory.forces(frames)

    def batch(
        self,
        frames: np.ndarray,
        topology: SystemTopology,
        cutoff: float,
        *,
        dtype: torch.dtype,
        device: str = "cpu",
    ) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """A model batch of ``frames`` with their mapped forces as ``REFERENCE_FORCES``.

        Returns the batch and the mapped forces, (n, n_beads, 3) eV/Å, as NumPy.
        """
        positions, cells, forces = self.read(frames)
        batch = make_batch(
            positions,
            cells,
            topology,
            cutoff,
            reference_forces=forces,
            dtype=dtype,
            device=device,
        )
        return batch, forces


def split_frames(n_frames: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Time-block split of the strided frame indices into (training, validation)."""
    frames = np.arange(0, n_frames, config.frame_stride)
    if config.max_frames is not None:
        frames = frames[: config.max_frames]
    n_validation = int(round(len(frames) * config.validation_fraction))
    if len(frames) - n_validation < 1:
        raise InputError(f"only {len(frames)} frames: too few to train (lower frame_stride)")
    if n_validation == 0 and config.validation_fraction > 0:
        n_validation = 1 if len(frames) > 1 else 0
    return frames[: len(frames) - n_validation], frames[len(frames) - n_validation :]


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def force_matching_loss(model: CGModel, batch: dict[str, torch.Tensor], create_graph: bool):
    """Mean squared force error (eV²/Å²) and the per-bead squared errors (n_beads,)."""
    out = model(batch, compute_forces=True, create_graph=create_graph)
    squared = ((out[K.FORCES] - batch[K.REFERENCE_FORCES]) ** 2).sum(dim=1)
    return squared.mean() / 3.0, squared.detach()


def evaluate(
    model: CGModel,
    data: ForceMatchingData,
    frames: np.ndarray,
    topology: SystemTopology,
    *,
    batch_frames: int = 4,
    device: str = "cpu",
) -> dict:
    """Force-matching loss on ``frames`` next to the variance of the mapped force.

    Returns
    -------
    dict with ``loss`` (eV²/Å², per component), ``force_variance`` (eV²/Å²), ``fvu`` (fraction of
    force variance unexplained), and ``per_type`` {bead type: {loss, force_variance, fvu}}.
    """
    n_types = len(model.bead_type_names)
    sum_sq = np.zeros(n_types)
    sum_f = np.zeros((n_types, 3))
    sum_f2 = np.zeros(n_types)
    count = np.zeros(n_types)
    dtype = model.dtype
    for start in range(0, len(frames), batch_frames):
        chunk = frames[start : start + batch_frames]
        batch, forces = data.batch(chunk, topology, model.cutoff, dtype=dtype, device=device)
        _, squared = force_matching_loss(model, batch, create_graph=False)
        types = np.tile(topology.bead_type_index, len(chunk))
        flat_forces = forces.reshape(-1, 3)
        np.add.at(sum_sq, types, squared.cpu().double().numpy())
        np.add.at(sum_f, types, flat_forces)
        np.add.at(sum_f2, types, (flat_forces**2).sum(1))
        np.add.at(count, types, 1)

    def summary(sq, f, f2, n):
        loss = float(sq / (3 * n))
        variance = float((f2 / n - ((f / n) ** 2).sum()) / 3)
        return {"loss": loss, "force_variance": variance, "fvu": loss / variance}

    total = summary(sum_sq.sum(), sum_f.sum(0), sum_f2.sum(), count.sum())
    total["per_type"] = {
        name: summary(sum_sq[t], sum_f[t], sum_f2[t], count[t])
        for t, name in enumerate(model.bead_type_names)
        if count[t] > 0
    }
    return total


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: CGModel
    best_validation_loss: float
    epochs_run: int
    steps: int
    metrics: list[dict] = field(default_factory=list)
    validation: dict = field(default_factory=dict)


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as temporary, temporary.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_loss_curve(rows: list[dict], path: Path) -> None:
    """PNG of training and validation loss (and FVU) per epoch."""
    epochs = [row["epoch"] for row in rows]
    figure, axis = new_figure(size=(6.4, 4.0))
    axis.semilogy(epochs, [row["train_loss"] for row in rows], "o-", label="training")
    axis.semilogy(epochs, [row["validation_loss"] for row in rows], "s-", label="validation")
    axis.axhline(rows[-1]["force_variance"], color="grey", ls="--", label="Var(F_ins)")
    axis.set_xlabel("epoch")
    axis.set_ylabel("force-matching loss (eV²/Å²)")
    axis.set_title("Force matching")
    axis.legend()
    save_figure(figure, path, dpi=120)


def train(
    model: CGModel,
    data: ForceMatchingData,
    output_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
) -> TrainResult:
    """Train ``model`` by force matching on ``data``; writes checkpoints, metrics and the model.

    Parameters
    ----------
    model : CGModel
        Its trainable parameters are optimised; buffers (e.g. the prior) stay fixed.
    data : ForceMatchingData
    output_dir : folder for ``checkpoint.pt``, ``metrics.csv``, ``loss.png`` and ``model.pt``
        (the best model by validation loss).
    config : TrainConfig
    resume : bool
        Continue from ``output_dir/checkpoint.pt`` (same config and data required).

    Raises
    ------
    TrainingDiverged
        If the loss becomes non-finite (the last good checkpoint stays on disk).
    """
    config = config or TrainConfig()
    rank, world = _world()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype]
    device = config.device
    model = model.to(device=device, dtype=dtype)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise InputError(
            "the model has no trainable parameters (a classical model is fitted "
            "with fit_classical, not trained)"
        )
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_factor, patience=config.lr_patience
    )
    topology = model.topology(data.cg_atoms())
    train_frames, validation_frames = split_frames(data.n_frames, config)
    if len(validation_frames) == 0:
        validation_frames = train_frames
    steps_per_epoch = math.ceil(len(train_frames) / config.batch_frames)

    state = {
        "epoch": 0,
        "step_in_epoch": 0,
        "step": 0,
        "best": math.inf,
        "stale": 0,
        "rows": [],
        "epoch_loss_sum": 0.0,
        "epoch_loss_steps": 0,
    }
    checkpoint_path = output_dir / CHECKPOINT_NAME
    if resume:
        if not checkpoint_path.exists():
            raise InputError(f"{checkpoint_path}: no checkpoint to resume from")
        try:
            saved = torch.load(checkpoint_path, map_location=device, weights_only=True)
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            state = saved["state"]
            state["rows"] = [dict(row) for row in state["rows"]]
        except (RuntimeError, KeyError, TypeError, ValueError, EOFError, OSError) as error:
            problem = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(
                f"{checkpoint_path}: not a loadable checkpoint of this run ({problem}); it is "
                "truncated, corrupted or from another model. Delete it and train without "
                "--resume"
            ) from error

    def save_checkpoint() -> None:
        if rank == 0:
            atomic_torch_save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "state": state,
                },
                checkpoint_path,
            )

    best_path = output_dir / "model.pt"
    progress = tqdm(
        total=config.epochs * steps_per_epoch,
        initial=state["epoch"] * steps_per_epoch + state["step_in_epoch"],
        disable=not config.progress or rank != 0,
        unit="step",
        desc="force matching",
    )
    n_beads = topology.n_beads
    while state["epoch"] < config.epochs:
        epoch = state["epoch"]
        order = train_frames[
            np.random.default_rng([config.seed, epoch]).permutation(len(train_frames))
        ]
        losses = []  # this process's steps, for the throughput
        if state["step_in_epoch"] == 0:
            # the epoch's running loss lives in the checkpoint, so a resumed epoch reports
            # the mean over all its steps
            state["epoch_loss_sum"], state["epoch_loss_steps"] = 0.0, 0
        started = time.perf_counter()
        for step_in_epoch in range(state["step_in_epoch"], steps_per_epoch):
            frames = order[
                step_in_epoch * config.batch_frames : (step_in_epoch + 1) * config.batch_frames
            ]
            share = np.array_split(frames, world)[rank]
            optimizer.zero_grad(set_to_none=False)
            if len(share):
                batch, _ = data.batch(share, topology, model.cutoff, dtype=dtype, device=device)
                loss, _ = force_matching_loss(model, batch, create_graph=True)
                # weight by this process's share so the average over processes is the
                # mean over all frames of the mini-batch
                (loss * len(share) * world / len(frames)).backward()
                loss_value = loss.detach()
            else:
                loss_value = torch.zeros((), dtype=dtype, device=device)
            if world > 1:
                for p in parameters:
                    if p.grad is None:  # e.g. an energy shift: it does not change forces
                        p.grad = torch.zeros_like(p)
                    dist.all_reduce(p.grad)
                    p.grad /= world
                weighted = loss_value * len(share)
                dist.all_reduce(weighted)
                loss_value = weighted / len(frames)
            if not torch.isfinite(loss_value):
                progress.close()
                raise TrainingDiverged(
                    f"force-matching loss became {loss_value.item()} at epoch {epoch}, step "
                    f"{state['step']}; the last good checkpoint is {checkpoint_path}"
                )
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            optimizer.step()
            losses.append(loss_value.item())
            state["epoch_loss_sum"] += losses[-1]
            state["epoch_loss_steps"] += 1
            state["step"] += 1
            state["step_in_epoch"] = step_in_epoch + 1
            elapsed = time.perf_counter() - started
            progress.set_postfix(
                loss=f"{losses[-1]:.4g}",
                frames_s=f"{len(losses) * config.batch_frames / max(elapsed, 1e-9):.1f}",
            )
            progress.update()
            if state["step"] % config.checkpoint_every == 0:
                save_checkpoint()
        validation = evaluate(
            model,
            data,
            validation_frames,
            topology,
            batch_frames=config.batch_frames,
            device=device,
        )
        # every process evaluates the same frames, so all agree on the schedule
        row = {
            "epoch": epoch + 1,
            "step": state["step"],
            "train_loss": state["epoch_loss_sum"] / max(state["epoch_loss_steps"], 1),
            "validation_loss": validation["loss"],
            "force_variance": validation["force_variance"],
            "validation_fvu": validation["fvu"],
            "learning_rate": optimizer.param_groups[0]["lr"],
            "frames_per_s": len(losses) * config.batch_frames / (time.perf_counter() - started),
            "bead_frames_per_s": len(losses)
            * config.batch_frames
            * n_beads
            / (time.perf_counter() - started),
            "seconds": time.perf_counter() - started,
        }
        state["rows"].append(row)
        scheduler.step(validation["loss"])
        if validation["loss"] < state["best"]:
            state["best"], state["stale"] = validation["loss"], 0
            if rank == 0:
                save_model(model, best_path)
        else:
            state["stale"] += 1
        state["epoch"] += 1
        state["step_in_epoch"] = 0
        save_checkpoint()
        if rank == 0:
            _write_metrics(output_dir / METRICS_NAME, state["rows"])
            plot_loss_curve(state["rows"], output_dir / "loss.png")
        if config.early_stopping and state["stale"] >= config.early_stopping:
            break
    progress.close()
    if world > 1:
        dist.barrier()  # rank 0 has finished writing the best model
    best = load_model(best_path) if best_path.exists() else model
    final = evaluate(
        best.to(device),
        data,
        validation_frames,
        topology,
        batch_frames=config.batch_frames,
        device=device,
    )
    return TrainResult(
        model=best,
        best_validation_loss=state["best"],
        epochs_run=state["epoch"],
        steps=state["step"],
        metrics=state["rows"],
        validation=final,
    )


def _distributed_worker(
    rank: int,
    world_size: int,
    model_path: str,
    data_path: str,
    mapping_path: str | None,
    output_dir: str,
    config: dict,
    resume: bool,
    init_file: str,
) -> None:
    """One process of :func:`train_distributed`."""
    backend = "nccl" if config["device"].startswith("cuda") else "gloo"
    if backend == "nccl":
        config = {**config, "device": f"cuda:{rank % torch.cuda.device_count()}"}
    torch.set_num_threads(1)  # this process is ours: one thread per rank on a shared CPU
    dist.init_process_group(
        backend, init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        mapping = None
        if mapping_path is not None:
            mapping = CGMapping.load(mapping_path)
        data = ForceMatchingData(data_path, mapping=mapping)
        train(load_model(model_path), data, output_dir, TrainConfig(**config), resume=resume)
    finally:
        dist.destroy_process_group()


def train_distributed(
    model_path: str | os.PathLike,
    data_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    config: TrainConfig,
    *,
    world_size: int = 2,
    mapping_path: str | os.PathLike | None = None,
    resume: bool = False,
) -> CGModel:
    """Data-parallel :func:`train` in ``world_size`` local processes (gloo on CPU, nccl on GPU).

    The initial model is read from ``model_path`` (a model file) by every process; the best
    model is written to ``output_dir/model.pt`` and returned. On several machines, launch
    ``ase-cg train`` with ``torchrun`` instead: :func:`train` joins an initialised process group.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    init_file = output_dir / f".ddp-init-{os.getpid()}"
    init_file.unlink(missing_ok=True)
    try:
        torch.multiprocessing.spawn(
            _distributed_worker,
            args=(
                world_size,
                str(model_path),
                str(data_path),
                None if mapping_path is None else str(mapping_path),
                str(output_dir),
                dataclasses.asdict(config),
                resume,
                str(init_file),
            ),
            nprocs=world_size,
            join=True,
        )
    finally:
        init_file.unlink(missing_ok=True)
    return load_model(output_dir / "model.pt")
