"""Bridge from ase_cg models to LAMMPS: tables, a LibTorch pair-style plugin, input decks.

- :func:`export` writes a model as a LAMMPS run (data file, tables, TorchScript, deck);
- :func:`~lammps_interface.plugin.build_plugin` / :func:`~lammps_interface.plugin.plugin_path`
  compile and locate ``cgtorchplugin.so`` (``pair_style cgtorch``);
- :func:`~lammps_interface.run.run_deck` and :func:`~lammps_interface.run.evaluate` run LAMMPS
  in subprocesses (``mpiexec`` for several ranks).
"""

from lammps_interface.export import export

__all__ = ["export"]
