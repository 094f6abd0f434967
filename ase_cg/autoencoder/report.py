"""Files and figures of a learned mapping (:func:`write_learned_report`)."""

from __future__ import annotations

from pathlib import Path

import torch

from ase_cg.autoencoder.model import LearnedMapping
from ase_cg.report import (
    FigureLink,
    Section,
    Table,
    new_figure,
    save_figure,
    write_json,
    write_report,
)


def write_learned_report(result: LearnedMapping, folder) -> Path:
    """Write the mapping JSON, report JSON, figures and ``index.md`` of a learned mapping.

    Files: ``mapping.json`` (:meth:`CGMapping.save`), ``report.json``, ``assignment_<type>.png``
    (assignment probabilities softmax(θ/τ_min), atoms × beads in mapping bead order),
    ``losses.png``, ``atom_error.png`` and ``index.md``. Returns the path of ``index.md``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = result.report
    model = result.autoencoder
    result.mapping.save(folder / "mapping.json")
    write_json(folder / "report.json", report)
    tau = report["config"]["tau_min"]
    sections = []
    for k, name in enumerate(model.type_names):
        symbols = report["atom_symbols"][name]
        probs = torch.softmax(model.logits[k].detach() / tau, dim=1).numpy()
        probs = probs[:, sorted(range(probs.shape[1]), key=lambda i: min(model.groups(k)[i]))]
        fig, ax = new_figure(size=(1.2 + 0.6 * probs.shape[1], 1.0 + 0.3 * probs.shape[0]))
        image = ax.imshow(probs, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(symbols)), [f"{s}{j}" for j, s in enumerate(symbols)])
        ax.set_xticks(range(probs.shape[1]), [f"bead {i}" for i in range(probs.shape[1])])
        ax.set_title(f"{name}: assignment")
        fig.colorbar(image, ax=ax, label="probability")
        safe = "".join(c if c.isalnum() else "_" for c in name)
        save_figure(fig, folder / f"assignment_{safe}.png")
        groups = result.mapping.groups[name]
        rows = [
            [i, result.mapping.bead_names[name][i], " ".join(f"{symbols[j]}{j}" for j in g)]
            for i, g in enumerate(groups)
        ]
        seeds_rows = [
            [
                run["seed"],
                " | ".join(" ".join(f"{symbols[j]}{j}" for j in g) for g in run["groups"][name]),
                "failed (empty bead)" if run["failed"] else "ok",
                "yes" if run["connected"] else "no",
                run["hardness"][name],
                run["validation"]["reconstruction"],
                run["validation"]["force"],
                run["validation"]["total"],
            ]
            for run in report["runs"]
        ]
        sections.append(
            Section(
                title=f"Molecule type {name}",
                text=(
                    f"Best seed {report['best_seed']} ({report['selection']}). Connected: every "
                    "bead's atoms are joined by the molecule's covalent bonds. Hardness = "
                    "smallest largest assignment probability over atoms at τ_min = "
                    f"{tau}; the assignment is hard when it is 1 (the mapping uses the argmax "
                    "either way)."
                ),
                tables=[
                    Table(["bead", "type", "atoms"], rows),
                    Table(
                        [
                            "seed",
                            "groups",
                            "status",
                            "connected",
                            "hardness",
                            "val. recon (Å²)",
                            "val. force (rel.)",
                            "val. total",
                        ],
                        seeds_rows,
                    ),
                    Table(
                        ["atom", "RMS reconstruction error (Å)"],
                        [
                            [f"{symbols[j]}{j}", e]
                            for j, e in enumerate(report["atom_rms_error"][name])
                        ],
                    ),
                ],
                figures=[FigureLink(f"assignment_{safe}.png", f"{name}: assignment probabilities")],
            )
        )
    fig, axes = new_figure(1, 2, size=(10, 4))
    for run in report["runs"]:
        h = run["history"]
        axes[0].plot(h["epoch"], h["recon"], label=f"seed {run['seed']}")
        axes[1].plot(h["epoch"], h["validation"], label=f"seed {run['seed']}")
    axes[0].set(xlabel="epoch", ylabel="reconstruction (Å²)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="validation loss (hard assignment)", yscale="log")
    axes[1].legend()
    save_figure(fig, folder / "losses.png")
    fig, ax = new_figure()
    for name in model.type_names:
        err = report["atom_rms_error"][name]
        ax.bar(
            [f"{name}:{s}{j}" for j, s in enumerate(report["atom_symbols"][name])], err, label=name
        )
    ax.set(ylabel="RMS reconstruction error (Å)")
    ax.tick_params(axis="x", rotation=90)
    save_figure(fig, folder / "atom_error.png")
    sections.append(
        Section(
            title="Training",
            text=(
                f"{report['n_train_frames']} training and {report['n_validation_frames']} "
                f"validation frames from `{report['source']}`; {len(report['runs'])} seeds in "
                f"{report['seconds']:.1f} s; pair cutoff {report['pair_cutoff']:.3g} Å."
            ),
            figures=[
                FigureLink("losses.png", "reconstruction loss and validation loss per epoch"),
                FigureLink("atom_error.png", "RMS reconstruction error per atom"),
            ],
        )
    )
    return write_report(folder, "Learned CG mapping", sections, intro="Mapping: `mapping.json`.")
