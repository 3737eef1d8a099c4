"""``hampart convert SRC DST``: a matrix between CP2K text CSR (.csr) and scipy npz (.npz);
``hampart export H --reference DIR --to sisl --out NAME.TSHS``: a (predicted) H with the
reference's structure, basis and overlap S as a sisl Hamiltonian file (:mod:`hampart.io.export`).

Conversion is lossless both ways: values are float64 and the text is written with ``repr``
precision. Prints one line: shape, stored entries and the largest asymmetry max |H_ij - H_ji|.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..command import Command

__all__ = ["CONVERT", "ConvertConfig", "run_convert", "EXPORT", "ExportConfig", "run_export"]


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


@dataclass(frozen=True)
class ExportConfig:
    hamiltonian: str
    reference: str
    out: str
    to: str = "sisl"
    overlap: str | None = None  # S file, "identity", None: the reference directory's S.npz
    basis: str | None = None


def _add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("hamiltonian", help="H to export (.npz or .csr), e.g. hampart predict's output")
    p.add_argument("--reference", required=True, help="dataset directory giving the structure, "
                   "basis and overlap S (S.npz); or a structure file with --basis")
    p.add_argument("--to", choices=["sisl"], default="sisl", help="target (default sisl)")
    p.add_argument("--out", required=True, help="output file, NAME.TSHS (sisl, SIESTA, TBtrans)")
    p.add_argument("--overlap", help="overlap S (default: the reference directory's S.npz); "
                   "'identity' for an orthogonal basis")
    p.add_argument("--basis", help="basis name or YAML, when --reference is a structure file")


def run_export(config: ExportConfig) -> int:
    import warnings

    from ..errors import InputError, InputWarning
    from ..evaluate.predict import check_predicted_for
    from .csr import read_matrix
    from .dataset import (check_matrix, declared_orthogonal, find_overlap, load_dataset,
                          read_overlap)
    from .export import write_sisl

    if config.to != "sisl":
        raise InputError("--to", f"unknown target '{config.to}'", "use --to sisl")
    ds = load_dataset(config.reference, basis=config.basis)
    H = read_matrix(config.hamiltonian)
    check_matrix(H, ds.structure, ds.basis, config.hamiltonian)
    check_predicted_for(config.hamiltonian, ds.structure)
    S = None
    if config.overlap is None or config.overlap.lower() != "identity":
        path = config.overlap or find_overlap(config.reference)
        if path is not None:
            S = read_overlap(path, H.shape[0], config.hamiltonian)
        elif not declared_orthogonal(ds.meta):
            warnings.warn(InputWarning(config.reference, "no overlap matrix S: the export will "
                                       "be an orthogonal Hamiltonian (S = I)",
                                       "pass --overlap S.npz for a non-orthogonal basis such as "
                                       "CP2K's, or --overlap identity"), stacklevel=2)
    write_sisl(config.out, H, S, ds.structure, ds.basis)
    print(f"{config.hamiltonian} -> {config.out}: sisl Hamiltonian, {H.shape[0]} orbitals, "
          f"{'orthogonal' if S is None else 'with S'}, Gamma point only (nsc = 1 1 1), eV")
    return 0


EXPORT = Command("export", "write a Hamiltonian with its structure, basis and S for sisl/TBtrans",
                 _add_export,
                 lambda a: ExportConfig(a.hamiltonian, a.reference, a.out, a.to, a.overlap,
                                        a.basis),
                 run_export)
