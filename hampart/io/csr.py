"""Sparse matrices (H, S) in and out: CP2K's text CSR and scipy's npz.

CP2K text (``KS_CSR_WRITE`` / ``S_CSR_WRITE`` output, ``.csr``): one ``row col value`` per
line, whitespace separated, indices 1-based, H in Hartree (S dimensionless), the upper triangle
only, the lower, or the full matrix. A one-triangle file is completed to the symmetric matrix
(the diagonal is not doubled); a full one must be symmetric and is kept as is. Every error names
the file and the line. ``.npz`` is ``scipy.sparse.save_npz`` output, read with
``np.load(allow_pickle=False)``; one triangle is completed and a full matrix checked the same
way. Matrices are ``(n_orbitals, n_orbitals)`` float64 csr in the
code's orbital order (CP2K's = ours, see :mod:`hampart.so3` and :mod:`hampart.conventions`).
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
                r, c, v = int(fields[0]), int(fields[1]), float(fields[2])
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


def _entry_line(path, index: int) -> str:
    """'line N (text)' of the ``index``-th (0-based) entry; blank lines are not entries."""
    with open(path, errors="replace") as f:
        k = -1
        for number, line in enumerate(f, 1):
            if line.strip():
                k += 1
                if k == index:
                    return f"line {number} ({line.strip()!r})"
    return f"entry {index + 1}"


def _drop_repeats(path, rows, cols, vals, size):
    """Entries listed twice: identical repeats are dropped, conflicting ones refused."""
    key = rows * size + cols
    order = np.argsort(key, kind="stable")
    same = key[order[1:]] == key[order[:-1]]
    clash = np.flatnonzero(same & (vals[order[1:]] != vals[order[:-1]]))
    if clash.size:
        first, second = order[clash[0]], order[clash[0] + 1]
        raise InputError(path, f"{_entry_line(path, first)} and {_entry_line(path, second)} give "
                         "the same element different values",
                         "regenerate the file; each element must be listed once")
    keep = np.ones(rows.size, dtype=bool)
    keep[order[1:][same]] = False
    return rows[keep], cols[keep], vals[keep]


def read_csr(path, n_orbitals: int | None = None, triangle: str = "auto",
             check_symmetric: bool = True) -> sp.csr_matrix:
    """Read CP2K text CSR as a ``scipy.sparse.csr_matrix`` (float64, canonical).

    ``triangle``: "auto" (detect: all row <= col is upper, all row >= col lower, else full),
    "upper"/"lower" (the file must hold only that triangle; the other is mirrored, the
    diagonal kept once), "full" (kept as is; it must be symmetric to 1e-10 relative).
    ``n_orbitals`` sets the size when the last orbitals have no entry, and bounds the indices.
    ``check_symmetric=False`` returns a "full" matrix as written, symmetric or not (the caller
    measures and handles the asymmetry, e.g. CP2K's on-site blocks at the SCF tolerance).
    """
    import pandas as pd  # its C reader parses in threads: ~4x numpy's text parsers here

    path = os.fspath(path)
    if triangle not in ("auto", "upper", "lower", "full"):
        raise InputError(f"triangle={triangle!r}", "unknown", "use auto, upper, lower or full")
    if not os.path.isfile(path):
        raise InputError(path, "no such matrix file", "check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # more fields than names: pandas would silently drop or index them; refuse instead
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, sep=r"\s+", header=None, names=["r", "c", "v"],
                                dtype={"r": np.int64, "c": np.int64, "v": np.float64},
                                index_col=False, engine="c", comment=None)
    except pd.errors.EmptyDataError:
        raise InputError(path, "is empty", "give the CSR file CP2K wrote") from None
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning, OverflowError,
            UnicodeDecodeError):
        _fail(path, n_orbitals, "cannot be parsed as 'row col value' lines")
    if len(table) == 0:
        raise InputError(path, "is empty", "give the CSR file CP2K wrote")
    rows = table["r"].to_numpy() - 1
    cols = table["c"].to_numpy() - 1
    vals = table["v"].to_numpy()
    del table
    if not np.isfinite(vals).all() or rows.min() < 0 or cols.min() < 0:
        _fail(path, n_orbitals, "contains missing, negative or non-finite entries")
    size = int(max(rows.max(), cols.max())) + 1
    if n_orbitals is None and size > vals.size + 1_000_000:  # a CP2K H lists every diagonal
        k = int(np.argmax(np.maximum(rows, cols)))
        raise InputError(path, f"{_entry_line(path, k)} has index {size}, far more orbitals than "
                         f"the {vals.size} entries", "fix the line, or pass the true size "
                         "(--n-orbitals) if the matrix really is that large")
    if n_orbitals is not None:
        if size > n_orbitals:
            _fail(path, n_orbitals, f"an index exceeds the {n_orbitals} orbitals")
        size = int(n_orbitals)
    below = rows > cols
    above = rows < cols
    if triangle == "auto":
        triangle = "lower" if not above.any() and below.any() else (
            "upper" if not below.any() else "full")
    wrong = {"upper": below, "lower": above}.get(triangle)
    if wrong is not None and wrong.any():
        k = int(np.argmax(wrong))
        raise InputError(path, f"{_entry_line(path, k)} is outside the {triangle} triangle the "
                         "file is read as", "read it with triangle='auto' or 'full'")
    del below, above, wrong
    T = sp.coo_matrix((vals, (rows, cols)), shape=(size, size)).tocsr()  # sums repeats
    if T.nnz != vals.size:
        rows, cols, vals = _drop_repeats(path, rows, cols, vals, size)
        T = sp.coo_matrix((vals, (rows, cols)), shape=(size, size)).tocsr()
    del rows, cols, vals
    if triangle == "full" and not check_symmetric:
        return T
    return _symmetric(T, triangle, path, base=1)


def _symmetric(T, triangle: str, path, base: int) -> sp.csr_matrix:
    """One triangle ("upper"/"lower") mirrored into the symmetric matrix, or a "full" matrix
    checked to be symmetric to 1e-10 relative (``base``: index base of the file's messages)."""
    if triangle == "lower":
        T = T.T.tocsr()
    if triangle != "full":  # mirror; 2d - d is exact, so the diagonal keeps its bits
        return (T + T.T - sp.diags(T.diagonal())).tocsr()
    tol = 1e-10 * max(1.0, float(np.abs(T.data).max(initial=0.0)))
    worst, i, j = _asymmetry(T)
    if worst > tol:
        where = "1-based, as in the file" if base == 1 else "0-based"
        raise InputError(path, f"the full matrix is not symmetric: H[{i + base},{j + base}] = "
                         f"{float(T[i, j])!r} but H[{j + base},{i + base}] = {float(T[j, i])!r} "
                         f"({where})", "give a symmetric H, or one triangle of it")
    return T


def _asymmetry(T: sp.csr_matrix) -> tuple[float, int, int]:
    """``(max |T_ij - T_ji|, i, j)`` where it is largest; sorts T's indices in place."""
    T.sort_indices()
    Tt = T.T.tocsr()  # csr of the transpose: sorted indices
    if np.array_equal(T.indptr, Tt.indptr) and np.array_equal(T.indices, Tt.indices):
        # same pattern (the usual case): compare values entry by entry, no difference matrix
        worst, at = 0.0, -1
        step = 1 << 20  # in chunks: no full-size temporaries for a 20M-entry H
        for k in range(0, T.nnz, step):
            d = np.abs(T.data[k:k + step] - Tt.data[k:k + step])
            m = int(np.argmax(d))
            if d[m] > worst:
                worst, at = float(d[m]), k + m
        if at < 0:
            return 0.0, 0, 0
        return worst, int(np.searchsorted(T.indptr, at, side="right") - 1), int(T.indices[at])
    D = (T - Tt).tocoo()
    if not D.nnz:
        return 0.0, 0, 0
    k = int(np.argmax(np.abs(D.data)))
    return float(abs(D.data[k])), int(D.row[k]), int(D.col[k])


def write_csr(path, H, triangle: str = "upper") -> None:
    """CP2K-style text CSR, 1-based, sorted by row then column; atomic.

    Values are written with ``repr`` (the shortest text that reads back to the same float64),
    so text -> matrix -> text is lossless. ``triangle`` "upper"/"lower" writes one triangle of
    a symmetric H (refused if H is not symmetric to 1e-10 relative); "full" writes every entry.
    """
    if triangle not in ("upper", "lower", "full"):
        raise InputError(f"triangle={triangle!r}", "unknown", "use upper, lower or full")
    H = sp.csr_matrix(H)  # a copy only if H is not csr already
    if H.shape[0] != H.shape[1]:
        raise InputError(path, f"matrix to write is {H.shape[0]} x {H.shape[1]}, not square",
                         "write a square matrix")
    if not np.isfinite(H.data).all():
        raise InputError(path, "matrix to write contains NaN or infinity", "fix the matrix first")
    if not H.has_canonical_format:
        H = H.copy()
        H.sum_duplicates()  # sorted columns, one entry per position
    if triangle != "full":
        worst, i, j = _asymmetry(H)
        if worst > 1e-10 * max(1.0, float(np.abs(H.data).max(initial=0.0))):
            raise InputError(path, f"matrix is not symmetric (max |H_ij - H_ji| = {worst:.3g} "
                             f"at [{i}, {j}], 0-based), one triangle would lose entries",
                             "write it with triangle='full'")
    step = 1_000_000  # entries per chunk: bounded memory for the text of one chunk
    bounds = np.unique(np.concatenate([np.searchsorted(H.indptr, np.arange(0, H.nnz, step)),
                                       [H.shape[0]]]))
    with atomic_file(path) as tmp:
        with open(tmp, "w") as f:
            for r0, r1 in zip(bounds[:-1], bounds[1:]):  # whole rows, in order, columns sorted
                a, b = H.indptr[r0], H.indptr[r1]
                rows = np.repeat(np.arange(r0, r1, dtype=np.int64), np.diff(H.indptr[r0:r1 + 1]))
                cols = H.indices[a:b].astype(np.int64)
                vals = H.data[a:b].astype(np.float64)
                if triangle != "full":
                    keep = cols >= rows if triangle == "upper" else cols <= rows
                    rows, cols, vals = rows[keep], cols[keep], vals[keep]
                f.write("".join([f"{r} {c} {v!r}\n" for r, c, v in zip(
                    (rows + 1).tolist(), (cols + 1).tolist(), vals.tolist())]))


def _read_npz(path) -> sp.csr_matrix:
    """scipy's save_npz layout (csr, csc or coo), without unpickling; indices fully checked."""
    try:
        with np.load(path, allow_pickle=False) as data:
            fmt = data["format"].item()
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            shape = tuple(int(x) for x in data["shape"])
            if fmt in ("csr", "csc"):
                kind = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
                M = kind((data["data"], data["indices"], data["indptr"]), shape=shape)
                M.check_format(full_check=True)  # out-of-range indices would crash scipy later
            elif fmt == "coo":
                M = sp.coo_matrix((data["data"], (data["row"], data["col"])), shape=shape)
            else:
                raise ValueError(f"sparse format {fmt!r} is not csr, csc or coo")
            M = M.tocsr()
            M.sum_duplicates()
            return M
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
        H = _read_npz(path).astype(np.float64, copy=False)
        if H.shape[0] != H.shape[1]:
            raise InputError(path, f"matrix is {H.shape[0]} x {H.shape[1]}, not square",
                             "give the full square H")
        if not np.isfinite(H.data).all():
            raise InputError(path, "contains NaN or infinite values", "regenerate the matrix")
        # which triangles hold entries, from the csr arrays (no tril/triu copies of H)
        rows = np.repeat(np.arange(H.shape[0]), np.diff(H.indptr))
        below, above = bool((H.indices < rows).any()), bool((H.indices > rows).any())
        del rows
        H = _symmetric(H, "lower" if below and not above else "upper" if above and not below
                       else "full", path, base=0)
        if n_orbitals is not None and H.shape[0] != n_orbitals:
            raise InputError(path, f"matrix has {H.shape[0]} orbitals, expected {n_orbitals}",
                             "check the basis and the structure")
        return H
    raise InputError(path, f"unknown matrix extension '{ext}'", "use .csr (CP2K text) or .npz")


def write_matrix(path, H, triangle: str = "upper", extra: dict | None = None) -> None:
    """By extension: ``.csr`` (CP2K text, ``triangle`` as in :func:`write_csr`) or ``.npz``
    (scipy csr, float64, uncompressed); atomic. ``extra`` (.npz only): more named numeric arrays
    stored beside the matrix (scipy.sparse.load_npz ignores them)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csr":
        return write_csr(path, H, triangle=triangle)
    if ext != ".npz":
        raise InputError(path, f"unknown matrix extension '{ext}'", "use .csr or .npz")
    H = sp.csr_matrix(H, dtype=np.float64)
    if not np.isfinite(H.data).all():
        raise InputError(path, "matrix to write contains NaN or infinity", "fix the matrix first")
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: save_npz must not append '.npz' to the name
            if extra:  # save_npz's own keys, then ours
                np.savez(f, format=np.array("csr"), shape=np.array(H.shape), data=H.data,
                         indices=H.indices, indptr=H.indptr, **extra)
            else:
                sp.save_npz(f, H, compressed=False)
