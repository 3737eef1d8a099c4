"""``hampart train``: a YAML config, or the same keys as flags. Run under ``mpirun -n N``."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ..command import Command, json_object
from .trainer import TrainConfig, config_from_yaml, train

__all__ = ["TRAIN"]


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML file with TrainConfig keys (flags override it)")
    p.add_argument("--parts", nargs="+", metavar="DIR",
                   help="partition directories made by hampart slice (one per structure)")
    p.add_argument("--validation", nargs="+", metavar="DIR",
                   help="partition directories of separate structures")
    p.add_argument("--out", help="output directory (model.pt, checkpoint.pt, log.jsonl)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--schedule", choices=["plateau", "cosine", "hold-cosine"],
                   help="plateau (default): halve the lr after --patience epochs without a "
                   "better loss; cosine: lr falls to --min-lr over --epochs; hold-cosine: lr "
                   "held, then falls to --min-lr over the last --decay-fraction of the epochs")
    p.add_argument("--decay-fraction", type=float, dest="decay_fraction",
                   help="hold-cosine: the fraction of the epochs the decay takes (default 0.25)")
    p.add_argument("--patience", type=int)
    p.add_argument("--min-lr", type=float, dest="min_lr")
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--device", help="auto (default), cpu, cuda")
    p.add_argument("--seed", type=int)
    p.add_argument("--model", type=json_object,
                   help='model hyperparameters as JSON, e.g. \'{"lmax": 4, "channels": 16}\'')
    p.add_argument("--max-gib", type=float, dest="max_gib",
                   help="memory budget per rank in GiB: edges are processed in chunks sized to "
                   "fit (results unchanged); stops if a partition cannot fit")
    p.add_argument("--node-weight", type=float, dest="node_weight",
                   help="loss weight of on-site (node) elements against hopping (edge) ones "
                   "(default 1: every matrix element counts the same)")
    p.add_argument("--loss-weighting", dest="loss_weighting", choices=["elements", "per-l"],
                   help="elements (default): every block element alike; per-l: errors of the "
                   "irreducible components weighted 1/(2L+1), so the rotation-invariant on-site "
                   "parts weigh as much as a whole L = 2 part")
    p.add_argument("--no-resume", action="store_false", dest="resume", default=None)


def _config(args: argparse.Namespace) -> TrainConfig:
    from ..errors import InputError

    flags = {k: getattr(args, k) for k in ("parts", "validation", "out", "epochs", "lr", "schedule",
                                           "decay_fraction",
                                           "patience", "min_lr", "dtype", "device", "seed", "model", "resume",
                                           "max_gib", "node_weight", "loss_weighting")
             if getattr(args, k) is not None}
    if args.config:
        return replace(config_from_yaml(args.config), **flags)
    if "parts" not in flags:
        raise InputError("hampart train", "no partitions given",
                         "pass a config YAML or --parts DIR (made by hampart slice)")
    return TrainConfig(**flags)


def _print(line: str) -> None:
    print(line, flush=True)


def _run(config: TrainConfig) -> int:
    summary = train(config, progress=_print)  # rank 0's progress lines, as they come
    last = summary.get("last") or {}
    if summary.get("rank", 0) == 0 and last:
        print(f"trained {summary['epochs_run']} epochs on {summary['ranks']} rank(s): "
              f"MAE {last.get('mae_mEh', float('nan')):.3f} mEh; model in {config.out}/model.pt")
    elif summary.get("rank", 0) == 0:
        print(f"no epoch to run (--epochs {config.epochs}, next epoch "
              f"{summary['last_epoch'] + 1}); model in {config.out}/model.pt")
    return 0


TRAIN = Command("train", "train a model on partitions (run under mpirun -n N for N ranks)",
                _add, _config, _run)
