"""Output heads: features -> irreducible components per species (pair) -> padded blocks.

The block layout comes from :class:`hampart.blocks.IrrepsLayout`: one orthogonal ``U``
``(u*u, u*u)`` with ``blocks = (irreps @ U).reshape(..., u, u)`` (orbital basis, padded union
basis) and ``entries`` = (a, b, la, lb, L, start, stop): ``irreps[..., start:stop]`` transforms
as e3nn ``wigner_D(L)`` when the block transforms as ``D^la B D^lb^T``. A head predicts only
the entries whose shells a (row atom) and b (column atom) the species (pair) has; the others
stay exactly zero, so padded block entries a species lacks are zero.

Node head: global-frame node features ``(n, K, C)`` -> per-L linear maps times a fixed scale,
plus a bias on L = 0. Edge head: edge-frame features ``(m, K_m, C_e)`` ->
:class:`~hampart.model.so2.SO2Linear` to the L the pair needs, times a fixed scale -> rotated
back per L with D^L. Scales and initial biases come from the training labels
(:mod:`hampart.model.statistics`); both are 1 and 0 until set. Each directed edge j -> i gets
its own prediction of H_ij; nothing ties it to the prediction for i -> j (the assembly symmetrises).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .so2 import EdgeFrame, SO2Linear

__all__ = ["present_entries", "IrrepsPlacement", "NodeHead", "EdgeHead"]


def present_entries(layout, basis, z_row: int, z_col: int) -> list[int]:
    """Indices into ``layout.entries`` of the (a, b) shell pairs species z_row x z_col has."""
    starts = np.cumsum([0] + [2 * l + 1 for l in basis.union_shells])[:-1]
    has_row = basis.union_mask(z_row)[starts]
    has_col = basis.union_mask(z_col)[starts]
    return [k for k, (a, b, *_rest) in enumerate(layout.entries) if has_row[a] and has_col[b]]


class IrrepsPlacement(nn.Module):
    """Where per-L head outputs go in the irreps vector.

    ``forward(per_l)`` with ``per_l[L]`` ``(N, 2L+1, width[L])`` for L = 0..lmax_out returns
    ``(N, u*u)`` irreps; entry number k of a given L reads channel k.
    """

    def __init__(self, layout, entry_ids: list[int], n_irreps: int):
        super().__init__()
        by_l: dict[int, list[tuple[int, int]]] = {}
        for k in entry_ids:
            *_ab, L, start, stop = layout.entries[k][:7]
            by_l.setdefault(int(L), []).append((int(start), int(stop)))
        self.lmax_out = max(by_l, default=0)
        self.width = [len(by_l.get(L, [])) for L in range(self.lmax_out + 1)]
        self.n_irreps = int(n_irreps)
        pos, src, offset = [], [], 0
        for L in range(self.lmax_out + 1):
            w = self.width[L]
            for k, (start, stop) in enumerate(by_l.get(L, [])):
                assert stop - start == 2 * L + 1, "layout entry size does not match its L"
                pos += range(start, stop)
                src += [offset + mm * w + k for mm in range(2 * L + 1)]
            offset += (2 * L + 1) * w
        self.register_buffer("pos", torch.tensor(pos, dtype=torch.long), persistent=False)
        self.register_buffer("src", torch.tensor(src, dtype=torch.long), persistent=False)

    def forward(self, per_l: list[torch.Tensor]) -> torch.Tensor:
        n = per_l[0].shape[0]
        flat = torch.cat([p.reshape(n, -1) for p in per_l], dim=1)
        out = flat.new_zeros(n, self.n_irreps)
        return out.index_copy(1, self.pos, flat.index_select(1, self.src))


class NodeHead(nn.Module):
    """Irreps of one species' node block from its atoms' features ``(n_s, K, C)`` and, with
    ``scalar_channels``, extra invariants ``(n_s, P)`` read by L = 0 only."""

    def __init__(self, layout, entry_ids: list[int], n_irreps: int, channels: int,
                 scalar_channels: int = 0):
        super().__init__()
        self.place = IrrepsPlacement(layout, entry_ids, n_irreps)
        self.weight = nn.ParameterList(
            [nn.Parameter(torch.randn(channels, w) / math.sqrt(channels)) for w in self.place.width])
        self.bias = nn.Parameter(torch.zeros(self.place.width[0]))
        self.scalar_weight = (nn.Parameter(torch.zeros(int(scalar_channels), self.place.width[0]))
                              if scalar_channels else None)
        # fixed output scale (Hartree), set from the labels: see hampart.model.statistics
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x: torch.Tensor, scalars: torch.Tensor | None = None) -> torch.Tensor:
        per_l = [torch.matmul(x[:, L * L:(L + 1) * (L + 1)], w) * self.scale
                 for L, w in enumerate(self.weight)]
        if self.scalar_weight is not None:
            per_l[0] = per_l[0] + (scalars @ self.scalar_weight)[:, None] * self.scale
        per_l[0] = per_l[0] + self.bias
        return self.place(per_l)

    @torch.no_grad()
    def set_statistics(self, mean_irreps: torch.Tensor, scale: float) -> None:
        """Bias = the L = 0 part of the mean block's irreps ``(u*u,)``; output scale."""
        w0 = self.place.width[0]
        self.bias.copy_(mean_irreps.to(self.bias)[self.place.pos[:w0]])
        self.scale.fill_(float(scale))


class EdgeHead(nn.Module):
    """Irreps of one species pair's edge blocks from edge-frame features ``(m_p, K_m, C_e)``."""

    def __init__(self, layout, entry_ids: list[int], n_irreps: int, lmax: int, mmax: int,
                 c_edge: int):
        super().__init__()
        self.place = IrrepsPlacement(layout, entry_ids, n_irreps)
        self.width = max(self.place.width)
        self.conv = SO2Linear(lmax, mmax, c_edge, self.width, lmax_out=self.place.lmax_out)
        self.register_buffer("scale", torch.ones(()))  # fixed output scale (Hartree)

    def forward(self, feats: torch.Tensor, frame: EdgeFrame) -> torch.Tensor:
        y, _ = self.conv(feats)
        y = y * self.scale
        per_l = frame.rotate_out(y, self.place.lmax_out)
        return self.place([p[..., :w] for p, w in zip(per_l, self.place.width)])
