"""Reading a CP2K text CSR of >= 20 million entries (``hampart.io.read_csr``).

Writes a synthetic upper-triangle file in CP2K's layout (``%6d %6d % .16E``, a band of 200
entries per row) into a temporary directory, reads it with ``read_csr`` (best of 2), and
measures in the same run two baselines on the first million lines, extrapolated linearly to the
whole file (labelled as such): ``np.loadtxt`` and a per-line Python reader into a dict. Also
times the npz round trip of the result. Prints one JSON object.

    python benchmarks/bench_csr_read.py [n_entries]
"""

import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

from hampart.io.csr import read_csr, read_matrix, write_matrix

PER_ROW = 200  # row r holds columns r .. r + 199: an upper-triangle band, every pair once
SLICE = 1_000_000  # lines timed for the baselines


def _write(path, n_entries, seed=0):
    """CP2K-style text, in chunks; returns the values for the check."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n_entries) * 10.0 ** rng.integers(-6, 1, size=n_entries)
    with open(path, "w") as f:
        step = 2_000_000
        for s in range(0, n_entries, step):
            e = np.arange(s, min(s + step, n_entries))
            r = e // PER_ROW + 1
            c = r + e % PER_ROW
            f.write("".join([f"{a:6d} {b:6d} {x: .16E}\n" for a, b, x in
                             zip(r.tolist(), c.tolist(), values[s:s + step].tolist())]))
    return values


def _python_dict_reader(path, max_lines):
    out = {}
    with open(path) as f:
        for k, line in enumerate(f):
            if k >= max_lines:
                break
            r, c, v = line.split()
            out[(int(r), int(c))] = float(v)
    return out


def _head(path, out, max_lines):
    with open(path) as f, open(out, "w") as g:
        for k, line in enumerate(f):
            if k >= max_lines:
                break
            g.write(line)


def main(n_entries=20_000_000):
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "H.csr")
        n_orb = (n_entries - 1) // PER_ROW + PER_ROW
        t = time.perf_counter()
        values = _write(path, n_entries)
        write_s = time.perf_counter() - t
        reads = []
        for _ in range(2):
            t = time.perf_counter()
            H = read_csr(path, n_orbitals=n_orb)
            reads.append(time.perf_counter() - t)
        read_s = min(reads)
        e = np.arange(n_entries)
        r = e // PER_ROW
        c = r + e % PER_ROW
        exact = bool(np.array_equal(np.asarray(H[r, c]).ravel(), values)
                     and np.array_equal(np.asarray(H[c, r]).ravel(), values))
        del e, r, c
        npz = os.path.join(tmp, "H.npz")
        t = time.perf_counter()
        write_matrix(npz, H)
        npz_write_s = time.perf_counter() - t
        t = time.perf_counter()
        read_matrix(npz)
        npz_read_s = time.perf_counter() - t

        head = os.path.join(tmp, "head.csr")
        _head(path, head, SLICE)
        scale = n_entries / SLICE
        t = time.perf_counter()
        np.loadtxt(head)
        loadtxt_s = (time.perf_counter() - t) * scale
        t = time.perf_counter()
        _python_dict_reader(head, SLICE)
        dict_s = (time.perf_counter() - t) * scale

        result = {
            "benchmark": "csr_read", "entries": n_entries, "n_orbitals": n_orb,
            "bytes": os.path.getsize(path), "nnz_symmetric": int(H.nnz),
            "values_bitwise_exact": exact,
            "write_text_seconds": write_s,
            "read_seconds": read_s, "read_seconds_runs": reads,
            "entries_per_s": n_entries / read_s,
            "mb_per_s": os.path.getsize(path) / read_s / 1e6,
            "npz_bytes": os.path.getsize(npz), "npz_write_seconds": npz_write_s,
            "npz_read_seconds": npz_read_s,
            "baselines": "timed on the first 1,000,000 lines, extrapolated linearly to all entries",
            "loadtxt_seconds_extrapolated": loadtxt_s,
            "python_dict_reader_seconds_extrapolated": dict_s,
            "speedup_vs_loadtxt": loadtxt_s / read_s,
            "speedup_vs_python_dict_reader": dict_s / read_s,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "cpu_cores": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000)
