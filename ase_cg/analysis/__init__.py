"""Structure and dynamics of CG and all-atom liquids, and how close two runs are.

Everything here works on a *trajectory*: a sequence of :class:`ase.Atoms` (a list, an
:class:`ase_cg.io.H5MDTrajectory`, anything with ``len()`` and ``[i]``), a single
:class:`ase.Atoms`, or the path of an H5MD file (read lazily, frame by frame). Frames must be
periodic in all three directions with a cell of non-zero volume; orthorhombic and triclinic cells
are both handled. Particles are labelled by ``atoms.arrays["bead-type"]`` when present (CG
beads), else by their chemical symbols, and grouped into molecules by
``atoms.arrays["mol-id"]``.

Structure
    :func:`rdf` (radial distribution function, intermolecular by default, per type pair),
    :func:`bond_distribution`, :func:`angle_distribution`, :func:`dihedral_distribution`
    (minimum image; per-frame values from :func:`bond_lengths`, :func:`bond_angles`,
    :func:`dihedral_angles`), :func:`density`.
Local order (one-bead liquids such as CG water)
    :func:`neighbor_angle_distribution` (angles j–i–k between neighbours within a first-shell
    cutoff; per frame :func:`neighbor_angles`) and :func:`tetrahedral_order` (distribution and
    mean of the tetrahedral order parameter q; per frame :func:`tetrahedral_order_parameters`).
Dynamics
    :func:`msd` (mean-squared displacement, unwrapped across frames, of particles or molecule
    centres of mass) and :func:`diffusion_coefficient` (Einstein relation, linear fit).
Comparison
    :func:`max_abs_difference`, :func:`integrated_absolute_error`, :func:`jensen_shannon`, and
    :func:`compare`, which maps an all-atom reference, analyses it and a CG run the same way and
    writes a report folder (``index.md``, ``metrics.json``, PNG figures).

Modules: :mod:`~ase_cg.analysis.radial` (RDF), :mod:`~ase_cg.analysis.bonded` (bonds, angles,
dihedrals), :mod:`~ase_cg.analysis.order` (neighbour angles, tetrahedral order),
:mod:`~ase_cg.analysis.density`, :mod:`~ase_cg.analysis.transport` (MSD,
diffusion), :mod:`~ase_cg.analysis.metrics` (curve and histogram distances),
:mod:`~ase_cg.analysis.comparison` (:func:`compare` and its report).

Units: Å, fs, amu at the interface; densities in g/cm³; diffusion coefficients in Å²/fs and
cm²/s; angles in degrees.
"""

from ase_cg.analysis._frames import AnalysisError, cell_half_width
from ase_cg.analysis.bonded import (
    angle_distribution,
    bond_angles,
    bond_distribution,
    bond_lengths,
    dihedral_angles,
    dihedral_distribution,
    topology_from_bonds,
)
from ase_cg.analysis.comparison import compare
from ase_cg.analysis.density import density
from ase_cg.analysis.metrics import integrated_absolute_error, jensen_shannon, max_abs_difference
from ase_cg.analysis.order import (
    FIRST_SHELL_CUTOFF,
    neighbor_angle_distribution,
    neighbor_angles,
    tetrahedral_order,
    tetrahedral_order_parameters,
)
from ase_cg.analysis.radial import rdf
from ase_cg.analysis.transport import (
    A2_PER_FS_TO_CM2_PER_S,
    DiffusionFit,
    diffusion_coefficient,
    msd,
)
from ase_cg.units import AMU_PER_A3_TO_G_PER_CM3

__all__ = [
    "AMU_PER_A3_TO_G_PER_CM3",
    "A2_PER_FS_TO_CM2_PER_S",
    "AnalysisError",
    "DiffusionFit",
    "FIRST_SHELL_CUTOFF",
    "angle_distribution",
    "bond_angles",
    "bond_distribution",
    "bond_lengths",
    "cell_half_width",
    "compare",
    "density",
    "diffusion_coefficient",
    "dihedral_angles",
    "dihedral_distribution",
    "integrated_absolute_error",
    "jensen_shannon",
    "max_abs_difference",
    "msd",
    "neighbor_angle_distribution",
    "neighbor_angles",
    "rdf",
    "tetrahedral_order",
    "tetrahedral_order_parameters",
    "topology_from_bonds",
]
