"""The ``ase-cg`` command line: a thin layer over the library's public functions."""

from __future__ import annotations

import argparse
import importlib
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ase-cg``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"ase-cg {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
