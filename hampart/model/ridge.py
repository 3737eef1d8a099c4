"""Ridge regression from summed normal equations, the ridge chosen by cross-validation.

The least-squares start of the node heads (:meth:`HamiltonianModel.set_onsite_fit`) fits, per
species and L, up to a few hundred weights. A fixed small ridge over-fits a species with few
training atoms (more weights than equations); a fixed large one under-fits a species with
many. So the atoms are dealt into ``FOLDS`` folds (by global atom index), the normal equations
are summed per fold (over partitions and ranks alike, so the choice does not depend on the
slicing), and the ridge with the smallest held-out squared error is taken.

For fold f with ``A_f = X_f^T X_f``, ``B_f = X_f^T Y_f`` and ``c_f = |Y_f|^2``, weights W
fitted without f have the held-out error ``c_f - 2 <W, B_f> + <W, A_f W>``: no data beyond the
sums is needed. The ridge is relative: ``alpha`` times the mean diagonal of the fitted ``A``
over the columns that carry data (zero-padded columns have none), on every weight but those
named in ``free`` (an intercept: shrinking it would move every prediction).
"""

from __future__ import annotations

import torch

__all__ = ["FOLDS", "RIDGES", "DEFAULT_RIDGE", "fold_ridge_fit"]

FOLDS = 5
RIDGES = tuple(10.0 ** (e / 2) for e in range(-12, 5))  # 1e-6 .. 1e2, half decades
DEFAULT_RIDGE = 1e-3  # when fewer than two folds hold data: nothing to validate on


def _solve(A: torch.Tensor, B: torch.Tensor, alpha: float, free) -> torch.Tensor:
    """``(A + alpha mean_diag(A) I') ^-1 B``, I' without the ``free`` columns."""
    active = max(int((A.diagonal() > 0).sum()), 1)
    penalty = torch.full((A.shape[0],), alpha * float(A.trace()) / active, dtype=A.dtype,
                         device=A.device)
    penalty[list(free)] = 0.0
    return torch.linalg.solve(A + torch.diag(penalty), B)  # padded columns: penalty only, W = 0


def fold_ridge_fit(A: torch.Tensor, B: torch.Tensor, c: torch.Tensor, free=(),
                   ridges=RIDGES) -> tuple[torch.Tensor, float]:
    """``(W (k, w), alpha)`` from per-fold sums ``A (K, k, k)``, ``B (K, k, w)``, ``c (K,)``:
    the ridge ``alpha`` of ``ridges`` with the least held-out error (one candidate: no
    validation), then W fitted to all folds with it."""
    total_A, total_B = A.sum(0), B.sum(0)
    filled = [f for f in range(A.shape[0]) if float(A[f].trace()) > 0]
    if len(ridges) == 1:
        alpha = ridges[0]
    elif len(filled) < 2:
        alpha = DEFAULT_RIDGE
    else:
        errors = []
        for candidate in ridges:
            error = 0.0
            for f in filled:
                W = _solve(total_A - A[f], total_B - B[f], candidate, free)
                error += float(c[f] - 2 * (W * B[f]).sum() + (W * (A[f] @ W)).sum())
            errors.append(error)
        # the largest ridge within a part in 1e6 of the best: ties go to the smoother fit
        best = min(errors)
        alpha = max(a for a, e in zip(ridges, errors) if e <= best + 1e-6 * abs(best))
    return _solve(total_A, total_B, alpha, free), float(alpha)
