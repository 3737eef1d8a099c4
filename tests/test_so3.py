"""hampart.so3 against e3nn, and the orbital-basis frame change."""

import numpy as np
import pytest
import torch
from e3nn import o3
from scipy.spatial.transform import Rotation

from hampart import so3


def rotations(n, seed):
    return torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix())


@pytest.fixture(autouse=True)
def _float64_e3nn():
    """e3nn builds its reference D in the default dtype; compare in float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("l", range(5))
def test_wigner_D_equals_e3nn(l):
    gen = torch.Generator().manual_seed(l)
    alpha, beta, gamma = (torch.rand(6, generator=gen, dtype=torch.float64) * 2 * np.pi
                          for _ in range(3))
    ours = so3.wigner_D(l, alpha, beta, gamma)
    ref = o3.wigner_D(l, alpha, beta, gamma)
    assert ours.dtype == torch.float64 and ours.shape == (6, 2 * l + 1, 2 * l + 1)
    assert (ours - ref).abs().max() < 1e-10
    no_gamma = so3.wigner_D(l, alpha, beta)
    assert (no_gamma - o3.wigner_D(l, alpha, beta, torch.zeros_like(alpha))).abs().max() < 1e-10
    R = rotations(4, seed=l)
    assert (so3.wigner_D_from_matrix(l, R) - o3.Irrep(l, 1).D_from_matrix(R)).abs().max() < 1e-10


def test_edge_angles_rotate_e_y_onto_the_edge():
    vec = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    vec[0] = torch.tensor([0.0, 2.0, 0.0])  # along +y
    vec[1] = torch.tensor([0.0, -0.5, 0.0])  # along -y
    alpha, beta = so3.edge_angles(vec)
    D1 = so3.wigner_D(1, alpha, beta)  # e3nn l = 1 components are (x, y, z)
    e_y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    unit = vec / vec.norm(dim=1, keepdim=True)
    assert ((D1 @ e_y) - unit).abs().max() < 1e-12


def test_zero_length_edge_raises():
    vec = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="edge 1 has zero length"):
        so3.edge_angles(vec)


@pytest.mark.parametrize("l", range(5))
def test_orbital_from_e3nn_is_orthogonal(l):
    Q = so3.orbital_from_e3nn(l)
    assert Q.shape == (2 * l + 1, 2 * l + 1)
    assert (Q @ Q.T - torch.eye(2 * l + 1, dtype=torch.float64)).abs().max() < 1e-12
    assert abs(torch.det(Q) - 1.0) < 1e-12  # a rotation's D


def test_p_orbitals_are_y_z_x():
    P = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    for R in rotations(5, seed=3):
        assert (so3.wigner_D_orbital(1, R) - P @ R @ P.T).abs().max() < 1e-12
    # Q_1 is the permutation itself: e3nn components (x, y, z) -> orbitals (y, z, x)
    assert (so3.orbital_from_e3nn(1) - P).abs().max() < 1e-12


@pytest.mark.parametrize("l", range(5))
def test_representation_property(l):
    R1, R2 = rotations(2, seed=10 + l)
    D = lambda R: so3.wigner_D_orbital(l, R)  # noqa: E731
    assert (D(R1 @ R2) - D(R1) @ D(R2)).abs().max() < 1e-10
    assert (D(R1.T) - D(R1).T).abs().max() < 1e-10


def test_orbital_basis_rotates_real_harmonics_of_P_r():
    """Orbital components Q_l Y_e3nn(r) of a rotated point are D_orbital times the old ones."""
    pts = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    R = rotations(1, seed=4)[0]
    for l in range(4):
        Q = so3.orbital_from_e3nn(l)
        y = o3.spherical_harmonics(l, pts, normalize=False) @ Q.T
        y_rot = o3.spherical_harmonics(l, pts @ R.T, normalize=False) @ Q.T
        assert (y_rot - y @ so3.wigner_D_orbital(l, R).T).abs().max() < 1e-10


def test_block_rotation_is_block_diagonal():
    R = rotations(1, seed=6)[0]
    D = so3.block_rotation((0, 1, 2), R)
    assert D.shape == (9, 9)
    assert (D[1:4, 1:4] - so3.wigner_D_orbital(1, R)).abs().max() == 0
    assert D[0, 1:].abs().max() == 0 and D[1:4, 4:].abs().max() == 0
    assert so3.block_rotation((), R).shape == (0, 0)
