"""Rotation helpers: edge frames and Wigner-D matrices. Pure functions, no state on modules.

Two real bases of each angular momentum l appear in the package:

* **e3nn basis** (used inside the network): e3nn's real spherical harmonics, which take **y**
  as the polar axis; its l = 1 components transform like (x, y, z).
* **orbital basis** (used for H, the internal order, = CP2K's): real solid harmonics with
  **z** as the polar axis in m = -l..l (p as p_y, p_z, p_x; d as d_xy, d_yz, d_z2, d_xz,
  d_x2-y2), no Condon-Shortley phase.

They differ by a fixed rotation of the frame: the orbital functions are the e3nn functions of
the cyclically permuted point P r = (y, z, x), so Q_l = D_e3nn^l(P) takes e3nn components to
orbital components (:func:`orbital_from_e3nn`). This is checked against PySCF in the tests.

Under a rotation R (positions x -> R x), a block transforms as H_ab -> D^la(R) H_ab D^lb(R)^T.

Edge frame: :func:`edge_angles` gives (alpha, beta) with ``D(alpha, beta, 0) e_y = r / |r|``;
features enter an edge's frame with ``D^T`` and leave it with ``D``. The roll about the edge
(gamma) is fixed at 0: the SO(2) convolutions are invariant to it, so no randomness is needed.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from e3nn import o3

__all__ = [
    "edge_angles", "y_rotation", "wigner_D", "wigner_D_from_matrix",
    "orbital_from_e3nn", "wigner_D_orbital", "block_rotation",
]

# P r = (y, z, x): the orbital harmonics are the e3nn harmonics of P r.
_FRAME = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def edge_angles(vec: torch.Tensor, eps: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """Angles (alpha, beta), each ``(n_edges,)``, rotating e_y onto ``vec`` ``(n_edges, 3)``.

    Raises ``ValueError`` on a zero-length edge: two atoms on top of each other.
    """
    norm = vec.norm(dim=-1)
    if vec.numel() and bool((norm < eps).any()):
        bad = int(torch.nonzero(norm < eps)[0, 0])
        raise ValueError(f"edge {bad} has zero length: two atoms coincide")
    unit = vec / norm[..., None]
    # y is the polar axis: beta from y, alpha in the z-x plane (e3nn.o3.xyz_to_angles).
    # atan2, not acos: acos loses half the digits for edges close to the y axis
    beta = torch.atan2(torch.hypot(unit[..., 0], unit[..., 2]), unit[..., 1])
    alpha = torch.atan2(unit[..., 0], unit[..., 2])
    return alpha, beta


def y_rotation(l: int, angle: torch.Tensor) -> torch.Tensor:
    """D^l of a rotation by ``angle`` ``(...)`` about y, e3nn basis: ``(..., 2l+1, 2l+1)``.

    Component l+k mixes only with l-k: cos(k angle) on the diagonal, -sin(k angle) at [l+k, l-k].
    """
    k = torch.arange(-l, l + 1, device=angle.device, dtype=angle.dtype)
    kt = angle[..., None] * k
    out = angle.new_zeros(angle.shape + (2 * l + 1, 2 * l + 1))
    idx = torch.arange(2 * l + 1, device=angle.device)
    out[..., idx, idx] = torch.cos(kt)
    out[..., idx, idx.flip(0)] = -torch.sin(kt)
    # the middle element got both writes: cos(0) then -sin(0) = -0; restore 1
    out[..., l, l] = 1.0
    return out


@contextlib.contextmanager
def _float64_default():
    """e3nn builds its generators in the default dtype: float32 would cap D's accuracy at 1e-7."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@functools.lru_cache(maxsize=None)
def _x_from_y(l: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """D^l of the rotation taking the y axis to the x axis (about z by -90 degrees)."""
    rot = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    with _float64_default():
        d = o3.Irrep(l, 1).D_from_matrix(rot)
    return d.to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=None)
def _beta_tables(l: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(2 (2l+1), (2l+1)^2)``: K Y(beta) K^T = [cos(k beta), -sin(k beta)] @ T, with
    K = :func:`_x_from_y` and Y as in :func:`y_rotation` (diagonal and anti-diagonal)."""
    k = _x_from_y(l, torch.float64, torch.device("cpu"))
    diag = torch.einsum("aj,bj->jab", k, k)
    anti = torch.einsum("aj,bj->jab", k, k.flip(1))
    return torch.cat([diag, anti]).reshape(2 * (2 * l + 1), -1).to(dtype=dtype, device=device)


def wigner_D(l: int, alpha: torch.Tensor, beta: torch.Tensor,
             gamma: torch.Tensor | None = None) -> torch.Tensor:
    """e3nn's ``wigner_D(l, alpha, beta, gamma)`` (Y(alpha) X(beta) Y(gamma)), batched, without
    matrix exponentials: ``(..., 2l+1, 2l+1)``. A rotation about y only pairs the components
    l+k and l-k, so Y(alpha) and Y(gamma) are applied elementwise and X(beta) is one small
    matmul of cos / sin (k beta) with constant tables: no batched (2l+1)^2 matmuls."""
    if l == 0:
        return alpha.new_ones(alpha.shape + (1, 1))
    k = torch.arange(-l, l + 1, device=alpha.device, dtype=alpha.dtype)
    table = _beta_tables(l, alpha.dtype, alpha.device)
    kb = beta[..., None] * k
    out = (torch.cat([torch.cos(kb), -torch.sin(kb)], dim=-1) @ table).reshape(
        beta.shape + (2 * l + 1, 2 * l + 1))
    ka = (alpha[..., None] * k)[..., :, None]
    # Y(alpha) @ X: row l+k gets cos(k alpha) of itself and -sin(k alpha) of row l-k
    out = torch.cos(ka) * out - torch.sin(ka) * out.flip(-2)
    if gamma is not None:  # X @ Y(gamma): column l+k the same, with +sin from column l-k
        kg = (gamma[..., None] * k)[..., None, :]
        out = torch.cos(kg) * out + torch.sin(kg) * out.flip(-1)
    return out


def wigner_D_from_matrix(l: int, rot: torch.Tensor) -> torch.Tensor:
    """D^l (e3nn basis) of proper rotation matrices ``rot`` ``(..., 3, 3)``."""
    with _float64_default():
        d = o3.Irrep(l, 1).D_from_matrix(rot.to(torch.float64))
    return d.to(rot.dtype)


@functools.lru_cache(maxsize=None)
def _orbital_from_e3nn64(l: int) -> torch.Tensor:
    with _float64_default():
        return o3.Irrep(l, 1).D_from_matrix(torch.tensor(_FRAME, dtype=torch.float64))


def orbital_from_e3nn(l: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Q_l ``(2l+1, 2l+1)``, orthogonal: orbital components = Q_l @ e3nn components."""
    return _orbital_from_e3nn64(l).to(dtype=dtype, device=device)


def wigner_D_orbital(l: int, rot: torch.Tensor) -> torch.Tensor:
    """D^l in the orbital basis of rotation matrices ``rot`` ``(..., 3, 3)``."""
    q = orbital_from_e3nn(l, rot.dtype, rot.device)
    return q @ wigner_D_from_matrix(l, rot) @ q.T


def block_rotation(shells, rot: torch.Tensor) -> torch.Tensor:
    """Block-diagonal D over an atom's shells (orbital basis), ``(n_orb, n_orb)`` for one
    rotation matrix ``rot`` ``(3, 3)``."""
    blocks = [wigner_D_orbital(int(l), rot) for l in shells]
    if not blocks:
        return rot.new_zeros((0, 0))
    return torch.block_diag(*blocks)
