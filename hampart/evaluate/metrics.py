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

__all__ = ["HARTREE_EV", "block_errors", "eigenvalues", "eigenvalue_errors"]

HARTREE_EV = 27.211386245988  # CODATA 2018


def block_errors(pred, ref, numbers, basis, graph) -> dict:
    """MAE/RMSE over node and edge block elements of the pairs in ``graph``."""
    from ..blocks import block_masks, extract_blocks

    node_p, edge_p, _ = extract_blocks(pred, numbers, basis, graph, source="prediction")
    node_r, edge_r, info = extract_blocks(ref, numbers, basis, graph, source="reference")
    node_m, edge_m = block_masks(numbers, basis, graph.edge_index)
    dn = (node_p - node_r)[node_m]
    de = (edge_p - edge_r)[edge_m]
    both = np.concatenate([dn, de])
    out = {
        "node_mae_mEh": 1e3 * float(np.abs(dn).mean()) if dn.size else float("nan"),
        "edge_mae_mEh": 1e3 * float(np.abs(de).mean()) if de.size else float("nan"),
        "total_mae_meV": 1e3 * HARTREE_EV * float(np.abs(both).mean()) if both.size else float("nan"),
        "node_rmse_mEh": 1e3 * float(np.sqrt(np.mean(dn ** 2))) if dn.size else float("nan"),
        "edge_rmse_mEh": 1e3 * float(np.sqrt(np.mean(de ** 2))) if de.size else float("nan"),
        "max_abs_error_mEh": 1e3 * float(np.abs(both).max()) if both.size else float("nan"),
        "n_node_elements": int(dn.size),
        "n_edge_elements": int(de.size),
        "reference_outside_rcut_max_abs_mEh": 1e3 * float(info.get("outside_max_abs", 0.0)),
    }
    return out


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
