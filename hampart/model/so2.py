"""eSCN SO(2) convolution in each edge's own frame.

Features are ``(n, (lmax+1)^2, C)`` in the **e3nn basis** (y is the polar axis; component
``l*l + l + m`` holds (l, m), m = -l..l). :class:`EdgeFrame` rotates per-edge features into the
frame in which the edge points along +y (``D^T``, with ``D = so3.wigner_D(l, alpha, beta, 0)``
and ``D e_y = r_ij / |r_ij|``) and back (``D``). In that frame a rotation about the edge by
gamma mixes only the components (l, +m) and (l, -m), like the complex number
``x_{+m} + i x_{-m}`` multiplied by ``exp(i m gamma)``. :class:`SO2Linear` maps each m separately:
m = 0 with a real matrix over (l, channel), m > 0 with a complex one, so it commutes with the roll
and the result does not depend on the (arbitrary) gamma = 0 choice; hence rotating the input
rotates the output. Components with ``|m| > mmax`` are dropped.

Edge-frame tensors are ``(n_edges, K_m, C)`` in **m-major** order (:func:`m_major_order`):
m = 0 for l = 0..lmax, then for each m = 1..mmax the (l, +m) for l = m..lmax followed by the
(l, -m) for l = m..lmax. Wigner-D is kept per l (``(n_edges, 2l+1, n_m(l))``), never as a dense
``(lmax+1)^2`` square. No state is kept on modules; an :class:`EdgeFrame` lives for one forward.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .. import so3

__all__ = ["m_major_order", "frame_size", "EdgeFrame", "SO2Linear", "gate_frame"]


def _kept_m(l: int, mmax: int) -> list[int]:
    return list(range(-min(l, mmax), min(l, mmax) + 1))


@functools.lru_cache(maxsize=None)
def m_major_order(lmax: int, mmax: int) -> tuple[tuple[int, int], ...]:
    """(l, m) of each edge-frame component in m-major order (see the module docstring)."""
    order = [(l, 0) for l in range(lmax + 1)]
    for m in range(1, min(mmax, lmax) + 1):
        order += [(l, m) for l in range(m, lmax + 1)]
        order += [(l, -m) for l in range(m, lmax + 1)]
    return tuple(order)


def frame_size(lmax: int, mmax: int) -> int:
    """K_m: number of edge-frame components kept."""
    return len(m_major_order(lmax, mmax))


@functools.lru_cache(maxsize=None)
def _perms(lmax: int, mmax: int) -> tuple[list[int], list[int]]:
    """(to_m_major, to_l_major): index maps between l-major (kept m only) and m-major order."""
    l_major = [(l, m) for l in range(lmax + 1) for m in _kept_m(l, mmax)]
    pos = {lm: k for k, lm in enumerate(l_major)}
    to_m = [pos[lm] for lm in m_major_order(lmax, mmax)]
    inv = [0] * len(to_m)
    for k, p in enumerate(to_m):
        inv[p] = k
    return to_m, inv


class EdgeFrame:
    """Per-l Wigner blocks of a set of edges and the rotations into and out of their frames.

    ``vec`` ``(n_edges, 3)``: edge vectors r_ij. Angles are computed in float64 (``acos`` loses
    precision near the poles in float32) and the blocks cast to ``dtype``.
    """

    def __init__(self, vec: torch.Tensor, lmax: int, mmax: int, dtype: torch.dtype):
        self.lmax, self.mmax = int(lmax), int(mmax)
        alpha, beta = so3.edge_angles(vec.detach().to(torch.float64))
        self.wigner = []  # l -> (n_edges, 2l+1, n_kept(l)): only the columns of kept m
        for l in range(self.lmax + 1):
            d = so3.wigner_D(l, alpha, beta)
            cols = [l + m for m in _kept_m(l, self.mmax)]
            if len(cols) < 2 * l + 1:
                d = d[:, :, cols]
            self.wigner.append(d.to(dtype).contiguous())
        to_m, to_l = _perms(self.lmax, self.mmax)
        self.to_m = torch.tensor(to_m, device=vec.device)
        self.to_l = torch.tensor(to_l, device=vec.device)

    def select(self, index: torch.Tensor) -> "EdgeFrame":
        """The frame of a subset of the edges, ``index`` ``(k,)``."""
        sub = object.__new__(EdgeFrame)
        sub.lmax, sub.mmax, sub.to_m, sub.to_l = self.lmax, self.mmax, self.to_m, self.to_l
        sub.wigner = [d[index] for d in self.wigner]
        return sub

    def rotate_in(self, pieces) -> torch.Tensor:
        """Per-l global features ``pieces[l]`` ``(n_edges, 2l+1, C)`` -> frame ``(n_edges, K_m, C)``."""
        out = [torch.matmul(d.transpose(1, 2), x) for d, x in zip(self.wigner, pieces)]
        return torch.cat(out, dim=1).index_select(1, self.to_m)

    def rotate_out(self, x: torch.Tensor, lmax: int | None = None) -> list[torch.Tensor]:
        """Frame features ``(n_edges, K_m, C)`` (m-major, up to ``lmax``) -> per-l global
        ``(n_edges, 2l+1, C)``, l = 0..lmax."""
        lmax = self.lmax if lmax is None else int(lmax)
        _, to_l = _perms(lmax, self.mmax)
        x = x.index_select(1, torch.tensor(to_l, device=x.device))
        pieces = x.split([len(_kept_m(l, self.mmax)) for l in range(lmax + 1)], dim=1)
        return [torch.matmul(self.wigner[l], p) for l, p in enumerate(pieces)]


class SO2Linear(nn.Module):
    """Per-m linear map in the edge frame (m-major in, m-major out).

    ``forward(x (n_edges, K_m(lmax_in), c_in)) -> (y (n_edges, K_m(lmax_out), c_out),
    scalars (n_edges, n_scalars) or None)``. ``scalars`` are extra invariant outputs of the m = 0
    map (gates, attention logits). The m = 0 outputs carry a bias: a constant there is a function
    of the edge direction only once rotated back, so equivariance holds.
    """

    def __init__(self, lmax_in: int, mmax: int, c_in: int, c_out: int,
                 lmax_out: int | None = None, n_scalars: int = 0):
        super().__init__()
        self.lmax_in, self.mmax = int(lmax_in), int(mmax)
        self.lmax_out = self.lmax_in if lmax_out is None else int(lmax_out)
        self.c_in, self.c_out, self.n_scalars = int(c_in), int(c_out), int(n_scalars)
        n_in0, n_out0 = self.lmax_in + 1, self.lmax_out + 1
        self.w0 = nn.Parameter(torch.randn(n_in0 * c_in, n_out0 * c_out + n_scalars)
                               / math.sqrt(n_in0 * c_in))
        self.b0 = nn.Parameter(torch.zeros(n_out0 * c_out + n_scalars))
        self.wm = nn.ParameterList()
        for m in range(1, min(self.mmax, self.lmax_in, self.lmax_out) + 1):
            n_in, n_out = self.lmax_in - m + 1, self.lmax_out - m + 1
            # [W_real | W_imag]; each sees 2 n_in c_in inputs (both +m and -m)
            self.wm.append(nn.Parameter(torch.randn(n_in * c_in, 2 * n_out * c_out)
                                        / math.sqrt(2 * n_in * c_in)))

    def _sizes(self):
        """Sizes of the input's m blocks, m = 0..min(mmax, lmax_in)."""
        lmax = self.lmax_in
        return [lmax + 1] + [2 * (lmax - m + 1) for m in range(1, min(self.mmax, lmax) + 1)]

    def forward(self, x: torch.Tensor):
        e = x.shape[0]
        n_out0 = self.lmax_out + 1
        # split, not slice: the backward of a slice zero-fills a tensor of the input's size
        blocks = x.split(self._sizes(), dim=1)
        y0 = torch.addmm(self.b0, blocks[0].reshape(e, -1), self.w0)
        if self.n_scalars:
            y0, scalars = y0.split([n_out0 * self.c_out, self.n_scalars], dim=1)
        else:
            scalars = None
        out = [y0.reshape(e, n_out0, self.c_out)]
        for m, w in enumerate(self.wm, start=1):
            n_in, n_out = self.lmax_in - m + 1, self.lmax_out - m + 1
            w_re, w_im = w.split(n_out * self.c_out, dim=1)
            # (x+ + i x-) (Wr + i Wi) = (x+ Wr - x- Wi) + i (x+ Wi + x- Wr), as one real matmul
            w_big = torch.cat([torch.cat([w_re, w_im], 1), torch.cat([-w_im, w_re], 1)], 0)
            y = torch.matmul(blocks[m].reshape(e, 2 * n_in * self.c_in), w_big)
            out.append(y.reshape(e, 2 * n_out, self.c_out))
        y = torch.cat(out, dim=1)
        kept = frame_size(self.lmax_out, self.mmax)
        if y.shape[1] < kept:  # lmax_in < lmax_out: m the input lacks come out zero
            y = torch.cat([y, y.new_zeros(e, kept - y.shape[1], self.c_out)], dim=1)
        return y, scalars


def gate_frame(x: torch.Tensor, gates: torch.Tensor, lmax: int, mmax: int) -> torch.Tensor:
    """Gated activation in the edge frame: SiLU on (l=0), ``x * sigmoid(gate[l, c])`` for l > 0.

    x ``(n_edges, K_m, C)`` m-major; gates ``(n_edges, lmax * C)``. A gate is one invariant per
    (l, channel), shared by +m and -m, so the roll symmetry is kept.
    """
    e, _, c = x.shape
    if lmax == 0:
        return torch.nn.functional.silu(x)
    sig = torch.sigmoid(gates).reshape(e, lmax, c)
    sizes = [1, lmax] + [2 * (lmax - m + 1) for m in range(1, min(mmax, lmax) + 1)]
    blocks = x.split(sizes, dim=1)
    out = [torch.nn.functional.silu(blocks[0]), blocks[1] * sig]
    for m, block in enumerate(blocks[2:], start=1):
        n = lmax - m + 1
        out.append((block.reshape(e, 2, n, c) * sig[:, None, m - 1:]).reshape(e, 2 * n, c))
    return torch.cat(out, dim=1)
