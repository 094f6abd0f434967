"""Argument types of the ``ase-cg`` command line: every option either works or is refused.

Each function is an ``argparse`` ``type=``: it returns the parsed value or raises
:class:`argparse.ArgumentTypeError`, which argparse reports as one line
``ase-cg CMD: error: argument --NAME: <why>`` (exit status 2).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def _number(text: str, kind) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _at_least(text: str, kind, accept, requirement: str) -> int | float:
    """``text`` as a ``kind`` with ``accept(value)`` true; else ``TEXT must be REQUIREMENT``."""
    value = _number(text, kind)
    if not accept(value):
        raise argparse.ArgumentTypeError(f"{text} must be {requirement}")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    return _at_least(text, int, lambda value: value >= 1, "at least 1")


def nonnegative_int(text: str) -> int:
    """An integer ≥ 0."""
    return _at_least(text, int, lambda value: value >= 0, "0 or more")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _at_least(text, float, lambda value: value > 0, "> 0")


def nonnegative_float(text: str) -> float:
    """A finite number ≥ 0."""
    return _at_least(text, float, lambda value: value >= 0, ">= 0")


def finite_float(text: str) -> float:
    """Any finite number."""
    return _number(text, float)


def output_file(text: str) -> str:
    """A file to write: not a folder, in a folder that exists (an old file is replaced)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} does not exist")
    return text


def output_folder(text: str) -> str:
    """A folder to write into (created if missing): not an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file; give a folder (created if missing)")
    return text


def torch_device(text: str) -> str:
    """A torch device that exists here: ``cpu``, ``cuda`` or ``cuda:N`` with CUDA available."""
    import torch  # heavy: the command line imports this module to build its parser

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device (cpu, cuda, cuda:N)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"{text}: CUDA is not available to this torch ({torch.__version__}); use cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif device.type != "cpu":
        raise argparse.ArgumentTypeError(f"{text}: use cpu, cuda or cuda:N")
    return text
