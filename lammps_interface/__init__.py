"""Bridge from ase_cg models to LAMMPS: tables, a LibTorch pair-style plugin, input decks.

- :func:`export` (``lammps_interface.export(model, directory, ...)``, defined in
  :mod:`lammps_interface.deck`) writes a model as a LAMMPS run: data file, tables, TorchScript
  for the plugin, input deck;
- :mod:`~lammps_interface.tables` tabulates pair and bonded terms, and
  :mod:`~lammps_interface.torchscript` writes a many-body term for the plugin;
- :func:`~lammps_interface.plugin.build_plugin` / :func:`~lammps_interface.plugin.plugin_path`
  compile and locate ``cgtorchplugin.so`` (``pair_style cgtorch``);
- :func:`~lammps_interface.run.run_deck` and :func:`~lammps_interface.run.evaluate` run LAMMPS
  in subprocesses (``mpiexec`` for several ranks); :mod:`~lammps_interface.engine` is the
  LAMMPS engine of ``ase-cg simulate``.

LAMMPS imports :mod:`lammps_interface.plugin` (the ``lammps.plugins`` entry point) every time
``lmp`` starts or ``lammps`` is imported, so this package must import fast: :func:`export`,
which needs torch, is loaded on first access.
"""

__all__ = ["export"]


def __getattr__(name: str):
    if name == "export":
        # heavy: torch, which every start of lmp would otherwise pay for (see above)
        from lammps_interface.deck import export

        return export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
