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
(bond-angle) on-site term, which the two-body sums cannot express. With ``products`` the heads
read, on each L >= 1, the channel-wise Clebsch-Gordan products (s_i[l1, :, c] x s_i[l2, :, c])_L
of the standardised sums (every pair l1 <= l2 that couples to L with the parity of Y_L): the
three-body term of the anisotropic on-site parts (s-p, the traceless p-p), as the invariants
are for L = 0. It needs only an atom's incoming edges and its neighbours' species, so a
partition with any halo computes it exactly for its owned atoms. Edge direction: j -> i, summed
into the receiver i.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from .radial import RadialMLP

__all__ = ["NeighbourSum", "product_pairs"]


def product_pairs(lmax: int) -> dict[int, list[tuple[int, int]]]:
    """For each L in 1..lmax, the pairs (l1, l2), l1 <= l2 <= lmax, whose product of Y_l1 and
    Y_l2 has an L part: |l1 - l2| <= L <= l1 + l2 and l1 + l2 + L even (parity; a channel's
    (s_l x s_l)_L with L odd vanishes)."""
    return {L: [(l1, l2) for l1 in range(lmax + 1) for l2 in range(l1, lmax + 1)
                if abs(l1 - l2) <= L <= l1 + l2 and (l1 + l2 + L) % 2 == 0]
            for L in range(1, lmax + 1)}


class NeighbourSum(nn.Module):
    """See the module docstring; ``kind`` ``(n,)`` species indices (0 = ghost)."""

    def __init__(self, n_species: int, lmax: int, mmax: int, channels: int, n_radial: int,
                 hidden: int, species_dim: int = 8, invariants: bool = False,
                 products: bool = False):
        super().__init__()
        self.lmax, self.mmax, self.channels = int(lmax), int(mmax), int(channels)
        self.n_invariants = self.lmax * self.channels if invariants else 0
        self.pairs = product_pairs(self.lmax) if products else {}
        # product channels per L block, zero-padded to the L with the most pairs
        self.n_products = max((len(p) for p in self.pairs.values()), default=0) * self.channels
        for L, pairs in self.pairs.items():  # real Clebsch-Gordan coefficients (e3nn basis)
            for l1, l2 in pairs:
                self.register_buffer(f"cg_{l1}_{l2}_{L}", o3.wigner_3j(l1, l2, L),
                                     persistent=False)
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

    def products(self, standard: torch.Tensor) -> torch.Tensor:
        """``(n, (lmax+1)^2, n_products)``: on the rows of each L >= 1, the products
        (s[l1] x s[l2])_L per channel of the standardised sums, pair after pair, zero-padded;
        zero on L = 0 (the invariants' place)."""
        n, c = standard.shape[0], self.channels
        blocks = [standard.new_zeros(n, 1, self.n_products)]
        for L in range(1, self.lmax + 1):
            pieces = [torch.einsum("nac,nbc,abM->nMc", standard[:, l1 * l1:(l1 + 1) ** 2],
                                   standard[:, l2 * l2:(l2 + 1) ** 2],
                                   getattr(self, f"cg_{l1}_{l2}_{L}").to(standard.dtype))
                      for l1, l2 in self.pairs[L]]
            pad = self.n_products - len(pieces) * c
            pieces.append(standard.new_zeros(n, 2 * L + 1, pad))
            blocks.append(torch.cat(pieces, dim=2))
        return torch.cat(blocks, dim=1)

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
