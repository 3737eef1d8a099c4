"""How much each cell's nearest-neighbour s-s hopping differs from the others' at the same
distance: a cell-level quantity no local model can learn from one cell.

    python benchmarks/hopping_by_cell.py DIR [DIR ...] [--within 2.7] [--out FILE.json]

For every labelled dataset (one element, its first shell an s shell, as Si in SZV): the s-s
element H[s_i, s_j] of every atom pair closer than ``--within`` Angstrom (closest image), a
cubic in the distance fitted to all cells' pairs together, and per cell the least-squares
factor k of its hoppings against that fit (k > 1: larger hoppings than the pooled cells at the
same distances), its mean pair distance and its mean on-site s energy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hampart.graph import minimum_image
from hampart.io.dataset import load_dataset


def nearest_ss(directory: str, within: float) -> dict:
    """Distances and s-s hoppings (Hartree) of the pairs within ``within``, and the mean
    on-site s energy of ``directory``."""
    data = load_dataset(directory)
    s, H = data.structure, data.hamiltonian.tocsr()
    first = data.basis.orbital_offsets(s.numbers)[:-1]  # each atom's first (s) orbital
    n = len(s.positions)
    delta = (s.positions[None] - s.positions[:, None]).reshape(-1, 3)
    r = np.linalg.norm(minimum_image(delta, s.cell, s.pbc), axis=-1).reshape(n, n)
    i, j = np.nonzero((r > 0.1) & (r < within))
    return {"r": r[i, j], "h": np.asarray(H[first[i], first[j]]).ravel(),
            "onsite_s": H.diagonal()[first]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+")
    p.add_argument("--within", type=float, default=2.7, help="Angstrom (a-Si: first shell)")
    p.add_argument("--out")
    a = p.parse_args(argv)
    cells = {Path(d).name: nearest_ss(d, a.within) for d in a.datasets}
    fit = np.polyfit(np.concatenate([c["r"] for c in cells.values()]),
                     np.concatenate([c["h"] for c in cells.values()]), 3)
    result = {"within_A": a.within, "cells": {}}
    for name, c in cells.items():
        f = np.polyval(fit, c["r"])
        result["cells"][name] = {"pairs": int(len(c["r"]) // 2),
                                 "mean_distance_A": round(float(c["r"].mean()), 5),
                                 "k": round(float(c["h"] @ f / (f @ f)), 5),
                                 "mean_onsite_s_mEh": round(1e3 * float(c["onsite_s"].mean()), 3)}
        print(name, result["cells"][name], flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
