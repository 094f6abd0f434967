"""ase.io reads and writes H5MD through the ``ase.ioformats`` entry point ``h5md``."""

from __future__ import annotations

import ase.io
import numpy as np

from ase_cg import _keys as K
from ase_cg.io import read_h5md
from ase_cg.mapping import CGMapping


def test_ase_io_reads_what_read_h5md_reads(data_dir):
    path = data_dir / "ethane_aa.h5"
    ours = read_h5md(path, index="1:4")
    theirs = ase.io.read(path, index="1:4")  # format found from the extension
    assert len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.get_forces(), b.get_forces())
        np.testing.assert_array_equal(a.numbers, b.numbers)
    assert ase.io.read(path).info["step"] == read_h5md(path, index=-1).info["step"]


def test_ase_io_writes_cg_frames_that_keep_bead_types(data_dir, tmp_path):
    mapping = CGMapping.load(data_dir / "ethane_mapping.json")
    beads = [mapping.map(frame) for frame in read_h5md(data_dir / "ethane_aa.h5", index=":2")]
    ase.io.write(tmp_path / "cg.h5md", beads, format="h5md")
    back = ase.io.read(tmp_path / "cg.h5md", index=":")
    assert len(back) == 2
    np.testing.assert_allclose(back[1].positions, beads[1].positions, atol=1e-5)
    np.testing.assert_allclose(back[1].get_forces(), beads[1].get_forces(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(back[0].arrays[K.BEAD_TYPE], beads[0].arrays[K.BEAD_TYPE])
    np.testing.assert_array_equal(back[0].arrays[K.MOL_ID], beads[0].arrays[K.MOL_ID])


def test_the_format_registers_whichever_module_is_imported_first(data_dir):
    """ase.io.formats loads entry points on its first import, which ase_cg.io may trigger."""
    import subprocess
    import sys

    code = (
        "import ase_cg.io, ase.io\n"
        f"print(len(ase.io.read({str(data_dir / 'ethane_aa.h5')!r}, index=':2')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "2"


def test_bead_types_survive_an_ase_traj_file(data_dir, tmp_path):
    """ASE's .traj drops string arrays; the tags and info keep the bead types, and the
    calculator reads them back."""
    from ase.io import read, write

    from ase_cg.beads import bead_types_of
    from ase_cg.calculator import CGCalculator

    mapping = CGMapping.load(data_dir / "ethane_mapping.json")
    beads = mapping.map(read_h5md(data_dir / "ethane_aa.h5", index=0))
    write(tmp_path / "cg.traj", beads)
    back = read(tmp_path / "cg.traj")
    assert K.BEAD_TYPE not in back.arrays  # what the format drops
    np.testing.assert_array_equal(bead_types_of(back), beads.arrays[K.BEAD_TYPE])
    back.arrays[K.MOL_ID] = beads.arrays[K.MOL_ID]  # .traj keeps no molecule ids either
    model = data_dir / "ethane_classical.pt"
    expected = CGCalculator(model).get_potential_energy(beads)
    assert CGCalculator(model).get_potential_energy(back) == expected
