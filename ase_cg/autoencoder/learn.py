r"""Learned CG mappings: the coarse-graining auto-encoder (Wang & Gómez-Bombarelli 2019).

Given an all-atom trajectory with forces, learn per molecule type which atoms form which bead,
together with a decoder and a small CG potential, and return the result as an ordinary
:class:`~ase_cg.mapping.CGMapping` (same JSON as hand-made mappings).

Physics
-------
Per molecule type an encoder holds assignment logits :math:`\theta` of shape
``(n_atoms_in_molecule, n_beads)``. Each training step draws a Gumbel-softmax assignment

.. math::

    A_{jI} = \mathrm{softmax}_I\big((\theta_{jI} + g_{jI}) / \tau\big), \qquad
    \tau(\mathrm{epoch}) = \tau_0\, e^{-\mathrm{epoch} / (0.4\, n_\mathrm{epochs})} + \tau_\min ,

with Gumbel noise :math:`g`; in the last epochs the assignment is made hard (one-hot argmax)
with the straight-through estimator, so each atom ends in exactly one bead. Bead positions are
mass-weighted means of the assigned atoms of the (whole) molecule,

.. math::

    z_I = \sum_j E_{Ij} x_j, \qquad E_{Ij} = \frac{m_j A_{jI}}{\sum_k m_k A_{kI}},
    \qquad M_I = \sum_j m_j A_{jI}.

The decoder is linear and works in the molecular frame: atom positions are rebuilt from the
bead offsets to the molecule's centre of mass :math:`c = \sum_I M_I z_I / \sum_I M_I`,

.. math::

    \hat x_j = c + \sum_I D_{jI} (z_I - c),

so it is equivariant to translations (and rotations) of the molecule. The loss is

.. math::

    L = \big\langle |x - \hat x|^2 \big\rangle
        + \rho\, \frac{\big\langle |b f + \nabla_z V_\mathrm{CG}(z)|^2 \big\rangle}
                      {\langle |f|^2 \rangle}
        + \lambda \sum_I \max(0, 1 - n_I)^2
        + \kappa\, \mathrm{cut}(A) + \beta\, \frac{1}{n_\mathrm{beads}}
          \sum_I \Big(\frac{M_I}{\bar M} - 1\Big)^2 ,

with the instantaneous mapped force :math:`b f`, :math:`b = (E E^{\mathsf T})^{-1} E` (the
paper's pseudo-inverse, differentiable in ``E``; the bead sum is an option), the soft bead
occupancy :math:`n_I = \sum_j A_{jI}` (guard against empty beads), and the force term switched
on after a warm-up. The last two terms carry the chemistry the first three miss. The bond cut

.. math::

    \mathrm{cut}(A) = \frac{1}{n_\mathrm{bonds}} \sum_{(a, b)} \Big(1 - \sum_I A_{aI} A_{bI}\Big)

runs over the covalent bonds of the molecule's template; :math:`\sum_I A_{aI} A_{bI}` is the
probability that a and b share a bead, so the term is the expected fraction of bonds cut. A
bead should be a bonded fragment: in propane the reconstruction and force terms alone leave
one or two hydrogens on the neighbouring carbon's bead (the decoder sees only mean positions,
and rotating methyl groups make hydrogens of neighbouring carbons look alike). Minimum cut
alone is degenerate: a bead of one hydrogen cuts one bond, as few as a CH3 bead behind a C–C
bond. The balance term (spread of the soft bead masses :math:`M_I` around their mean
:math:`\bar M`) breaks that tie against hydrogen-only beads. Both weights ramp up over the
first epochs (``bond_warmup``) so that the reconstruction term separates the heavy atoms
first. After training, a run whose hard
beads are not all connected subgraphs of the bond graph is flagged (``"connected": false``).
The CG potential :math:`V_\mathrm{CG}` is trained in the same backward pass:
harmonic springs between the beads of a molecule plus a Gaussian-basis pair potential between
beads of different molecules (minimum image, smooth cosine cutoff). Molecules of one type share
the encoder, so each frame contributes a random sample of ``molecules_per_frame`` molecules
(all of a small box); their CG forces need only the molecules within the pair cutoff of them,
which are encoded too. The cost per frame then does not grow with the box. Several restarts (seeds)
are run; among the connected ones, the one with the lowest validation loss (hard assignment,
held-out frames at the end of the trajectory) is kept (among all when none is connected). A
run whose final hard assignment leaves a bead empty counts as failed.

Usage::

    result = learn_mapping("ethane_aa.h5", 2, config=AutoencoderConfig(epochs=60))
    result.mapping.save("learned_mapping.json")   # CGMapping JSON
    result.report["runs"]                         # per seed: groups, losses, hardness
    learn_mapping("mix.h5", {"ethane": 2, "propane": 3}, output_dir="learned/")  # + report
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ase_cg.autoencoder.config import AutoencoderConfig, AutoencoderError
from ase_cg.autoencoder.data import TrainingData, load_training_data
from ase_cg.autoencoder.losses import batch_losses, groups_connected
from ase_cg.autoencoder.model import CGAutoencoder, LearnedMapping
from ase_cg.autoencoder.report import write_learned_report
from ase_cg.autoencoder.sampling import MoleculeSampler
from ase_cg.mapping import CGMapping


def _train_seed(data: TrainingData, config: AutoencoderConfig, seed: int, split, cutoff, bar):
    """Train one restart; ``bar`` (tqdm over all seeds' epochs) advances once per epoch."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(int(seed))
    model = CGAutoencoder(
        [t.name for t in data.types],
        [t.template.get_masses() for t in data.types],
        [t.n_beads for t in data.types],
        pair_cutoff=cutoff,
        n_basis=config.n_basis,
        init_scale=config.init_scale,
        generator=generator,
        atom_bonds=[t.bonds for t in data.types],
    )
    tensors = (
        [torch.as_tensor(p) for p in data.positions],
        [torch.as_tensor(f) for f in data.forces],
        torch.as_tensor(data.cells) if data.pbc.any() else None,
        data.force_scale,
        MoleculeSampler(data, cutoff, config.molecules_per_frame),
    )
    _init_springs(model, data, split[0])
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    train, validation = split
    n_hard = int(round(config.hard_fraction * config.epochs))
    warmup = int(round(config.force_warmup * config.epochs))
    bond_ramp = int(round(config.bond_warmup * config.epochs))
    history = {
        k: []
        for k in ("epoch", "tau", "recon", "force", "penalty", "bond_cut", "balance", "validation")
    }
    for epoch in range(config.epochs):
        tau = config.temperature(epoch)
        hard = epoch >= config.epochs - n_hard
        rho = config.rho if epoch >= warmup else 0.0
        order = train[torch.randperm(len(train), generator=generator).numpy()]
        sums = np.zeros(5)
        for start in range(0, len(order), config.batch_frames):
            frames = torch.as_tensor(order[start : start + config.batch_frames])
            total, recon, force, penalty, cut, balance = batch_losses(
                model,
                tensors,
                frames,
                config,
                tau=tau,
                hard=hard,
                rho=rho,
                generator=generator,
                chemistry=min(1.0, (epoch + 1) / (bond_ramp + 1)),
            )
            if not torch.isfinite(total):
                raise AutoencoderError(
                    f"{data.source}: seed {seed}, epoch {epoch}: the loss is not finite "
                    f"(reconstruction {float(recon.detach()):.4g} Å², force "
                    f"{float(force.detach()):.4g}, penalty {float(penalty.detach()):.4g}); "
                    "check the trajectory's positions and forces for huge values, or lower "
                    "learning_rate / rho"
                )
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            values = (recon, force, penalty, cut, balance)
            sums += len(frames) * np.array([float(v.detach()) for v in values])
        sums /= len(order)
        val = _validate(model, tensors, validation, config)
        for key, value in zip(
            history,
            (epoch, tau, *sums, val["total"]),
            strict=True,
        ):
            history[key].append(float(value))
        bar.set_postfix(
            seed=seed, recon=f"{sums[0]:.3g}", force=f"{sums[1]:.3g}", val=f"{val['total']:.3g}"
        )
        bar.update(1)
    final = _validate(model, tensors, validation, config)
    groups = {t.name: model.groups(k) for k, t in enumerate(data.types)}
    empty = {name: [i for i, g in enumerate(gs) if not g] for name, gs in groups.items()}
    split_beads = {
        t.name: [
            i
            for i, ok in enumerate(groups_connected(groups[t.name], t.bonds))
            if groups[t.name][i] and not ok
        ]
        for t in data.types
    }
    run = {
        "seed": int(seed),
        "groups": groups,
        "failed": any(empty.values()),
        "empty_beads": {name: e for name, e in empty.items() if e},
        "connected": not any(empty.values()) and not any(split_beads.values()),
        "disconnected_beads": {name: b for name, b in split_beads.items() if b},
        "validation": final,
        "hardness": {t.name: model.hardness(k, config.tau_min) for k, t in enumerate(data.types)},
        "history": history,
        "seconds": time.perf_counter() - started,
    }
    return model, run


def _init_springs(model: CGAutoencoder, data: TrainingData, train) -> None:
    """Start the spring rest lengths at the mean bead distances of the initial assignment."""
    with torch.no_grad():
        offset = 0
        for k, _ in enumerate(data.types):
            A = torch.softmax(model.logits[k], dim=1)
            _, _, z = model.encode(k, A, torch.as_tensor(data.positions[k][train[:8]]))
            pairs = model.bond_pairs[k]
            n = pairs.shape[1]
            if n:
                r = (z[:, :, pairs[1]] - z[:, :, pairs[0]]).norm(dim=-1).mean(dim=(0, 1))
                model.bond_r0[offset : offset + n] = r
            offset += n


def _validate(model, tensors, frames, config) -> dict:
    """Losses of the hard argmax assignment on ``frames`` (force term always on).

    An argmax assignment with an empty bead has no valid E: all losses are then infinite.
    """
    if any(not g for k in range(len(model.type_names)) for g in model.groups(k)):
        keys = ("total", "reconstruction", "force", "penalty", "bond_cut", "balance")
        return dict.fromkeys(keys, math.inf)
    total, recon, force, penalty, cut, balance = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    n = 0
    for start in range(0, len(frames), config.batch_frames):
        sel = torch.as_tensor(frames[start : start + config.batch_frames])
        t, r, f, p, c, m = batch_losses(
            model, tensors, sel, config, tau=None, hard=True, rho=config.rho, generator=None
        )
        total += len(sel) * float(t.detach())
        recon += len(sel) * float(r.detach())
        force += len(sel) * float(f.detach())
        penalty = float(p.detach())
        cut = float(c.detach())
        balance = float(m.detach())
        n += len(sel)
    return {
        "total": total / n,
        "reconstruction": recon / n,
        "force": force / n,
        "penalty": penalty,
        "bond_cut": cut,
        "balance": balance,
    }


def _pick_best(runs: list[dict]) -> tuple[int, str]:
    """Index of the run to keep and how it was chosen (at least one run must not have failed).

    Lowest validation loss among the runs without an empty bead whose beads are all connected;
    among all runs without an empty bead when none is connected.
    """
    ok = [i for i, run in enumerate(runs) if not run["failed"]]
    connected = [i for i in ok if runs[i]["connected"]]
    if connected:
        selection = (
            f"lowest validation loss among the {len(connected)} seed(s) whose beads are all "
            "connected in the bond graph"
        )
    else:
        selection = (
            "no seed gave beads that are all connected in the bond graph: lowest validation "
            f"loss among all {len(ok)} seed(s) without an empty bead"
        )
    return min(connected or ok, key=lambda i: runs[i]["validation"]["total"]), selection


def _atom_errors(model: CGAutoencoder, data: TrainingData, frames) -> dict[str, list[float]]:
    """RMS reconstruction error per template atom (Å) with the hard assignment."""
    out = {}
    with torch.no_grad():
        for k, t in enumerate(data.types):
            x = torch.as_tensor(data.positions[k][frames])
            _, masses, z = model.encode(k, model.assignment(k, None, True), x)
            error = ((model.decode(k, masses, z) - x) ** 2).sum(-1)  # (F, n_mol, n_at)
            out[t.name] = error.mean(dim=(0, 1)).sqrt().tolist()
    return out


def learn_mapping(
    trajectory,
    n_beads,
    *,
    config: AutoencoderConfig | None = None,
    seeds=(0, 1, 2, 3, 4),
    output_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> LearnedMapping:
    """Learn a CG mapping (and a decoder and CG potential) from an all-atom trajectory.

    Parameters
    ----------
    trajectory : path or ase_cg.trajectory.Trajectory
        All-atom trajectory with positions, forces, cells, masses and molecule ids (or
        molecules found from bonds / geometry): an H5MD file, a file MDAnalysis reads alone,
        or a trajectory object (e.g. :class:`ase_cg.trajectory.MDAnalysisTrajectory` for
        TRR + TPR, :class:`~ase_cg.trajectory.InMemoryTrajectory` for ``ase.Atoms``).
    n_beads : int or dict[str, int]
        Beads per molecule: one number for every type, or per type keyed by the molecule's Hill
        formula (``"C2H6"``) or a reference molecule name (``"ethane"``; the type then gets
        that name).
    config : AutoencoderConfig, optional
    seeds : sequence of int
        One restart per seed. The run kept has the lowest validation loss among the runs
        without an empty bead whose beads are all connected subgraphs of the bond graph (each
        bead's atoms joined by the molecule's covalent bonds); when no run is connected, among
        all runs without an empty bead (``report["best_connected"]`` is then False).
    output_dir : path, optional
        Also write ``mapping.json``, ``report.json``, figures and ``index.md`` there
        (:func:`write_learned_report`).
    progress : bool or None
        Progress bars (``None``: only on a terminal).

    Returns
    -------
    LearnedMapping

    Raises
    ------
    AutoencoderError
        No forces, one-atom molecules, more beads than atoms, unknown molecule types, too few
        frames, a non-finite loss, or every seed ending with an empty bead.
    """
    config = AutoencoderConfig() if config is None else config
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise AutoencoderError("learn_mapping needs at least one seed")
    disable = None if progress is None else not progress  # None: bars only on a terminal
    started = time.perf_counter()
    data = load_training_data(trajectory, n_beads, config, disable)
    n_frames = len(data.frames)
    n_validation = max(1, int(round(config.validation_fraction * n_frames)))
    if config.validation_fraction == 0:
        n_validation = 0
    split = (np.arange(n_frames - n_validation), np.arange(n_frames - n_validation, n_frames))
    if n_validation == 0:
        split = (split[0], split[0])
    data.force_scale = float(np.mean([np.mean((f[split[0]] ** 2).sum(-1)) for f in data.forces]))
    if not math.isfinite(data.force_scale) or data.force_scale <= 0:
        raise AutoencoderError(
            f"{data.source}: the mean squared atom force is {data.force_scale!r} eV²/Å²; the "
            "forces must be finite and not all zero"
        )
    cutoff = config.pair_cutoff
    if data.pbc.any():
        cell = data.cells[0]
        volume = abs(np.linalg.det(cell))
        widths = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        cutoff = min(cutoff, 0.5 * float(widths[data.pbc].min()) - 0.01)
        if cutoff <= 2.0:
            raise AutoencoderError(
                f"{data.source}: the box is too small (half width {cutoff + 0.01:.3g} Å) for "
                "the auto-encoder's pair potential; use a larger system"
            )
    runs, models = [], []
    total = len(seeds) * config.epochs
    with tqdm(total=total, desc="learn-mapping", unit="epoch", disable=disable) as bar:
        for seed in seeds:
            model, run = _train_seed(data, config, seed, split, cutoff, bar)
            runs.append(run)
            models.append(model)
    if all(run["failed"] for run in runs):
        raise AutoencoderError(
            f"{data.source}: every seed {seeds} ended with an empty bead "
            f"({[run['empty_beads'] for run in runs]}); use fewer beads or more seeds/epochs"
        )
    best, selection = _pick_best(runs)
    model = models[best]
    templates = {}
    spec = {}
    for k, t in enumerate(data.types):
        groups = sorted(model.groups(k), key=min)
        template = t.template.copy()
        template.info["name"] = t.name
        templates[t.name] = template
        spec[t.name] = (template, groups)
    mapping = CGMapping.from_groups(spec)
    report = {
        "source": data.source,
        "best_seed": runs[best]["seed"],
        "best_connected": bool(runs[best]["connected"]),
        "selection": selection,
        "runs": runs,
        "atom_rms_error": _atom_errors(model, data, split[1]),
        "atom_symbols": {t.name: t.template.get_chemical_symbols() for t in data.types},
        "n_train_frames": int(len(split[0])),
        "n_validation_frames": int(n_validation),
        "pair_cutoff": cutoff,
        "force_scale": data.force_scale,
        "seconds": time.perf_counter() - started,
        "config": config.to_dict(),
    }
    result = LearnedMapping(mapping=mapping, autoencoder=model, report=report, templates=templates)
    if output_dir is not None:
        write_learned_report(result, output_dir)
    return result
