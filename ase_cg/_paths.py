"""Output paths: written atomically, and never over an input. One of each, used everywhere.

:func:`atomic_path` is the one way ase_cg writes a file: into a temporary file beside the
target, renamed over it only when the writing finished, so a crash or a stop signal never
leaves a half-written model, table, plot or trajectory under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
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
        File to be written (folders: :func:`check_output_folder`).
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".partial") -> Iterator[Path]:
    """A temporary path to write ``path`` through, renamed over ``path`` on success.

    The temporary file (``.<name>.<random><suffix>`` in the target's folder, which is created)
    exists, empty, when the block starts; write it by name or reopen it. When the block ends
    without an exception it becomes ``path`` (mode 0644) in one rename; otherwise it is removed
    and any old ``path`` is untouched.

    Parameters
    ----------
    path : path
        The file to write.
    suffix : str
        Of the temporary name; writers that pick a format from the extension (matplotlib's
        ``savefig``) need the target's (``".png"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    return write_bytes_atomic(path, text.encode())
