"""Building blocks of one message-passing layer: node-wise maps and the edge-wise blocks.

Node features ``x`` are ``(n, (lmax+1)^2, C)`` in the e3nn basis (l-major, component
``l*l + l + m``); all node-wise maps here act per l on the channel axis only, so they commute
with rotations. Edge-wise blocks work in each edge's frame (:mod:`hampart.model.so2`).

Edge direction: edge e is j -> i with ``sender = edge_index[0]`` (j) and
``receiver = edge_index[1]`` (i); messages are summed into the receiver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .radial import RadialMLP, make_radial
from .so2 import EdgeFrame, SO2Linear, gate_frame

__all__ = ["EdgeGeometry", "LinearPerL", "EquivariantLayerNorm", "gate_nodes", "FeedForward",
           "receiver_softmax", "scatter_sum", "edge_frame_input", "smooth_leaky_relu",
           "MessageBlock", "EdgeBlock"]


@dataclass
class EdgeGeometry:
    """What every edge-wise block needs, computed once per forward."""

    sender: torch.Tensor    # (m,) j
    receiver: torch.Tensor  # (m,) i
    n_nodes: int
    frame: EdgeFrame
    rbf: torch.Tensor       # (m, n_radial)
    env: torch.Tensor       # (m,) smooth cutoff envelope, 0 at rcut
    kind: torch.Tensor | None = None  # (n,) species index of every node (species-aware radials)


def _split_l(x: torch.Tensor, lmax: int):
    """Per-l views ``(n, 2l+1, C)`` of ``(n, (lmax+1)^2, C)``; split, not slices: the backward of
    each slice would zero-fill a tensor of the whole input's size."""
    return x.split([2 * l + 1 for l in range(lmax + 1)], dim=1)


class LinearPerL(nn.Module):
    """Channel mixing per l, ``(n, K, c_in) -> (n, K, c_out)``; bias only on l = 0."""

    def __init__(self, lmax: int, c_in: int, c_out: int, bias: bool = True):
        super().__init__()
        self.lmax = int(lmax)
        self.weight = nn.Parameter(torch.randn(self.lmax + 1, c_in, c_out) / math.sqrt(c_in))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = [torch.matmul(xl, self.weight[l]) for l, xl in enumerate(_split_l(x, self.lmax))]
        if self.bias is not None:
            out[0] = out[0] + self.bias
        return torch.cat(out, dim=1)


class EquivariantLayerNorm(nn.Module):
    """Layer norm that keeps equivariance.

    l = 0: usual layer norm over channels (centre, scale, affine). l > 0: divide by the root
    mean square over (m, channel) of that l, then a per-channel gain (no shift, no centring).
    """

    def __init__(self, lmax: int, channels: int, eps: float = 1e-6):
        super().__init__()
        self.lmax, self.eps = int(lmax), float(eps)
        self.gain = nn.Parameter(torch.ones(self.lmax + 1, channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for l, xl in enumerate(_split_l(x, self.lmax)):
            if l == 0:
                xl = xl - xl.mean(dim=-1, keepdim=True)
                xl = xl * torch.rsqrt(xl.square().mean(dim=-1, keepdim=True) + self.eps)
                out.append(xl * self.gain[0] + self.shift)
            else:
                rms = torch.rsqrt(xl.square().mean(dim=(1, 2), keepdim=True) + self.eps)
                out.append(xl * rms * self.gain[l])
        return torch.cat(out, dim=1)


def gate_nodes(x: torch.Tensor, gates: torch.Tensor, lmax: int) -> torch.Tensor:
    """SiLU on l = 0, ``x_l * sigmoid(gate[l, c])`` for l > 0; x ``(n, K, C)``, gates
    ``(n, lmax * C)``."""
    n, _, c = x.shape
    pieces = _split_l(x, lmax)
    out = [torch.nn.functional.silu(pieces[0])]
    if lmax:
        sig = torch.sigmoid(gates).reshape(n, lmax, 1, c).unbind(1)
        out += [xl * sig[l - 1] for l, xl in enumerate(pieces) if l > 0]
    return torch.cat(out, dim=1)


class FeedForward(nn.Module):
    """Per-l linear -> gated activation (gates from the l = 0 input) -> per-l linear."""

    def __init__(self, lmax: int, channels: int, hidden: int):
        super().__init__()
        self.lmax = int(lmax)
        self.up = LinearPerL(lmax, channels, hidden)
        self.gates = nn.Linear(channels, self.lmax * hidden) if self.lmax else None
        self.down = LinearPerL(lmax, hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.gates(x[:, 0]) if self.gates is not None else None
        return self.down(gate_nodes(self.up(x), gates, self.lmax))


def receiver_softmax(logits: torch.Tensor, receiver: torch.Tensor, n_nodes: int,
                     weight: torch.Tensor) -> torch.Tensor:
    """Softmax of ``logits`` ``(m, heads)`` over each receiver's incoming edges, each term
    weighted by ``weight`` ``(m,)`` (the cutoff envelope, so that an edge's attention fades to
    zero as it leaves the cutoff sphere). Stable: the receiver's largest logit is subtracted."""
    heads = logits.shape[1]
    idx = receiver[:, None].expand(-1, heads)
    top = logits.new_full((n_nodes, heads), -torch.inf)
    top = top.scatter_reduce(0, idx, logits.detach(), reduce="amax", include_self=True)
    num = torch.exp(logits - top[receiver]) * weight[:, None]
    den = logits.new_zeros(n_nodes, heads).index_add_(0, receiver, num)
    return num / (den[receiver] + torch.finfo(logits.dtype).tiny)


class _ScatterSum(torch.autograd.Function):
    """``index_add_`` into zeros whose backward keeps only the index (autograd's own keeps the
    summed edge tensor alive until the backward pass: 1.6 KB per edge at lmax 4, 16 channels)."""

    @staticmethod
    def forward(ctx, src, index, n):
        ctx.save_for_backward(index)
        return src.new_zeros((n,) + tuple(src.shape[1:])).index_add_(0, index, src)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return grad.index_select(0, index), None, None


def scatter_sum(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """``out[i] = sum of src[e] over the edges e with index[e] = i``: ``(m, ...) -> (n, ...)``."""
    return _ScatterSum.apply(src, index, int(n))


def edge_frame_input(x: torch.Tensor, geom: EdgeGeometry, scale: torch.Tensor,
                     recompute: bool = False) -> torch.Tensor:
    """``[x_i, x_j]`` per edge, each (l, channel) scaled by ``scale`` ``(m, lmax+1, 2C)``,
    rotated into the edge frame: ``(m, K_m, 2C)``. ``recompute``: with gradients, redone in the
    backward pass from ``x`` and ``scale`` (kept anyway) instead of keeping ``[x_i, x_j]`` per
    edge for the scale's gradient (3.2 KB per edge at lmax 4, 16 channels). It lowers the peak
    only for blocks early in the forward pass, whose backward runs when most is freed."""
    if recompute and torch.is_grad_enabled() and (x.requires_grad or scale.requires_grad):
        return checkpoint(_edge_frame_input, x, geom, scale, use_reentrant=False)
    return _edge_frame_input(x, geom, scale)


def _edge_frame_input(x: torch.Tensor, geom: EdgeGeometry, scale: torch.Tensor) -> torch.Tensor:
    lmax = geom.frame.lmax
    xi = _split_l(x.index_select(0, geom.receiver), lmax)
    xj = _split_l(x.index_select(0, geom.sender), lmax)
    scale = scale.unbind(1)
    pieces = [torch.cat([a, b], dim=-1) * s[:, None] for a, b, s in zip(xi, xj, scale)]
    return geom.frame.rotate_in(pieces)


def smooth_leaky_relu(x: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    """``(1 + a)/2 x + (1 - a)/2 x tanh(x/2)``: leaky ReLU of slope a for large |x|, smooth at 0
    (``tanh(x/2) = 2 sigmoid(x) - 1``); the paper's attention activation."""
    return 0.5 * (1.0 + slope) * x + 0.5 * (1.0 - slope) * x * torch.tanh(0.5 * x)


class MessageBlock(nn.Module):
    """SO(2) convolution with multi-head equivariant graph attention; returns ``(n, K, C)``.

    message_e = SO2(gate(SO2([x_i, x_j] * radial))) in the edge frame; attention logits from the
    invariant (m = 0) outputs of the first SO(2) map; softmax over each receiver's edges; the
    value's channels are split into ``heads`` groups, each weighted by its head's attention;
    rotated back with D and summed into the receiver. With ``attention_degree`` the weights are
    multiplied by the receiver's envelope-weighted in-degree over that number, so a message is
    a normalised sum over neighbours instead of their weighted mean (off: the paper's).
    With ``degree`` a neighbour sum ``sum_j R(r_ij, x_i, x_j) Y(r_ij) / d`` is added to the
    messages (a degree embedding, as in EquiformerV2, but inside the layer, so the receptive
    field and the partition halos it needs are unchanged); d is ``degree_norm``.

    Options of the paper's code (all off by default): ``edge_in`` > 0 reads edge features
    ``(m, K_m, edge_in)`` (edge frame) beside ``[x_i, x_j]``; ``attention_norm`` puts a layer
    norm over each head's ``att_channels`` and a smooth leaky ReLU before the logit;
    ``value_channels`` is each head's value width (default ``channels // heads``; the output
    projection maps ``heads * value_channels`` back to ``channels``); ``n_species`` > 0 makes
    the radial species-aware (:class:`~hampart.model.radial.SpeciesRadialMLP`).
    """

    def __init__(self, lmax: int, mmax: int, channels: int, heads: int, n_radial: int,
                 radial_hidden: int, att_channels: int = 8, attention_degree: float | None = None,
                 degree: bool = False, edge_in: int = 0, attention_norm: bool = False,
                 value_channels: int | None = None, n_species: int = 0):
        super().__init__()
        self.lmax, self.mmax, self.channels, self.heads = lmax, mmax, channels, heads
        self.att_channels = att_channels
        self.attention_degree = attention_degree
        self.edge_in = int(edge_in)
        self.values = heads * int(value_channels) if value_channels else channels  # value width
        self.radial = make_radial(n_radial, radial_hidden, (lmax + 1) * 2 * channels, n_species)
        # neighbour sum sum_j R(r_ij, x_i, x_j) Y(r_ij) / d: density the softmax mean cannot see
        self.degree = (RadialMLP(n_radial + 2 * channels, radial_hidden, (lmax + 1) * self.values)
                       if degree else None)
        if degree:  # d: the training data's mean envelope-weighted in-degree, saved
            self.register_buffer("degree_norm", torch.ones(()))
        self.conv1 = SO2Linear(lmax, mmax, 2 * channels + self.edge_in, channels,
                               n_scalars=lmax * channels + heads * att_channels)
        self.att_norm = nn.LayerNorm(att_channels) if attention_norm else None
        self.att_vector = nn.Parameter(torch.randn(heads, att_channels) / math.sqrt(att_channels))
        self.conv2 = SO2Linear(lmax, mmax, channels, self.values)
        self.proj = LinearPerL(lmax, self.values, channels)

    def forward(self, x: torch.Tensor, geom: EdgeGeometry,
                edge: torch.Tensor | None = None) -> torch.Tensor:
        return self.proj(self.aggregate(x, geom, edge))

    def aggregate(self, x: torch.Tensor, geom: EdgeGeometry,
                  edge: torch.Tensor | None = None) -> torch.Tensor:
        """Summed messages before the output projection: additive over sets of receivers.
        ``edge`` ``(m, K_m, edge_in)``: edge features in the edge frame (when ``edge_in``)."""
        m_edges = geom.sender.shape[0]
        scale = self.radial.edge_weights(geom).reshape(m_edges, self.lmax + 1, 2 * self.channels)
        frame_in = edge_frame_input(x, geom, scale, recompute=True)
        if self.edge_in:  # [x_i, x_j, e]: the edge's own features join the message input
            frame_in = torch.cat([frame_in, edge], dim=2)
        y, scalars = self.conv1(frame_in)
        gates, att = scalars.split([self.lmax * self.channels, self.heads * self.att_channels], 1)
        y = gate_frame(y, gates, self.lmax, self.mmax)
        att = att.reshape(m_edges, self.heads, -1)
        if self.att_norm is not None:  # the paper's code: layer norm, smooth leaky ReLU
            att = smooth_leaky_relu(self.att_norm(att))
        else:
            att = torch.nn.functional.leaky_relu(att, 0.2)
        logits = (att * self.att_vector).sum(-1)
        alpha = receiver_softmax(logits, geom.receiver, geom.n_nodes, geom.env)
        if self.attention_degree:  # weighted mean -> normalised sum: neighbour counts matter
            degree = geom.env.new_zeros(geom.n_nodes).index_add_(0, geom.receiver, geom.env)
            alpha = alpha * (degree / self.attention_degree)[geom.receiver, None]
        value, _ = self.conv2(y)
        k = value.shape[1]
        value = (value.reshape(m_edges, k, self.heads, -1) * alpha[:, None, :, None])
        pieces = geom.frame.rotate_out(value.reshape(m_edges, k, self.values))
        if self.degree is not None:
            pieces = [p + q for p, q in zip(pieces, self._degree_pieces(x, geom))]
        # one scatter of whole (K, C) rows: faster than one per l, and nothing kept for backward
        return scatter_sum(torch.cat(pieces, dim=1), geom.receiver, geom.n_nodes)

    def _degree_pieces(self, x: torch.Tensor, geom: EdgeGeometry) -> list[torch.Tensor]:
        """Per-l ``(m, 2l+1, C)``: R_lc(r_ij, x_i, x_j) Y_l(r_ij) / d, whose sum over j is a
        neighbour density in every l. Y_l is the m = 0 column of the edge's Wigner block (it
        maps the frame's y axis onto r_ij); invariant inputs only, so it stays equivariant."""
        m_edges = geom.sender.shape[0]
        inputs = torch.cat([geom.rbf, x[:, 0].index_select(0, geom.receiver),
                            x[:, 0].index_select(0, geom.sender)], dim=1)
        weight = (self.degree(inputs, geom.env) / self.degree_norm).reshape(
            m_edges, self.lmax + 1, self.values)
        out = []
        for l, d in enumerate(geom.frame.wigner):
            zero = min(l, self.mmax)  # column of m = 0 among the kept -min(l, mmax)..min(l, mmax)
            out.append(d[:, :, zero:zero + 1] * weight[:, l:l + 1])
        return out


class EdgeBlock(nn.Module):
    """Edge feature of j -> i from both end atoms, in the edge frame: ``(m, K_m, c_edge)``.

    SO2(gate(SO2([x_i, x_j] * radial))); the edge head reads it without leaving the frame.
    """

    def __init__(self, lmax: int, mmax: int, channels: int, c_edge: int, n_radial: int,
                 radial_hidden: int, n_species: int = 0):
        super().__init__()
        self.lmax, self.mmax, self.channels = lmax, mmax, channels
        self.radial = make_radial(n_radial, radial_hidden, (lmax + 1) * 2 * channels, n_species)
        self.conv1 = SO2Linear(lmax, mmax, 2 * channels, c_edge, n_scalars=lmax * c_edge)
        self.conv2 = SO2Linear(lmax, mmax, c_edge, c_edge)

    def forward(self, x: torch.Tensor, geom: EdgeGeometry) -> torch.Tensor:
        m_edges = geom.sender.shape[0]
        scale = self.radial.edge_weights(geom).reshape(m_edges, self.lmax + 1, 2 * self.channels)
        y, gates = self.conv1(edge_frame_input(x, geom, scale))
        y = gate_frame(y, gates, self.lmax, self.mmax)
        return self.conv2(y)[0]
