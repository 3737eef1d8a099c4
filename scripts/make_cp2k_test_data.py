"""Make the small real CP2K datasets under tests/data (needs cp2k.psmp; minutes on 2 cores).

    python scripts/make_cp2k_test_data.py [--cores 2] [--only si8|hfo2-szv|hfo2-dzvp]

* ``cp2k-si8``: 8 Si atoms, diamond cell 5.431 A rattled by 0.1 A (ase, seed 3; written to
  si8.xyz and labelled from it), SZV, the defaults of ``hampart label --dft cp2k``.
* ``cp2k-hfo2-rotation/<basis>/{a,b}``: one bent HfO2 molecule (Hf-O 1.78 A, O-Hf-O 108 deg) in
  a 13 A non-periodic box (wavelet Poisson solver, no periodic images), OT SCF, and the same molecule rotated
  about the box centre by a generic rotation R (scipy ``Rotation.random(random_state=11)``),
  same box. ``rotation.json`` holds R (positions x -> R x about the centre). The pair checks
  H' = D H D^T with D from hampart's orbital conventions (tests/dft/test_cp2k_conventions.py).

Run under ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hampart.dft import CP2KSettings, label_cp2k  # noqa: E402
from hampart.io.structure import Structure  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
BOX = 13.0
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


def hfo2_molecule():
    """Bent HfO2 (C2v) centred in the box, in a generic orientation (no atom on an axis)."""
    half = np.deg2rad(108.0) / 2
    d = 1.78
    pos = np.array([[0.0, 0.0, 0.0],
                    [d * np.sin(half), 0.0, d * np.cos(half)],
                    [-d * np.sin(half), 0.0, d * np.cos(half)]])
    pos -= pos.mean(axis=0)
    from scipy.spatial.transform import Rotation

    pos = pos @ Rotation.from_euler("zyx", [17.0, 29.0, 41.0], degrees=True).as_matrix().T
    return np.array([72, 8, 8]), pos + BOX / 2


def hfo2_rotation(basis, cores):
    from scipy.spatial.transform import Rotation

    numbers, pos = hfo2_molecule()
    R = Rotation.random(random_state=ROTATION_SEED).as_matrix()
    centre = np.full(3, BOX / 2)
    rotated = (pos - centre) @ R.T + centre
    cell = np.eye(3) * BOX
    root = os.path.join(DATA, "cp2k-hfo2-rotation", basis.split("-")[0].lower())
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "rotation.json"), "w") as f:
        json.dump({"R": R.tolist(), "centre": centre.tolist(),
                   "meaning": "b = structure a rotated: x_b = R (x_a - centre) + centre"}, f,
                  indent=1)
    for name, x in (("a", pos), ("b", rotated)):
        s = Structure(numbers, x, cell, [False] * 3, source=f"HfO2 {name}")
        out = label_cp2k(s, os.path.join(root, name), CP2KSettings(basis=basis, scf="ot"), cores=cores,
                         replace=True)
        print(out, json.load(open(os.path.join(out, "meta.json")))["wall_seconds"], "s")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--only", choices=("si8", "hfo2-szv", "hfo2-dzvp"))
    a = p.parse_args()
    jobs = {"si8": lambda: si8(a.cores),
            "hfo2-szv": lambda: hfo2_rotation("SZV-MOLOPT-SR-GTH", a.cores),
            "hfo2-dzvp": lambda: hfo2_rotation("DZVP-MOLOPT-SR-GTH", a.cores)}
    for name, job in jobs.items():
        if a.only in (None, name):
            job()


if __name__ == "__main__":
    main()
