"""Generator speed and memory: structure + synthetic H for the paper's 3,000-atom HfO2 cell and
for about 100,000 atoms (SZV basis, interaction radius 6 Angstrom). Each size runs in its own
process so that its peak memory is its own.

    python benchmarks/bench_generate.py            # both sizes, JSON on stdout
    python benchmarks/bench_generate.py --case big # one size
"""

import json
import os
import resource
import subprocess
import sys
import time

CASES = {"paper_3000": None, "big": (34, 16, 16)}  # (34,16,16) fluorite cells = 104,448 atoms


def run_case(name):
    from hampart.basis import load_basis
    from hampart.generate import make_structure, synthetic_hamiltonian

    t = time.perf_counter()
    s = make_structure("hfo2", seed=0, size=CASES[name])
    t_structure = time.perf_counter() - t
    t = time.perf_counter()
    H, info = synthetic_hamiltonian(s, load_basis("SZV"), return_info=True)
    t_label = time.perf_counter() - t
    return {"atoms": s.n_atoms, "orbitals": int(H.shape[0]), "nnz": int(H.nnz),
            "pairs": info["n_pairs"], "interaction_radius": info["interaction_radius"],
            "structure_seconds": round(t_structure, 3), "label_seconds": round(t_label, 3),
            "pairs_per_s": round(info["n_pairs"] / t_label),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
        return
    out = {"benchmark": "generate", "cpu_cores": os.cpu_count(), "material": "hfo2",
           "basis": "SZV", "cases": {}}
    for name in CASES:
        res = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True,
                             text=True, check=True)
        out["cases"][name] = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
