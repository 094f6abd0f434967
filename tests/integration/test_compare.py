"""ase_cg.analysis.compare and ``ase-cg compare``: report files, metrics ~0 for identical inputs
and large for different ones, the all-atom → CG mapping path through H5MD files and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _dimers import ch3_dimers
from ase import Atoms
from ase.build import bulk, molecule

from ase_cg import cli
from ase_cg.analysis import (
    AnalysisError,
    compare,
    max_abs_difference,
    neighbor_angle_distribution,
    tetrahedral_order,
    topology_from_bonds,
)
from ase_cg.io import write_h5md
from ase_cg.mapping import CGMapping
from ase_cg.report import (
    FigureLink,
    Section,
    Table,
    markdown_table,
    new_figure,
    save_figure,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def dimer_liquid(
    rng,
    *,
    n_molecules=64,
    n_frames=40,
    box=14.0,
    bond=1.69,
    sigma_bond=0.03,
    step=0.15,
    dt=20.0,
    lattice=False,
):
    """CG dimers (two 'CH3' beads) whose centres random-walk (D = step² / (2 dt) per axis)."""
    if lattice:
        n_side = round(n_molecules ** (1 / 3))
        centres = (np.indices((n_side,) * 3).reshape(3, -1).T + 0.5) * box / n_side
    else:
        centres = rng.random((n_molecules, 3)) * box
    images = []
    for frame in range(n_frames):
        if frame:
            centres = centres + rng.normal(scale=step, size=centres.shape)
        direction = rng.normal(size=(n_molecules, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        half = 0.5 * rng.normal(bond, sigma_bond, n_molecules)[:, None] * direction
        atoms = ch3_dimers(np.stack([centres - half, centres + half], axis=1), box)
        atoms.info["time"] = frame * dt
        images.append(atoms)
    topology = {"bonds": np.arange(2 * n_molecules).reshape(-1, 2)}
    return images, topology


def test_compare_with_itself_gives_zero_and_writes_the_report(rng, tmp_path):
    images, topology = dimer_liquid(rng)
    metrics = compare(images, images, output_dir=tmp_path / "report", topology=topology)
    report = tmp_path / "report"
    rdf = metrics["rdf"]["CH3-CH3"]
    assert rdf["max_abs_difference"] == 0.0
    assert rdf["integrated_absolute_error"] == 0.0
    assert metrics["bonds"]["CH3-CH3"]["jensen_shannon"] == pytest.approx(0.0, abs=1e-15)
    assert metrics["density"]["relative_difference"] == 0.0
    assert metrics["diffusion"]["ratio"] == pytest.approx(1.0, rel=1e-12)
    # the bond statistics are those of the generated bonds
    assert metrics["bonds"]["CH3-CH3"]["mean_reference"] == pytest.approx(1.69, abs=0.01)
    assert metrics["bonds"]["CH3-CH3"]["std_reference"] == pytest.approx(0.03, rel=0.15)
    # files: index.md links every figure, every figure is a PNG, metrics.json = returned dict
    index = (report / "index.md").read_text()
    assert set(metrics["files"]["figures"]) == {
        "rdf_CH3-CH3.png",
        "bonds.png",
        "density.png",
        "msd.png",
    }
    for name in metrics["files"]["figures"]:
        assert f"]({name})" in index
        assert (report / name).read_bytes()[:8] == PNG_MAGIC
    assert "| RDF CH3-CH3" in index and "max \\|Δg\\|" in index
    # two-bead molecules: no local-order section, only the reason in the metrics
    assert metrics["local_order"] == {
        "skipped": "reference: molecules of more than one bead; CG: molecules of more than one bead"
    }
    assert "Local order" not in index
    assert json.loads((report / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert not list(report.glob(".*"))  # no temporary files left behind


def test_compare_detects_different_structure_and_dynamics(rng, tmp_path):
    reference, topology = dimer_liquid(rng, n_frames=60, step=0.15)
    cg, _ = dimer_liquid(
        rng, n_frames=60, step=0.3, bond=1.85, sigma_bond=0.05, lattice=True, box=14.0
    )
    metrics = compare(reference, cg, output_dir=tmp_path / "r", topology=topology)
    # a lattice of molecules vs uncorrelated molecules: g differs by far more than noise
    assert metrics["rdf"]["CH3-CH3"]["max_abs_difference"] > 1.0
    bonds = metrics["bonds"]["CH3-CH3"]
    assert bonds["jensen_shannon"] > 0.5  # 1.69 ± 0.03 vs 1.85 ± 0.05 Å barely overlap
    assert bonds["mean_cg"] == pytest.approx(1.85, abs=0.01)
    # random walks with twice the step: D four times larger (centre of mass of each dimer)
    assert metrics["diffusion"]["ratio"] == pytest.approx(4.0, rel=0.15)
    assert metrics["diffusion"]["reference_A2_fs"] == pytest.approx(0.15**2 / 40.0, rel=0.15)


def ethane_liquid(rng, *, n_molecules=64, n_frames=30, box=16.0, step=0.1, dt=10.0):
    """All-atom ethane: rigid molecules at random places and orientations, random-walk centres."""
    template = molecule("C2H6")
    template.positions -= template.get_center_of_mass()
    centres = rng.random((n_molecules, 3)) * box
    images = []
    for frame in range(n_frames):
        if frame:
            centres = centres + rng.normal(scale=step, size=centres.shape)
        positions = []
        for centre in centres:
            rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
            positions.append(template.positions @ rotation.T + centre)
        atoms = Atoms(
            template.get_chemical_symbols() * n_molecules,
            positions=np.concatenate(positions),
            cell=np.eye(3) * box,
            pbc=True,
        )
        atoms.wrap()
        atoms.arrays["mol-id"] = np.repeat(np.arange(n_molecules), len(template))
        atoms.info["time"] = frame * dt
        images.append(atoms)
    return images


def test_compare_maps_an_all_atom_h5md_reference_through_the_cli(rng, tmp_path, data_dir):
    mapping_file = data_dir / "ethane_mapping.json"
    mapping = CGMapping.load(mapping_file)
    all_atom = ethane_liquid(rng)
    system = mapping.system(all_atom[0])  # molecules matched to the template once
    cg = [system.map_atoms(atoms) for atoms in all_atom]
    for atoms, mapped in zip(all_atom, cg, strict=True):
        mapped.info["time"] = atoms.info["time"]
    write_h5md(tmp_path / "aa.h5", all_atom)
    write_h5md(tmp_path / "cg.h5", cg, bonds=mapping.topology(cg[0])["bonds"])

    code = cli.main(
        [
            "compare",
            str(tmp_path / "aa.h5"),
            str(tmp_path / "cg.h5"),
            "--mapping",
            str(mapping_file),
            "-o",
            str(tmp_path / "report"),
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["inputs"]["reference"]["n_beads"] == 128
    assert metrics["inputs"]["reference"]["source"] == str(tmp_path / "aa.h5")
    # the CG file is the reference mapped by the same mapping (stored as float32): ~ identical
    assert metrics["rdf"]["CH3-CH3"]["max_abs_difference"] < 0.05
    bonds = metrics["bonds"]["CH3-CH3"]
    assert bonds["jensen_shannon"] < 1e-3
    # rigid molecules: the bead–bead bond is the template's CH3–CH3 centre-of-mass distance
    template_beads = mapping.map(_boxed(molecule("C2H6")))
    expected = np.linalg.norm(np.subtract(*template_beads.positions))
    assert bonds["mean_reference"] == pytest.approx(expected, abs=1e-4)
    assert bonds["std_reference"] < 1e-4
    assert metrics["density"]["relative_difference"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["diffusion"]["ratio"] == pytest.approx(1.0, abs=1e-3)
    assert metrics["diffusion"]["of"] == "molecule centres of mass"
    # in-memory all-atom frames (mapped one by one) give the numbers of the file (mapped in
    # chunks), up to the file's float32 positions
    in_memory = compare(all_atom, cg, mapping=mapping, output_dir=tmp_path / "memory")
    assert in_memory["inputs"]["mapping"] is None  # given as an object, not a file
    for key in ("reference_g_cm3", "cg_g_cm3"):
        assert in_memory["density"][key] == pytest.approx(metrics["density"][key], rel=1e-6)
    assert in_memory["bonds"]["CH3-CH3"]["mean_reference"] == pytest.approx(
        bonds["mean_reference"], abs=1e-5
    )
    assert in_memory["diffusion"]["reference_A2_fs"] == pytest.approx(
        metrics["diffusion"]["reference_A2_fs"], rel=1e-4
    )


def _boxed(atoms):
    atoms.cell = np.eye(3) * 20.0
    atoms.pbc = True
    atoms.positions += 10.0
    return atoms


def test_compare_rejects_all_atom_reference_without_mapping(rng, tmp_path, capsys):
    all_atom = ethane_liquid(rng, n_molecules=8, n_frames=3, box=9.0)
    cg, _ = dimer_liquid(rng, n_molecules=8, n_frames=3, box=9.0)
    with pytest.raises(AnalysisError, match="--mapping"):
        compare(all_atom, cg, output_dir=tmp_path / "r")
    write_h5md(tmp_path / "aa.h5", all_atom)
    write_h5md(tmp_path / "cg.h5", cg)
    assert cli.main(["compare", str(tmp_path / "aa.h5"), str(tmp_path / "cg.h5")]) == 1
    assert "no bead types" in capsys.readouterr().err


def test_compare_rejects_different_bead_types(rng, tmp_path):
    reference, _ = dimer_liquid(rng, n_molecules=8, n_frames=3, box=9.0)
    cg, _ = dimer_liquid(rng, n_molecules=8, n_frames=3, box=9.0)
    for atoms in cg:
        atoms.arrays["bead-type"] = np.full(len(atoms), "CH2")
    with pytest.raises(AnalysisError, match="bead types differ"):
        compare(reference, cg, output_dir=tmp_path / "r")


def chain_liquid(rng, *, n_molecules=40, n_frames=6, box=15.0, dt=10.0):
    """Flexible 4-bead chains A–B–B–A with random bond vectors of length ~1.5 Å."""
    images = []
    starts = rng.random((n_molecules, 3)) * box
    for frame in range(n_frames):
        steps = rng.normal(size=(n_molecules, 3, 3))
        steps *= rng.normal(1.5, 0.05, (n_molecules, 3, 1)) / np.linalg.norm(
            steps, axis=2, keepdims=True
        )
        chains = np.concatenate([starts[:, None], starts[:, None] + np.cumsum(steps, 1)], 1)
        atoms = Atoms(
            numbers=np.zeros(4 * n_molecules, dtype=int),
            positions=chains.reshape(-1, 3),
            cell=np.eye(3) * box,
            pbc=True,
            masses=np.tile([15.0, 14.0, 14.0, 15.0], n_molecules),
        )
        atoms.wrap()
        atoms.arrays["mol-id"] = np.repeat(np.arange(n_molecules), 4)
        atoms.arrays["bead-type"] = np.tile(["A", "B", "B", "A"], n_molecules)
        atoms.info["time"] = frame * dt
        images.append(atoms)
    first = 4 * np.arange(n_molecules)[:, None]
    bonds = np.concatenate([first + [0, 1], first + [1, 2], first + [2, 3]])
    return images, bonds


def test_compare_chains_with_two_bead_types_and_angles_and_dihedrals(rng, tmp_path):
    images, bonds = chain_liquid(rng)
    metrics = compare(
        images, images, output_dir=tmp_path / "r", topology=topology_from_bonds(bonds)
    )
    assert set(metrics["rdf"]) == {"A-A", "A-B", "B-B"}
    assert set(metrics["bonds"]) == {"A-B", "B-B"}
    assert set(metrics["angles"]) == {"A-B-B"}
    assert set(metrics["dihedrals"]) == {"A-B-B-A"}
    for kind in ("bonds", "angles", "dihedrals"):
        for values in metrics[kind].values():
            assert values["jensen_shannon"] == pytest.approx(0.0, abs=1e-15)
    assert metrics["bonds"]["A-B"]["mean_reference"] == pytest.approx(1.5, abs=0.02)
    # random bond directions: angles are sin-distributed (mean 90°), dihedrals uniform (mean 0°)
    assert metrics["angles"]["A-B-B"]["mean_reference"] == pytest.approx(90.0, abs=10.0)
    assert metrics["dihedrals"]["A-B-B-A"]["std_reference"] == pytest.approx(
        360 / np.sqrt(12), rel=0.15
    )
    files = set(metrics["files"]["figures"])
    assert {"rdf_A-B.png", "angles.png", "dihedrals.png"} <= files


def test_report_tables_and_missing_figures(tmp_path):
    table = Table(["name", "value", "note"], [["a|b", 1.23456789, None], ["c", 2e-7, "x"]])
    text = markdown_table(table)
    assert text.splitlines()[1] == "|:---|---:|:---|"  # numbers right-aligned, text left
    assert "| a\\|b | 1.235 | – |" in text
    assert "2.000e-07" in text
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        markdown_table(Table(["a", "b"], [[1]]))
    section = Section("S", "text", [table], [FigureLink("missing.png", "caption")])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        write_report(tmp_path, "T", [section])
    figure, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    save_figure(figure, tmp_path / "missing.png")
    index = write_report(tmp_path, "T", [section], intro="intro")
    assert index.read_text().startswith("# T\n\nintro\n\n## S\n\ntext\n")
    assert (tmp_path / "missing.png").read_bytes()[:8] == PNG_MAGIC


def test_html_page_is_self_contained(tmp_path):
    """index.html beside index.md: the same tables, figures embedded, text escaped."""
    import base64
    import re

    figure, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    save_figure(figure, tmp_path / "f.png")
    table = Table(["run", "max abs Δg"], [["CG <tables>", 0.0312], ["x", None]], caption="RDFs")
    text = "A **bold** claim with `code`, [a link](other/index.md) and 1 < 2.\n\n- one\n- two"
    section = Section("S", text, [table], [FigureLink("f.png", "c")])
    write_report(tmp_path, "Title & more", [section])
    page = (tmp_path / "index.html").read_text()
    assert "<title>Title &amp; more</title>" in page
    assert "CG &lt;tables&gt;" in page and "1 &lt; 2" in page  # escaped, not markup
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    assert '<a href="other/index.md">a link</a>' in page and "<li>two</li>" in page
    assert '<td class="n">0.0312</td>' in page and "<caption>RDFs</caption>" in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,")
    embedded = base64.b64decode(images[0].split(",", 1)[1])
    assert embedded == (tmp_path / "f.png").read_bytes()  # the figure itself, no file link


def test_compare_single_frames_without_times_skips_diffusion(rng, tmp_path):
    images, topology = dimer_liquid(rng, n_molecules=27, n_frames=1, box=12.0)
    del images[0].info["time"]
    metrics = compare(images, images, output_dir=tmp_path / "r", topology=topology)
    assert metrics["diffusion"] == {
        "skipped": "the reference run has fewer than 3 frames; the CG run has fewer than 3 frames"
    }
    assert metrics["rdf"]["CH3-CH3"]["halves_max_abs_difference_reference"] is None
    assert "msd.png" not in metrics["files"]["figures"]
    assert (
        "Skipped: the reference run has fewer than 3 frames"
        in (tmp_path / "r" / "index.md").read_text()
    )


def one_bead_liquid(rng, tetrahedral, n_frames=4):
    """216 one-bead molecules at 2.8 Å spacing: a rattled diamond lattice (tetrahedral first
    shell) or uniform random points at the same density (an ideal gas)."""
    lattice = bulk("O", "diamond", a=2.8 * 4.0 / np.sqrt(3.0), cubic=True).repeat(3)
    images = []
    for _ in range(n_frames):
        atoms = lattice.copy()
        if tetrahedral:
            atoms.positions += rng.normal(scale=0.12, size=atoms.positions.shape)
        else:
            atoms.positions = rng.random((len(atoms), 3)) @ atoms.cell[:]
        atoms.set_masses(np.full(len(atoms), 18.015))
        atoms.arrays["mol-id"] = np.arange(len(atoms))
        atoms.arrays["bead-type"] = np.full(len(atoms), "W")
        images.append(atoms)
    return images


def test_compare_measures_local_order_of_one_bead_molecules(rng, tmp_path, capsys):
    reference = one_bead_liquid(rng, tetrahedral=True)
    cg = one_bead_liquid(rng, tetrahedral=False)
    metrics = compare(reference, cg, output_dir=tmp_path / "report", angle_bins=60)
    order = metrics["local_order"]
    # the same numbers as the stand-alone analysis functions on the same bins
    angles = {
        side: neighbor_angle_distribution(images, 3.18, 60)[1]
        for side, images in (("reference", reference), ("cg", cg))
    }
    assert order["angle_max_abs_difference"] == pytest.approx(
        max_abs_difference(angles["reference"], angles["cg"]), rel=1e-12
    )
    q_reference, q_cg = tetrahedral_order(reference)[2], tetrahedral_order(cg)[2]
    assert order["mean_q_reference"] == pytest.approx(q_reference, rel=1e-12)
    assert order["mean_q_cg"] == pytest.approx(q_cg, rel=1e-12)
    assert order["mean_q_difference"] == pytest.approx(q_cg - q_reference, rel=1e-12)
    # physics: the rattled diamond stays tetrahedral, the ideal gas is not
    assert order["mean_q_reference"] > 0.9 and abs(order["mean_q_cg"]) < 0.15
    assert order["mean_angle_reference"] == pytest.approx(109.47, abs=1.0)
    assert order["angle_max_abs_difference"] > 10 * order["halves_angle_max_abs_difference_cg"]
    index = (tmp_path / "report" / "index.md").read_text()
    assert "## Local order (one-bead molecules)" in index and "| tetrahedral order q" in index
    assert "](local_order.png)" in index
    assert (tmp_path / "report" / "local_order.png").read_bytes()[:8] == PNG_MAGIC
    # a run against itself: no difference
    same = compare(reference, reference, output_dir=tmp_path / "same", angle_bins=60)
    assert same["local_order"]["angle_max_abs_difference"] == 0.0
    assert same["local_order"]["mean_q_difference"] == 0.0
    # a shell without neighbours: the q part stays, the angle metrics say why they are missing
    empty = compare(reference, cg, output_dir=tmp_path / "empty", shell_cutoff=1.0)
    assert empty["local_order"]["angle_max_abs_difference"] is None
    assert "--shell-cutoff" in (tmp_path / "empty" / "index.md").read_text()
    with pytest.raises(AnalysisError, match="shell_cutoff = -1"):
        compare(reference, cg, output_dir=tmp_path / "bad", shell_cutoff=-1.0)
    # the command, on H5MD files: the same q (positions stored as float32)
    write_h5md(tmp_path / "reference.h5", reference)
    write_h5md(tmp_path / "cg.h5", cg)
    arguments = ["compare", str(tmp_path / "reference.h5"), str(tmp_path / "cg.h5")]
    assert cli.main([*arguments, "--output-dir", "cli", "--shell-cutoff", "3.18"]) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if "tetrahedral order q:" in x)
    numbers = [float(word) for word in line.split() if word[-1].isdigit()]
    assert numbers == pytest.approx([q_reference, q_cg], abs=2e-4)
    assert "neighbour angles within 3.18 Å: max |Δp| = " in printed
