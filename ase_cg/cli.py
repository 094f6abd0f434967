"""The ``ase-cg`` command line: a thin layer over the library's public functions.

Errors: bad input (any :class:`~ase_cg.errors.ASECGError`, a missing or unwritable file, a
refused argument) prints one line ``ase-cg CMD: error: <what and how to fix it>`` and exits
with status 1 (2 for a refused argument); an unexpected exception prints one line and a hint
to rerun with ``--debug``, which shows the traceback. SIGTERM and SIGINT stop a command
cleanly (files being written are closed or removed) with status 128 + signal number.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import signal
import sys
import threading
import warnings

from ase_cg import __version__, commands
from ase_cg.errors import ASECGError, Interrupted

#: Exceptions that report bad input (exit status 1, one line, no traceback).
USER_ERRORS = (
    ASECGError,
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``PROG: error: MESSAGE (see --help)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Parser with one sub-parser per module in :mod:`ase_cg.commands`."""
    parser = _Parser(
        prog="ase-cg",
        description="Machine-learned coarse-graining of molecular liquids (ASE + LAMMPS).",
    )
    parser.add_argument("--version", action="version", version=f"ase-cg {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error instead of one line"
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="print the library's debug messages too"
    )
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="print warnings and errors only (no notes)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        sub_parser = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        sub_parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        module.register(sub_parser)
    return parser


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is when a message comes, not as
    it was when the handler was made (``main`` may run many times in one process, each with
    its own stderr, as in tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def _show_notes(level: int = logging.INFO) -> None:
    """Print the library's ``logging`` messages of ``level`` and above (INFO: its one-line
    notes) on stderr; the handler is added once."""
    logger = logging.getLogger("ase_cg")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("note: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each message (a handler that kept
    the stream of its creation would write to a replaced, perhaps closed, one)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """The base class sets its stream once; the current sys.stderr is used instead."""


@contextlib.contextmanager
def _stop_signals_raise():
    """SIGTERM and SIGINT raise :class:`~ase_cg.errors.Interrupted` (once: a second signal
    during the clean-up is ignored); the previous handlers are restored on exit.

    Python runs a signal handler between any two bytecodes, also inside a ``__del__`` or a
    weakref callback, where the exception is printed and dropped; ``sys.unraisablehook``
    sees that, re-arms the handler and sends the signal again (from a timer thread, once
    the callback has returned)."""
    stop = (signal.SIGTERM, signal.SIGINT)

    def handler(signum, frame):
        for number in stop:
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(signum)

    def unraisable(info) -> None:
        if not isinstance(info.exc_value, Interrupted):
            previous_hook(info)
            return
        with contextlib.suppress(ValueError):  # ValueError: not the main thread
            for number in stop:
                signal.signal(number, handler)
        resend = threading.Timer(0.05, os.kill, (os.getpid(), info.exc_value.signum))
        resend.daemon = True
        resend.start()

    try:
        previous = {number: signal.signal(number, handler) for number in stop}
    except ValueError:  # not the main thread: leave the signals alone
        yield
        return
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for number, old in previous.items():
            signal.signal(number, old)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ase-cg``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _show_notes(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    prog = f"ase-cg {args.command}"
    try:
        with _stop_signals_raise(), warnings.catch_warnings():
            warnings.showwarning = _warning_line(prog)
            return int(args.func(args) or 0)
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        if args.debug:
            raise
        print(f"{prog}: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        if args.debug:
            raise
        print(
            f"{prog}: internal error: {type(error).__name__}: {_one_line(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _warning_line(prog: str):
    """A ``warnings.showwarning`` that prints ``PROG: warning: <message>`` on one line."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"{prog}: warning: {text}", file=sys.stderr if file is None else file)

    return show


def _one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (line breaks become "; ")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
