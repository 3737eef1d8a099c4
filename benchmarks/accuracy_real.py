"""Accuracy on real CP2K data: train on one dataset, judge on an unseen one, as the paper does.

    python benchmarks/accuracy_real.py --train ../shared/data/cp2k-si/asi216-a \
        --test ../shared/data/cp2k-si/asi216-b --models default paper --seeds 0 1 2 \
        --epochs 300 --out benchmarks/results/accuracy_si

For each model and seed: slice the training set (METIS 2 parts, halo 1, r_cut 8: the setting
the numbers in docs/model.md come from; ``--parts``, ``--halo`` change it), ``hampart train``
(one process, Adam at ``--lr``),
predict the test structure, then node / edge MAE (mE_h, elements of the blocks within r_cut),
the paper's relative eigenvalue error ||e - e_ref||_1 / ||e_ref||_1 of H c = E S c with the test
set's S, eigenvalue MAE, and the band gap from the electron count in the test set's meta.json.
``--stages 300 600 ...`` resumes one run and evaluates after each (accuracy against epochs);
``--resume`` continues runs from their checkpoints in OUT. ``--schedule cosine`` lowers the
learning rate to ``--min-lr`` along a cosine over the epochs, ``hold-cosine`` over the last
``--decay-fraction`` of them; with ``--stages`` each stage is then a run of its own
(``OUT/<model>-<schedule><epochs>-seed<seed>``), since their learning rates depend on the length. ``--train A B C`` trains one model
on several cells, each sliced alike (give such runs their own OUT).
Writes one JSON line per evaluation to OUT/results.jsonl and a Markdown summary to OUT/table.md
(mean +- standard deviation over seeds).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from hampart.allocator import keep_freed_memory, mode as allocator_mode
from hampart.distributed.trainer import TrainConfig, train
from hampart.experiments import judge
from hampart.model import OFFICIAL_HYPERPARAMETERS, PAPER_HYPERPARAMETERS
from hampart.model.io import load_model
from hampart.partition import slice_dataset

# named configurations: hampart's default, the paper's network, each option from the paper's
# code alone on top of the default, the paper's network with all of them ("official"), and the
# default with more or less capacity
MODELS = {"default": {}, "paper": PAPER_HYPERPARAMETERS,
          "invariants": {"onsite_invariants": True},
          "invariants-32": {"onsite_invariants": True, "onsite_channels": 32},
          "products": {"onsite_products": True},
          "products-32": {"onsite_invariants": True, "onsite_products": True,
                          "onsite_channels": 32},
          "edge-embedding": {"edge_embedding": True},
          "message-3c": {"message_edges": True},
          "radial-species": {"radial_species": True},
          "attention": {"att_channels": 16, "attention_norm": True, "value_channels": 16},
          "radial-basis": {"radial_stop": 13.0, "radial_width": 2.0},
          "official": OFFICIAL_HYPERPARAMETERS,
          # capacity at the same budget: feature degree, channels, depth (layers 2 needs --halo 2)
          "lmax-2": {"lmax": 2}, "lmax-6": {"lmax": 6}, "channels-32": {"channels": 32},
          "layers-2": {"layers": 2},
          # the long-budget candidate: three-body on-site terms and two layers (--halo 2)
          "products-32-layers-2": {"onsite_invariants": True, "onsite_products": True,
                                   "onsite_channels": 32, "layers": 2}}


def judge_checkpoint(path, parts, test_dir, images="refuse") -> dict:
    """Errors on ``test_dir`` of the model in a training checkpoint (``epochs``: epochs run)."""
    from hampart.basis import Basis
    from hampart.distributed.trainer import BEFORE_OPTIONS, load_state
    from hampart.model import HamiltonianModel
    from hampart.partition import load_manifest

    state = torch.load(path, map_location="cpu", weights_only=True)
    basis = Basis.from_dict(load_manifest(parts)["params"]["basis"], source=str(parts))
    model = HamiltonianModel(basis, **{**BEFORE_OPTIONS, **state["model"]})
    load_state(model, state["state_dict"], path)
    return {"epochs": int(state["epoch"]) + 1, **judge(model.eval(), test_dir, images=images)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, nargs="+",
                   help="training dataset(s): several train one model on all of them")
    p.add_argument("--test", required=True)
    p.add_argument("--models", nargs="+", default=["default", "paper"], choices=list(MODELS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--stages", nargs="+", type=int, help="evaluate after each of these epochs")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--patience", type=int, default=500)
    p.add_argument("--schedule", choices=["plateau", "cosine", "hold-cosine"], default="plateau")
    p.add_argument("--min-lr", type=float, default=1e-5)
    p.add_argument("--decay-fraction", type=float, default=0.25,
                   help="hold-cosine: the fraction of the epochs the decay takes")
    p.add_argument("--rcut", type=float, default=8.0)
    p.add_argument("--parts", type=int, default=2, help="METIS parts per training cell")
    p.add_argument("--halo", type=int, default=1,
                   help="1 (the paper's): edges with a halo sender are not trained; 2: all are")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse",
                   help="minimum: cells under 2 r_cut (e.g. 96-atom HfO2 at r_cut 8), one edge "
                        "per pair at its closest image")
    p.add_argument("--node-weight", type=float, default=1.0,
                   help="loss weight of on-site elements (TrainConfig.node_weight)")
    p.add_argument("--loss-weighting", default="elements", choices=["elements", "per-l"],
                   help="TrainConfig.loss_weighting")
    p.add_argument("--checkpoints", nargs="+", metavar="MODEL=PATH",
                   help="judge these training checkpoints (a run's checkpoint.pt, copied) "
                        "instead of training: accuracy part-way through a run")
    p.add_argument("--resume", action="store_true",
                   help="continue each run from its checkpoint in OUT (its train_seconds then "
                        "count only the resumed part)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    keep_freed_memory()  # as hampart train runs (hampart.allocator)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # one training set keeps OUT/parts (results of earlier runs); several get one each
    all_parts = [slice_dataset(d, rcut=a.rcut, method="metis", parts=a.parts, halo=a.halo,
                               images=a.images,
                               out=out / ("parts" if len(a.train) == 1 else
                                          f"parts-{Path(d).name}"))[0] for d in a.train]
    parts = all_parts[0]
    train_name = a.train[0] if len(a.train) == 1 else ",".join(a.train)
    if a.checkpoints:
        for spec in a.checkpoints:
            name, path = spec.split("=", 1)
            record = judge_checkpoint(path, parts, a.test, a.images)
            record.update(model=name, seed=a.seeds[0], lr=a.lr, patience=a.patience,
                          train=train_name,
                          checkpoint=str(path))
            print(json.dumps(record), flush=True)
            with open(out / "results.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        write_table(out)
        return
    stages = a.stages or [a.epochs]
    for name in a.models:
        for seed in a.seeds:
            tag = "" if a.node_weight == 1 else f"-nw{a.node_weight:g}"
            tag += "" if a.loss_weighting == "elements" else f"-{a.loss_weighting}"
            per_length = a.schedule != "plateau"  # learning rates that depend on the length
            decay = "" if a.decay_fraction == 0.25 else f"{a.decay_fraction:g}"
            run = out / f"{name}{tag}-seed{seed}"
            t0 = time.perf_counter()
            for k, epochs in enumerate(stages):
                if per_length:  # one run per length
                    run = out / f"{name}{tag}-{a.schedule}{decay}{epochs}-seed{seed}"
                    t0 = time.perf_counter()
                train(TrainConfig(parts=[str(x) for x in all_parts], out=str(run), model=dict(MODELS[name]),
                                  epochs=epochs, lr=a.lr, schedule=a.schedule, min_lr=a.min_lr,
                                  decay_fraction=a.decay_fraction,
                                  patience=a.patience, seed=seed,
                                  node_weight=a.node_weight, loss_weighting=a.loss_weighting,
                                  resume=(k > 0 and not per_length) or a.resume, log_every=50,
                                  device="cpu"),
                      progress=print)
                seconds = time.perf_counter() - t0
                model, _ = load_model(run / "model.pt")
                record = {"model": name, "seed": seed, "epochs": epochs, "lr": a.lr,
                          "parts": a.parts, "halo": a.halo,
                          "patience": a.patience, "node_weight": a.node_weight,
                          **({} if not per_length else {"schedule": a.schedule, "min_lr": a.min_lr}),
                          **({} if a.schedule != "hold-cosine"
                             else {"decay_fraction": a.decay_fraction}),
                          "loss_weighting": a.loss_weighting,
                          "train_seconds": round(seconds, 1),
                          "threads": torch.get_num_threads(), "malloc": allocator_mode(),
                          "torch": torch.__version__,
                          "machine": platform.processor() or platform.machine(),
                          "train": train_name, "test": str(a.test),
                          **({} if a.images == "refuse" else {"images": a.images}),
                          **judge(model, a.test, images=a.images)}
                print(json.dumps(record), flush=True)
                with open(out / "results.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
    write_table(out)


def write_table(out: Path) -> None:
    """OUT/table.md: mean +- standard deviation over seeds per (model and learning rate,
    epochs, patience)."""
    rows = [json.loads(line) for line in open(out / "results.jsonl")]
    keys = [("node_mae_mEh", "node MAE (mE_h)"), ("edge_mae_mEh", "edge MAE (mE_h)"),
            ("eig_l1_pct", "eigenvalue L1 (%)"), ("gap_eV", "gap (eV)")]
    lines = ["| model | epochs | patience | seeds | " + " | ".join(k[1] for k in keys) + " |",
             "|---|---|---|---|" + "---|" * len(keys)]
    groups: dict = {}
    for r in rows:
        weight = r.get("node_weight", 1.0)
        name = r["model"] if weight == 1 else f"{r['model']}, node weight {weight:g}"
        if r.get("loss_weighting", "elements") != "elements":
            name += f", loss {r['loss_weighting']}"
        name += f", lr {r['lr']:g}" + (f" {r['schedule']}" if r.get("schedule", "plateau")
                                        != "plateau" else "")
        if r.get("decay_fraction", 0.25) != 0.25:
            name += f" (last {r['decay_fraction']:g})"
        groups.setdefault((name, r["epochs"], r["patience"]), []).append(r)
    for (name, epochs, patience), rs in sorted(groups.items()):
        cells = []
        for key, _ in keys:
            vals = [r[key] for r in rs if key in r]
            spread = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.3g} +- {spread:.2g}" if vals else "-")
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(f"| {name} | {epochs} | {patience} | {seeds} | " + " | ".join(cells) + " |")
    (out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
