"""Prediction of a whole structure in bounded memory (DESIGN.md §8): the paper's 3,000-atom
HfO2 cell, 24,000 and about 100,000 atoms, SZV basis, r_cut 6 Angstrom (the generator's interaction
radius), paper hyperparameters with random weights (time and memory do not depend on them),
float32, --max-gib 8 (slabs sized by it). Each case runs in its own process
so that its peak memory (ru_maxrss) is its own.

    python benchmarks/bench_predict.py                  # all cases, JSON on stdout
    python benchmarks/bench_predict.py --case big       # one case

Baseline in the same run (``medium_legacy``, 24,000 atoms in two slabs): the assembly this
replaced, which kept the owned blocks of every slab as (row, col, value) triplets and formed
(P + P^T) / 2 at the end (its model call also computes the owned edges' blocks only, so the
two differ only in the assembly: the same edge chunks from --max-gib).
``peak_over_matrix`` = peak RSS / bytes of the CSR matrix that is the result.
"""

import json
import resource
import subprocess
import sys
import time

CASES = {"paper_3000": {}, "medium": {"atoms": 24_000},
         "medium_legacy": {"atoms": 24_000, "legacy": True}, "big": {"atoms": 100_000}}
RCUT, MAX_ATOMS, MAX_GIB = 6.0, None, 8.0  # slabs sized by the budget


def legacy_predict(model, basis, structure, n_layers, rcut, max_atoms):
    """The previous assembly: every slab's owned blocks as triplets, then (P + P^T) / 2."""
    import numpy as np
    import scipy.sparse as sp
    import torch

    from hampart.blocks import assemble_blocks
    from hampart.evaluate.predict import _memory_law, _plan_slabs, _slab_chunk
    from hampart.graph import radius_graph
    from hampart.partition import build_partitions

    numbers = np.asarray(structure.numbers)
    graph = radius_graph(structure.positions, structure.cell, structure.pbc, rcut)
    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    law = _memory_law(model, MAX_GIB)
    owner = _plan_slabs(graph, structure, n_layers, law, MAX_GIB, max_atoms, rcut,
                        "refuse")  # the same slabs
    parts = int(owner.max()) + 1
    t = torch.as_tensor
    rows, cols, vals = [], [], []
    for _, a in build_partitions(graph, owner, halo=n_layers + 1):
        ids = a["node_ids"]
        n_owned, m_owned = int((a["node_hop"] == 0).sum()), int(a["edge_owned"].sum())
        chunk = _slab_chunk(law, a, m_owned, MAX_GIB, structure)  # as the new path
        with torch.no_grad():
            nb, eb = model(t(numbers[ids]), t(structure.positions[ids]).float(),
                           t(structure.cell).float(), t(a["edge_index"]), t(a["edge_shift"]),
                           edge_outputs=m_owned, edge_chunk=chunk or 0)
        node_blocks = np.zeros((len(ids),) + tuple(nb.shape[1:]))
        node_blocks[:n_owned] = nb[:n_owned].double().numpy()
        local = assemble_blocks(node_blocks, eb.double().numpy(), numbers[ids], basis,
                                a["edge_index"][:, :m_owned], symmetrize=False).tocoo()
        c = counts[ids]
        glob = np.repeat(offsets[ids] - np.concatenate([[0], np.cumsum(c)[:-1]]), c) \
            + np.arange(int(c.sum()))
        rows.append(glob[local.row])
        cols.append(glob[local.col])
        vals.append(local.data)
    size = int(offsets[-1])
    P = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(size, size)).tocsr()
    del rows, cols, vals
    H = ((P + P.T) * 0.5).tocsr()
    return H, {"parts": parts, "n_edges": graph.n_edges}


def run_case(name):
    import torch

    from hampart.allocator import mode
    from hampart.basis import load_basis
    from hampart.evaluate import predict_hamiltonian
    from hampart.generate import make_structure
    from hampart.model import PAPER_HYPERPARAMETERS, HamiltonianModel

    case = CASES[name]
    basis = load_basis("SZV")
    s = make_structure("hfo2", seed=0, **({"atoms": case["atoms"]} if "atoms" in case else {}))
    torch.manual_seed(0)
    model = HamiltonianModel(basis, rcut=RCUT, **PAPER_HYPERPARAMETERS).eval()
    layers = PAPER_HYPERPARAMETERS["layers"]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t = time.perf_counter()
    if case.get("legacy"):
        H, info = legacy_predict(model, basis, s, layers, RCUT, MAX_ATOMS)
        info["edge_chunks"] = [None]
    else:
        H, info = predict_hamiltonian(model, basis, s, layers, RCUT, max_atoms=MAX_ATOMS,
                                      max_gib=MAX_GIB)
    seconds = time.perf_counter() - t
    matrix = H.data.nbytes + H.indices.nbytes + H.indptr.nbytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out = {"atoms": s.n_atoms, "cell_A": [round(float(x), 3) for x in s.cell.diagonal()],
           "edges": info["n_edges"], "orbitals": int(H.shape[0]), "nnz": int(H.nnz),
           "slabs": info["parts"], "edge_chunks": info["edge_chunks"],
           "seconds": round(seconds, 2),
           "model_seconds": round(info["model_seconds"], 2) if "model_seconds" in info else None,
           # the neighbour counts behind predict's unseen-environment warning, timed apart
           "neighbour_count_seconds": (round(info["neighbour_count_seconds"], 2)
                                       if "neighbour_count_seconds" in info else None),
           "matrix_gib": round(matrix / 2**30, 3), "peak_rss_gib": round(peak, 3),
           "before_predict_rss_gib": round(base_rss, 3),
           "peak_over_matrix": round(peak * 2**30 / matrix, 2),
           "torch_threads": torch.get_num_threads(), "malloc": mode()}
    return out


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(run_case(sys.argv[2])))
        return
    names = [sys.argv[2]] if len(sys.argv) > 2 and sys.argv[1] == "--case" else list(CASES)
    results = {}
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True,
                              text=True)
        if proc.returncode:
            results[name] = {"error": proc.stderr.strip().splitlines()[-1:]}
        else:
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    if "medium" in results and "medium_legacy" in results:
        new, old = results["medium"], results["medium_legacy"]
        if "error" not in new and "error" not in old:
            results["legacy_over_new"] = {
                "peak_rss": round(old["peak_rss_gib"] / new["peak_rss_gib"], 2),
                "seconds": round(old["seconds"] / new["seconds"], 2)}
    print(json.dumps({"benchmark": "predict", "basis": "SZV", "rcut_A": RCUT,
                      "max_atoms": MAX_ATOMS, "max_gib": MAX_GIB,
                      "model": "paper hyperparameters, random weights, float32, CPU",
                      "cases": results}, indent=1))


if __name__ == "__main__":
    main()
