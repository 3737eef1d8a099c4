"""The two eigenvalue solvers of ``hampart evaluate`` (``hampart.evaluate.spectrum``) on the
generalised problem H c = E S c: rattled diamond Si of N x N x N cells (8 N^3 atoms, SZV: 4
orbitals each), the generator's synthetic H at interaction radius 4 Angstrom and a positive
definite S with H's pattern (the test suite's synthetic overlap), half filling. Reports one
inertia count (one sparse LU of H - E S), the sparse solver from scratch (bisection on inertia
to a window of 64 states around the gap, then shift-invert ``eigsh``), and, as the baseline in
the same run, dense ``scipy.linalg.eigh(H, S)`` with the largest difference over the window.

    python benchmarks/bench_spectrum.py 5          # 1,000 atoms, 4,000 orbitals; JSON on stdout
    python benchmarks/bench_spectrum.py 8 --no-dense
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cells", type=int)
    p.add_argument("--no-dense", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from conftest import _synthetic_overlap

    from hampart.basis import load_basis
    from hampart.evaluate.spectrum import count_below, solve
    from hampart.generate import SyntheticParams, make_structure, synthetic_hamiltonian

    n = args.cells
    s = make_structure("si", seed=0, size=(n, n, n))
    H = synthetic_hamiltonian(s, load_basis("SZV"), SyntheticParams(interaction_radius=4.0))
    S = _synthetic_overlap(H)
    out = {"atoms": len(s.numbers), "orbitals": H.shape[0], "nnz": H.nnz, "cpus": os.cpu_count()}
    t = time.perf_counter()
    count_below(H, S, 0.0)
    out["one_inertia_count_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    window = solve(H, S, method="sparse", n_occupied=H.shape[0] // 2)
    out["sparse_s"] = round(time.perf_counter() - t, 2)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out["sparse_peak_rss_gib"] = round(rss, 2)
    if not args.no_dense:
        t = time.perf_counter()
        dense = solve(H, S, method="dense").values
        out["dense_s"] = round(time.perf_counter() - t, 2)
        out["window_max_diff_Eh"] = float(np.abs(
            dense[window.first:window.first + len(window.values)] - window.values).max())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
