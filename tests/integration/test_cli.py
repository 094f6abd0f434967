"""The ``ase-cg`` entry point lists every subcommand and each has ``--help``."""

from __future__ import annotations

import pkgutil

import pytest

from ase_cg import cli, commands


def test_every_command_module_is_registered(capsys):
    names = {m.name for m in pkgutil.iter_modules(commands.__path__)}
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    for name in names:
        module = __import__(f"ase_cg.commands.{name}", fromlist=["NAME"])
        assert module.NAME in out


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: ase-cg" in capsys.readouterr().out
