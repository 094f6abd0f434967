"""Exception base classes shared by every ``ase_cg`` module.

Bad input raises a specific exception whose message names the file, dataset, field,
molecule, bead or atom at fault and says how to fix it.  Catch :class:`ASECGError` to
catch everything ``ase_cg`` raises on purpose; :class:`InputError` is also a
:class:`ValueError`, so code written against the standard library keeps working.
"""

from __future__ import annotations

import signal


class ASECGError(Exception):
    """Base class of every exception that ``ase_cg`` raises on purpose."""


class InputError(ASECGError, ValueError):
    """A file, dataset, field or argument given to ``ase_cg`` is missing or malformed.

    The message names what is at fault (file path and dataset / field), what was
    expected, what was found, and how to fix it.
    """


class Interrupted(KeyboardInterrupt):
    """The process got a stop signal (SIGTERM, SIGINT): raised by the ``ase-cg`` command line so
    that writers close their files cleanly on the way out.

    Attributes
    ----------
    signum : int
        The signal number; the command exits with status 128 + signum.
    """

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
