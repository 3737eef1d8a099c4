"""Make the small real CP2K datasets under tests/data (needs cp2k.psmp; minutes on 2 cores).

    python scripts/make_cp2k_test_data.py [--cores 2] [--only si8|si8-ghost|hfo2-szv|hfo2-dzvp]

* ``cp2k-si8``: 8 Si atoms, diamond cell 5.431 A rattled by 0.1 A (ase, seed 3; written to
  si8.xyz and labelled from it), SZV, the defaults of ``hampart label --dft cp2k``.
* ``cp2k-si8-ghost``: the structure of ``cp2k-si8`` with atom 0 a ghost keeping its Si orbitals
  (a vacancy as CP2K's GHOST kind: basis functions, no potential, no electrons; written with
  the extxyz column ``ghost``), labelled by ``hampart label si8-ghost.xyz --dft cp2k``.
* ``cp2k-hfo2-rotation/<basis>/{a,b}``: a fluorite HfO2 primitive cell (1 Hf, 2 O) with
  rattled atoms, and the same cell rotated as a whole (positions and cell vectors) by a
  generic rotation R (scipy ``Rotation.random(random_state=11)``, in ``rotation.json``),
  default settings, SZV and DZVP. The pairs check H' = D H D^T and S' = D S D^T with D from
  hampart's orbital conventions (tests/dft/test_cp2k_conventions.py).

Run under ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hampart.dft import CP2KSettings, label_cp2k  # noqa: E402
from hampart.io.structure import Structure  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
ROTATION_SEED = 11


def si8(cores):
    from ase.build import bulk

    import ase.io

    atoms = bulk("Si", "diamond", 5.431, cubic=True)
    atoms.rattle(0.1, seed=3)
    ase.io.write("si8.xyz", atoms, format="extxyz")  # as the committed one was made
    out = label_cp2k("si8.xyz", os.path.join(DATA, "cp2k-si8"), CP2KSettings(), cores=cores,
                     replace=True)
    os.remove("si8.xyz")
    print(out, json.load(open(os.path.join(out, "meta.json")))["wall_seconds"], "s")


def si8_ghost(cores):
    from hampart.generate.commands import LabelConfig, run_label
    from hampart.io.structure import read_structure, write_structure

    s = read_structure(os.path.join(DATA, "cp2k-si8", "structure.xyz"))
    numbers = s.numbers.copy()
    numbers[0] = -numbers[0]  # a vacancy that keeps the Si basis functions
    write_structure("si8-ghost.xyz", Structure(numbers, s.positions, s.cell, s.pbc))
    out = os.path.join(DATA, "cp2k-si8-ghost")
    run_label(LabelConfig("si8-ghost.xyz", out, force=True, dft="cp2k", cores=cores))
    os.remove("si8-ghost.xyz")
    print(out, json.load(open(os.path.join(out, "meta.json")))["wall_seconds"], "s")


def hfo2_cell():
    """Fluorite HfO2, primitive cell (a = 5.06 A; 1 Hf, 2 O), atoms rattled by 0.15 A (seed 5)
    so that no symmetry hides an orbital's mistake."""
    from ase.build import bulk

    atoms = bulk("HfO2", "fluorite", a=5.06)
    atoms.rattle(0.15, seed=5)
    return atoms.numbers, atoms.positions, atoms.cell.array


def hfo2_rotation(basis, cores):
    """The cell and the same cell rotated as a whole (positions and cell vectors): CP2K's grid
    follows the cell vectors, so every term of H and S rotates, periodic images included."""
    from scipy.spatial.transform import Rotation

    numbers, pos, cell = hfo2_cell()
    R = Rotation.random(random_state=ROTATION_SEED).as_matrix()
    root = os.path.join(DATA, "cp2k-hfo2-rotation", basis.split("-")[0].lower())
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "rotation.json"), "w") as f:
        json.dump({"R": R.tolist(), "meaning": "b = a rotated as a whole: positions_b = "
                   "positions_a @ R.T, cell_b = cell_a @ R.T (rows are cell vectors)"}, f,
                  indent=1)
    for name, x, c in (("a", pos, cell), ("b", pos @ R.T, cell @ R.T)):
        s = Structure(numbers, x, c, [True] * 3, source=f"HfO2 fluorite cell {name}")
        out = label_cp2k(s, os.path.join(root, name), CP2KSettings(basis=basis), cores=cores,
                         replace=True)
        print(out, json.load(open(os.path.join(out, "meta.json")))["wall_seconds"], "s")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--only", choices=("si8", "si8-ghost", "hfo2-szv", "hfo2-dzvp"))
    a = p.parse_args()
    jobs = {"si8": lambda: si8(a.cores), "si8-ghost": lambda: si8_ghost(a.cores),
            "hfo2-szv": lambda: hfo2_rotation("SZV-MOLOPT-SR-GTH", a.cores),
            "hfo2-dzvp": lambda: hfo2_rotation("DZVP-MOLOPT-SR-GTH", a.cores)}
    for name, job in jobs.items():
        if a.only in (None, name):
            job()


if __name__ == "__main__":
    main()
