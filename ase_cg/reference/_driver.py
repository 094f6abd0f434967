"""Entry point run on every MPI rank by ``generate_reference(..., ranks > 1)``.

Usage: ``mpiexec -n RANKS python -m ase_cg.reference._driver JOB.json``, where the JSON file
holds ``settings`` (the fields of :class:`~ase_cg.reference.simulation.ReferenceSettings`),
``data_file``, ``output``, ``progress`` and ``lammps_log``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ase_cg.reference.simulation import ReferenceSettings, simulate


def main(argv: list[str]) -> int:
    """Run the job described by the JSON file ``argv[0]``; returns the exit code."""
    job = json.loads(Path(argv[0]).read_text())
    simulate(
        ReferenceSettings(**job["settings"]),
        job["data_file"],
        job["output"],
        progress=job["progress"],
        lammps_log=job["lammps_log"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
