"""Sparse matrices (H, S) in and out: CP2K's text CSR and scipy's npz.

CP2K text (``KS_CSR_WRITE`` / ``S_CSR_WRITE`` output): one ``row col value`` per line, indices
1-based, H in Hartree, the upper triangle only or the full matrix. A one-triangle file is
completed to the symmetric matrix (the diagonal is not doubled). ``.npz`` is
``scipy.sparse.save_npz`` (read back with ``allow_pickle=False``). Orbital order is the code's
(CP2K's = ours, see :mod:`hampart.conventions`).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from .atomic import atomic_file

__all__ = ["read_csr", "write_csr", "read_matrix", "write_matrix"]


def _first_bad_line(path, n_orbitals=None):
    """Line number and text of the first malformed line (the slow path, errors only)."""
    with open(path, errors="replace") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                return number, line.rstrip(), "expected 3 fields 'row col value'"
            try:
                r, c, v = int(fields[0]), int(fields[1]), float(fields[2].replace("D", "E"))
            except ValueError:
                return number, line.rstrip(), "not 'integer integer number'"
            if r < 1 or c < 1:
                return number, line.rstrip(), "indices are 1-based (>= 1)"
            if n_orbitals is not None and (r > n_orbitals or c > n_orbitals):
                return number, line.rstrip(), f"index beyond the {n_orbitals} orbitals"
            if not np.isfinite(v):
                return number, line.rstrip(), "value is NaN or infinite"
    return None


def _fail(path, n_orbitals, default):
    bad = _first_bad_line(path, n_orbitals)
    if bad is None:
        raise InputError(path, default, "rewrite the file from CP2K (KS_CSR_WRITE)")
    number, text, why = bad
    raise InputError(path, f"line {number} ({text!r}): {why}",
                     "fix or regenerate the file; each line is '<row> <col> <value>', 1-based")


def read_csr(path, n_orbitals: int | None = None, triangle: str = "auto") -> sp.csr_matrix:
    """Read CP2K text CSR as a symmetric ``scipy.sparse.csr_matrix`` (float64).

    ``triangle``: "auto" (detect), "upper"/"lower" (complete the other), "full" (keep as is;
    the file must then be symmetric to 1e-10 relative).
    """
    import pandas as pd

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "no such matrix file", "check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = pd.read_csv(path, sep=r"\s+", header=None, names=["r", "c", "v"],
                                dtype={"r": np.int64, "c": np.int64, "v": np.float64},
                                engine="c", comment=None)
    except pd.errors.EmptyDataError:
        raise InputError(path, "is empty", "give the CSR file CP2K wrote") from None
    except (ValueError, pd.errors.ParserError, OverflowError):
        _fail(path, n_orbitals, "cannot be parsed as 'row col value' lines")
    if len(table) == 0:
        raise InputError(path, "is empty", "give the CSR file CP2K wrote")
    rows = table["r"].to_numpy() - 1
    cols = table["c"].to_numpy() - 1
    vals = table["v"].to_numpy()
    if table.isna().to_numpy().any() or not np.isfinite(vals).all() or (rows < 0).any() \
            or (cols < 0).any():
        _fail(path, n_orbitals, "contains missing, negative or non-finite entries")
    size = int(max(rows.max(), cols.max())) + 1
    if n_orbitals is not None:
        if size > n_orbitals:
            _fail(path, n_orbitals, f"an index exceeds the {n_orbitals} orbitals")
        size = int(n_orbitals)
    upper, lower = bool((rows <= cols).all()), bool((rows >= cols).all())
    if triangle == "auto":
        triangle = "full" if not (upper or lower) else ("upper" if upper else "lower")
        if upper and lower:
            triangle = "upper"  # diagonal only
    if triangle not in ("upper", "lower", "full"):
        raise InputError(f"triangle '{triangle}'", "unknown", "use auto, upper, lower or full")
    T = sp.coo_matrix((vals, (rows, cols)), shape=(size, size)).tocsr()  # sums duplicates
    if T.nnz != vals.size:
        raise InputError(path, "the same (row, col) appears more than once",
                         "regenerate the file; each element must be listed once")
    if triangle == "full":
        asym = abs(T - T.T)
        if asym.nnz and asym.max() > 1e-10 * max(1.0, abs(vals).max()):
            raise InputError(path, f"full matrix is not symmetric (max |H_ij - H_ji| = "
                             f"{asym.max():.3g})", "give a symmetric H, or one triangle of it")
        return T
    # the other triangle from the transpose; the diagonal once
    return (T + T.T - sp.diags(T.diagonal())).tocsr()


def write_csr(path, H, triangle: str = "upper") -> None:
    """CP2K-style text CSR, 1-based, values at full precision (``%.17g``); atomic."""
    H = sp.coo_matrix(H)
    keep = {"upper": H.row <= H.col, "lower": H.row >= H.col,
            "full": np.ones(H.nnz, dtype=bool)}[triangle]
    order = np.lexsort((H.col[keep], H.row[keep]))
    rows, cols, vals = H.row[keep][order] + 1, H.col[keep][order] + 1, H.data[keep][order]
    with atomic_file(path) as tmp:
        with open(tmp, "w") as f:
            step = 1_000_000
            for s in range(0, len(rows), step):
                block = np.column_stack([rows[s:s + step], cols[s:s + step]])
                lines = [f"{r} {c} {v!r}" for (r, c), v in zip(block.tolist(),
                                                               vals[s:s + step].tolist())]
                f.write("\n".join(lines) + "\n")


def _read_npz(path) -> sp.csr_matrix:
    try:
        with np.load(path, allow_pickle=False) as data:
            fmt = data["format"].item()
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            shape = tuple(int(x) for x in data["shape"])
            if fmt == "csr":
                return sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=shape)
            if fmt == "csc":
                return sp.csc_matrix((data["data"], data["indices"], data["indptr"]),
                                     shape=shape).tocsr()
            if fmt == "coo":
                return sp.coo_matrix((data["data"], (data["row"], data["col"])), shape=shape).tocsr()
            raise ValueError(f"format {fmt}")
    except Exception as e:
        raise InputError(path, f"not a scipy sparse .npz ({type(e).__name__}: {e})",
                         "write it with scipy.sparse.save_npz or hampart convert") from None


def read_matrix(path, n_orbitals: int | None = None) -> sp.csr_matrix:
    """By extension: ``.csr`` (CP2K text) or ``.npz`` (scipy). Checks finiteness and size."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csr":
        return read_csr(path, n_orbitals)
    if ext == ".npz":
        if not os.path.isfile(path):
            raise InputError(path, "no such matrix file", "check the path")
        H = _read_npz(path).astype(np.float64)
        if H.shape[0] != H.shape[1]:
            raise InputError(path, f"matrix is {H.shape[0]} x {H.shape[1]}, not square",
                             "give the full square H")
        if not np.isfinite(H.data).all():
            raise InputError(path, "contains NaN or infinite values", "regenerate the matrix")
        if n_orbitals is not None and H.shape[0] != n_orbitals:
            raise InputError(path, f"matrix has {H.shape[0]} orbitals, expected {n_orbitals}",
                             "check the basis and the structure")
        return H
    raise InputError(path, f"unknown matrix extension '{ext}'", "use .csr (CP2K text) or .npz")


def write_matrix(path, H) -> None:
    """By extension: ``.csr`` (CP2K text, upper triangle) or ``.npz`` (scipy csr); atomic."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csr":
        return write_csr(path, H)
    if ext != ".npz":
        raise InputError(path, f"unknown matrix extension '{ext}'", "use .csr or .npz")
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: save_npz must not append '.npz' to the name
            sp.save_npz(f, sp.csr_matrix(H), compressed=False)
