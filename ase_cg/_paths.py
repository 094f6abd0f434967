"""Output paths that must not overwrite an input: one check, used by every command."""

from __future__ import annotations

import os
from pathlib import Path

from ase_cg.errors import InputError


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: same inode when both exist (hard links,
    symbolic links, ``./x`` vs ``x``), else the same resolved path."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output_not_input(
    output: str | os.PathLike,
    inputs,
    *,
    option: str = "output",
) -> None:
    """Refuse an ``output`` that would overwrite one of ``inputs``.

    Parameters
    ----------
    output : path
        File (or, with ``inside``, folder) to be written.
    inputs : iterable of path or None
        Files read by the same command; ``None`` entries are skipped.
    option : str
        How the user gave ``output`` (e.g. ``"-o"``), for the message.

    Raises
    ------
    InputError
        Naming the output, the input it would destroy and the fix.
    """
    for source in inputs:
        if source is None:
            continue
        if same_file(output, source):
            raise InputError(
                f"{option} {output} is the input {source}: writing it would destroy the input; "
                "give another output path"
            )


def check_output_folder(folder: str | os.PathLike, inputs, names, *, option: str) -> None:
    """Refuse an output ``folder`` that is an existing file or whose files ``names`` (written
    there by the command) would replace one of ``inputs``.

    Raises
    ------
    InputError
        Naming the folder (or the file in it) and the input at risk.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{option} {folder}: is a file, not a folder; give a folder path")
    for source in inputs:
        if source is None:
            continue
        if same_file(folder, source):
            raise InputError(f"{option} {folder} is the input {source}; give another folder")
    for name in names:
        check_output_not_input(folder / name, inputs, option=option)
