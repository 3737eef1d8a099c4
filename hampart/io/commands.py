"""``hampart convert SRC DST``: a matrix between CP2K text CSR (.csr) and scipy npz (.npz).

Lossless both ways: values are float64 and the text is written with ``repr`` precision. Prints
one line: shape, stored entries and the largest asymmetry max |H_ij - H_ji|.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..command import Command

__all__ = ["CONVERT", "ConvertConfig", "run_convert"]


@dataclass(frozen=True)
class ConvertConfig:
    source: str
    target: str
    n_orbitals: int | None = None
    triangle: str = "upper"


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="matrix to read (.csr CP2K text or .npz)")
    p.add_argument("target", help="matrix to write (.csr or .npz); written atomically")
    p.add_argument("--n-orbitals", type=int, dest="n_orbitals",
                   help="matrix size, when the last orbitals have no entry in a .csr")
    p.add_argument("--triangle", choices=("upper", "lower", "full"), default="upper",
                   help="what a .csr target holds (default: upper, as CP2K writes it)")


def _config(args: argparse.Namespace) -> ConvertConfig:
    return ConvertConfig(args.source, args.target, args.n_orbitals, args.triangle)


def run_convert(config: ConvertConfig) -> int:
    import os

    from ..errors import InputError
    from .csr import read_matrix, write_matrix

    if os.path.abspath(config.source) == os.path.abspath(config.target):
        raise InputError(config.target, "is the source itself", "give another output path")
    H = read_matrix(config.source, config.n_orbitals)
    write_matrix(config.target, H, triangle=config.triangle)
    asym = abs(H - H.T)
    print(f"{config.source} -> {config.target}: {H.shape[0]} x {H.shape[1]}, {H.nnz} stored "
          f"entries, max |H_ij - H_ji| = {asym.max() if asym.nnz else 0.0:.3g}")
    return 0


CONVERT = Command("convert", "convert a matrix between CP2K text CSR and scipy npz (lossless)",
                  _add, _config, run_convert)

