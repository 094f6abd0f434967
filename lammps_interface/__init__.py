"""Bridge from ase_cg models to LAMMPS: tables, a LibTorch pair-style plugin, input decks.

- :func:`export` (``lammps_interface.export(model, directory, ...)``) writes a model as a LAMMPS
  run: data file, tables, TorchScript for the plugin, input deck;
- :func:`~lammps_interface.plugin.build_plugin` / :func:`~lammps_interface.plugin.plugin_path`
  compile and locate ``cgtorchplugin.so`` (``pair_style cgtorch``);
- :func:`~lammps_interface.run.run_deck` and :func:`~lammps_interface.run.evaluate` run LAMMPS
  in subprocesses (``mpiexec`` for several ranks).

LAMMPS imports :mod:`lammps_interface.plugin` (the ``lammps.plugins`` entry point) every time
``lmp`` starts or ``lammps`` is imported, so this package must import fast: ``export`` (which
needs torch) is loaded on first access. The function keeps the name ``export`` even after the
submodule of the same name is imported (the import system's attempt to bind the submodule here
is ignored); the submodule is ``sys.modules["lammps_interface.export"]``.
"""

import sys
import types

__all__ = ["export"]


class _Package(types.ModuleType):
    @property
    def export(self):
        from lammps_interface.export import export

        return export

    @export.setter
    def export(self, value) -> None:
        """Ignore the import system binding the ``export`` submodule over the function."""


sys.modules[__name__].__class__ = _Package
