"""Errors of a predicted Hamiltonian against a reference, as the field reports them.

Node MAE and edge MAE are means over the elements of the node blocks H_ii and of the edge
blocks H_ij of every atom pair closer than r_cut (the predicted elements), in milli-Hartree;
the total MAE is over all predicted elements together, in meV (DESIGN.md §2). Eigenvalues
come from H c = E c, or H c = E S c when an overlap matrix S is given, and are compared sorted.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..errors import InputError

__all__ = ["HARTREE_EV", "block_errors", "sample_edge_elements", "eigenvalues",
           "eigenvalue_errors"]

HARTREE_EV = 27.211386245988  # CODATA 2018


def block_errors(pred, ref, numbers, basis, graph, rows_per_chunk: int | None = None) -> dict:
    """MAE/RMSE over node and edge block elements of the pairs in ``graph``.

    Computed on the sparse matrices, rows in chunks, without forming padded blocks: memory is
    the two matrices plus one chunk, so a 100,000-atom prediction can be evaluated too. An
    element both matrices leave out counts as an error of zero (it is in a block within r_cut)."""
    from ..blocks import edge_of_pairs, pair_keys

    numbers = np.asarray(numbers, dtype=np.int64)
    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    n, size = len(numbers), int(offsets[-1])
    for name, M in (("prediction", pred), ("reference", ref)):
        if tuple(M.shape) != (size, size):
            raise InputError(name, f"matrix is {tuple(M.shape)} but the structure has {size} "
                             f"orbitals in basis '{basis.name}'",
                             "use the matrix of this structure and the basis it was computed with")
    edge_index = np.asarray(graph.edge_index, dtype=np.int64).reshape(2, -1)
    keys, order = pair_keys(edge_index, n, "graph")  # refuses repeated pairs
    atom_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    pred, ref = sp.csr_matrix(pred), sp.csr_matrix(ref)
    step = rows_per_chunk or max(1, int(2_000_000 * size / max(pred.nnz + ref.nnz, 1)))
    sums = np.zeros(5)  # |node|, node^2, |edge|, edge^2, max |error|
    outside = 0.0

    def classify(rows, cols):
        ai, aj = atom_of[rows], atom_of[cols]
        pair = edge_of_pairs(keys, order, ai * np.int64(n) + aj) >= 0
        node = ai == aj
        return node, pair & ~node

    for r0 in range(0, size, step):
        r1 = min(size, r0 + step)
        R = ref[r0:r1]
        D = (pred[r0:r1] - R).tocoo()
        node, edge = classify(D.row + r0, D.col)
        dn, de = D.data[node], D.data[edge]
        sums += [np.abs(dn).sum(), (dn ** 2).sum(), np.abs(de).sum(), (de ** 2).sum(), 0.0]
        sums[4] = max(sums[4], np.abs(dn).max(initial=0.0), np.abs(de).max(initial=0.0))
        R = R.tocoo()
        node, edge = classify(R.row + r0, R.col)
        outside = max(outside, float(np.abs(R.data[~(node | edge)]).max(initial=0.0)))
    n_node = int((counts ** 2).sum())
    n_edge = int((counts[edge_index[1]] * counts[edge_index[0]]).sum())
    n_all = n_node + n_edge
    nan = float("nan")
    return {
        "node_mae_mEh": 1e3 * sums[0] / n_node if n_node else nan,
        "edge_mae_mEh": 1e3 * sums[2] / n_edge if n_edge else nan,
        "total_mae_meV": 1e3 * HARTREE_EV * (sums[0] + sums[2]) / n_all if n_all else nan,
        "node_rmse_mEh": 1e3 * float(np.sqrt(sums[1] / n_node)) if n_node else nan,
        "edge_rmse_mEh": 1e3 * float(np.sqrt(sums[3] / n_edge)) if n_edge else nan,
        "max_abs_error_mEh": 1e3 * float(sums[4]) if n_all else nan,
        "n_node_elements": n_node,
        "n_edge_elements": n_edge,
        "reference_outside_rcut_max_abs_mEh": 1e3 * outside,
    }


def sample_edge_elements(ref, pred, numbers, basis, graph, max_points: int = 200_000,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(reference, predicted)`` values of the edge-block elements of a random sample of the
    graph's edges (all of them when they hold at most ``max_points`` elements), for plots:
    looked up in the sparse matrices, no padded blocks."""
    from ..blocks import block_entries

    numbers = np.asarray(numbers, dtype=np.int64)
    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    edge_index = np.asarray(graph.edge_index, dtype=np.int64).reshape(2, -1)
    sizes = counts[edge_index[1]] * counts[edge_index[0]]
    edges = np.flatnonzero(sizes)
    if sizes.sum() > max_points:
        keep = int(len(edges) * max_points / sizes.sum())
        edges = np.sort(np.random.default_rng(seed).choice(edges, keep, replace=False))
    u = basis.n_union
    rows, cols, _ = block_entries(np.zeros((len(edges), u, u)), edge_index[1, edges],
                                  edge_index[0, edges], numbers, offsets, basis)
    ref, pred = sp.csr_matrix(ref), sp.csr_matrix(pred)
    return np.asarray(ref[rows, cols]).ravel(), np.asarray(pred[rows, cols]).ravel()


def eigenvalues(H, S=None, k: int | None = None, sigma: float | None = None) -> np.ndarray:
    """Sorted eigenvalues (Hartree): all of them (dense) or the ``k`` nearest ``sigma`` (sparse)."""
    n = H.shape[0]
    if k is None or k >= n - 1:
        a = H.toarray() if sp.issparse(H) else np.asarray(H)
        b = None if S is None else (S.toarray() if sp.issparse(S) else np.asarray(S))
        return scipy.linalg.eigh(a, b, eigvals_only=True)
    from scipy.sparse.linalg import eigsh

    vals = eigsh(sp.csc_matrix(H), k=k, M=None if S is None else sp.csc_matrix(S),
                 sigma=0.0 if sigma is None else sigma, which="LM", return_eigenvectors=False)
    return np.sort(vals)


def eigenvalue_errors(pred_vals, ref_vals) -> dict:
    if pred_vals.shape != ref_vals.shape:
        raise InputError("eigenvalues", f"{pred_vals.size} predicted vs {ref_vals.size} reference",
                         "compare matrices of the same size")
    d = np.abs(np.sort(pred_vals) - np.sort(ref_vals))
    return {"n_eigenvalues": int(d.size), "eig_mae_meV": 1e3 * HARTREE_EV * float(d.mean()),
            "eig_max_meV": 1e3 * HARTREE_EV * float(d.max())}
