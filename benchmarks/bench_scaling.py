"""Time per epoch and peak memory per rank against the number of parts (the paper's Fig. A1).

    python benchmarks/bench_scaling.py --data TRAIN_DIR --out DIR [--quick] [--device cuda]
                                       [--ranks one|parts] [--halo K] [--method metis|slab]

For each number of parts P (default 1, 2, 4, 8) the training structure is sliced (METIS, halo
L + 1 by default, so every part trains its edges exactly) and ``hampart train`` runs
``--repeats`` epochs in a fresh process:

* ``--ranks one`` (default): one process trains all P parts one after another, as a rank that
  holds several parts does. Only one part's activations live at once, so the peak memory is
  the resident partitions plus the largest part's step; the epoch time is the sum over parts.
* ``--ranks parts``: ``mpirun -n P``, one part per rank: the real per-rank memory and, on a
  machine with P free cores or GPUs, the distributed epoch time (oversubscribed cores make the
  times meaningless; the memory stays right).

Reported: epoch seconds min / median / max over the epochs after the first (the first includes
start-up), peak memory of the process (max over ranks): on CPU the resident set size (peak RSS)
and its growth over the process after imports and start-up, on CUDA torch's peak allocated
memory; ratios against P = 1 from the same run. Writes DIR/bench_scaling.md (the table), DIR/bench_scaling.json
(machine, versions, parameters) and DIR/bench_scaling.png. --quick: small model, r_cut 5,
1/2/4 parts, 3 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from hampart.experiments import (Cell, Settings, check_dataset, environment, epoch_seconds,
                                 read_log, run_script, slice_cell, write_json, write_text)

QUICK_MODEL = {"lmax": 4, "mmax": 2, "channels": 8, "ff_hidden": 16, "heads": 1}
GIB = 2 ** 30


def _rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_now_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _rss_bytes()


def worker(parts_dir: str, run_dir: str, epochs: int, model: dict, device: str,
           result: str) -> None:
    """Train ``epochs`` epochs on ``parts_dir`` and write this rank's peak memory to
    ``result.rank<k>.json``."""
    from hampart.distributed.trainer import TrainConfig, train

    base = _rss_now_bytes()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    summary = train(TrainConfig(parts=parts_dir, out=run_dir, model=model, epochs=epochs,
                                seed=0, resume=False, log_every=1, checkpoint_every=0,
                                device=device), progress=print)
    peak = {"rank": summary["rank"], "ranks": summary["ranks"],
            "parts_per_rank": summary["parts_per_rank"], "rss_start_gib": base / GIB,
            "rss_peak_gib": _rss_bytes() / GIB}
    if device.startswith("cuda"):
        peak["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / GIB
    Path(f"{result}.rank{summary['rank']}.json").write_text(json.dumps(peak))


def measure(settings: Settings, cell: Cell, out: Path, repeats: int, ranks: str) -> dict:
    """One number of parts: slice, train ``repeats`` epochs in a fresh process, collect."""
    directory, stats = slice_cell(settings, cell, out)
    run = out / "runs" / cell.parts_name
    if run.exists():
        shutil.rmtree(run)
    result = out / "runs" / f"{cell.parts_name}-memory"
    for old in result.parent.glob(result.name + ".rank*.json"):
        old.unlink()
    command = [sys.executable, os.path.abspath(__file__), "--worker", str(directory), str(run),
               "--epochs", str(repeats + 1), "--model", json.dumps(dict(settings.model)),
               "--device", settings.device, "--result", str(result)]
    if ranks == "parts" and cell.parts > 1:
        mpirun = shutil.which("mpirun") or os.path.join(os.path.dirname(sys.executable), "mpirun")
        command = [mpirun, "-n", str(cell.parts)] + command
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    per_rank = [json.loads(p.read_text()) for p in sorted(result.parent.glob(result.name + ".rank*.json"))]
    seconds = epoch_seconds(read_log(run))  # epochs after the first
    record = {"parts": cell.parts, "method": cell.method, "halo": cell.halo,
              "ranks": per_rank[0]["ranks"], "parts_per_rank": max(r["parts_per_rank"] for r in per_rank),
              "epochs_timed": len(seconds), "epoch_seconds_min": min(seconds),
              "epoch_seconds_median": statistics.median(seconds),
              "epoch_seconds_max": max(seconds),
              "rss_peak_gib": max(r["rss_peak_gib"] for r in per_rank),
              "rss_growth_gib": max(r["rss_peak_gib"] - r["rss_start_gib"] for r in per_rank),
              **stats}
    if "cuda_peak_gib" in per_rank[0]:
        record["cuda_peak_gib"] = max(r["cuda_peak_gib"] for r in per_rank)
    return record


def table(records: list[dict]) -> str:
    memory = "cuda_peak_gib" if "cuda_peak_gib" in records[0] else "rss_peak_gib"
    base = records[0]
    lines = ["| parts | ranks | edges stored | largest part (edges) | s/epoch min / median / "
             "max | x P=1 | peak memory per rank (GiB) | x P=1 | RSS growth (GiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['parts']} | {r['ranks']} | {r['stored_edges']:,} | {r['largest_part_edges']:,} "
            f"| {r['epoch_seconds_min']:.3g} / {r['epoch_seconds_median']:.3g} / "
            f"{r['epoch_seconds_max']:.3g} | "
            f"{r['epoch_seconds_median'] / base['epoch_seconds_median']:.2f} | "
            f"{r[memory]:.3g} | {r[memory] / base[memory]:.2f} | {r['rss_growth_gib']:.3g} |")
    return "\n".join(lines) + "\n"


def figure(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["parts"] for r in records]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    med = [r["epoch_seconds_median"] for r in records]
    a.errorbar(x, med, yerr=[[m - r["epoch_seconds_min"] for m, r in zip(med, records)],
                             [r["epoch_seconds_max"] - m for m, r in zip(med, records)]],
               marker="o", capsize=3)
    a.set_title("s per epoch (min / median / max)", fontsize=9)
    memory = "cuda_peak_gib" if "cuda_peak_gib" in records[0] else "rss_peak_gib"
    b.plot(x, [r[memory] for r in records], marker="o", label="peak")
    if memory == "rss_peak_gib":
        b.plot(x, [r["rss_growth_gib"] for r in records], marker="s", label="growth after start")
        b.legend(fontsize=7)
    b.set_title(f"peak memory per rank (GiB, {'CUDA' if memory == 'cuda_peak_gib' else 'RSS'})",
                fontsize=9)
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("parts")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="training dataset directory")
    p.add_argument("--out")
    p.add_argument("--quick", action="store_true", help="small model, r_cut 5, 1/2/4 parts")
    p.add_argument("--parts", type=int, nargs="+", help="default 1 2 4 8, --quick 1 2 4")
    p.add_argument("--method", choices=["metis", "slab"], default="metis")
    p.add_argument("--halo", type=int, help="default L + 1 (exact)")
    p.add_argument("--repeats", type=int, help="timed epochs, default 5, --quick 3")
    p.add_argument("--rcut", type=float, help="Angstrom; default 8, --quick 5")
    p.add_argument("--ranks", choices=["one", "parts"], default="one")
    p.add_argument("--device", default="cpu")
    p.add_argument("--worker", nargs=2, metavar=("PARTS", "RUN"), help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(*a.worker, a.epochs, json.loads(a.model), a.device, a.result)
        return []
    if not a.data or not a.out:
        p.error("--data and --out are required")
    settings = Settings(train=check_dataset(a.data), test=None,
                        rcut=a.rcut or (5.0 if a.quick else 8.0), epochs=0,
                        model=QUICK_MODEL if a.quick else {}, device=a.device)
    layers = int(settings.model.get("layers", 1))
    halo = layers + 1 if a.halo is None else a.halo
    parts_list = a.parts or ([1, 2, 4] if a.quick else [1, 2, 4, 8])
    repeats = a.repeats or (3 if a.quick else 5)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for parts in parts_list:
        cell = Cell(f"{a.method}{parts}", "slab" if parts == 1 else a.method, parts, halo)
        r = measure(settings, cell, out, repeats, a.ranks)
        print(json.dumps({k: r[k] for k in ("parts", "epoch_seconds_median", "rss_peak_gib")}),
              flush=True)
        records.append(r)
    header = (f"Scaling: {settings.train}, r_cut {settings.rcut} A, {a.method} halo {halo}, "
              f"{repeats} timed epochs, device {a.device}, ranks: {a.ranks} "
              f"({'one part per rank' if a.ranks == 'parts' else 'all parts on one rank'}), "
              f"torch threads {torch.get_num_threads()}.\n\n")
    write_text(out / "bench_scaling.md", header + table(records))
    write_json(out / "bench_scaling.json", {
        "experiment": "bench_scaling", "environment": environment(),
        "settings": {"data": settings.train, "rcut": settings.rcut, "method": a.method,
                     "halo": halo, "parts": parts_list, "repeats": repeats, "ranks": a.ranks,
                     "device": a.device, "model": dict(settings.model)},
        "results": records})
    figure(records, out / "bench_scaling.png")
    print((out / "bench_scaling.md").read_text())
    return records


if __name__ == "__main__":
    run_script(main, __file__)
