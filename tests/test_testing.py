"""hampart.testing: the shared equivariance assertion fails where it must, and the random
structure keeps its promises."""

import numpy as np
import pytest
import torch

from hampart.testing import (Features, OrbitalBlocks, assert_equivariant, random_rotation, rotate,
                             random_structure)

VEC = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_rotation_is_proper_reproducible_and_not_trivial():
    R = random_rotation(3)
    assert torch.allclose(R @ R.T, torch.eye(3, dtype=R.dtype), atol=1e-12)
    assert abs(float(torch.linalg.det(R)) - 1.0) < 1e-12
    assert torch.equal(R, random_rotation(3)) and not torch.equal(R, random_rotation(4))


def test_equivariant_functions_pass():
    errors = assert_equivariant(lambda v: (v * 2.0, v.norm(dim=1)), [VEC], ["cartesian"],
                                ["cartesian", None])
    assert max(errors) < 1e-14
    # e3nn's l = 1 transforms like (x, y, z): a vector read as the irreps 1x1o, on the last axis
    assert_equivariant(lambda v: v, [VEC], ["cartesian"], ["1x1o"])
    # an outer product v w^T of two vectors is a p-p block: D B D^T in the orbital basis, whose
    # p order is (y, z, x)
    yzx = [1, 2, 0]
    assert_equivariant(lambda v: v[:, yzx, None] * v[:, None, yzx], [VEC], ["cartesian"],
                       [OrbitalBlocks((1,))])


def test_wrong_convention_or_broken_function_fails():
    with pytest.raises(AssertionError, match="equivariance error"):  # a fixed offset
        assert_equivariant(lambda v: v + 1.0, [VEC], ["cartesian"], ["cartesian"])
    with pytest.raises(AssertionError, match="equivariance error"):  # orbital order as e3nn's
        assert_equivariant(lambda v: v[:, [1, 2, 0]], [VEC], ["cartesian"], ["1x1o"])
    with pytest.raises(AssertionError, match="equivariance error"):  # a vector called invariant
        assert_equivariant(lambda v: v, [VEC], ["cartesian"], [None])
    with pytest.raises(AssertionError, match="trivial"):  # zero passes anything: refused
        assert_equivariant(lambda v: 0.0 * v, [VEC], ["cartesian"], ["cartesian"])
    with pytest.raises(ValueError, match="irreps_out"):
        assert_equivariant(lambda v: (v, v), [VEC], ["cartesian"], ["cartesian"])


def test_features_act_on_the_chosen_axis():
    R = random_rotation(1)
    x = torch.randn(5, 9, 4, dtype=torch.float64)  # (n, (lmax+1)^2, C), lmax = 2
    y = rotate(x, Features(2, axis=1), R)
    assert torch.equal(y[:, 0], x[:, 0])  # l = 0 untouched
    assert torch.allclose(y[:, 1:4].norm(dim=1), x[:, 1:4].norm(dim=1))  # l = 1 norm kept
    # l = 1 of e3nn is (x, y, z): the same as rotating each channel's vector
    assert torch.allclose(y[:, 1:4], torch.einsum("ab,nbc->nac", R, x[:, 1:4]), atol=1e-12)
    assert torch.allclose(rotate(x.float(), Features(2, axis=1), R), y.float(), atol=1e-5)


def test_random_structure():
    cell = np.diag([9.0, 9.5, 8.8])
    numbers, positions, cell_out = random_structure(30, cell, seed=4, min_dist=1.6, ghosts=3)
    assert np.array_equal(cell_out, cell) and positions.shape == (30, 3)
    assert (numbers == 0).sum() == 3 and set(numbers[numbers > 0]) == {72, 8}
    frac = positions @ np.linalg.inv(cell)
    assert (frac >= 0).all() and (frac < 1).all()
    d = frac[:, None] - frac[None]
    d -= np.round(d)
    dist = np.linalg.norm(d @ cell, axis=-1) + np.eye(30) * 99
    assert dist.min() >= 1.6
    again = random_structure(30, cell, seed=4, min_dist=1.6, ghosts=3)
    assert all(np.array_equal(a, b) for a, b in zip((numbers, positions), again))
    _, _, noisy = random_structure(5, cell, seed=4, cell_noise=0.3)
    assert 0 < np.abs(noisy - cell).max() < 2.0
