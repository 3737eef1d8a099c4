"""Generator speed and memory: structure + synthetic H for the paper's 3,000-atom HfO2 cell and
for about 100,000 atoms (SZV basis, interaction radius 6 Angstrom). Each size runs in its own
process so that its peak memory (ru_maxrss) is its own.

    python benchmarks/bench_generate.py            # both sizes, JSON on stdout
    python benchmarks/bench_generate.py --case big # one size

Stages: structure (make_structure), graph (radius_graph at the interaction radius, timed alone
for reference; labelling builds it again), label (synthetic_hamiltonian, graph included), save
(dataset directory written; paper cell only, as the 100k-atom H is 3+ GB on disk).
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CASES = {"paper_3000": {}, "big": {"atoms": 100_000}}


def run_case(name):
    import torch

    from hampart.basis import load_basis
    from hampart.generate import SyntheticParams, make_structure, synthetic_hamiltonian
    from hampart.graph import radius_graph
    from hampart.io.dataset import save_dataset

    basis, params = load_basis("SZV"), SyntheticParams()
    t = time.perf_counter()
    s = make_structure("hfo2", seed=0, **CASES[name])
    t_structure = time.perf_counter() - t
    t = time.perf_counter()
    graph = radius_graph(s.positions, s.cell, s.pbc, params.interaction_radius)
    t_graph = time.perf_counter() - t
    del graph
    t = time.perf_counter()
    H, info = synthetic_hamiltonian(s, basis, params, return_info=True)
    t_label = time.perf_counter() - t
    out = {"atoms": s.n_atoms, "cell_A": [round(float(x), 3) for x in s.cell.diagonal()],
           "orbitals": int(H.shape[0]), "nnz": int(H.nnz), "pairs": info["n_pairs"],
           "directed_edges": 2 * info["n_pairs"], "mean_cn": round(info["mean_cn"], 3),
           "interaction_radius_A": info["interaction_radius"],
           "structure_seconds": round(t_structure, 3), "graph_seconds": round(t_graph, 3),
           "label_seconds": round(t_label, 3), "atoms_per_s": round(s.n_atoms / t_label),
           "nnz_per_s": round(H.nnz / t_label), "torch_threads": torch.get_num_threads()}
    if name == "paper_3000":
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            save_dataset(os.path.join(tmp, "d"), s, H, basis)
            out["save_seconds"] = round(time.perf_counter() - t, 3)
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    return out


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
        return
    out = {"benchmark": "generate", "cpu_cores": os.cpu_count(), "material": "hfo2",
           "basis": "SZV", "load_average_before": os.getloadavg()[0], "cases": {}}
    for name in CASES:
        res = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True,
                             text=True, check=True)
        out["cases"][name] = json.loads(res.stdout.strip().splitlines()[-1])
    out["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
