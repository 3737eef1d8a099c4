"""A direct path for on-site blocks: a learned sum over each atom's neighbours.

``NeighbourSum(kind, geom)`` returns ``(n, (lmax+1)^2, C)`` in the e3nn basis (y polar, as the
node features):

    s_i[l, m, c] = sum_j R_lc(r_ij, Z_i, Z_j) Y_lm(r_ij / |r_ij|) / d

with R an MLP of the radial basis and both species (times the cutoff envelope), Y_l the m = 0
column of the edge's Wigner block (it maps the y axis onto r_ij), and d the training atoms' mean
envelope-weighted in-degree (a saved buffer). The node heads read it beside the network's
features, so an on-site block gets a term linear in these sums: the many-neighbour, two-body
part of on-site energies (density, coordination, crystal field) that a softmax mean of messages
only sees indirectly. With ``invariants`` the heads also read, on L = 0, the rotation invariants
q_i[l, c] = sum_m s_i[l, m, c]^2 (l >= 1, standardised): a linear term in them is a three-body
(bond-angle) on-site term, which the two-body sums cannot express. It needs only an atom's incoming edges and its neighbours' species, so a
partition with any halo computes it exactly for its owned atoms. Edge direction: j -> i, summed
into the receiver i.
"""

from __future__ import annotations

import torch
from torch import nn

from .radial import RadialMLP

__all__ = ["NeighbourSum"]


class NeighbourSum(nn.Module):
    """See the module docstring; ``kind`` ``(n,)`` species indices (0 = ghost)."""

    def __init__(self, n_species: int, lmax: int, mmax: int, channels: int, n_radial: int,
                 hidden: int, species_dim: int = 8, invariants: bool = False):
        super().__init__()
        self.lmax, self.mmax, self.channels = int(lmax), int(mmax), int(channels)
        self.n_invariants = self.lmax * self.channels if invariants else 0
        self.species = nn.Embedding(n_species, species_dim)
        self.radial = RadialMLP(n_radial + 2 * species_dim, hidden, (self.lmax + 1) * channels)
        # fixed random features: the heads' linear fit on them stays valid while training (a
        # trained radial would shift the standardised sums by many spreads at Adam's first steps)
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("degree_norm", torch.ones(()))
        # fixed standardisation from the training atoms (calibrate): l = 0 shift, per-l scale
        self.register_buffer("shift", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(self.lmax + 1, channels))
        if self.n_invariants:  # the invariants' own standardisation, from the same atoms
            self.register_buffer("invariant_shift", torch.zeros(self.n_invariants))
            self.register_buffer("invariant_scale", torch.ones(self.n_invariants))

    def raw_invariants(self, sums: torch.Tensor) -> torch.Tensor:
        """``(n, lmax * C)``: sum over m of the raw sums squared, l = 1..lmax (l-major)."""
        return torch.cat([sums[:, l * l:(l + 1) * (l + 1)].square().sum(1)
                          for l in range(1, self.lmax + 1)], dim=1)

    def invariants(self, sums: torch.Tensor) -> torch.Tensor:
        """The standardised invariants ``(n, lmax * C)`` of raw ``sums``."""
        return (self.raw_invariants(sums) - self.invariant_shift) / self.invariant_scale

    @torch.no_grad()
    def set_invariant_statistics(self, count, total, square) -> None:
        """Centre and scale the invariants to unit spread over ``count`` training atoms, from
        the sums ``total`` and ``square`` ``(lmax * C,)`` of their raw values and squares."""
        count = float(count)
        if count < 1 or not self.n_invariants:
            return
        mean = total / count
        spread = (square / count - mean.square()).clamp(min=0.0).sqrt()
        floor = 1e-6 * spread.max().clamp(min=1e-30)
        self.invariant_shift.copy_(mean.to(self.invariant_shift))
        self.invariant_scale.copy_(spread.clamp(min=float(floor)).to(self.invariant_scale))

    def standardise(self, sums: torch.Tensor) -> torch.Tensor:
        """``(sums - shift) / scale`` per (l, channel), the shift on l = 0 only (equivariant)."""
        scale = torch.repeat_interleave(self.scale, torch.tensor(
            [2 * l + 1 for l in range(self.lmax + 1)], device=sums.device), dim=0)
        sums = sums / scale
        return torch.cat([sums[:, :1] - self.shift / self.scale[0], sums[:, 1:]], dim=1)

    @torch.no_grad()
    def set_statistics(self, count, total, square) -> None:
        """From the raw sums of the training atoms: ``count`` atoms, ``total`` ``(C,)`` sum of
        the l = 0 values, ``square`` ``(lmax+1, C)`` sums of squares per l (all m). The l = 0
        part is centred and scaled to unit spread, l > 0 to unit root mean square: the on-site
        differences between atoms, a few per cent of the sums, become of order one, so the
        heads need no large weights to read them (and Adam no thousands of steps to grow them)."""
        count = float(count)
        if count < 1:
            return
        mean = total / count
        var0 = (square[0] / count - mean.square()).clamp(min=0.0)
        rms = square[1:] / (count * torch.tensor([2 * l + 1 for l in range(1, self.lmax + 1)],
                                                 dtype=square.dtype, device=square.device)[:, None])
        spread = torch.cat([var0[None], rms]).sqrt()
        floor = 1e-6 * spread.max().clamp(min=1e-30)  # a channel without spread stays finite
        self.shift.copy_(mean.to(self.shift))
        self.scale.copy_(spread.clamp(min=float(floor)).to(self.scale))

    def forward(self, kind: torch.Tensor, geom) -> torch.Tensor:
        m_edges = geom.sender.shape[0]
        inputs = torch.cat([geom.rbf, self.species(kind.index_select(0, geom.receiver)),
                            self.species(kind.index_select(0, geom.sender))], dim=1)
        weight = (self.radial(inputs.to(geom.rbf.dtype), geom.env) / self.degree_norm).reshape(
            m_edges, self.lmax + 1, self.channels)
        out = []
        for l, d in enumerate(geom.frame.wigner):
            zero = min(l, self.mmax)  # column of m = 0 among the kept -min(l, mmax)..min(l, mmax)
            piece = d[:, :, zero:zero + 1] * weight[:, l:l + 1]  # (m, 2l+1, C)
            out.append(piece.new_zeros(geom.n_nodes, 2 * l + 1, self.channels)
                       .index_add_(0, geom.receiver, piece))
        return torch.cat(out, dim=1)
