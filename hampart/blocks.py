"""Hamiltonian blocks: sparse H <-> padded node/edge blocks <-> irreducible components.

Units: H in Hartree. Orbital order: internal (CP2K's; see :mod:`hampart.basis`). Edge direction:
edge j -> i (``edge_index[:, e] = (j, i)``) carries H_ij = H[orbitals of i, orbitals of j].

Blocks are padded into the *union basis* of the :class:`~hampart.basis.Basis`: every block is a
``(u, u)`` array, ``u = basis.n_union``; entries a species (pair) lacks are zero, and
:func:`block_masks` says which exist. Node blocks ``(n_atoms, u, u)`` are H_ii, edge blocks
``(n_edges, u, u)`` are H_ij. Ghost atoms of atomic number 0 own no orbitals: their blocks are
all zero; a ghost ``-Z`` keeps element Z's orbitals and has Z's blocks (see :mod:`hampart.basis`).

At the Gamma point H holds, for each atom pair, the sum over its periodic images. Extraction
therefore needs at most one edge per ordered pair (``radius_graph`` guarantees it), and
assembly sums the blocks of several edges of one pair.

Irreducible components (:class:`IrrepsLayout`): for every pair of union shells (a, b) with
angular momenta (la, lb), the (2la+1) x (2lb+1) sub-block is taken to e3nn's basis
(``Q_la^T B Q_lb``, :func:`hampart.so3.orbital_from_e3nn`) and projected with e3nn's Wigner-3j
symbols onto L = |la-lb| .. la+lb. All of it is one orthogonal matrix ``U`` ``(u*u, u*u)``:
``irreps = blocks.reshape(..., u*u) @ U.T`` and ``blocks = (irreps @ U).reshape(..., u, u)``.
When a block transforms as ``D^la(R) B D^lb(R)^T`` (orbital basis), each L-slice of the
irreps transforms as e3nn's ``D^L(R)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from e3nn import o3

from .errors import InputError
from .so3 import orbital_from_e3nn

__all__ = ["extract_blocks", "assemble_blocks", "block_entries", "block_masks",
           "species_masks", "union_local_table", "pair_keys", "edge_of_pairs", "IrrepsLayout"]


# ---------------------------------------------------------------------------- species tables
def species_masks(basis) -> np.ndarray:
    """``(2 max Z + 1, u)`` bool, indexed by atomic number (a ghost's -Z wraps to the end):
    which union orbitals a species has. Row 0 (orbital-less ghosts) and elements outside the
    basis are all False."""
    table = np.zeros((basis.table_rows(), basis.n_union), dtype=bool)
    for z in basis.orbital_species:
        table[z] = basis.union_mask(z)
    return table


def union_local_table(basis) -> np.ndarray:
    """``(2 max Z + 1, u)`` int64, indexed by atomic number (negative wraps): local orbital
    index (internal order) of each union slot for each species, -1 where it lacks that slot."""
    table = np.full((basis.table_rows(), basis.n_union), -1, dtype=np.int64)
    for z in basis.orbital_species:
        uidx = basis.union_index(z)
        table[z, uidx] = np.arange(len(uidx))
    return table


def _union_slot_table(basis) -> np.ndarray:
    """``(2 max Z + 1, max n_orb)`` int64, indexed by atomic number (negative wraps): union
    slot of each local orbital of each species."""
    width = max((basis.n_orbitals(z) for z in basis.elements), default=0)
    table = np.zeros((basis.table_rows(), max(width, 1)), dtype=np.int64)
    for z in basis.orbital_species:
        uidx = basis.union_index(z)
        table[z, :len(uidx)] = uidx
    return table


def _as_numpy(x, dtype=None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def block_masks(numbers, basis, edge_index) -> tuple[np.ndarray, np.ndarray]:
    """``(node_mask (n, u, u), edge_mask (m, u, u))`` bool: True where both orbitals exist
    (edge j -> i: rows from species of i, columns from species of j)."""
    numbers = _as_numpy(numbers, np.int64)
    edge_index = _as_numpy(edge_index, np.int64).reshape(2, -1)
    basis.check(numbers)
    per_atom = species_masks(basis)[numbers]
    node = per_atom[:, :, None] & per_atom[:, None, :]
    edge = per_atom[edge_index[1]][:, :, None] & per_atom[edge_index[0]][:, None, :]
    return node, edge


# ---------------------------------------------------------------------------- extract
def pair_keys(edge_index, n_atoms, source):
    """Sorted keys i * n + j of the edges (j -> i) and the edge id of each sorted key; refuses
    a graph with several edges (periodic images) for one atom pair."""
    key = edge_index[1] * np.int64(n_atoms) + edge_index[0]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    if len(sorted_key) > 1 and (sorted_key[1:] == sorted_key[:-1]).any():
        raise InputError(source, "the graph has several edges (periodic images) for one atom "
                                 "pair; a Gamma-point H cannot be split between them",
                         "build the graph with images='refuse' and a smaller r_cut, or "
                         "images='minimum' (one edge per pair)")
    return sorted_key, order


def edge_of_pairs(sorted_key, order, keys) -> np.ndarray:
    """Edge id of each atom-pair key i * n + j (from :func:`pair_keys`), -1 where the pair
    is no edge of the graph."""
    edge = np.full(len(keys), -1, dtype=np.int64)
    if len(sorted_key):
        pos = np.minimum(np.searchsorted(sorted_key, keys), len(sorted_key) - 1)
        hit = sorted_key[pos] == keys
        edge[hit] = order[pos[hit]]
    return edge


def extract_blocks(H, numbers, basis, graph, source: str = "hamiltonian"):
    """Padded blocks of ``H`` (n_orb x n_orb scipy sparse or dense, internal order, Hartree).

    ``graph``: a :class:`~hampart.graph.Graph` (or anything with ``edge_index`` (2, m)).
    Returns ``(node_blocks (n, u, u), edge_blocks (m, u, u), info)`` float64. ``info``:
    ``outside_count``, ``outside_max_abs``, ``outside_frobenius`` of the nonzero entries
    between different atoms that are not an edge (locality lost at this r_cut), and
    ``total_frobenius`` of H.
    """
    numbers = _as_numpy(numbers, np.int64)
    basis.check(numbers, source=source)
    offsets = basis.orbital_offsets(numbers)
    n_orb, n_atoms, u = int(offsets[-1]), len(numbers), basis.n_union
    if H.ndim != 2 or tuple(H.shape) != (n_orb, n_orb):
        raise InputError(source, f"matrix is {tuple(H.shape)} but the structure has {n_orb} "
                                 f"orbitals in basis '{basis.name}'",
                         "use the matrix of this structure and the basis it was computed with")
    edge_index = _as_numpy(graph.edge_index, np.int64).reshape(2, -1)
    csr = sp.csr_matrix(H)
    if not csr.has_canonical_format:
        csr = csr.copy()  # never change the caller's matrix
        csr.sum_duplicates()
    val = csr.data
    if not np.isfinite(val).all():
        raise InputError(source, "matrix contains NaN or infinity", "fix or recompute the matrix")
    per_row = np.diff(csr.indptr)
    col = csr.indices.astype(np.int64)

    counts = np.diff(offsets)
    atom_of = np.repeat(np.arange(n_atoms, dtype=np.int64), counts)
    slot_of = _union_slot_table(basis)[numbers[atom_of], np.arange(n_orb) - offsets[atom_of]]
    ai, aj = np.repeat(atom_of, per_row), atom_of[col]
    # flat position inside a (u, u) block: row slot * u + column slot
    inner = np.repeat(slot_of * u, per_row) + slot_of[col]

    # an atom pair's entries come in runs along each csr row: look up each run once
    key = ai * np.int64(n_atoms) + aj
    del aj
    start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))[:len(key)]
    run_key = key[start]
    del key
    run_edge = edge_of_pairs(*pair_keys(edge_index, n_atoms, source), run_key)
    run_edge[run_key // n_atoms == run_key % n_atoms] = -2  # on-site; -1: not an edge
    edge_of = np.repeat(run_edge, np.diff(np.concatenate([start, [len(val)]]))[:len(start)])

    node_blocks = np.zeros((n_atoms, u, u))
    sel = edge_of == -2
    node_blocks.reshape(-1)[ai[sel] * (u * u) + inner[sel]] = val[sel]
    edge_blocks = np.zeros((edge_index.shape[1], u, u))
    sel = edge_of >= 0
    edge_blocks.reshape(-1)[edge_of[sel] * (u * u) + inner[sel]] = val[sel]

    outside = val[edge_of == -1]
    outside = outside[outside != 0]
    info = {
        "outside_count": int(outside.size),
        "outside_max_abs": float(np.abs(outside).max()) if outside.size else 0.0,
        "outside_frobenius": float(np.sqrt(np.sum(outside ** 2))),
        "total_frobenius": float(np.sqrt(np.sum(val ** 2))),
    }
    return node_blocks, edge_blocks, info


# ---------------------------------------------------------------------------- assemble
def block_entries(blocks, atoms_row, atoms_col, numbers, offsets, basis):
    """(rows, cols, values) of the entries of ``blocks`` (k, u, u) the species pairs have;
    block k couples atom ``atoms_row[k]`` (rows) with ``atoms_col[k]`` (columns)."""
    rows, cols, vals = [], [], []
    zr, zc = numbers[atoms_row], numbers[atoms_col]
    for z1 in basis.orbital_species:
        u1 = basis.union_index(z1)
        k1 = np.flatnonzero(zr == z1)
        if not len(k1):
            continue
        for z2 in basis.orbital_species:
            k = k1[zc[k1] == z2]
            if not len(k):
                continue
            u2 = basis.union_index(z2)
            inner = (u1[:, None] * blocks.shape[2] + u2[None, :]).reshape(-1)
            flat = (k * (blocks.shape[1] * blocks.shape[2]))[:, None] + inner[None, :]
            vals.append(blocks.reshape(-1)[flat.reshape(-1)])
            r = offsets[atoms_row[k]][:, None, None] + np.arange(len(u1))[None, :, None]
            c = offsets[atoms_col[k]][:, None, None] + np.arange(len(u2))[None, None, :]
            rows.append(np.broadcast_to(r, (len(k), len(u1), len(u2))).reshape(-1))
            cols.append(np.broadcast_to(c, (len(k), len(u1), len(u2))).reshape(-1))
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    return (np.concatenate(rows or [empty_i]), np.concatenate(cols or [empty_i]),
            np.concatenate(vals or [empty_f]))


def assemble_blocks(node_blocks, edge_blocks, numbers, basis, edge_index,
                    symmetrize: bool = True) -> sp.csr_matrix:
    """The sparse H (n_orb x n_orb csr, float64) from padded blocks; inverse of
    :func:`extract_blocks`. Numpy or torch inputs.

    ``node_blocks`` ``(n, u, u)``, ``edge_blocks`` ``(m, u, u)``, ``edge_index`` ``(2, m)``.
    Padded entries a species lacks are ignored. Edges of the same atom pair (periodic images)
    are summed (Gamma point). With ``symmetrize`` the result is ``(P + P^T) / 2``, exactly
    symmetric; without it, edge j -> i only fills H[orb(i), orb(j)].
    """
    numbers = _as_numpy(numbers, np.int64)
    node_blocks = _as_numpy(node_blocks, np.float64)
    edge_blocks = _as_numpy(edge_blocks, np.float64)
    edge_index = _as_numpy(edge_index, np.int64).reshape(2, -1)
    basis.check(numbers, source="assemble_blocks")
    n, m, u = len(numbers), edge_index.shape[1], basis.n_union
    if node_blocks.shape != (n, u, u) or edge_blocks.shape != (m, u, u):
        raise InputError("assemble_blocks", f"blocks of shapes {node_blocks.shape} and "
                         f"{edge_blocks.shape} for {n} atoms, {m} edges and u = {u}",
                         "pass (n_atoms, u, u) node and (n_edges, u, u) edge blocks of this basis")
    offsets = basis.orbital_offsets(numbers)
    atoms = np.arange(n, dtype=np.int64)
    rn, cn, vn = block_entries(node_blocks, atoms, atoms, numbers, offsets, basis)
    re, ce, ve = block_entries(edge_blocks, edge_index[1], edge_index[0], numbers, offsets,
                               basis)
    size = int(offsets[-1])
    P = sp.coo_matrix((np.concatenate([vn, ve]), (np.concatenate([rn, re]),
                                                   np.concatenate([cn, ce]))),
                      shape=(size, size)).tocsr()  # tocsr sums duplicates (periodic images)
    if symmetrize:
        # (P + P^T)[a, b] and [b, a] add the same two numbers: exactly symmetric
        P = ((P + P.T) * 0.5).tocsr()
    P.eliminate_zeros()
    P.sort_indices()
    return P


# ---------------------------------------------------------------------------- irreps
class IrrepsLayout:
    """Orthogonal map between padded ``(u, u)`` blocks and their irreducible components.

    Attributes: ``U`` torch float64 ``(u*u, u*u)`` (rows = irreps components as flattened
    blocks); ``entries``: list of ``(a, b, la, lb, L, start, stop)``, union shells a (rows)
    and b (columns) and the slice ``irreps[..., start:stop]`` of their L part, ordered by a,
    then b, then L; ``irreps_ls`` / ``irreps_m`` int64 ``(u*u,)``: L of each component and
    its index 0..2L within L (e3nn order).
    """

    def __init__(self, basis):
        self.basis = basis
        self.shells = tuple(basis.union_shells)
        self.u = u = basis.n_union
        starts = np.cumsum([0] + [2 * l + 1 for l in self.shells])
        U = torch.zeros(u * u, u, u, dtype=torch.float64)
        entries, ls, ms = [], [], []
        row = 0
        for a, la in enumerate(self.shells):
            qa = orbital_from_e3nn(la)
            for b, lb in enumerate(self.shells):
                qb = orbital_from_e3nn(lb)
                for L in range(abs(la - lb), la + lb + 1):
                    # e3nn's 3j has unit Frobenius norm: each M slice has norm 1/sqrt(2L+1)
                    w = o3.wigner_3j(la, lb, L, dtype=torch.float64) * (2 * L + 1) ** 0.5
                    sub = torch.einsum("ij,jkM,lk->Mil", qa, w, qb)
                    U[row:row + 2 * L + 1, starts[a]:starts[a + 1], starts[b]:starts[b + 1]] = sub
                    entries.append((a, b, la, lb, L, row, row + 2 * L + 1))
                    ls += [L] * (2 * L + 1)
                    ms += range(2 * L + 1)
                    row += 2 * L + 1
        self.U = U.reshape(u * u, u * u)
        self.entries = entries
        self.irreps_ls = torch.tensor(ls, dtype=torch.int64)
        self.irreps_m = torch.tensor(ms, dtype=torch.int64)
        self._copies: dict = {}

    @property
    def n_irreps(self) -> int:
        return self.u * self.u

    def matrix(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """``U`` in ``dtype`` on ``device`` (cached; rounded once from the float64 master)."""
        key = (dtype, str(device))
        if key not in self._copies:
            self._copies[key] = self.U.to(dtype=dtype, device=device)
        return self._copies[key]

    def to(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """Same as :meth:`matrix`."""
        return self.matrix(dtype, device)

    def blocks_to_irreps(self, blocks: torch.Tensor) -> torch.Tensor:
        """``(..., u, u)`` -> ``(..., u*u)``."""
        lead = blocks.shape[:-2]
        U = self.matrix(blocks.dtype, blocks.device)
        return blocks.reshape(*lead, self.u * self.u) @ U.T

    def irreps_to_blocks(self, irreps: torch.Tensor) -> torch.Tensor:
        """``(..., u*u)`` -> ``(..., u, u)``."""
        lead = irreps.shape[:-1]
        U = self.matrix(irreps.dtype, irreps.device)
        return (irreps @ U).reshape(*lead, self.u, self.u)
