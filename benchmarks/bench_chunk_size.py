"""Prediction time against the edge-chunk size on CPU, and what the allocator does to it.

    python benchmarks/bench_chunk_size.py [--atoms 24000] [--max-atoms 12000] \
        [--chunks 8000 16000 36000 80000] [--malloc system heap] [--repeat 1]

The generator's HfO2-like cell (SZV, r_cut 6, the paper's hyperparameters with random weights,
float32) predicted in slabs of at most ``--max-atoms`` owned atoms, each slab's edges in chunks
of the given size (``hampart.model.memory.cpu_edge_chunk`` replaced by that number), once per
chunk size and allocator mode (``HAMPART_MALLOC``; "heap" calls
``hampart.allocator.keep_freed_memory``), each in a fresh process, alternating. Reported: the
network's seconds (``model_seconds``), all seconds and the peak RSS; JSON on stdout. The point:
glibc's malloc maps blocks over 32 MiB afresh from the kernel and unmaps them when freed, so
chunks whose edge tensors exceed it pay a page fault and the zeroing of every 4 KiB page at
every op (docs/model.md, "Allocation").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def run_one(atoms: int, max_atoms: int, chunk: int) -> dict:
    import torch

    import hampart.model.memory as memory
    from hampart.allocator import keep_freed_memory, mode
    from hampart.basis import load_basis
    from hampart.evaluate import predict_hamiltonian
    from hampart.generate import make_structure
    from hampart.model import PAPER_HYPERPARAMETERS, HamiltonianModel

    keep_freed_memory()  # does nothing under HAMPART_MALLOC=system
    memory.cpu_edge_chunk = lambda model: chunk  # the chunk size under test
    basis = load_basis("SZV")
    s = make_structure("hfo2", seed=0, atoms=atoms)
    torch.manual_seed(0)
    model = HamiltonianModel(basis, rcut=6.0, **PAPER_HYPERPARAMETERS).eval()
    t = time.perf_counter()
    _, info = predict_hamiltonian(model, basis, s, PAPER_HYPERPARAMETERS["layers"], 6.0,
                                  max_atoms=max_atoms)
    return {"chunk": chunk, "malloc": mode(), "atoms": s.n_atoms, "slabs": info["parts"],
            "largest_slab_edges": info["largest_part_edges"],
            "edge_chunks": info["edge_chunks"], "seconds": round(time.perf_counter() - t, 2),
            "model_seconds": round(info["model_seconds"], 2),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--atoms", type=int, default=24_000)
    p.add_argument("--max-atoms", type=int, default=12_000)
    p.add_argument("--chunks", type=int, nargs="+", default=[8_000, 16_000, 36_000, 80_000])
    p.add_argument("--malloc", nargs="+", default=["system"], choices=["system", "heap"])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one chunk size
    a = p.parse_args()
    if a.one:
        print(json.dumps(run_one(a.atoms, a.max_atoms, a.one)))
        return
    runs = []
    for _ in range(a.repeat):
        for malloc in a.malloc:
            for chunk in a.chunks:
                proc = subprocess.run(
                    [sys.executable, __file__, "--atoms", str(a.atoms), "--max-atoms",
                     str(a.max_atoms), "--one", str(chunk)], capture_output=True, text=True,
                    env={**os.environ, "HAMPART_MALLOC": malloc})
                if proc.returncode:
                    sys.exit(proc.stderr.strip().splitlines()[-1])
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"benchmark": "prediction time against the edge-chunk size (CPU)",
                      "command": " ".join(sys.argv), "load_average": list(os.getloadavg()),
                      "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
