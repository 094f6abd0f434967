"""Bad input through the ``ase-cg`` command line: one error line, no damage, no leftovers.

Every case runs ``ase_cg.cli.main`` in-process on tiny files and asserts the exit status
(2: a refused argument, 1: bad input, 3: a failed run), exactly one line on stderr,
``ase-cg CMD: error: …`` naming the culprit, every input file byte-identical afterwards
(SHA-256) and no file added or removed in the input folder or the working folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _paths import DATA_DIR
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_cg.cli import main
from ase_cg.io import read_h5md, write_h5md
from ase_cg.mapping import CGMapping, map_trajectory
from ase_cg.model import load_model, save_model
from ase_cg.potentials import CGModel
from ase_cg.potentials.neural import NeuralPotential

DATA = DATA_DIR


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, prior_model):
    """A folder of tiny input files, good and bad (names used by the cases below)."""
    root = tmp_path_factory.mktemp("inputs")
    shutil.copy(DATA / "ethane_mapping.json", root / "mapping.json")
    write_h5md(root / "aa.h5", read_h5md(DATA / "ethane_aa.h5", slice(0, 3)), time_step=1.0)
    map_trajectory(root / "aa.h5", root / "cg.h5", CGMapping.load(root / "mapping.json"))
    save_model(prior_model, root / "prior.pt")
    # a model whose repulsion strength is NaN
    nan_model = load_model(root / "prior.pt")
    state = nan_model.state_dict()  # shares storage with the model
    next(t for t in state.values() if t.is_floating_point()).fill_(float("nan"))
    save_model(nan_model, root / "nan.pt")
    os.link(root / "aa.h5", root / "aa_link.h5")  # the same file under another name
    # an all-atom file with a negative box edge
    shutil.copy(root / "aa.h5", root / "negbox.h5")
    with h5py.File(root / "negbox.h5", "r+") as f:
        edges = f["particles/all/box/edges/value"]
        edges[0, 2] = -edges[0, 2]
    # a mapping with a misspelt key
    text = (root / "mapping.json").read_text().replace('"bead_names"', '"bead_name"')
    (root / "typo_mapping.json").write_text(text)
    # extxyz trajectories with forces: a good one and one with an atom at 1e30 Å
    atoms = Atoms("Ar2", positions=[[0, 0, 0], [3, 0, 0]], cell=[10, 10, 10], pbc=True)
    frames = []
    for shift in (0.0, 0.1):
        frame = atoms.copy()
        frame.positions[1, 0] += shift
        frame.calc = SinglePointCalculator(frame, forces=np.zeros((2, 3)), energy=0.0)
        frames.append(frame)
    import ase.io

    ase.io.write(root / "ar.extxyz", frames)
    frames[1].positions[1, 0] = 1e30
    frames[1].calc = SinglePointCalculator(frames[1], forces=np.zeros((2, 3)), energy=0.0)
    ase.io.write(root / "far.extxyz", frames)
    (root / "epochs.yaml").write_text('train:\n  epochs: "many"\n')
    # a training folder whose checkpoint was cut short
    run = root / "run"
    run.mkdir()
    neural = CGModel(
        prior_model.bead_type_names,
        [*prior_model.terms, NeuralPotential(1, n_atom_basis=4, n_filters=4, n_interactions=1,
                                             n_rbf=4, cutoff=5)],
        mapping=prior_model.mapping,
    )  # fmt: skip
    save_model(neural, run / "initial.pt")
    torch.save({"model": neural.state_dict()}, run / "checkpoint.pt")
    raw = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(raw[: len(raw) // 2])
    (root / "not_a_folder").write_text("a file")
    return root


def snapshot(*folders: Path) -> dict[str, str]:
    """Path → SHA-256 of every file (``"folder"`` for a folder) under the folders."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        for folder in folders
        for path in sorted(folder.rglob("*"))
    }


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse refusing an argument
        return exit_.code


# (id, argv with {in} = the input folder, exit status, text the error line must contain)
CASES = [
    # outputs never overwrite inputs
    ("map-onto-input", ["map", "--mapping", "{in}/mapping.json", "{in}/aa.h5", "{in}/aa.h5"], 1,
     "is the input"),
    ("map-onto-hard-link-of-input",
     ["map", "--mapping", "{in}/mapping.json", "{in}/aa.h5", "{in}/aa_link.h5"], 1,
     "is the input"),
    ("map-onto-input-other-spelling",
     ["map", "--mapping", "{in}/mapping.json", "{in}/aa.h5", "{in}/run/../aa.h5"], 1,
     "is the input"),
    ("map-onto-mapping", ["map", "--mapping", "{in}/mapping.json", "{in}/aa.h5",
                          "{in}/mapping.json"], 1, "mapping.json"),
    ("simulate-start-is-output",
     ["simulate", "{in}/prior.pt", "--start", "{in}/cg.h5", "-o", "{in}/cg.h5", "--steps", "2"],
     1, "is the input"),
    ("simulate-output-is-model", ["simulate", "{in}/prior.pt", "--start", "{in}/cg.h5", "-o",
                                  "{in}/prior.pt", "--steps", "2"], 1, "prior.pt"),
    ("convert-onto-input", ["convert", "{in}/ar.extxyz", "{in}/ar.extxyz"], 1, "is the input"),
    ("correct-structure-onto-model",
     ["correct-structure", "{in}/prior.pt", "{in}/cg.h5", "{in}/cg.h5", "-o", "{in}/prior.pt"],
     1, "is the input"),
    ("train-data-inside-output",
     ["train", "{in}/run/initial.pt", "-o", "{in}/run", "--mapping", "{in}/mapping.json"], 1,
     "initial.pt"),
    # arguments refused by the argument types
    ("map-chunk-size-0", ["map", "--mapping", "{in}/mapping.json", "{in}/aa.h5", "o.h5",
                          "--chunk-size", "0"], 2, "--chunk-size"),
    ("map-output-in-missing-folder",
     ["map", "--mapping", "{in}/mapping.json", "{in}/aa.h5", "nope/o.h5"], 2, "does not exist"),
    ("simulate-ranks-0", ["simulate", "{in}/prior.pt", "--ranks", "0"], 2, "--ranks"),
    ("simulate-time-step-0", ["simulate", "{in}/prior.pt", "--time-step", "0"], 2, "--time-step"),
    ("simulate-steps-negative", ["simulate", "{in}/prior.pt", "--steps", "-5"], 2, "--steps"),
    ("simulate-interval-0", ["simulate", "{in}/prior.pt", "--interval", "0"], 2, "--interval"),
    ("simulate-density-negative", ["simulate", "{in}/prior.pt", "--density", "-1"], 2,
     "--density"),
    ("simulate-temperature-nan", ["simulate", "{in}/prior.pt", "--temperature", "nan"], 2,
     "--temperature"),
    ("simulate-device-cuda", ["simulate", "{in}/prior.pt", "--device", "cuda"], 2, "CUDA"),
    ("simulate-device-unknown", ["simulate", "{in}/prior.pt", "--device", "banana"], 2,
     "banana"),
    ("simulate-repeat-0", ["simulate", "{in}/prior.pt", "--repeat", "1", "0", "1"], 2,
     "--repeat"),
    ("convert-time-step-0", ["convert", "{in}/ar.extxyz", "o.h5", "--time-step", "0"], 2,
     "--time-step"),
    ("convert-atoms-per-molecule-0",
     ["convert", "{in}/ar.extxyz", "o.h5", "--atoms-per-molecule", "0"], 2,
     "--atoms-per-molecule"),
    ("train-output-is-a-file", ["train", "{in}/cg.h5", "-o", "{in}/not_a_folder"], 2,
     "not_a_folder"),
    ("train-epochs-0", ["train", "{in}/cg.h5", "-o", "out", "--epochs", "0"], 2, "--epochs"),
    ("train-batch-frames-0", ["train", "{in}/cg.h5", "-o", "out", "--batch-frames", "0"], 2,
     "--batch-frames"),
    ("train-ranks-0", ["train", "{in}/cg.h5", "-o", "out", "--ranks", "0"], 2, "--ranks"),
    ("train-learning-rate-negative",
     ["train", "{in}/cg.h5", "-o", "out", "--learning-rate", "-1"], 2, "--learning-rate"),
    ("train-device-cuda", ["train", "{in}/cg.h5", "-o", "out", "--device", "cuda"], 2, "CUDA"),
    ("learn-mapping-output-is-a-file",
     ["learn-mapping", "{in}/aa.h5", "--beads", "2", "-o", "{in}/not_a_folder"], 2,
     "not_a_folder"),
    ("learn-mapping-epochs-0", ["learn-mapping", "{in}/aa.h5", "--beads", "2", "-o", "out",
                                "--epochs", "0"], 2, "--epochs"),
    ("learn-mapping-seeds-0", ["learn-mapping", "{in}/aa.h5", "--beads", "2", "-o", "out",
                               "--seeds", "0"], 2, "--seeds"),
    ("export-table-inner-negative", ["export-lammps", "{in}/prior.pt", "deck", "--table-inner",
                                     "-1"], 2, "--table-inner"),
    ("export-time-step-0", ["export-lammps", "{in}/prior.pt", "deck", "--time-step", "0"], 2,
     "--time-step"),
    ("export-into-a-file", ["export-lammps", "{in}/prior.pt", "{in}/not_a_folder"], 2,
     "not_a_folder"),
    ("compare-n-bins-0", ["compare", "{in}/cg.h5", "{in}/cg.h5", "--n-bins", "0"], 2,
     "--n-bins"),
    ("compare-output-is-a-file", ["compare", "{in}/cg.h5", "{in}/cg.h5", "-o",
                                  "{in}/not_a_folder"], 2, "not_a_folder"),
    ("lammps-ranks-0", ["lammps", "run", "deck", "--ranks", "0"], 2, "--ranks"),
    ("reference-molecules-0", ["reference", "-o", "ref.h5", "--molecules", "0"], 2,
     "--molecules"),
    ("demo-frames-0", ["demo", "--frames", "0"], 2, "--frames"),
    ("refine-max-iterations-0", ["refine", "{in}/prior.pt", "{in}/cg.h5", "-o", "out",
                                 "--max-iterations", "0"], 2, "--max-iterations"),
    ("refine-output-is-a-file", ["refine", "{in}/prior.pt", "{in}/cg.h5", "-o",
                                 "{in}/not_a_folder"], 2, "not_a_folder"),
    # bad input found by the library
    ("refine-threebody-damping-2", ["refine", "{in}/prior.pt", "{in}/cg.h5", "-o", "out",
                                    "--threebody-damping", "2"], 1, "threebody_damping"),
    ("config-epochs-not-a-number",
     ["train", "{in}/cg.h5", "-o", "out", "--mapping", "{in}/mapping.json", "--config",
      "{in}/epochs.yaml"], 1, "epochs = 'many'"),
    ("train-resume-truncated-checkpoint",
     ["train", "{in}/cg.h5", "-o", "{in}/run", "--mapping", "{in}/mapping.json", "--resume"], 1,
     "checkpoint.pt"),
    ("train-classical-with-neural-options",
     ["train", "{in}/cg.h5", "-o", "out", "--kind", "classical", "--epochs", "3"], 1,
     "--epochs"),
    ("convert-h5-input", ["convert", "{in}/cg.h5", "o.h5"], 1, "already an HDF5"),
    ("convert-atom-far-away", ["convert", "{in}/far.extxyz", "o.h5"], 1, "atom 1"),
    ("simulate-frame-out-of-range",
     ["simulate", "{in}/prior.pt", "--start", "{in}/cg.h5", "--frame", "99", "-o", "o.h5"], 1,
     "no frame 99"),
    ("simulate-start-atom-far-away",
     ["simulate", "{in}/prior.pt", "--start", "{in}/far.extxyz", "-o", "o.h5"], 1, "atom 1"),
    ("simulate-nan-model", ["simulate", "{in}/nan.pt", "--start", "{in}/cg.h5", "-o", "o.h5"], 1,
     "non-finite"),
    ("simulate-resume-missing", ["simulate", "{in}/prior.pt", "-o", "o.h5", "--resume"], 1,
     "no such trajectory"),
    ("simulate-resume-complete", ["simulate", "{in}/prior.pt", "-o", "{in}/cg.h5", "--resume"],
     1, "nothing to resume"),
    ("export-nan-model", ["export-lammps", "{in}/nan.pt", "deck", "--start", "{in}/cg.h5"], 1,
     "non-finite"),
    ("export-frame-out-of-range",
     ["export-lammps", "{in}/prior.pt", "deck", "--start", "{in}/cg.h5", "--frame", "99"], 1,
     "no frame 99"),
    ("map-negative-box-edge", ["map", "--mapping", "{in}/mapping.json", "{in}/negbox.h5",
                               "o.h5"], 1, "negative box edge"),
    ("map-already-cg", ["map", "--mapping", "{in}/mapping.json", "{in}/cg.h5", "o.h5"], 1,
     "already a CG"),
    ("map-mapping-unknown-key",
     ["map", "--mapping", "{in}/typo_mapping.json", "{in}/aa.h5", "o.h5"], 1, "bead_name"),
    ("info-missing-file", ["info", "{in}/missing.h5"], 1, "missing.h5"),
    ("lammps-run-missing-folder", ["lammps", "run", "{in}/missing"], 1, "missing"),
    ("lammps-run-without-folder", ["lammps", "run"], 1, "export folder"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "culprit"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_gives_one_error_line_and_changes_nothing(
    inputs, tmp_path, capsys, argv, code, culprit
):
    argv = [a.replace("{in}", str(inputs)) for a in argv]
    before = snapshot(inputs, tmp_path)
    capsys.readouterr()
    assert run_cli(argv) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ase-cg {argv[0]}: error: "), err
    assert culprit in lines[0], err
    assert "Traceback" not in err
    assert snapshot(inputs, tmp_path) == before  # inputs unchanged, nothing added or left


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)
