"""The cross-validated ridge of the on-site least-squares start (hampart.model.ridge)."""

import torch

from hampart.model.ridge import DEFAULT_RIDGE, FOLDS, RIDGES, fold_ridge_fit


def _fold_sums(X, Y):
    """Per-fold normal equations, rows dealt into folds by index as the model deals atoms."""
    fold = torch.arange(X.shape[0]) % FOLDS
    A = torch.stack([X[fold == f].T @ X[fold == f] for f in range(FOLDS)])
    B = torch.stack([X[fold == f].T @ Y[fold == f] for f in range(FOLDS)])
    c = torch.stack([Y[fold == f].square().sum() for f in range(FOLDS)])
    return A, B, c


def _problem(rows, weights, noise, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(rows, weights, generator=g, dtype=torch.float64)
    true = torch.randn(weights, 1, generator=g, dtype=torch.float64) / weights ** 0.5
    return X, true, lambda X_: X_ @ true + noise * torch.randn(X_.shape[0], 1, generator=g,
                                                               dtype=torch.float64)


def test_as_many_rows_as_weights_choose_a_large_ridge_and_predict_better():
    """About as many equations as weights (a species with few atoms, the on-site products on):
    the fixed small ridge fits the noise; the ridge chosen by the folds must predict unseen rows
    better (measured: 0.45 against 1.53 of the signal's variance, ridge 0.1)."""
    X, true, label = _problem(rows=130, weights=120, noise=0.5)
    Y = label(X)
    W_cv, alpha = fold_ridge_fit(*_fold_sums(X, Y))
    W_fixed, _ = fold_ridge_fit(*_fold_sums(X, Y), ridges=(DEFAULT_RIDGE,))
    X_new, _, _ = _problem(rows=2000, weights=120, noise=0.0, seed=1)
    error = lambda W: float((X_new @ (W - true)).square().mean())  # noqa: E731
    assert alpha > 10 * DEFAULT_RIDGE
    assert error(W_cv) < 0.5 * error(W_fixed)


def test_many_rows_choose_a_small_ridge_and_recover_the_weights():
    """Plenty of clean equations: the chosen ridge is small and the fit is the truth."""
    X, true, label = _problem(rows=2000, weights=20, noise=1e-3)
    W, alpha = fold_ridge_fit(*_fold_sums(X, label(X)))
    assert alpha <= 1e-4
    assert float((W - true).abs().max()) < 1e-3


def test_free_column_is_not_shrunk_and_one_fold_falls_back():
    """An intercept named free keeps the mean at any ridge; data in one fold only leave
    nothing to validate on: the default ridge."""
    X, _, label = _problem(rows=50, weights=4, noise=0.1)
    X = torch.cat([X, torch.ones(50, 1, dtype=torch.float64)], dim=1)
    Y = label(X[:, :4]) + 7.0
    W, _ = fold_ridge_fit(*_fold_sums(X, Y), free=(4,), ridges=(1e6,))
    assert abs(float(W[4]) - float(Y.mean())) < 0.05 * float(Y.std())
    A, B, c = _fold_sums(X, Y)
    only = torch.zeros(FOLDS, dtype=torch.bool)
    only[0] = True
    _, alpha = fold_ridge_fit(A * only[:, None, None], B * only[:, None, None], c * only)
    assert alpha == DEFAULT_RIDGE and len(RIDGES) > 1
