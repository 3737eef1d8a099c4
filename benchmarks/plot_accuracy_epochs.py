"""Figure of benchmarks/accuracy_real.py results against training epochs, one line per model.

    python benchmarks/plot_accuracy_epochs.py benchmarks/results/accuracy_si/results.jsonl \
        --models default radial-species attention --out accuracy_epochs.png

One panel per error (node MAE, edge MAE, eigenvalue L1; log scales). A thin line per seed
joins its evaluations; where two seeds or more reached the same epoch count, a larger marker
shows their mean and a bar their range. Only runs trained to the epochs shown are used
(``--stages``/``--epochs`` rows with unit node weight), not checkpoints judged part-way
(``--checkpoints``). Rows of every patience are shown (a run's patience only matters once its
learning rate is cut). A seed evaluated at the same epoch count by more than one run (a screen
and a later run, say) shows the latest row of the file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

__all__ = ["curves", "main"]

PANELS = [("node_mae_mEh", "node MAE (mE$_h$)"), ("edge_mae_mEh", "edge MAE (mE$_h$)"),
          ("eig_l1_pct", "eigenvalue L1 (%)")]


def curves(rows, model: str, key: str) -> dict[int, dict[int, float]]:
    """``{epochs: {seed: value}}`` of ``model``, epochs ascending (the latest row wins when a
    seed was judged more than once at the same epoch count)."""
    seen: dict = {}
    for r in rows:
        if (r["model"] != model or "checkpoint" in r or key not in r
                or float(r.get("node_weight", 1.0) or 1.0) != 1.0):
            continue
        seen.setdefault(int(r["epochs"]), {})[int(r["seed"])] = float(r[key])
    return dict(sorted(seen.items()))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results")
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    rows = [json.loads(line) for line in open(a.results)]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.4 * len(PANELS), 3.9))
    for ax, (key, label) in zip(axes, PANELS):
        for k, model in enumerate(a.models):
            points = curves(rows, model, key)
            color = f"C{k}"
            for n, seed in enumerate(sorted({s for v in points.values() for s in v})):
                mine = [(e, v[seed]) for e, v in points.items() if seed in v]
                ax.plot(*zip(*mine), ".-", color=color, ms=3, lw=0.7, alpha=0.6,
                        label=model if n == 0 else None)
            several = [(e, list(v.values())) for e, v in points.items() if len(v) > 1]
            if several:
                means = [statistics.mean(v) for _, v in several]
                low = [m - min(v) for m, (_, v) in zip(means, several)]
                high = [max(v) - m for m, (_, v) in zip(means, several)]
                ax.errorbar([e for e, _ in several], means, yerr=[low, high], color=color,
                            fmt="o", ms=6, capsize=3, lw=1.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epochs")
        ax.set_title(label, fontsize=10)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    axes[0].legend(fontsize=8)
    mine = [r for r in rows if r.get("model") in a.models] or rows
    train = ", ".join(os.path.basename(t) for t in str(mine[0].get("train", "?")).split(","))
    test = os.path.basename(str(mine[0].get("test", "?")))
    fig.suptitle(f"train {train}, judge {test} (thin lines: one seed each; markers: mean over "
                 "seeds, bars: their range)", fontsize=10)
    fig.tight_layout()
    tmp = a.out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
