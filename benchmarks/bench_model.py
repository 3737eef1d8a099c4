"""Benchmark: HamiltonianModel forward + backward on HfO2-like graphs (DESIGN.md §8).

    python benchmarks/bench_model.py                 # CPU set, writes nothing, prints JSON
    python benchmarks/bench_model.py --device cuda   # same script on a GPU
    python benchmarks/bench_model.py --case 3000,8.0 --profile
    # the generator's 960-atom HfO2 cell (hampart generate hfo2 --size 4,4,5), r_cut 8, whole
    # and the largest of 2 slabs with halo 1; each case against a baseline checkout, alternating:
    git worktree add /tmp/base <commit>
    python benchmarks/bench_model.py --case hfo2:4x4x5,8.0 --case hfo2:4x4x5,8.0,2,1 \
        --split slab --networks default paper --baseline /tmp/base --rounds 2

Structure: HfO2 at the paper's density (3,000 atoms in 52.3 x 26.2 x 26.3 A, Hf:O = 1:2) as a
rattled grid, scaled to the requested atom count at the same density; SZV basis (Hf s,s,p,d;
O s,p); paper hyperparameters (lmax = mmax = 4, 16 channels, ff 64, 2 heads, 1 layer), as the
paper's network or hampart's default (``--networks paper default``: the same sizes plus on-site
neighbour sums and a degree embedding), or any named configuration of
``benchmarks/accuracy_real.py`` (the options from the paper's code, ``official``). Each case
runs in a fresh subprocess so that its peak memory (ru_maxrss on CPU,
torch.cuda.max_memory_allocated on CUDA) is its own. Timings: median of ``--repeat`` steps
after one warm-up step. A "step" = forward + loss + backward (no optimiser); for a partition the
blocks of its exact owned edges only, as the trainer computes them.

``hfo2:N1xN2xN3`` cases take the structure ``hampart generate hfo2 --size N1,N2,N3`` writes
(:func:`hampart.generate.structures.make_structure`) and the full SZV basis (eight elements) as
a labelled dataset has it; the model is built for the species present, as ``hampart train``
builds it (``elements``), where the code has that option. ``--baseline DIR`` runs every case
also with the code in DIR (a checkout of an earlier commit), alternating baseline and current
``--rounds`` times, and reports the ratios baseline / current of step time (wall and CPU) and of
peak memory per round and their median: on a loaded machine only such ratios mean anything.
CPU time (``step_cpu_seconds``, the process's user + system time) counts the threads' work
and is less disturbed by other jobs than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# --code DIR (internal): import hampart from DIR, the baseline checkout of an A/B comparison
_CODE = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv else ROOT
sys.path.insert(0, os.path.abspath(_CODE))

PAPER_CELL = np.array([52.3, 26.2, 26.3])
PAPER_ATOMS = 3000


def hfo2_like(n_atoms: int, seed: int = 0):
    """Rattled-grid HfO2 at the paper's density: (numbers, positions, cell), numpy."""
    rng = np.random.default_rng(seed)
    lengths = PAPER_CELL * (n_atoms / PAPER_ATOMS) ** (1.0 / 3.0)
    grid = np.ceil(lengths / (lengths.prod() / n_atoms) ** (1.0 / 3.0)).astype(int)
    frac = np.stack(np.meshgrid(*[np.arange(g) / g for g in grid], indexing="ij"), -1).reshape(-1, 3)
    frac = frac[rng.permutation(len(frac))[:n_atoms]]
    positions = frac * lengths + rng.normal(0.0, 0.15, (n_atoms, 3))
    numbers = np.where(rng.permutation(n_atoms) < n_atoms // 3, 72, 8)
    return numbers, positions, np.diag(lengths)


def generated_hfo2(size):
    """(numbers, positions, cell) of ``hampart generate hfo2 --size N1,N2,N3``, numpy."""
    from hampart.generate.structures import make_structure

    s = make_structure("hfo2", size=tuple(size))
    return np.asarray(s.numbers), np.asarray(s.positions), np.asarray(s.cell)


def run_case(n_atoms, rcut, device, dtype_name, repeat, profile, layers, edge_chunk=0,
             warmup=1, parts=0, halo=None, all_edge_outputs=False, network="paper",
             split="metis", network_config=None):
    import inspect

    import torch

    from hampart.basis import Basis, builtin_basis
    from hampart.graph import radius_graph
    from hampart.model import HamiltonianModel

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    malloc = _allocator()
    dtype = getattr(torch, dtype_name)
    if isinstance(n_atoms, str):  # "hfo2:4x4x5": the generator's structure, the full SZV basis
        numbers, positions, cell = generated_hfo2(int(k) for k in n_atoms.split(":")[1].split("x"))
        basis = builtin_basis("SZV")
    else:
        numbers, positions, cell = hfo2_like(n_atoms)
        basis = Basis({72: (0, 0, 1, 2), 8: (0, 1)}, name="SZV")
    t0 = time.perf_counter()
    g = radius_graph(positions, cell, [True] * 3, rcut)
    t_graph = time.perf_counter() - t0
    part_info, edge_outputs = {}, None
    if parts:  # the largest of `parts` parts; halo L + 1 (default) makes every output exact
        from hampart.partition import build_partitions, metis_owners, slab_owners

        halo = layers + 1 if halo is None else halo
        owner = (metis_owners(g, parts, seed=0) if split == "metis" else
                 slab_owners(positions, cell, parts, axis="x"))
        arrays = max((a for _, a in build_partitions(g, owner, halo=halo)),
                     key=lambda a: a["edge_index"].shape[1])
        ids = arrays["node_ids"]
        numbers, positions = numbers[ids], positions[ids]
        # as the trainer: exact owned edges first (halo L leaves those from halo senders inexact)
        m_owned = int(arrays["edge_owned"].sum())
        exact = arrays["node_hop"][arrays["edge_index"][0, :m_owned]] <= halo - layers
        order = np.concatenate([np.flatnonzero(exact), np.flatnonzero(~exact),
                                np.arange(m_owned, arrays["edge_index"].shape[1])])
        arrays = dict(arrays, edge_index=arrays["edge_index"][:, order],
                      edge_shift=arrays["edge_shift"][order])
        # as the trainer: exact owned edges' blocks only (all: the baseline before it did so)
        edge_outputs = None if all_edge_outputs else int(exact.sum())
        part_info = {"parts": parts, "split": split, "halo": halo, "graph_edges": g.n_edges,
                     "part_nodes": int(len(ids)), "part_owned_nodes": int((arrays["node_hop"] == 0).sum()),
                     "part_owned_edges": m_owned, "part_exact_edges": int(exact.sum()),
                     "edge_outputs": "all" if all_edge_outputs else "exact owned"}
        g = type(g)(edge_index=arrays["edge_index"], edge_shift=arrays["edge_shift"],
                    n_nodes=len(ids), rcut=g.rcut)
    args = dict(network_config or {}, layers=layers, rcut=rcut, edge_chunk=edge_chunk or None)
    if "elements" in inspect.signature(HamiltonianModel.__init__).parameters:
        args["elements"] = sorted({int(z) for z in numbers if z})  # as hampart train builds it
    torch.manual_seed(0)
    model = HamiltonianModel(basis, **args).to(device=device, dtype=dtype)
    inputs = (torch.as_tensor(numbers, device=device),
              torch.as_tensor(positions, dtype=dtype, device=device),
              torch.as_tensor(cell, dtype=dtype, device=device),
              torch.as_tensor(g.edge_index, device=device),
              torch.as_tensor(g.edge_shift, device=device))

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def step():
        nodes, edges = model(*inputs, edge_outputs=edge_outputs)
        loss = nodes.square().sum() + edges.square().sum()
        loss.backward()
        model.zero_grad(set_to_none=True)

    from hampart.model.memory import GIB, measure_memory_law

    law = measure_memory_law(model)  # the budget planner's estimate, checked against the peak
    estimated = law.step_bytes(g.n_nodes, g.n_edges, edge_chunk or None, edge_outputs) / GIB
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for _ in range(warmup):
        step()
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)  # on a shared CPU: less hit by other jobs
    # forward only (inference), for reference
    t = time.perf_counter()
    with torch.no_grad():
        model(*inputs, edge_outputs=edge_outputs)
    sync()
    t_fwd = time.perf_counter() - t
    sec = float(np.median(times))
    out = {"network": network, "atoms": n_atoms, "rcut": rcut, "edges": g.n_edges,
           "device": device,
           "dtype": dtype_name, "layers": layers, "edge_chunk": edge_chunk or None, "threads": torch.get_num_threads(), "malloc": malloc,
           "graph_seconds": round(t_graph, 3), "step_seconds": round(sec, 4),
           "step_cpu_seconds": round(float(np.median(cpu_times)), 4),
           "forward_no_grad_seconds": round(t_fwd, 4), "edges_per_second": round(g.n_edges / sec),
           "parameters": sum(p.numel() for p in model.parameters()), **part_info}
    out["estimated_step_gib"] = round(estimated, 3)
    if device == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        # the step's own growth above what the process held before it (interpreter, model, data)
        out.update(peak_rss_gib=round(peak, 3), step_rss_gib=round(peak - rss_before, 3))
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with prof(activities=acts) as p:
            step()
            sync()
        key = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
        table = p.key_averages().table(sort_by=key, row_limit=15)
        out["profile_top"] = table
    return out


def _named_models() -> dict:
    """accuracy_real.py's named configurations (imports today's hampart: parent process only)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from accuracy_real import MODELS

    return MODELS


def _allocator() -> str:
    """As hampart train runs (hampart.allocator; HAMPART_MALLOC=system for the system's):
    "heap" or "system" (also for a baseline checkout from before the module)."""
    try:
        from hampart.allocator import keep_freed_memory, mode
    except ImportError:
        return "system"
    keep_freed_memory()
    return mode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--case", action="append",
                    help="atoms,rcut[,parts[,halo]] (repeatable; with parts: the largest METIS "
                         "part, halo L+1 unless given); default: a CPU ladder up to the paper graph")
    ap.add_argument("--edge-chunk", type=int, default=0,
                    help="edges per checkpointed chunk (0: all at once)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--all-edge-outputs", action="store_true",
                    help="partitions: blocks of every edge, not only the owned ones (baseline)")
    ap.add_argument("--profile", action="store_true", help="profile the last case")
    ap.add_argument("--networks", nargs="+", default=["paper"],
                    help="the paper's network (PAPER_HYPERPARAMETERS), hampart's default "
                    "(neighbour sums, degree embedding) and/or the named configurations of "
                    "accuracy_real.py; each case runs for each")
    ap.add_argument("--split", default="metis", choices=["metis", "slab"],
                    help="partition cases: METIS parts or equal-width slabs along x")
    ap.add_argument("--baseline", help="a checkout of the baseline code: every case runs with "
                    "it and with this code, alternating, and the ratios are reported")
    ap.add_argument("--rounds", type=int, default=1,
                    help="with --baseline: alternations of baseline and current per case")
    ap.add_argument("--code", default=ROOT, help=argparse.SUPPRESS)  # internal, see _CODE
    ap.add_argument("--network", default="paper", help=argparse.SUPPRESS)  # with --one
    # with --one: the network's hyperparameters as JSON, resolved by the parent with this code,
    # so a baseline checkout needs none of today's named configurations
    ap.add_argument("--network-config", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    a = ap.parse_args()
    if a.one:
        n, rc, *rest = a.one.split(",")
        parts, halo = (int(rest[0]) if rest else 0), (int(rest[1]) if len(rest) > 1 else None)
        print(json.dumps(run_case(n if n.startswith("hfo2:") else int(n), float(rc), a.device,
                                  a.dtype, a.repeat, a.profile, a.layers, a.edge_chunk,
                                  a.warmup, parts, halo, a.all_edge_outputs, a.network,
                                  a.split, json.loads(a.network_config))))
        return
    unknown = sorted(set(a.networks) - set(_named_models()))
    if unknown:
        ap.error(f"unknown --networks {', '.join(unknown)}: choose from "
                 f"{', '.join(_named_models())}")
    cpu_cases = ["500,5.0", "1000,5.0", "3000,5.0", "1200,8.0", "3000,8.0,8,1", "3000,8.0,8"]
    gpu_cases = ["1200,8.0", "3000,8.0", "3000,8.0,8,1", "3000,8.0,8"]
    cases = a.case or (cpu_cases if a.device == "cpu" else gpu_cases)
    results = []
    runs = [(case, net) for case in cases for net in a.networks]
    codes = [("baseline", a.baseline), ("current", ROOT)] if a.baseline else [("current", ROOT)]
    for k, (case, net) in enumerate(runs):
        rounds = []
        for _ in range(a.rounds if a.baseline else 1):
            pair = {}
            for label, code in codes:  # alternating: both see the same load, in turn
                cmd = [sys.executable, __file__, "--one", case, "--network", net,
                       "--network-config", json.dumps(_named_models()[net]),
                       "--device", a.device, "--dtype", a.dtype, "--repeat", str(a.repeat),
                       "--layers", str(a.layers), "--edge-chunk", str(a.edge_chunk),
                       "--warmup", str(a.warmup), "--split", a.split, "--code", code]
                if a.all_edge_outputs:
                    cmd.append("--all-edge-outputs")
                if a.profile and k == len(runs) - 1:
                    cmd.append("--profile")
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:
                    pair[label] = {"case": case, "network": net,
                                   "error": proc.stderr.strip().splitlines()[-1:]}
                else:
                    pair[label] = json.loads(proc.stdout.strip().splitlines()[-1])
                print(label, json.dumps(pair[label])[:400], file=sys.stderr)
            rounds.append(pair)
        if not a.baseline:
            results.append(rounds[0]["current"])
            continue
        results.append({"case": case, "network": net, "rounds": rounds, **_ratios(rounds)})
        print(json.dumps({k: v for k, v in results[-1].items() if k != "rounds"}), file=sys.stderr)
    print(json.dumps({"benchmark": "model forward+backward", "results": results}, indent=1))


def _ratios(rounds):
    """Median over rounds of baseline / current for time (wall, CPU) and peak memory."""
    keys = {"step_seconds": "speedup_wall", "step_cpu_seconds": "speedup_cpu",
            "peak_rss_gib": "peak_ratio", "step_rss_gib": "step_memory_ratio",
            "peak_gib": "peak_ratio", "parameters": "parameter_ratio"}
    out = {}
    for key, name in keys.items():
        vals = [r["baseline"][key] / r["current"][key] for r in rounds
                if key in r.get("baseline", {}) and r.get("current", {}).get(key)]
        if vals:
            out[name] = round(float(np.median(vals)), 3)
            out[name + "_rounds"] = [round(v, 3) for v in vals]
    return out


if __name__ == "__main__":
    main()
