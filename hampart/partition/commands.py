"""``hampart slice``: cut a dataset into partitions with halos, written once and reused.

::

    hampart slice DATASET_DIR_or_STRUCTURE [--hamiltonian H.csr --basis szv.yaml] --rcut 8 \
        --method slab|metis --parts 8 [--axis x] [--balance width|atoms] [--halo 1] [--seed 0] \
        [--images refuse|minimum] --out DIR [--force] [--plot parts.png]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..command import Command

__all__ = ["SLICE", "SliceConfig", "run_slice"]


@dataclass(frozen=True)
class SliceConfig:
    data: str
    rcut: float
    parts: int
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


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="dataset directory (hampart generate) or structure file")
    p.add_argument("--hamiltonian", help="Hamiltonian file (.csr text or .npz), Hartree")
    p.add_argument("--basis", help="basis name (SZV, DZVP) or YAML file")
    p.add_argument("--rcut", type=float, required=True, help="graph cutoff radius in Angstrom")
    p.add_argument("--method", choices=["slab", "metis"], default="metis")
    p.add_argument("--parts", type=int, required=True, help="number of partitions")
    p.add_argument("--axis", help="slab axis: x, y or z (cell vector a, b or c); slab only")
    p.add_argument("--balance", choices=["width", "atoms"], default="width",
                   help="slab: equal widths (default) or equal atom counts")
    p.add_argument("--halo", type=int, default=1,
                   help="halo depth in hops: >= the model's layers L; L+1 trains every edge")
    p.add_argument("--seed", type=int, default=0, help="METIS seed")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse",
                   help="pairs meeting through two periodic images: refuse, or keep the "
                   "minimum image")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--force", action="store_true",
                   help="replace an --out that holds partitions of other inputs or parameters")
    p.add_argument("--plot", help="also write a PNG of the owners and one part's halo")


def _config(args: argparse.Namespace) -> SliceConfig:
    return SliceConfig(data=args.data, rcut=args.rcut, parts=args.parts, out=args.out,
                       method=args.method, halo=args.halo, axis=args.axis, balance=args.balance,
                       seed=args.seed, images=args.images, hamiltonian=args.hamiltonian,
                       basis=args.basis, force=args.force, plot=args.plot)


def run_slice(config: SliceConfig) -> int:
    from .store import slice_dataset

    out, _ = slice_dataset(config.data, config.rcut, config.method, config.parts, config.halo,
                           config.out, axis=config.axis,
                           balance=config.balance if config.method == "slab" else None,
                           seed=config.seed, images=config.images, hamiltonian=config.hamiltonian,
                           basis=config.basis, replace=config.force, log=print)
    if config.plot:
        from .plot import plot_partitions

        print(f"plot: {plot_partitions(out, config.plot)}")
    return 0


SLICE = Command("slice", "cut a dataset into partitions with halos (written once, then reused)",
                _add, _config, run_slice)
