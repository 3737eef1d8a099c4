"""Fixtures shared by the test packages."""

import numpy as np
import pytest
import scipy.sparse as sp


def _synthetic_overlap(H, seed: int = 0, strength: float = 0.6) -> sp.csr_matrix:
    """S = I + A: A symmetric with H's off-diagonal pattern and random values, scaled so that
    every row of |A| sums to ``strength`` < 1 at most, so S is diagonally dominant, hence
    positive definite (Gershgorin), and far enough from I to change every eigenvalue."""
    pattern = sp.csr_matrix(H, copy=True)
    pattern.data = np.random.default_rng(seed).uniform(-1, 1, pattern.nnz)
    A = ((pattern + pattern.T) * 0.5).tolil()
    A.setdiag(0)
    A = A.tocsr()
    A.eliminate_zeros()
    A *= strength / abs(A).sum(axis=1).max()
    return (sp.identity(H.shape[0], format="csr") + A).tocsr()


@pytest.fixture(scope="session")
def synthetic_overlap():
    """``synthetic_overlap(H, seed=0, strength=0.6)``: S positive definite with H's pattern,
    for data that have none (the synthetic generator's H is orthogonal)."""
    return _synthetic_overlap
