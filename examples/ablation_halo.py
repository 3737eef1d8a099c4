"""Does partitioning cost accuracy? The halo ablation (the paper's Table 1) on your own data.

    python examples/ablation_halo.py --data TRAIN_DIR --test TEST_DIR --out DIR [--quick]

The training structure is cut into the same METIS parts three ways and one model is trained on
each, with the same seeds, epochs and learning rate (the same budget):

* raw       halo 0: each part alone, no virtual atoms or edges. Atoms near a cut miss their
            neighbours in the other part and edges across the cut are never trained.
* augmented halo L (the paper's): virtual atoms and edges one message-passing depth deep, so
            every trained atom sees its whole neighbourhood; edges across a cut stay untrained.
* exact     halo L + 1: every edge is trained and the loss is the full-graph loss.

Each model then predicts the unseen test structure (any size, no partitions needed) and is
judged there: node and edge MAE (mE_h) and the eigenvalue L1 error of H c = E S c (%).
Writes DIR/ablation_halo.md (the table), DIR/ablation_halo.json (machine, versions, parameters, seeds, every run)
and DIR/ablation_halo.png. Runs that already finished with the same settings are reused, so an
interrupted run continues. --quick: a small model, few epochs, r_cut 5 (minutes on 2 cores).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hampart.experiments import (Cell, Settings, check_dataset, environment, latest_records,
                                 mean_spread, run_cell, run_script, write_json, write_text)

QUICK_MODEL = {"lmax": 4, "mmax": 2, "channels": 8, "ff_hidden": 16, "heads": 1}
METRICS = [("node_mae_mEh", "node MAE (mE_h)"), ("edge_mae_mEh", "edge MAE (mE_h)"),
           ("eig_l1_pct", "eigenvalue L1 (%)")]


def cells(parts: int, layers: int) -> list[Cell]:
    return [Cell("raw", "metis", parts, 0), Cell("augmented", "metis", parts, layers),
            Cell("exact", "metis", parts, layers + 1)]


def summarise(records: list[dict]) -> dict:
    """Per cell: mean and spread over seeds of each metric, and how much better augmented and
    exact are than raw (1 - error / raw error, in %)."""
    out: dict = {}
    for name in ("raw", "augmented", "exact"):
        rs = [r for r in records if r["cell"] == name]
        if not rs:
            continue
        row = {"seeds": sorted(r["seed"] for r in rs), "halo": rs[0]["halo"],
               "trained_edge_fraction": rs[0]["trained_edge_fraction"],
               "epoch_seconds_median": mean_spread([r["epoch_seconds_median"] for r in rs])[0]}
        for key, _ in METRICS:
            row[key] = mean_spread([r.get(key) for r in rs])
        out[name] = row
    if "raw" in out:
        for name in ("augmented", "exact"):
            if name in out:
                out[name]["better_than_raw_pct"] = {
                    key: 100 * (1 - out[name][key][0] / out["raw"][key][0]) for key, _ in METRICS}
    return out


def table(summary: dict) -> str:
    lines = ["| partitions | halo | seeds | edges trained | " + " | ".join(m[1] for m in METRICS)
             + " | s/epoch |", "|---|---|---|---|" + "---|" * (len(METRICS) + 1)]
    for name, row in summary.items():
        cells_ = [f"{row[k][0]:.3g} +- {row[k][1]:.2g}" for k, _ in METRICS]
        lines.append(f"| {name} | {row['halo']} | {','.join(map(str, row['seeds']))} | "
                     f"{100 * row['trained_edge_fraction']:.0f} % | "
                     + " | ".join(cells_) + f" | {row['epoch_seconds_median']:.3g} |")
    better = [f"{name}: node {b['node_mae_mEh']:.0f} %, edge {b['edge_mae_mEh']:.0f} %, "
              f"eigenvalue L1 {b['eig_l1_pct']:.0f} % lower error than raw"
              for name, row in summary.items() if (b := row.get("better_than_raw_pct"))]
    return "\n".join(lines) + "\n\n" + "\n".join(f"* {line}" for line in better) + "\n"


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.0))
    for ax, (key, label) in zip(axes, METRICS):
        means = [summary[n][key][0] for n in names]
        spreads = [summary[n][key][1] for n in names]
        ax.bar(names, means, yerr=spreads, capsize=4, color=["#b44", "#48b", "#4a4"][:len(names)])
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.suptitle("unseen structure: mean +- std over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="training dataset directory")
    p.add_argument("--test", required=True, help="unseen dataset directory with S.npz")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="small model, few epochs, r_cut 5")
    p.add_argument("--parts", type=int, default=2, help="METIS parts (default 2)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, help="default 300, --quick 40")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--rcut", type=float, help="Angstrom; default 8, --quick 5")
    p.add_argument("--cells", nargs="+", choices=["raw", "augmented", "exact"],
                   default=["raw", "augmented", "exact"], help="train only these (to split a "
                   "run over processes; each writes its records, the table takes all)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    settings = Settings(train=check_dataset(a.data), test=check_dataset(a.test, True),
                        rcut=a.rcut or (5.0 if a.quick else 8.0),
                        epochs=a.epochs or (40 if a.quick else 300), lr=a.lr,
                        model=QUICK_MODEL if a.quick else {}, device=a.device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    layers = int(settings.model.get("layers", 1))
    wanted = [c for c in cells(a.parts, layers) if c.name in a.cells]
    for cell in wanted:
        for seed in a.seeds:
            r = run_cell(settings, cell, seed, out)
            print(f"{cell.name} seed {seed}: node {r['node_mae_mEh']:.3g} mEh, edge "
                  f"{r['edge_mae_mEh']:.3g} mEh, eigenvalue L1 {r['eig_l1_pct']:.3g} %",
                  flush=True)
    return report(out, settings, a.seeds, a.parts)


def report(out: Path, settings: Settings, seeds, parts: int) -> dict:
    """ablation_halo.md, .json and .png from every run in OUT/results.jsonl made with these
    settings on METIS ``parts`` parts (the last record of each halo and seed)."""
    layers = int(settings.model.get("layers", 1))
    name = {c.halo: c.name for c in cells(parts, layers)}
    records = [{**r, "cell": name[r["halo"]]} for r in latest_records(out, settings, seeds)
               if r["method"] == "metis" and r["parts"] == parts and r["halo"] in name]
    records.sort(key=lambda r: (r["halo"], r["seed"]))
    summary = summarise(records)
    header = (f"Halo ablation: train {settings.train} (METIS {parts} parts, r_cut "
              f"{settings.rcut} A, {settings.epochs} epochs, lr {settings.lr}, seeds "
              f"{', '.join(map(str, seeds))}), judged on the unseen {settings.test}; "
              "mean +- standard deviation over seeds; s/epoch: one process.\n\n")
    write_text(out / "ablation_halo.md", header + table(summary))
    write_json(out / "ablation_halo.json", {
        "experiment": "ablation_halo", "environment": environment(),
        "settings": {**vars(settings), "model": dict(settings.model), "parts": parts,
                     "seeds": list(seeds)},
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if k != "train_mae_mEh"} for r in records]})
    figure(summary, out / "ablation_halo.png")
    print((out / "ablation_halo.md").read_text())
    return summary


if __name__ == "__main__":
    run_script(main, __file__)
