"""How many parts? Accuracy and cost against the number of slices (the paper's Table 2).

    python examples/slice_sweep.py --data TRAIN_DIR --test TEST_DIR --out DIR [--quick]

The training structure is cut into 1, 2, 4 and 8 parts, as equal-width slabs along x (the
paper's) and as METIS parts, each at halo L (the paper's augmented partitions: edges across a
cut are never trained) and at halo L + 1 (exact: every edge is trained, the loss is the
full-graph loss). One model per cell, all with the same seed, epochs and learning rate.
Reported per cell: edges trained per step (of the structure's edges), node and edge MAE on the
unseen test structure (mE_h), the training MAE at the last epoch and the epoch where the
training MAE first came within 10 % of its last value (convergence), and the median wall time
of an epoch on one process. With halo L + 1 the accuracy should not depend on the slicing;
with halo L it shows what the untrained cut edges cost as parts grow. With several ``--seeds``
each number is the mean +- standard deviation over them, so "equal" has a spread to be judged by.

Writes DIR/slice_sweep.md (the table), DIR/slice_sweep.json (machine, versions, parameters, seed, every run)
and DIR/slice_sweep.png. Finished runs with the same settings are reused. --quick: a small
model, few epochs, r_cut 5, 1/2/4 parts (minutes on 2 cores).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hampart.experiments import (Cell, Settings, check_dataset, environment, latest_records,
                                 mean_spread, run_cell, run_script, write_json, write_text)

QUICK_MODEL = {"lmax": 4, "mmax": 2, "channels": 8, "ff_hidden": 16, "heads": 1}
# per-run numbers averaged over seeds (the rest of a row is the slicing's, equal for all seeds)
AVERAGED = ("node_mae_mEh", "edge_mae_mEh", "eig_l1_pct", "train_mae_last_mEh",
            "converged_epoch", "epoch_seconds_median")


def cells(parts_list, methods, layers: int, halos=None) -> list[Cell]:
    out = []
    for parts in parts_list:
        if parts == 1:  # one part holds the whole graph: no cut, no halo
            out.append(Cell("whole", "slab", 1, layers + 1))
            continue
        for method in methods:
            for halo in halos or (layers, layers + 1):
                out.append(Cell(f"{method}{parts}-halo{halo}", method, parts, halo))
    return out


def converged_epoch(mae: list[float], within: float = 0.10) -> int:
    """First epoch from which the training MAE stays within ``within`` of its last value."""
    last = mae[-1]
    for k in range(len(mae)):
        if all(m <= last * (1 + within) for m in mae[k:]):
            return k
    return len(mae) - 1


def row(r: dict) -> dict:
    name = "whole" if r["parts"] == 1 else f"{r['method']}{r['parts']}-halo{r['halo']}"
    return {"cell": name, "method": r["method"], "parts": r["parts"], "halo": r["halo"],
            "trained_edges": r["trained_edges"], "n_edges": r["n_edges"],
            "trained_edge_fraction": r["trained_edge_fraction"],
            "stored_edges": r["stored_edges"], "largest_part_edges": r["largest_part_edges"],
            "node_mae_mEh": r["node_mae_mEh"], "edge_mae_mEh": r["edge_mae_mEh"],
            "eig_l1_pct": r["eig_l1_pct"], "train_mae_last_mEh": r["train_mae_mEh"][-1],
            "converged_epoch": converged_epoch(r["train_mae_mEh"]),
            "epoch_seconds_median": r["epoch_seconds_median"]}


def over_seeds(per_run: list[dict]) -> list[dict]:
    """One row per slicing: the averaged numbers' mean over its seeds, and ``<key>_spread``
    their standard deviation (0 for one seed)."""
    groups: dict = {}
    for r in per_run:
        groups.setdefault(r["cell"], []).append(r)
    rows = []
    for name, rs in groups.items():
        row = {**rs[0], "seeds": sorted(r["seed"] for r in rs)}
        for key in AVERAGED:
            row[key], row[key + "_spread"] = mean_spread([r[key] for r in rs])
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| partitions | halo | seeds | edges trained | edges stored | node MAE (mE_h) | "
             "edge MAE (mE_h) | eigenvalue L1 (%) | train MAE last (mE_h) | converged epoch "
             "| s/epoch |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def value(r, key, digits=3):
        mean = f"{r[key]:.{digits}g}"
        return mean if len(r["seeds"]) == 1 else f"{mean} +- {r[key + '_spread']:.2g}"

    for r in rows:
        name = "whole graph" if r["parts"] == 1 else f"{r['method']} {r['parts']}"
        lines.append(
            f"| {name} | {r['halo'] if r['parts'] > 1 else '-'} | "
            f"{','.join(map(str, r['seeds']))} | "
            f"{r['trained_edges']:,} ({100 * r['trained_edge_fraction']:.0f} %) | "
            f"{r['stored_edges']:,} | {value(r, 'node_mae_mEh')} | {value(r, 'edge_mae_mEh')} | "
            f"{value(r, 'eig_l1_pct')} | {value(r, 'train_mae_last_mEh')} | "
            f"{value(r, 'converged_epoch', 4)} | {r['epoch_seconds_median']:.3g} |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], records: list[dict], path: Path, layers: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    whole = [r for r in rows if r["parts"] == 1]
    colors = {"slab": "#48b", "metis": "#b84"}
    lines = {0: ":", layers: "--", layers + 1: "-"}
    for method, halo in sorted({(r["method"], r["halo"]) for r in rows if r["parts"] > 1}):
        rs = whole + sorted((r for r in rows if (r["method"], r["halo"]) == (method, halo)
                             and r["parts"] > 1), key=lambda r: r["parts"])
        x = [r["parts"] for r in rs]
        for ax, key in zip(axes[:3], ("edge_mae_mEh", "node_mae_mEh", "epoch_seconds_median")):
            ax.errorbar(x, [r[key] for r in rs], yerr=[r[key + "_spread"] for r in rs],
                        fmt=lines.get(halo, "-.") + "o", capsize=3, color=colors.get(method),
                        label=f"{method}, halo {halo}")
    for ax, title in zip(axes[:3], ("edge MAE, unseen (mE_h)", "node MAE, unseen (mE_h)",
                                    "s per epoch (one process)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("parts")
        ax.set_title(title, fontsize=9)
    if axes[0].get_legend_handles_labels()[0]:  # none when only the whole graph ran
        axes[0].legend(fontsize=7)
    first = min(r["seed"] for r in records)
    for r in records:  # one seed's curves: the seeds' differ little
        if r["seed"] == first:
            axes[3].plot(r["train_mae_mEh"], lines.get(r["halo"], "-") if r["parts"] > 1
                         else "-", lw=0.8, label=row(r)["cell"])
    axes[3].set_yscale("log")
    axes[3].set_xlabel("epoch")
    axes[3].set_title(f"training MAE (mE_h), seed {first}", fontsize=9)
    axes[3].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="training dataset directory")
    p.add_argument("--test", required=True, help="unseen dataset directory with S.npz")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="small model, few epochs, r_cut 5")
    p.add_argument("--parts", type=int, nargs="+", help="default 1 2 4 8, --quick 1 2 4")
    p.add_argument("--methods", nargs="+", choices=["slab", "metis"], default=["slab", "metis"])
    p.add_argument("--halos", type=int, nargs="+", help="default L and L + 1")
    p.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0],
                   help="one model per slicing and seed; the table gives mean +- std")
    p.add_argument("--epochs", type=int, help="default 300, --quick 30")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--rcut", type=float, help="Angstrom; default 8, --quick 5")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    settings = Settings(train=check_dataset(a.data), test=check_dataset(a.test, True),
                        rcut=a.rcut or (5.0 if a.quick else 8.0),
                        epochs=a.epochs or (30 if a.quick else 300), lr=a.lr,
                        model=QUICK_MODEL if a.quick else {}, device=a.device)
    parts_list = a.parts or ([1, 2, 4] if a.quick else [1, 2, 4, 8])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    layers = int(settings.model.get("layers", 1))
    wanted = cells(parts_list, a.methods, layers, a.halos)
    for seed in a.seeds:
        for cell in wanted:
            r = run_cell(settings, cell, seed, out)
            print(f"{cell.name} seed {seed}: edges trained {r['trained_edges']} of "
                  f"{r['n_edges']}, node {r['node_mae_mEh']:.3g} mEh, edge "
                  f"{r['edge_mae_mEh']:.3g} mEh", flush=True)
    # the asked slicings' runs in OUT with these settings and seeds, also other invocations'
    names = {c.name for c in wanted}
    records = sorted((r for r in latest_records(out, settings, a.seeds) if row(r)["cell"] in names),
                     key=lambda r: (r["parts"] > 1, r["method"], r["halo"], r["parts"], r["seed"]))
    rows = over_seeds([{**row(r), "seed": r["seed"]} for r in records])
    header = (f"Slice sweep: train {settings.train} (r_cut {settings.rcut} A, "
              f"{settings.epochs} epochs, lr {settings.lr}, seeds "
              f"{', '.join(map(str, a.seeds))}), judged on the unseen {settings.test}; mean "
              "+- standard deviation over seeds; s/epoch: one process, all parts one after "
              "another.\n\n")
    write_text(out / "slice_sweep.md", header + table(rows))
    write_json(out / "slice_sweep.json", {
        "experiment": "slice_sweep", "environment": environment(),
        "settings": {**vars(settings), "model": dict(settings.model), "parts": parts_list,
                     "methods": a.methods, "seeds": a.seeds},
        "rows": rows, "runs": records})
    figure(rows, records, out / "slice_sweep.png", layers)
    print((out / "slice_sweep.md").read_text())
    return rows


if __name__ == "__main__":
    run_script(main, __file__)
