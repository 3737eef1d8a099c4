"""Edge features that persist through the layers (the paper's code), in each edge's own frame.

An edge feature ``e`` of the edge j -> i is ``(m, K_m, C_e)`` in the edge frame, m-major order
(:mod:`hampart.model.so2`). It starts as an invariant embedding of the distance
(:class:`EdgeEmbedding`: a radial MLP on the m = 0 components of every l, zero elsewhere) and
every layer updates it (:class:`EdgeUpdate`): ``e += SO2(gate(SO2([x_i, x_j] * radial, e)))``,
then ``e += FeedForward(norm(e))``. Everything here commutes with a roll about the edge: per-m
SO(2) maps, norms and per-l channel maps that treat +m and -m alike, gates from invariants. So
the blocks read from ``e`` rotate as ``D H D^T``.

Receptive field: ``e`` after layer k depends on its two end atoms' features after layer k, so
an edge output still needs exactly what the edge block needed (halo L + 1 for owned edges),
and messages that read ``e`` (``[x_i, x_j, e]``) see no further than one hop (halo L for owned
atoms).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .layers import EdgeGeometry, edge_frame_input
from .radial import make_radial
from .so2 import SO2Linear, gate_frame, m_major_order

__all__ = ["EdgeEmbedding", "FrameLayerNorm", "FrameFeedForward", "EdgeUpdate"]


@functools.lru_cache(maxsize=None)
def _l_of_component(lmax: int, mmax: int) -> tuple[int, ...]:
    """l of each m-major edge-frame component."""
    return tuple(l for l, _ in m_major_order(lmax, mmax))


@functools.lru_cache(maxsize=None)
def _l_groups(lmax: int, mmax: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(to_l, to_m, sizes): the m-major components sorted by l (stable), the inverse
    permutation, and the number of kept components of each l."""
    l_of = _l_of_component(lmax, mmax)
    to_l = sorted(range(len(l_of)), key=lambda k: l_of[k])
    to_m = [0] * len(to_l)
    for k, p in enumerate(to_l):
        to_m[p] = k
    return tuple(to_l), tuple(to_m), tuple(l_of.count(l) for l in range(lmax + 1))


class EdgeEmbedding(nn.Module):
    """Initial edge features ``(m, K_m, C_e)``: ``R_lc(r_ij)`` on the m = 0 component of every l
    (invariant under the roll about the edge), zero on m != 0."""

    def __init__(self, lmax: int, mmax: int, c_edge: int, n_radial: int, radial_hidden: int,
                 n_species: int = 0):
        super().__init__()
        self.lmax, self.mmax, self.c_edge = int(lmax), int(mmax), int(c_edge)
        self.radial = make_radial(n_radial, radial_hidden, (self.lmax + 1) * self.c_edge,
                                  n_species)

    def forward(self, geom: EdgeGeometry) -> torch.Tensor:
        m_edges = geom.sender.shape[0]
        # no envelope: a feature that vanished at rcut would be blown up by the edge layer norms
        # (float32 rounding amplified to per cent near the cutoff); messages carry the envelope
        m0 = self.radial.edge_weights(geom, envelope=False).reshape(m_edges, self.lmax + 1,
                                                                     self.c_edge)
        rest = len(m_major_order(self.lmax, self.mmax)) - (self.lmax + 1)
        return torch.cat([m0, m0.new_zeros(m_edges, rest, self.c_edge)], dim=1)


class FrameLayerNorm(nn.Module):
    """Equivariant layer norm of edge-frame features ``(m, K_m, C)``: l = 0 a usual layer norm
    over channels; l > 0 divided by the RMS over that l's kept components and channels, then a
    per-(l, channel) gain (as :class:`~hampart.model.layers.EquivariantLayerNorm`)."""

    def __init__(self, lmax: int, mmax: int, channels: int, eps: float = 1e-6):
        super().__init__()
        self.lmax, self.mmax, self.eps = int(lmax), int(mmax), float(eps)
        self.gain = nn.Parameter(torch.ones(self.lmax + 1, channels))
        self.shift = nn.Parameter(torch.zeros(channels))
        l_of = _l_of_component(self.lmax, self.mmax)
        counts = _l_groups(self.lmax, self.mmax)[2]
        self.register_buffer("l_of", torch.tensor(l_of), persistent=False)
        self.register_buffer("count", torch.tensor(counts, dtype=torch.float64), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0, rest = x.split([1, x.shape[1] - 1], dim=1)  # component 0 is (l, m) = (0, 0)
        x0 = x0 - x0.mean(dim=-1, keepdim=True)
        x0 = x0 * torch.rsqrt(x0.square().mean(dim=-1, keepdim=True) + self.eps)
        x0 = x0 * self.gain[0] + self.shift
        if not self.lmax:
            return x0
        l_rest = self.l_of[1:]
        power = x.new_zeros(x.shape[0], self.lmax + 1).index_add_(1, l_rest,
                                                                   rest.square().mean(-1))
        power = power / self.count.to(x.dtype)
        rest = rest * torch.rsqrt(power[:, l_rest] + self.eps)[..., None] * self.gain[l_rest]
        return torch.cat([x0, rest], dim=1)


class FrameFeedForward(nn.Module):
    """Per-l channel map -> gated activation (gates from l = 0) -> per-l channel map, on
    edge-frame features ``(m, K_m, C)``; +m and -m share every weight, so the roll commutes."""

    def __init__(self, lmax: int, mmax: int, channels: int, hidden: int):
        super().__init__()
        self.lmax, self.mmax, self.hidden = int(lmax), int(mmax), int(hidden)
        self.up = nn.Parameter(torch.randn(self.lmax + 1, channels, hidden) / math.sqrt(channels))
        self.up_bias = nn.Parameter(torch.zeros(hidden))
        self.gates = nn.Linear(channels, self.lmax * hidden) if self.lmax else None
        self.down = nn.Parameter(torch.randn(self.lmax + 1, hidden, channels) / math.sqrt(hidden))
        self.down_bias = nn.Parameter(torch.zeros(channels))

    @staticmethod
    def _per_l(pieces, weight: torch.Tensor, bias: torch.Tensor) -> list[torch.Tensor]:
        """Per-l pieces ``(m, n_l, c)`` -> ``pieces[l] @ weight[l]`` (+ bias on l = 0)."""
        out = [torch.matmul(p, weight[l]) for l, p in enumerate(pieces)]
        out[0] = out[0] + bias
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = x.shape[0]
        to_l, to_m, sizes = _l_groups(self.lmax, self.mmax)
        pieces = x.index_select(1, torch.tensor(to_l, device=x.device)).split(sizes, dim=1)
        pieces = self._per_l(pieces, self.up, self.up_bias)
        act = [torch.nn.functional.silu(pieces[0])]
        if self.lmax:
            sig = torch.sigmoid(self.gates(x[:, 0])).reshape(e, self.lmax, 1, self.hidden)
            act += [p * sig[:, l - 1] for l, p in enumerate(pieces) if l > 0]
        out = self._per_l(act, self.down, self.down_bias)
        return torch.cat(out, dim=1).index_select(1, torch.tensor(to_m, device=x.device))


class EdgeUpdate(nn.Module):
    """One layer's update of the edge features, returns the new ``(m, K_m, C_e)``:
    ``e + SO2(gate(SO2([x_i, x_j] * radial, norm(e))))``, then ``+ FeedForward(norm(e))``.
    ``final`` adds a closing norm (what the edge heads read)."""

    def __init__(self, lmax: int, mmax: int, channels: int, c_edge: int, hidden: int,
                 n_radial: int, radial_hidden: int, n_species: int = 0, final: bool = False):
        super().__init__()
        self.lmax, self.mmax, self.channels = int(lmax), int(mmax), int(channels)
        self.radial = make_radial(n_radial, radial_hidden, (lmax + 1) * 2 * channels, n_species)
        self.norm_in = FrameLayerNorm(lmax, mmax, c_edge)
        self.conv1 = SO2Linear(lmax, mmax, 2 * channels + c_edge, c_edge, n_scalars=lmax * c_edge)
        self.conv2 = SO2Linear(lmax, mmax, c_edge, c_edge)
        self.norm_ff = FrameLayerNorm(lmax, mmax, c_edge)
        self.ff = FrameFeedForward(lmax, mmax, c_edge, hidden)
        self.norm_out = FrameLayerNorm(lmax, mmax, c_edge) if final else None

    def forward(self, x: torch.Tensor, geom: EdgeGeometry, edge: torch.Tensor) -> torch.Tensor:
        """``x`` ``(n, K, C)`` normalised node features, ``edge`` ``(m, K_m, C_e)``."""
        m_edges = geom.sender.shape[0]
        scale = self.radial.edge_weights(geom).reshape(m_edges, self.lmax + 1, 2 * self.channels)
        frame_in = torch.cat([edge_frame_input(x, geom, scale), self.norm_in(edge)], dim=2)
        y, gates = self.conv1(frame_in)
        edge = edge + self.conv2(gate_frame(y, gates, self.lmax, self.mmax))[0]
        edge = edge + self.ff(self.norm_ff(edge))
        return self.norm_out(edge) if self.norm_out is not None else edge
