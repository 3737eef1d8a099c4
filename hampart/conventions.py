"""Orbital orders of the codes H comes from, and conversions between them: the one place for them.

Within one atom, every code lists the shells in basis order; they differ only inside a shell of
angular momentum l. Internal, CP2K and PySCF use the 2l+1 real solid harmonics with z polar and
no Condon-Shortley phase; e3nn uses y as polar axis:

========  ==========================  ============================================
code      l = 1                       l = 0 and l >= 2
========  ==========================  ============================================
internal  p_y, p_z, p_x (m=-1,0,1)    m = -l..l (d: xy, yz, z2, xz, x2-y2)
cp2k      as internal                 as internal (CP2K's documented order)
pyscf     p_x, p_y, p_z               as internal, same functions and signs
e3nn      like (x, y, z), y polar     e3nn's real harmonics, y polar
siesta    as internal, times (-1)^m   as internal, times (-1)^m (also sisl's)
========  ==========================  ============================================

PySCF's spherical functions were checked to equal ours, signs included, for l = 0..4 (values
on random points) and by rotating molecules (tests/test_conventions.py): converting PySCF's
matrices is a pure permutation of the p shells. CP2K's order is the internal one: CP2K 2023.1's
S and H of a HfO2 cell (s, p, d, f) and of the same cell rotated satisfy S' = D S D^T to 4e-14 and
H' = D H D^T to the SCF tolerance (tests/dft/test_cp2k_conventions.py). e3nn's basis is not a permutation of ours for l >= 2: it is the fixed
frame change ``Q_l`` of :func:`orbital_from_e3nn` (orbital components = Q_l @ e3nn components).
SIESTA's real harmonics, which sisl uses, carry the Condon-Shortley phase: the function of order
m is (-1)^m times ours (checked against sisl's on random points, tests/evaluate/test_export.py),
so converting to them changes the sign of every odd-m orbital, in the same order.

Conventions of vectors and matrices: ``v_to = T @ v_frm`` with ``T`` from :func:`transform`;
a matrix converts as ``H_to = T H_frm T^T``. For codes related by a permutation,
``v_to = v_frm[permutation(shells, frm, to)]``.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from .errors import InputError
from .so3 import orbital_from_e3nn

__all__ = ["CODES", "permutation", "transform", "orbital_transform", "reorder_matrix", "reorder",
           "orbital_from_e3nn"]

CODES = ("internal", "cp2k", "pyscf", "e3nn", "siesta")
_PERMUTATION_CODES = ("internal", "cp2k", "pyscf")


def _check_code(code: str, allowed=CODES) -> str:
    key = str(code).lower()
    if key not in allowed:
        raise InputError(f"orbital order '{code}'", "unknown or not a permutation of ours",
                         f"use one of {', '.join(allowed)}")
    return key


@functools.lru_cache(maxsize=None)
def _to_internal(l: int, code: str) -> np.ndarray:
    """Index array with ``v_internal = v_code[idx]`` for one shell of angular momentum l."""
    if code == "pyscf" and l == 1:
        return np.array([1, 2, 0])  # (px, py, pz)[1, 2, 0] = (py, pz, px)
    return np.arange(2 * l + 1)


def permutation(shells, frm: str, to: str) -> np.ndarray:
    """Index array ``(n_orb,)`` with ``v_to = v_frm[idx]`` for one atom with these ``shells``
    (angular momenta in basis order). Codes: internal, cp2k, pyscf (e3nn is not a permutation:
    use :func:`transform`)."""
    frm = _check_code(frm, _PERMUTATION_CODES)
    to = _check_code(to, _PERMUTATION_CODES)
    parts, start = [], 0
    for l in shells:
        l = int(l)
        # v_to = v_int[from_internal_to] and v_int = v_frm[to_internal_frm]
        from_internal_to = np.argsort(_to_internal(l, to))
        parts.append(start + _to_internal(l, frm)[from_internal_to])
        start += 2 * l + 1
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _shell_transform(l: int, code: str) -> np.ndarray:
    """``(2l+1, 2l+1)`` with ``v_internal = M @ v_code``."""
    if code == "e3nn":
        return orbital_from_e3nn(l).numpy()
    if code == "siesta":  # same order, Condon-Shortley phase
        return np.diag([(-1.0) ** abs(m) for m in range(-l, l + 1)])
    return np.eye(2 * l + 1)[_to_internal(l, code)]


def orbital_transform(l: int, frm: str, to: str) -> np.ndarray:
    """``(2l+1, 2l+1)`` float64 with ``v_to = T @ v_frm`` for one shell."""
    frm, to = _check_code(frm), _check_code(to)
    return _shell_transform(l, to).T @ _shell_transform(l, frm)


def transform(shells, frm: str, to: str) -> np.ndarray:
    """Block-diagonal ``(n_orb, n_orb)`` float64 with ``v_to = T @ v_frm`` for one atom."""
    blocks = [orbital_transform(int(l), frm, to) for l in shells]
    n = sum(b.shape[0] for b in blocks)
    out = np.zeros((n, n))
    start = 0
    for b in blocks:
        k = b.shape[0]
        out[start:start + k, start:start + k] = b
        start += k
    return out


def _global_layout(numbers, basis, source):
    numbers = np.asarray(numbers, dtype=np.int64)
    basis.check(numbers, source=source)
    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    atom_of = np.repeat(np.arange(len(numbers)), counts)
    local = np.arange(offsets[-1]) - offsets[atom_of]
    return numbers, offsets, atom_of, local


def reorder_matrix(H, numbers, basis, frm: str, to: str, source: str = "matrix"):
    """``H`` (n_orb x n_orb, scipy sparse or dense) from order ``frm`` to order ``to``.

    ``numbers`` ``(n_atoms,)`` atomic numbers (0: ghost without orbitals; -Z: ghost with Z's
    orbitals, converted as Z); ``basis`` a
    :class:`~hampart.basis.Basis`. Permutations are exact (values are only moved); the e3nn
    frame change and siesta's signs multiply by ``T H T^T``. Sparse in, csr out; dense in, ndarray out.
    """
    frm, to = _check_code(frm), _check_code(to)
    numbers, offsets, atom_of, local = _global_layout(numbers, basis, source)
    n_orb = int(offsets[-1])
    if H.ndim != 2 or H.shape != (n_orb, n_orb):
        raise InputError(source, f"matrix is {H.shape}, the basis gives {n_orb} orbitals",
                         "pass the matrix of this structure computed with this basis")
    species = basis.orbital_species
    if frm in _PERMUTATION_CODES and to in _PERMUTATION_CODES:
        # per species, a padded table local orbital -> local source orbital
        width = max((basis.n_orbitals(z) for z in species), default=0)
        table = np.zeros((basis.table_rows(), max(width, 1)), dtype=np.int64)  # -Z wraps
        for z in species:
            p = permutation(basis.shells_of(z), frm, to)
            table[z, :len(p)] = p
        idx = offsets[atom_of] + table[numbers[atom_of], local]
        if sp.issparse(H):
            return sp.csr_matrix(H)[idx][:, idx].tocsr()
        return np.asarray(H)[np.ix_(idx, idx)]
    rows, cols, vals = [], [], []
    for z in species:
        atoms = np.nonzero(numbers == z)[0]
        blk = transform(basis.shells_of(z), frm, to)
        r, c = np.nonzero(blk)
        rows.append((offsets[atoms][:, None] + r).ravel())
        cols.append((offsets[atoms][:, None] + c).ravel())
        vals.append(np.broadcast_to(blk[r, c], (len(atoms), len(r))).ravel())
    T = sp.csr_matrix((np.concatenate(vals or [np.zeros(0)]),
                       (np.concatenate(rows or [np.zeros(0, np.int64)]),
                        np.concatenate(cols or [np.zeros(0, np.int64)]))), shape=(n_orb, n_orb))
    if sp.issparse(H):
        return (T @ sp.csr_matrix(H) @ T.T).tocsr()
    return np.asarray(T @ (T @ np.asarray(H)).T).T


reorder = reorder_matrix  # the name docs/architecture.md uses
