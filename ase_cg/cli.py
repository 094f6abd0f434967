"""The ``ase-cg`` command line: a thin layer over the library's public functions."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from ase_cg import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    """Parser with one sub-parser per module in :mod:`ase_cg.commands`."""
    parser = argparse.ArgumentParser(
        prog="ase-cg",
        description="Machine-learned coarse-graining of molecular liquids (ASE + LAMMPS).",
    )
    parser.add_argument("--version", action="version", version=f"ase-cg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        sub_parser = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.register(sub_parser)
    return parser


def _show_notes() -> None:
    """Print the library's one-line notes (``logging`` INFO of ``ase_cg``) on stderr, once."""
    logger = logging.getLogger("ase_cg")
    if not any(getattr(h, "_ase_cg_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("note: %(message)s"))
        handler._ase_cg_cli = True
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ase-cg``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _show_notes()
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"ase-cg {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
