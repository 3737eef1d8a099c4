"""Errors of a predicted Hamiltonian against a reference, as the field reports them.

Node MAE and edge MAE are means over the elements of the node blocks H_ii and of the edge
blocks H_ij of every atom pair closer than r_cut (the predicted elements), in milli-Hartree;
the total MAE is over all predicted elements together, in meV (DESIGN.md §2). Eigenvalues
come from H c = E c, or H c = E S c when an overlap matrix S is given
(:mod:`hampart.evaluate.spectrum`), and are compared state by state (sorted).

Periodic DFT puts each cell's energy zero at its own mean electrostatic potential, so two
cells of one material can differ by a common shift of every on-site energy and eigenvalue
(measured: 79 meV between two melt-quenched 216-atom a-Si cells, docs/real-data.md). A
strictly local model cannot see that shift; the reports give it apart: the mean signed error
of the on-site diagonal elements, the median signed error of the eigenvalues, and the
eigenvalue errors after removing the latter. A shift d of the potential's zero changes the
whole matrix by d S (S the overlap), hoppings included: with S, :func:`block_errors` also
fits d to the elements within r_cut (``potential_shift_mEh``: H_pred ~ H_ref + d S, signed as
the other shifts, prediction minus reference) and gives the node and edge MAE after removing
d S.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InputError

__all__ = ["HARTREE_EV", "block_errors", "node_errors_by_species", "sample_edge_elements",
           "sample_node_elements", "eigenvalues", "eigenvalue_errors"]

HARTREE_EV = 27.211386245988  # CODATA 2018


def block_errors(pred, ref, numbers, basis, graph, rows_per_chunk: int | None = None,
                 overlap=None) -> dict:
    """MAE/RMSE over node and edge block elements of the pairs in ``graph``.

    Computed on the sparse matrices, rows in chunks, without forming padded blocks: memory is
    the two matrices plus one chunk, so a 100,000-atom prediction can be evaluated too. An
    element both matrices leave out counts as an error of zero (it is in a block within r_cut).
    With ``overlap`` (S, same shape) also ``potential_shift_mEh``, the least-squares d of
    pred - ref = d S over those elements, and ``node_mae_shifted_mEh`` /
    ``edge_mae_shifted_mEh``, the MAE of pred - d S (a second pass over the rows)."""
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
    diagonal_error = float((pred.diagonal() - ref.diagonal()).sum())  # every orbital's H_mumu
    outside = 0.0

    def classify(rows, cols):
        ai, aj = atom_of[rows], atom_of[cols]
        pair = edge_of_pairs(keys, order, ai * np.int64(n) + aj) >= 0
        node = ai == aj
        return node, pair & ~node

    S = None if overlap is None else sp.csr_matrix(overlap)
    if S is not None and tuple(S.shape) != (size, size):
        raise InputError("overlap", f"matrix is {tuple(S.shape)}, H is {(size, size)}",
                         "give the S of the reference structure")
    fit = np.zeros(2)  # <pred - ref, S>, <S, S> over the elements within r_cut

    def chunk_errors(r0, D):
        """Node and edge elements of the difference rows ``D`` starting at row ``r0``."""
        D = D.tocoo()
        node, edge = classify(D.row + r0, D.col)
        return D.data[node], D.data[edge]

    for r0 in range(0, size, step):
        r1 = min(size, r0 + step)
        diff = pred[r0:r1] - ref[r0:r1]
        dn, de = chunk_errors(r0, diff)
        sums += [np.abs(dn).sum(), (dn ** 2).sum(), np.abs(de).sum(), (de ** 2).sum(), 0.0]
        sums[4] = max(sums[4], np.abs(dn).max(initial=0.0), np.abs(de).max(initial=0.0))
        R = ref[r0:r1].tocoo()
        node, edge = classify(R.row + r0, R.col)
        outside = max(outside, float(np.abs(R.data[~(node | edge)]).max(initial=0.0)))
        if S is not None:  # only S's elements within r_cut count, as the errors do
            Sc = S[r0:r1].tocoo()
            inside = np.logical_or(*classify(Sc.row + r0, Sc.col))
            kept = sp.csr_matrix((Sc.data * inside, (Sc.row, Sc.col)), shape=Sc.shape)
            fit += [float(kept.multiply(diff).sum()),
                    float((Sc.data[inside] ** 2).sum())]
    n_node = int((counts ** 2).sum())
    n_edge = int((counts[edge_index[1]] * counts[edge_index[0]]).sum())
    n_all = n_node + n_edge
    nan = float("nan")
    shifted = {}
    if S is not None and fit[1] > 0 and n_node and n_edge:
        d = fit[0] / fit[1]
        after = np.zeros(2)
        for r0 in range(0, size, step):
            r1 = min(size, r0 + step)
            dn, de = chunk_errors(r0, pred[r0:r1] - ref[r0:r1] - d * S[r0:r1])
            after += [np.abs(dn).sum(), np.abs(de).sum()]
        shifted = {"potential_shift_mEh": 1e3 * d, "node_mae_shifted_mEh": 1e3 * after[0] / n_node,
                   "edge_mae_shifted_mEh": 1e3 * after[1] / n_edge}
    return {
        "node_mae_mEh": 1e3 * sums[0] / n_node if n_node else nan,
        "edge_mae_mEh": 1e3 * sums[2] / n_edge if n_edge else nan,
        "total_mae_meV": 1e3 * HARTREE_EV * (sums[0] + sums[2]) / n_all if n_all else nan,
        "node_rmse_mEh": 1e3 * float(np.sqrt(sums[1] / n_node)) if n_node else nan,
        "edge_rmse_mEh": 1e3 * float(np.sqrt(sums[3] / n_edge)) if n_edge else nan,
        "max_abs_error_mEh": 1e3 * float(sums[4]) if n_all else nan,
        "node_diagonal_shift_mEh": 1e3 * diagonal_error / size if size else nan,
        **shifted,
        "n_node_elements": n_node,
        "n_edge_elements": n_edge,
        "reference_outside_rcut_max_abs_mEh": 1e3 * outside,
    }


def node_errors_by_species(pred, ref, numbers, basis) -> dict:
    """Node-block MAE (mE_h) per species, ``{"Hf": ..., "O": ..., "O_ghost": ...}``: the mean
    over every element of the species' on-site blocks, as ``block_errors`` counts them (an
    element neither matrix stores is an error of zero). Ghosts keeping orbitals are a species
    of their own, so a vacancy's own error is seen apart from its neighbours'."""
    from ..basis import species_name

    numbers = np.asarray(numbers, dtype=np.int64)
    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    atom_of = np.repeat(np.arange(len(numbers), dtype=np.int64), counts)
    D = (sp.csr_matrix(pred) - sp.csr_matrix(ref)).tocoo()
    node = atom_of[D.row] == atom_of[D.col]
    per_atom = np.bincount(atom_of[D.row[node]], weights=np.abs(D.data[node]),
                           minlength=len(numbers))
    out = {}
    for z in sorted(set(numbers[counts > 0].tolist()), key=lambda z: (z < 0, abs(z))):
        atoms = numbers == z
        out[species_name(z)] = 1e3 * float(per_atom[atoms].sum() / (counts[atoms] ** 2).sum())
    return out


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
    """Sorted eigenvalues (Hartree) of H c = E S c: all of them (dense) or the ``k`` nearest
    ``sigma`` (default 0; sparse shift-invert). See :func:`hampart.evaluate.spectrum.solve`."""
    from .spectrum import solve

    if k is None or k >= H.shape[0] - 1:
        return solve(H, S, method="dense").values
    return solve(H, S, method="sparse", k=k, sigma=0.0 if sigma is None else sigma).values


def sample_node_elements(ref, pred, numbers, basis, max_points: int = 200_000,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(reference, predicted)`` values of the node-block elements H_ii of a random sample of
    the atoms (all of them when their blocks hold at most ``max_points`` elements), for plots."""
    numbers = np.asarray(numbers, dtype=np.int64)
    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    atoms = np.flatnonzero(counts)
    sizes = counts[atoms] ** 2
    if sizes.sum() > max_points:
        keep = max(1, int(len(atoms) * max_points / sizes.sum()))
        atoms = np.sort(np.random.default_rng(seed).choice(atoms, keep, replace=False))
    c = counts[atoms]
    per_row = np.repeat(c, c)  # each orbital row of an atom spans the atom's block
    starts = np.repeat(offsets[atoms], c)
    orbitals = starts + np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
    rows = np.repeat(orbitals, per_row)
    within = np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    cols = np.repeat(starts, per_row) + within
    ref, pred = sp.csr_matrix(ref), sp.csr_matrix(pred)
    return np.asarray(ref[rows, cols]).ravel(), np.asarray(pred[rows, cols]).ravel()


def _aligned(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues of the states both hold: by state index when both spectra know where
    their window starts, else both sorted lists as they are (then they must be equally long)."""
    from .spectrum import Spectrum

    if isinstance(pred, Spectrum) and isinstance(ref, Spectrum):
        if pred.first is not None and ref.first is not None:
            lo = max(pred.first, ref.first)
            hi = min(pred.first + len(pred.values), ref.first + len(ref.values))
            if hi <= lo:
                raise InputError("eigenvalues", f"the predicted window (states {pred.first}.."
                                 f"{pred.first + len(pred.values) - 1}) and the reference one "
                                 f"(states {ref.first}..{ref.first + len(ref.values) - 1}) do not "
                                 "overlap", "give both the same --sigma, or more --eigs")
            return (pred.values[lo - pred.first:hi - pred.first],
                    ref.values[lo - ref.first:hi - ref.first])
        pred, ref = pred.values, ref.values
    pred, ref = np.sort(np.asarray(pred)), np.sort(np.asarray(ref))
    if pred.shape != ref.shape:
        raise InputError("eigenvalues", f"{pred.size} predicted vs {ref.size} reference",
                         "compare matrices of the same size")
    return pred, ref


def eigenvalue_errors(pred_vals, ref_vals) -> dict:
    """Errors of the eigenvalues of the states both hold (arrays, or
    :class:`~hampart.evaluate.spectrum.Spectrum` windows matched by state index): mean and
    largest absolute error (meV) and the relative L1 error of the paper,
    ``||eps - eps_ref||_1 / ||eps_ref||_1`` in percent (it depends on where the energy zero
    lies, as there: compare it between calculations with the same zero, e.g. one code).

    Also the common shift ``eig_shift_meV``, the median of predicted minus reference (the
    constant whose removal makes the MAE and L1 error smallest), and both errors after
    subtracting it (``_aligned``): what is left once both spectra share a zero.
    """
    pred, ref = _aligned(pred_vals, ref_vals)
    signed = pred - ref
    d = np.abs(signed)
    shift = float(np.median(signed))
    shifted = np.abs(signed - shift)
    scale = float(np.abs(ref).sum())
    nan = float("nan")
    return {"n_eigenvalues": int(d.size), "eig_mae_meV": 1e3 * HARTREE_EV * float(d.mean()),
            "eig_max_meV": 1e3 * HARTREE_EV * float(d.max()),
            "eig_l1_percent": 100.0 * float(d.sum()) / scale if scale else nan,
            "eig_shift_meV": 1e3 * HARTREE_EV * shift,
            "eig_mae_aligned_meV": 1e3 * HARTREE_EV * float(shifted.mean()),
            "eig_l1_aligned_percent": 100.0 * float(shifted.sum()) / scale if scale else nan}
