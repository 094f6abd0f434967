"""Keys shared between data, models and trainer, in one place.

Each constant is a key of a batch ``dict[str, torch.Tensor]`` or of an ``ase.Atoms`` array.
The comment above each gives ``(shape) | meaning | unit``. A batch holds one or more CG systems
(frames) concatenated bead-wise; ``n_beads`` counts the beads of all systems together.
"""

# --- ase.Atoms arrays -------------------------------------------------------------------------
# (n,) int | molecule index of each atom or bead (the name ASE's LAMMPS I/O uses) | -
MOL_ID = "mol-id"
# (n_beads,) str | bead-type name of each CG bead | -
BEAD_TYPE = "bead-type"

# --- batch tensors: inputs ---------------------------------------------------------------------
# (n_beads, 3) float | bead positions | Å
POSITIONS = "positions"
# (n_systems, 3, 3) float | cell vectors as rows (ASE convention) | Å
CELL = "cell"
# (n_beads,) int64 | index of each bead's type in the model's ``bead_type_names`` | -
BEAD_TYPE_INDEX = "bead_type_index"
# (n_beads,) int64 | index of the system (frame) each bead belongs to | -
SYSTEM_INDEX = "system_index"
# (n_pairs,) int64 | first bead of each directed neighbour pair (both i→j and j→i present) | -
PAIR_I = "pair_i"
# (n_pairs,) int64 | second bead of each directed neighbour pair | -
PAIR_J = "pair_j"
# (n_pairs, 3) float | integer cell shifts S: r_ij = x_j − x_i + S · cell | -
PAIR_SHIFTS = "pair_shifts"
# (n_pairs,) bool | pair is excluded from non-bonded pair terms (≤ exclusion_bonds bonds apart) | -
PAIR_EXCLUDED = "pair_excluded"
# (n_bonds, 2) int64 | bead indices of each bond | -
BONDS = "bonds"
# (n_angles, 3) int64 | bead indices of each angle, vertex in the middle | -
ANGLES = "angles"
# (n_dihedrals, 4) int64 | bead indices of each dihedral | -
DIHEDRALS = "dihedrals"
# (n_beads, 3) float | reference (mapped all-atom) forces for force matching | eV/Å
REFERENCE_FORCES = "reference_forces"

# --- model outputs -----------------------------------------------------------------------------
# (n_systems,) float | potential energy of each system | eV
ENERGY = "energy"
# (n_beads,) float | per-bead share of the potential energy | eV
BEAD_ENERGIES = "bead_energies"
# (n_beads, 3) float | −∂E/∂x | eV/Å
FORCES = "forces"
# (n_systems, 3, 3) float | (1/V) ∂E/∂ε, ASE sign convention | eV/Å³
STRESS = "stress"
