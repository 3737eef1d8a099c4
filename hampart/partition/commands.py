"""``hampart slice``: cut a dataset into partitions with halos, written once and reused.

::

    hampart slice DATASET_DIR_or_STRUCTURE [--hamiltonian H.csr --basis szv.yaml] --rcut 8 \
        --method slab|metis --parts 8 [--axis x] [--balance width|atoms] [--halo 1] [--seed 0] \
        [--images refuse|minimum] --out DIR [--force] [--plot parts.png]
    hampart slice ... --parts auto --max-gib 70 [--min-parts 8] [--model JSON] [--dtype float32]

``--parts auto`` sizes the parts with the model's memory law (:mod:`hampart.model.memory`): the
one place where slicing looks ahead to the model, since a part's cost is the model's.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..command import Command, json_object

__all__ = ["SLICE", "SliceConfig", "run_slice"]


@dataclass(frozen=True)
class SliceConfig:
    data: str
    rcut: float
    parts: int | str
    out: str
    method: str = "metis"
    halo: int = 1
    axis: str | None = None
    balance: str = "width"
    seed: int = 0
    images: str = "refuse"
    hamiltonian: str | None = None
    basis: str | None = None
    force: bool = False
    plot: str | None = None
    max_gib: float | None = None
    min_parts: int = 1
    model: dict | None = None
    dtype: str = "float32"


def _parts(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("give a whole number of parts, or auto") from None


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="dataset directory (hampart generate) or structure file")
    p.add_argument("--hamiltonian", help="Hamiltonian file (.csr text or .npz), Hartree")
    p.add_argument("--basis", help="basis name (SZV, DZVP) or YAML file")
    p.add_argument("--rcut", type=float, required=True, help="graph cutoff radius in Angstrom")
    p.add_argument("--method", choices=["slab", "metis"], default="metis")
    p.add_argument("--parts", type=_parts, required=True,
                   help="number of partitions, or auto: the fewest whose largest trains whole "
                   "within --max-gib")
    p.add_argument("--max-gib", type=float, dest="max_gib",
                   help="with --parts auto: memory per rank (GiB) for training one part")
    p.add_argument("--min-parts", type=int, default=1, dest="min_parts",
                   help="with --parts auto: at least this many parts (e.g. the ranks)")
    p.add_argument("--model", type=json_object, help="with --parts auto: the model's "
                   "hyperparameters as for hampart train (default: the paper's)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="with --parts auto: the training dtype")
    p.add_argument("--axis", help="slab axis: x, y or z (cell vector a, b or c); slab only")
    p.add_argument("--balance", choices=["width", "atoms"], default="width",
                   help="slab: equal widths (default) or equal atom counts")
    p.add_argument("--halo", type=int, default=1,
                   help="halo depth in hops: >= the model's layers L; L+1 trains every edge; "
                   "0 writes raw parts (no halo) for comparison only: each part trains alone, "
                   "outputs near cuts are not exact")
    p.add_argument("--seed", type=int, default=0, help="METIS seed")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse",
                   help="pairs meeting through two periodic images: refuse, or keep the "
                   "minimum image")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--force", action="store_true",
                   help="replace an --out that holds partitions of other inputs or parameters")
    p.add_argument("--plot", help="also write a PNG: atoms on the xy, xz, yz planes coloured by "
                   "owner, part 0's halo as rings, owned atoms per part in the legend")


def _config(args: argparse.Namespace) -> SliceConfig:
    return SliceConfig(data=args.data, rcut=args.rcut, parts=args.parts, out=args.out,
                       method=args.method, halo=args.halo, axis=args.axis, balance=args.balance,
                       seed=args.seed, images=args.images, hamiltonian=args.hamiltonian,
                       basis=args.basis, force=args.force, plot=args.plot, max_gib=args.max_gib,
                       min_parts=args.min_parts, model=args.model, dtype=args.dtype)


def run_slice(config: SliceConfig) -> int:
    from .slicing import slice_dataset

    budget = part_memory = None  # slice_dataset refuses auto without a budget and vice versa
    if config.max_gib is not None:
        budget = {"max_gib": config.max_gib, "model": config.model or {}, "dtype": config.dtype,
                  "min_parts": config.min_parts}
        # the command line sits above the model: it hands the model's memory law to slicing
        from ..model.memory import part_memory
    out, _ = slice_dataset(config.data, config.rcut, config.method, config.parts, config.halo,
                           config.out, axis=config.axis,
                           balance=config.balance if config.method == "slab" else None,
                           seed=config.seed, images=config.images, hamiltonian=config.hamiltonian,
                           basis=config.basis, replace=config.force, log=print, budget=budget,
                           part_memory=part_memory)
    if config.plot:
        from .plot import plot_partitions

        print(f"plot: {plot_partitions(out, config.plot)}")
    return 0


SLICE = Command("slice", "cut a dataset into partitions with halos (written once, then reused)",
                _add, _config, run_slice)
