"""From CP2K-style files to the first training step (DESIGN.md §8: the paper's code takes 225 s
for this on an H100 machine, most of it in Python loops).

The paper's 3,000-atom HfO2 cell (52.3 x 26.2 x 26.3 A, synthetic H, SZV basis) is written as
a user brings it: ``structure.xyz``, ``H.csr`` (CP2K ``KS_CSR_WRITE`` text, upper triangle) and
``basis.yaml`` (not timed). Timed, in one process on the CPU:

1. ``slice``: ``hampart.partition.slice_dataset`` from those files, r_cut 8 A, 8 METIS parts,
   halo 1 (the paper's scheme) or 2 (every edge exact): read the text CSR, build the graph,
   METIS, halos, labels, write the parts (sha256 each);
2. ``load``: the largest part read back (checksums verified) as a training batch;
3. ``model``: the paper's model built and its head scales set from the part's labels;
4. ``first_step``: forward + loss + backward + Adam step on that part (float32).

    python benchmarks/bench_first_step.py            # halo 1 and 2, JSON on stdout
"""

import json
import os
import resource
import sys
import tempfile
import time

import torch

RCUT, PARTS = 8.0, 8


def run(halo: int, tmp: str) -> dict:
    from hampart.basis import load_basis
    from hampart.distributed.trainer import PartitionLoss
    from hampart.model import PAPER_HYPERPARAMETERS, HamiltonianModel
    from hampart.model.statistics import label_sums
    from hampart.partition import load_manifest, slice_dataset
    from hampart.partition.loader import exact_edges_first, load_batch

    files = os.path.join(tmp, "files")
    t0 = time.perf_counter()
    out, _ = slice_dataset(os.path.join(files, "structure.xyz"), RCUT, "metis", PARTS, halo,
                           os.path.join(tmp, f"parts-h{halo}"),
                           hamiltonian=os.path.join(files, "H.csr"),
                           basis=os.path.join(files, "basis.yaml"))
    t_slice = time.perf_counter() - t0
    manifest = load_manifest(out)
    k = max(range(PARTS), key=lambda i: manifest["parts"][i]["n_edges"])
    layers = PAPER_HYPERPARAMETERS["layers"]
    t0 = time.perf_counter()
    batch = exact_edges_first(load_batch(out, k, layers))  # as the trainer loads it
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    basis = load_basis(manifest["params"]["basis"]["name"])
    torch.manual_seed(0)
    model = HamiltonianModel(basis, rcut=RCUT, **PAPER_HYPERPARAMETERS)
    model.set_label_statistics(label_sums(basis, batch.numbers, batch.edge_index,
                                          batch.node_blocks, batch.edge_blocks))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = PartitionLoss(basis)
    masks = loss_fn.masks(batch)
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    sse, _ = loss_fn(model, batch, masks)
    sse.backward()
    optimizer.step()
    t_step = time.perf_counter() - t0
    return {"halo": halo, "parts": PARTS, "atoms": manifest["source"]["n_atoms"],
            "edges": manifest["source"]["n_edges"], "part": k,
            "part_edges": manifest["parts"][k]["n_edges"],
            "part_owned_edges": manifest["parts"][k]["n_owned_edges"],
            "seconds": {"slice": round(t_slice, 2), "load": round(t_load, 2),
                        "model": round(t_model, 2), "first_step": round(t_step, 2),
                        "total": round(t_slice + t_load + t_model + t_step, 2)},
            "slice_stage_seconds": manifest["stats"].get("stage_seconds")}


def main():
    from hampart.basis import load_basis
    from hampart.generate import make_structure, synthetic_hamiltonian
    from hampart.io.csr import write_matrix
    from hampart.io.structure import write_structure

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = os.path.join(tmp, "files")
        os.makedirs(files)
        basis = load_basis("SZV")
        s = make_structure("hfo2", seed=0)
        H = synthetic_hamiltonian(s, basis)
        write_structure(os.path.join(files, "structure.xyz"), s)
        write_matrix(os.path.join(files, "H.csr"), H)
        basis.to_yaml(os.path.join(files, "basis.yaml"))
        csr_mib = os.path.getsize(os.path.join(files, "H.csr")) / 2**20
        for halo in (1, 2):
            results.append(run(halo, tmp))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "files to first training step",
                      "machine": f"{os.cpu_count()} CPU cores, torch threads "
                                 f"{torch.get_num_threads()}, CPU",
                      "cell": "HfO2 3,000 atoms, 52.3 x 26.2 x 26.3 A, SZV, synthetic H",
                      "h_csr": {"entries": int(H.nnz), "upper_triangle_lines":
                                int((H.nnz + H.shape[0]) // 2), "mib": round(csr_mib, 1)},
                      "rcut_A": RCUT, "model": "paper hyperparameters, float32",
                      "paper_code_seconds": 225,
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                            / 2**20, 3),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
