"""``hampart convert``: CP2K text CSR <-> scipy npz, lossless."""

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


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="matrix to read (.csr or .npz)")
    p.add_argument("target", help="matrix to write (.csr or .npz)")
    p.add_argument("--n-orbitals", type=int, dest="n_orbitals",
                   help="matrix size when the last orbitals have no entry")


def run_convert(config: ConvertConfig) -> int:
    from .csr import read_matrix, write_matrix

    H = read_matrix(config.source, config.n_orbitals)
    write_matrix(config.target, H)
    asym = abs(H - H.T)
    print(f"{config.source} -> {config.target}: {H.shape[0]} x {H.shape[1]}, {H.nnz} nonzeros, "
          f"max |H_ij - H_ji| = {asym.max() if asym.nnz else 0.0:.3g}")
    return 0


CONVERT = Command("convert", "convert a matrix between CP2K text CSR and scipy npz", _add,
                  lambda a: ConvertConfig(a.source, a.target, a.n_orbitals), run_convert)
