"""``hampart evaluate``'s element errors on large matrices (``block_errors``, sparse, rows in
chunks) and the plot's edge sample (``sample_edge_elements``): HfO2 of 24,000 atoms (the
generator's synthetic H, 62.6 million entries) against a copy with noise on every entry, r_cut
6 Angstrom, SZV. Baseline in the same run: the padded-block errors (``extract_blocks`` of both
matrices), on a 3,000-atom cell only, as they need tens of GiB at 24,000 atoms. Memory: the
peak of numpy allocations during each stage (tracemalloc; numpy and scipy arrays report to it),
beyond the two matrices already held.

    python benchmarks/bench_evaluate.py      # JSON on stdout
"""

import json
import time
import tracemalloc

import numpy as np


def _timed(fn, *args):
    """(result, seconds, peak GiB allocated during the call)."""
    tracemalloc.start()
    t = time.perf_counter()
    result = fn(*args)
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**30
    tracemalloc.stop()
    return result, round(seconds, 2), round(peak, 3)


def _padded_errors(pred, ref, numbers, basis, graph) -> dict:
    """The former way: both matrices as padded blocks, then masked differences."""
    from hampart.blocks import block_masks, extract_blocks

    node_p, edge_p, _ = extract_blocks(pred, numbers, basis, graph)
    node_r, edge_r, _ = extract_blocks(ref, numbers, basis, graph)
    node_m, edge_m = block_masks(numbers, basis, graph.edge_index)
    return {"node_mae_mEh": 1e3 * float(np.abs((node_p - node_r)[node_m]).mean()),
            "edge_mae_mEh": 1e3 * float(np.abs((edge_p - edge_r)[edge_m]).mean())}


def case(atoms: int, padded: bool) -> dict:
    from hampart.basis import load_basis
    from hampart.evaluate import block_errors
    from hampart.evaluate.metrics import sample_edge_elements
    from hampart.generate import make_structure, synthetic_hamiltonian
    from hampart.graph import radius_graph

    basis = load_basis("SZV")
    s = make_structure("hfo2", seed=0, atoms=atoms)
    ref = synthetic_hamiltonian(s, basis).tocsr()
    pred = ref.copy()
    pred.data += np.random.default_rng(0).normal(scale=1e-3, size=pred.nnz)
    graph = radius_graph(s.positions, s.cell, s.pbc, 6.0)
    out = {"atoms": s.n_atoms, "entries": int(ref.nnz),
           "matrices_gib": round(2 * (ref.data.nbytes + ref.indices.nbytes) / 2**30, 3)}
    errors, seconds, peak = _timed(block_errors, pred, ref, s.numbers, basis, graph)
    out.update(sparse_seconds=seconds, sparse_peak_gib=peak,
               edge_mae_mEh=round(errors["edge_mae_mEh"], 6))
    (x, _), seconds, peak = _timed(sample_edge_elements, ref, pred, s.numbers, basis, graph)
    out.update(plot_sample_seconds=seconds, plot_sample_peak_gib=peak, plot_points=int(len(x)))
    if padded:
        old, seconds, peak = _timed(_padded_errors, pred, ref, s.numbers, basis, graph)
        out.update(padded_seconds=seconds, padded_peak_gib=peak,
                   same_edge_mae=bool(abs(old["edge_mae_mEh"] - errors["edge_mae_mEh"])
                                      <= 1e-9 * old["edge_mae_mEh"]))
    return out


def main():
    results = {"medium_24000": case(24000, padded=False), "paper_3000": case(3000, padded=True)}
    print(json.dumps({"benchmark": "evaluate", "rcut_A": 6.0, "basis": "SZV",
                      "machine": "2 CPU cores", "cases": results}, indent=1))


if __name__ == "__main__":
    main()
