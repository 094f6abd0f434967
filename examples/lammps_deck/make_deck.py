"""Write this folder's LAMMPS deck from a model file with ``lammps_interface.export``.

    .venv/bin/python examples/lammps_deck/make_deck.py                  # shipped classical model
    .venv/bin/python examples/lammps_deck/make_deck.py --model data/ethane_neural.pt -o deck_nn

The start configuration (``data.cg``) is a random box of CG ethane molecules at the liquid
density (``ase_cg.start.build_cg_box``, no two beads of different molecules closer than 2 Å); the
deck draws velocities at ${temperature} and runs NVT. A neural model adds ``cgtorch.pt`` and
needs the ``cgtorch`` plugin (``lammps_interface.plugin``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase_cg import shipped_data
from ase_cg.md import build_cg_box
from ase_cg.model import load_model
from lammps_interface import export

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=shipped_data("ethane_classical.pt"), help="model file")
    parser.add_argument("-o", "--output", default=HERE, help="deck folder")
    parser.add_argument("--molecules", type=int, default=216, help="ethane molecules")
    parser.add_argument("--density", type=float, default=0.5495, help="g/cm³")
    parser.add_argument("--steps", type=int, default=10000, help="default of ${steps}")
    args = parser.parse_args()

    model = load_model(args.model)
    atoms = build_cg_box(model, args.molecules, args.density, seed=1)
    files = export(
        model, args.output, atoms=atoms, temperature=180.0, timestep=2.0, steps=args.steps,
        dump_every=100,
    )  # fmt: skip
    for name, path in sorted(files.items()):
        print(f"{name:>15}: {path}")


if __name__ == "__main__":
    main()
