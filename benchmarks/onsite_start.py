"""On-site accuracy of the least-squares start alone, against the number of training cells.

    python benchmarks/onsite_start.py --cells A S2 S3 S4 S5 S6 S7 --test B \
        --models default invariants-32 --counts 1 3 5 6 --leave-one-out \
        --out benchmarks/results/accuracy_si_cells/start

The node heads of the default model start from a ridge fit of the on-site blocks to the
neighbour sums (docs/model.md); after that fit training moves the on-site errors little, so
the fit alone (``hampart train --epochs 0``: statistics and fit, no step) says what more
training cells buy, in seconds instead of hours. For each model and each count k: fit on the
first k of ``--cells`` (each sliced METIS 2 parts, halo 1, r_cut 8, as benchmarks/accuracy_real.py)
and judge ``--test``; with ``--leave-one-out`` also fit on all cells but one and judge that one.
One JSON line per judgement in OUT/results.jsonl (node MAE and the mean error of the on-site
diagonal, ``node_diagonal_shift_mEh``), a table in OUT/table.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from accuracy_real import MODELS

from hampart.distributed.trainer import TrainConfig, train
from hampart.experiments import judge
from hampart.model.io import load_model
from hampart.partition import slice_dataset


def fit_and_judge(name, cells, tests, out: Path, parts, kind="count") -> list[dict]:
    """Fit model ``name`` on ``cells`` (no training step) and judge it on each of ``tests``."""
    run = out / "runs" / f"{name}-{'+'.join(Path(c).name for c in cells)}"
    train(TrainConfig(parts=[str(parts[c]) for c in cells], out=str(run),
                      model=dict(MODELS[name]), epochs=0, seed=0, device="cpu", resume=False),
          progress=lambda line: None)
    model, _ = load_model(run / "model.pt")
    records = []
    for test in tests:
        r = judge(model, test)
        records.append({"model": name, "kind": kind, "train": [Path(c).name for c in cells],
                        "test": Path(test).name, "n_train": len(cells),
                        "node_mae_mEh": round(r["node_mae_mEh"], 4),
                        "node_diagonal_shift_mEh": round(r["node_diagonal_shift_mEh"], 4)})
    return records


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="+", required=True, help="labelled training cells, in order")
    p.add_argument("--test", nargs="+", default=[], help="unseen cells to judge")
    p.add_argument("--models", nargs="+", default=["default"], choices=list(MODELS))
    p.add_argument("--counts", nargs="*", type=int,
                   help="fit on the first k cells (default: all; none given: no such fits)")
    p.add_argument("--leave-one-out", action="store_true")
    p.add_argument("--rcut", type=float, default=8.0)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = {c: slice_dataset(c, rcut=a.rcut, method="metis", parts=2, halo=1,
                              out=out / "parts" / Path(c).name)[0] for c in a.cells}
    records = []
    for name in a.models:
        for k in [len(a.cells)] if a.counts is None else a.counts:
            records += fit_and_judge(name, a.cells[:k], a.test, out, parts)
        if a.leave_one_out:
            for left in a.cells:
                rest = [c for c in a.cells if c != left]
                records += fit_and_judge(name, rest, [left], out, parts, "leave-one-out")
    for r in records:
        print(json.dumps(r), flush=True)
    with open(out / "results.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    write_table(out)


def write_table(out: Path) -> None:
    rows = [json.loads(line) for line in open(out / "results.jsonl")]
    lines = ["| model | training cells | judged on | node MAE (mE_h) | on-site diagonal shift (mE_h) |",
             "| --- | --- | --- | --- | --- |"]
    loo: dict = {}
    for r in rows:
        if r["kind"] == "leave-one-out":
            loo.setdefault(r["model"], []).append(r)
            continue
        lines.append(f"| {r['model']} | {r['n_train']} ({', '.join(r['train'])}) | {r['test']} "
                     f"| {r['node_mae_mEh']:.3f} | {r['node_diagonal_shift_mEh']:+.3f} |")
    for name, rs in loo.items():
        mae = [r["node_mae_mEh"] for r in rs]
        shift = [r["node_diagonal_shift_mEh"] for r in rs]
        each = ", ".join(f"{r['test']} {r['node_mae_mEh']:.3f} / {r['node_diagonal_shift_mEh']:+.2f}"
                         for r in rs)
        lines.append(f"| {name} | all but one ({rs[0]['n_train']}), each left out in turn | the "
                     f"one left out ({each}) | {statistics.mean(mae):.3f} +- "
                     f"{statistics.stdev(mae) if len(mae) > 1 else 0:.3f} | "
                     f"{statistics.mean(shift):+.3f} +- "
                     f"{statistics.stdev(shift) if len(shift) > 1 else 0:.3f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
