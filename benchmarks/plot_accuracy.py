"""Figure of benchmarks/accuracy_real.py results: one panel per error, one bar per model.

    python benchmarks/plot_accuracy.py benchmarks/results/accuracy_si/results.jsonl \
        --epochs 51 100 --models default edge-embedding ... official \
        --bench step_cost.json step_cost_edge_embedding.json --out options.png

Each seed is a dot, the mean a bar; the default's mean is a dashed line across each panel.
With ``--bench`` (JSON of benchmarks/bench_model.py) a last panel shows each model's step CPU
time and step memory (the memory law) relative to the default's, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = [("node_mae_mEh", "node MAE (mE$_h$)"), ("edge_mae_mEh", "edge MAE (mE$_h$)"),
          ("eig_l1_pct", "eigenvalue L1 (%)")]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results")
    p.add_argument("--epochs", type=int, nargs="+", default=[300], help="one row per value")
    p.add_argument("--patience", type=int, default=500)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--bench", nargs="+", help="bench_model.py JSON outputs with these models "
                   "and the default as --networks (ratios within each; later files fill gaps)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    rows = [json.loads(line) for line in open(a.results)]
    panels = PANELS + ([("cost", "relative to the default")] if a.bench else [])
    fig, axes = plt.subplots(len(a.epochs), len(panels), squeeze=False,
                             figsize=(4.2 * len(panels), 4.0 * len(a.epochs)))
    xs = range(len(a.models))
    for row, epochs in zip(axes, a.epochs):
        mine = [r for r in rows if r["epochs"] == epochs and r["patience"] == a.patience]
        for ax, (key, label) in zip(row, panels):
            if key == "cost":
                if epochs == a.epochs[0]:
                    _cost_panel(ax, a.bench, a.models)
                else:
                    ax.axis("off")
                    continue
            else:
                base = [r[key] for r in mine if r["model"] == "default"]
                shown = [r[key] for r in mine if r["model"] in a.models]
                for x, name in zip(xs, a.models):
                    vals = [r[key] for r in mine if r["model"] == name]
                    if vals:
                        ax.bar(x, statistics.mean(vals), color="#9ecae1", width=0.7)
                        ax.plot([x] * len(vals), vals, "k.", ms=5)
                if base:
                    ax.axhline(statistics.mean(base), color="k", ls="--", lw=0.8)
                if shown and max(shown) > 4 * min(shown):  # one far-off model: log scale
                    ax.set_yscale("log")
                label = f"{label}, {epochs} epochs"
            ax.set_title(label, fontsize=10)
            ax.set_xticks(list(xs))
            ax.set_xticklabels(a.models, rotation=60, ha="right", fontsize=8)
    fig.suptitle("train asi216-a, judge asi216-b (bars: mean; dots: seeds; dashed: default)",
                 fontsize=10)
    fig.tight_layout()
    tmp = a.out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, a.out)


def _cost_panel(ax, paths, models):
    ratios: dict = {}
    for path in paths:  # each file's own default is the reference for its networks
        results = {r["network"]: r for r in json.load(open(path))["results"] if "error" not in r}
        base = results["default"]
        for name, r in results.items():
            ratios.setdefault(name, {k: r[k] / base[k] for k in
                                     ("step_cpu_seconds", "estimated_step_gib")})
    width = 0.38
    for k, (key, label) in enumerate([("step_cpu_seconds", "step CPU time"),
                                      ("estimated_step_gib", "step memory (law)")]):
        vals = [ratios[m][key] if m in ratios else float("nan") for m in models]
        ax.bar([x + (k - 0.5) * width for x in range(len(models))], vals, width=width,
               label=label)
    ax.axhline(1.0, color="k", ls="--", lw=0.8)
    ax.legend(fontsize=8)


if __name__ == "__main__":
    main()
