"""Benchmark: radius graph and block extraction/assembly on the paper's HfO2 cell (DESIGN.md §8).

    python benchmarks/bench_graph.py            # prints one JSON object
    python benchmarks/bench_graph.py --out benchmarks/results/graph.json

Structure: fluorite HfO2 supercell 10 x 5 x 5 (a = 5.08 A; 1,000 Hf + 2,000 O) scaled to the
paper's cell 52.3 x 26.2 x 26.3 A (periodic), rattled by 0.1 A (no two atoms closer than
1.5 A). Graphs: r_cut 8 A (images refused: 8 < 13.1 = half the smallest cell height) and r_cut
16 A (images='minimum', one edge per pair). Baseline: ase.neighborlist.neighbor_list('ijSd') on
the same inputs, timed in the same run (at 16 A it returns every image, we keep one per pair).
Blocks: SZV basis (Hf s,s,p,d; O s,p), random blocks on the r_cut 8 graph: assemble_blocks to
a csr H (exactly symmetric), then extract_blocks back (the round trip is checked).
Timings are the best of ``--repeat`` runs (ASE at 16 A: one run). Peak memory: ru_maxrss of
this process after our graphs, after the blocks, and at the end (ASE included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from functools import partial

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hampart.basis import builtin_basis  # noqa: E402
from hampart.blocks import assemble_blocks, extract_blocks  # noqa: E402
from hampart.graph import cell_heights, radius_graph  # noqa: E402
from hampart.io.atomic import atomic_file  # noqa: E402

CELL = np.diag([52.3, 26.2, 26.3])
HF, O = 72, 8


def hfo2_fluorite(seed: int = 0, rattle: float = 0.1):
    """(numbers (3000,), positions (3000, 3) Angstrom, cell (3, 3)) of rattled fluorite HfO2."""
    fcc = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    tet = np.array([[x, y, z] for x in (.25, .75) for y in (.25, .75) for z in (.25, .75)])
    basis_frac = np.concatenate([fcc, tet])
    kinds = np.array([HF] * 4 + [O] * 8)
    reps = np.array([10, 5, 5])
    cells = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    frac = ((cells[:, None, :] + basis_frac[None]) / reps).reshape(-1, 3)
    numbers = np.tile(kinds, len(cells))
    rng = np.random.default_rng(seed)
    positions = frac @ CELL + rng.normal(0.0, rattle, size=frac.shape)
    return numbers.astype(np.int64), positions, CELL.copy()


def best_of(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def ase_list(numbers, positions, cell, rcut):
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
    return neighbor_list("ijSd", atoms, rcut)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    args = ap.parse_args(argv)

    numbers, positions, cell = hfo2_fluorite()
    result = {
        "benchmark": "graph", "n_atoms": len(numbers), "cell_A": np.diag(cell).tolist(),
        "cell_heights_A": cell_heights(cell).tolist(), "machine": platform.processor() or
        platform.machine(), "cpu_count": os.cpu_count(), "cases": {},
    }
    graphs, cases = {}, result["cases"]
    for rcut, images in ((8.0, "refuse"), (16.0, "minimum")):
        t, g = best_of(lambda: radius_graph(positions, cell, True, rcut, images=images),
                       args.repeat)
        graphs[rcut] = g
        cases[f"radius_graph_r{rcut:g}"] = {
            "rcut_A": rcut, "images": images, "edges": g.n_edges, "merged": g.merged,
            "seconds": t, "edges_per_s": g.n_edges / t}
    result["peak_rss_MiB_graphs"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    basis = builtin_basis("SZV")
    g = graphs[8.0]
    u = basis.n_union
    rng = np.random.default_rng(1)
    node = rng.normal(size=(len(numbers), u, u))
    edge = rng.normal(size=(g.n_edges, u, u))
    # partial, not lambda: the blocks are deleted below, which a closure would hide
    t_asm, H = best_of(partial(assemble_blocks, node, edge, numbers, basis, g.edge_index),
                       args.repeat)
    t_ext, (node2, edge2, info) = best_of(partial(extract_blocks, H, numbers, basis, g),
                                          args.repeat)
    H2 = assemble_blocks(node2, edge2, numbers, basis, g.edge_index)
    exact = bool((H2 != H).nnz == 0 and abs(H - H.T).max() == 0)
    cases["blocks_r8"] = {
        "basis": basis.name, "u": u, "n_orbitals": H.shape[0], "nnz": int(H.nnz),
        "edges": g.n_edges, "assemble_seconds": t_asm, "assemble_edges_per_s": g.n_edges / t_asm,
        "extract_seconds": t_ext, "extract_edges_per_s": g.n_edges / t_ext,
        "extract_nnz_per_s": H.nnz / t_ext, "outside_count": info["outside_count"],
        "round_trip_exact_and_symmetric": exact,
    }
    del node, edge, node2, edge2, H, H2
    result["peak_rss_MiB_graphs_and_blocks"] = \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # baseline last: its memory does not count in ours above
    for rcut in (8.0, 16.0):
        case = cases[f"radius_graph_r{rcut:g}"]
        t_ase, ref = best_of(lambda: ase_list(numbers, positions, cell, rcut),
                             args.repeat if rcut < 10 else 1)  # ASE at 16 A takes ~45 s
        case.update({"baseline": "ase.neighborlist.neighbor_list ijSd",
                     "baseline_edges": len(ref[0]), "baseline_seconds": t_ase,
                     "speedup_vs_baseline": t_ase / case["seconds"]})
        del ref
    result["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with atomic_file(args.out) as tmp:
            tmp.write_text(text + "\n")


if __name__ == "__main__":
    main()
