"""Bridge from ase_cg models to LAMMPS: tables, a LibTorch pair-style plugin, input decks."""
