"""The files that ship with ase_cg: the all-atom ethane reference, its mapping and CG models.

One folder holds them, found the same way in a repository checkout, an editable install and an
installed wheel::

    ase_cg/data/                        (in the repository: a link to the top-level data/)
    ├── README.md                       what each file is and how it was made
    ├── ethane_aa.h5                    all-atom liquid ethane, H5MD, 300 frames (16 MB)
    ├── ethane_mapping.json             the CH3|CH3 two-bead mapping (CGMapping)
    ├── ethane_classical_force_matched.pt   pair + bond splines, force matched
    ├── ethane_classical.pt             the same refined against RDF and pressure
    ├── ethane_neural.pt                prior + SchNet, force matched and refined
    ├── water_aa.h5                     all-atom SPC/E water, H5MD, 200 frames (19 MB)
    └── water_mapping.json              the one-bead water mapping

The repository keeps the files once, in its top-level ``data/`` folder; ``ase_cg/data`` is a
symbolic link to it, and a wheel built from the repository holds copies of the files (package
data of ``ase_cg``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "shipped_data"]

#: The folder of the shipped files.
DATA_DIR = Path(__file__).resolve().parent / "data"


def shipped_data(name: str) -> Path:
    """Path of a shipped file.

    Parameters
    ----------
    name : str
        File name inside the data folder, e.g. ``"ethane_aa.h5"``, ``"ethane_mapping.json"``,
        ``"ethane_classical.pt"``.

    Returns
    -------
    pathlib.Path
        Absolute path of the file (it exists).

    Raises
    ------
    FileNotFoundError
        No such file; the message lists the files that are there.

    Examples
    --------
    >>> from ase_cg import shipped_data
    >>> shipped_data("ethane_mapping.json").name
    'ethane_mapping.json'
    """
    path = DATA_DIR / name
    if Path(name).name != name or not path.is_file():
        present = sorted(p.name for p in DATA_DIR.glob("*") if p.is_file())
        raise FileNotFoundError(
            f"shipped data: no file {name!r} in {DATA_DIR}; the shipped files are "
            f"{', '.join(present) or 'none (the folder is missing: reinstall ase_cg)'}"
        )
    return path
