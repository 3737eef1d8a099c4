"""Reading a CP2K text CSR of >= 20 million entries: entries per second.

Baseline in the same run: a per-line Python reader into a dict (what a research script does),
timed on the first million lines and extrapolated (labelled as such).
"""

import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

from hampart.io.csr import read_csr


PER_ROW = 200  # upper-triangle band: row r holds columns r .. r + 199, every pair once


def _write(path, n_entries, n_orb, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        step = 2_000_000
        for s in range(0, n_entries, step):
            k = min(step, n_entries - s)
            e = np.arange(s, s + k)
            r = e // PER_ROW + 1
            c = r + e % PER_ROW
            v = rng.normal(size=k)
            f.write("".join(f"{a:6d} {b:6d} {x: .16E}\n" for a, b, x in zip(r.tolist(), c.tolist(),
                                                                         v.tolist())))


def _python_dict_reader(path, max_lines):
    out = {}
    with open(path) as f:
        for k, line in enumerate(f):
            if k >= max_lines:
                break
            r, c, v = line.split()
            out[(int(r), int(c))] = float(v)
    return out


def main(n_entries=20_000_000):
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "H.csr")
    n_orb = n_entries // PER_ROW + PER_ROW
    t = time.perf_counter()
    _write(path, n_entries, n_orb)
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    H = read_csr(path, n_orbitals=n_orb)
    read_s = time.perf_counter() - t
    sample = 1_000_000
    t = time.perf_counter()
    _python_dict_reader(path, sample)
    base_s = (time.perf_counter() - t) * n_entries / sample
    result = {"benchmark": "csr_read", "entries": n_entries, "bytes": os.path.getsize(path),
              "write_seconds": write_s, "read_seconds": read_s,
              "entries_per_s": n_entries / read_s, "nnz_symmetric": int(H.nnz),
              "baseline": "python dict reader, 1M lines timed, extrapolated",
              "baseline_seconds_extrapolated": base_s, "speedup_vs_baseline": base_s / read_s,
              "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    os.remove(path)
    os.rmdir(tmp)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000)
