"""Label statistics that set the output heads' shift and scale before training.

On-site blocks are large constants per species (on-site energies of about -0.5 Hartree) with
small environment-dependent changes (milli-Hartree); hoppings are milli-Hartree too. A freshly
initialised head outputs numbers of order one, so without help most of the early training goes
into shrinking the heads, and the small on-site changes are not learned at all. Hence, from the
training labels:

* node head of species Z: bias (the L = 0 irreps) = the mean of Z's node blocks;
* node heads' output scale: the root mean square deviation of node entries about their
  species' means, pooled over all species; edge heads' output scale: the root mean square of
  all edge entries. Pooled, not per species pair: a pair whose blocks are mostly small (Hf-Hf
  in HfO2, mostly far apart) would get a small scale and then miss its rare large blocks at
  short distance (relative error 0.67 instead of 0.01 in the learning test's data).

Scales are fixed numbers (buffers saved with the model), not trained; biases are trained from
their initial value. A scalar scale and an L = 0 shift keep the network exactly equivariant.

:class:`LabelSums` holds plain sums over labelled atoms and edges, so the sums of the partitions
of a graph (owned labels only: each atom and edge once) equal the sums of the whole graph, and a
sum over ranks (``all_reduce``) gives every rank the same statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .loss import block_masks_torch

__all__ = ["LabelSums", "label_sums"]


@dataclass
class LabelSums:
    """Sums over labelled outputs, per species (index k of ``species``) and species pair."""

    species: tuple[int, ...]    # atomic numbers, the basis' species (ghosts -Z included)
    node_sum: torch.Tensor      # float64 (S, u, u): sum of node blocks
    node_square: torch.Tensor   # float64 (S, u, u): sum of squared node blocks
    node_count: torch.Tensor    # float64 (S,): atoms
    edge_square: torch.Tensor   # float64 (S, S): sum of squared entries (receiver, sender species)
    edge_entries: torch.Tensor  # float64 (S, S): entries summed

    @classmethod
    def zeros(cls, basis, device=None) -> "LabelSums":
        """Empty sums (a rank without partitions still takes part in the sum over ranks)."""
        s, u = len(basis.species), basis.n_union
        z = dict(dtype=torch.float64, device=device)
        return cls(tuple(int(e) for e in basis.species), torch.zeros(s, u, u, **z),
                   torch.zeros(s, u, u, **z), torch.zeros(s, **z), torch.zeros(s, s, **z),
                   torch.zeros(s, s, **z))

    def flat(self) -> torch.Tensor:
        """All sums in one float64 vector (for one ``all_reduce``)."""
        return torch.cat([t.reshape(-1) for t in self._tensors()])

    def with_flat(self, flat: torch.Tensor) -> "LabelSums":
        """The same layout filled from :meth:`flat`'s vector (e.g. after summing over ranks)."""
        out, offset = [], 0
        for t in self._tensors():
            out.append(flat[offset:offset + t.numel()].reshape(t.shape).to(t))
            offset += t.numel()
        return LabelSums(self.species, *out)

    def _tensors(self):
        return (self.node_sum, self.node_square, self.node_count, self.edge_square,
                self.edge_entries)

    def __add__(self, other: "LabelSums") -> "LabelSums":
        return self.with_flat(self.flat() + other.flat().to(self.node_sum.device))

    # ------------------------------------------------------------------ statistics
    def node_mean(self) -> torch.Tensor:
        """``(S, u, u)`` mean node block per species (zero for a species without atoms)."""
        return self.node_sum / self.node_count.clamp(min=1.0)[:, None, None]

    def _node_deviation(self, basis):
        """Per species: summed squared deviation of node entries about the species mean, and
        the number of entries summed."""
        entries = torch.tensor([basis.n_orbitals(z) ** 2 for z in self.species],
                               dtype=torch.float64, device=self.node_sum.device)
        n = self.node_count.clamp(min=1.0)
        deviation = (self.node_square - self.node_sum.square() / n[:, None, None]).sum((1, 2))
        return deviation.clamp(min=0.0), self.node_count * entries

    def node_spread(self, basis) -> torch.Tensor:
        """``(S,)`` RMS deviation of each species' node entries about its mean (0 without
        atoms): a description of the data."""
        deviation, count = self._node_deviation(basis)
        return (deviation / count.clamp(min=1.0)).sqrt()

    def edge_rms(self) -> torch.Tensor:
        """``(S, S)`` RMS of edge entries per (receiver, sender) species pair (0 without edges)."""
        return (self.edge_square / self.edge_entries.clamp(min=1.0)).sqrt()

    def node_scale(self, basis) -> float:
        """The node heads' scale: RMS deviation about the species means over all species'
        entries (1 when there is no spread)."""
        deviation, count = self._node_deviation(basis)
        return _pooled(deviation.sum(), count.sum())

    def edge_scale(self) -> float:
        """The edge heads' scale: RMS of all edge entries (1 when there are none)."""
        return _pooled(self.edge_square.sum(), self.edge_entries.sum())

    def summary(self, basis) -> dict:
        """Atoms per element, the scales and the per-element and per-pair values they pool, in
        milli-Hartree, for logs."""
        from ..basis import species_name

        names = [species_name(z) for z in self.species]
        spread, rms = self.node_spread(basis).tolist(), self.edge_rms().tolist()
        atoms, entries = self.node_count.tolist(), self.edge_entries.tolist()
        seen = [k for k, c in enumerate(atoms) if c > 0]  # elements of the basis in the data
        return {"atoms": {names[k]: int(atoms[k]) for k in seen},
                "node_scale_mEh": round(1e3 * self.node_scale(basis), 4),
                "edge_scale_mEh": round(1e3 * self.edge_scale(), 4),
                "node_spread_mEh": {names[k]: round(1e3 * spread[k], 4) for k in seen},
                "edge_rms_mEh": {f"{names[i]}-{names[j]}": round(1e3 * rms[i][j], 4)
                                 for i in seen for j in seen if entries[i][j] > 0}}


def _pooled(square_sum: torch.Tensor, count: torch.Tensor) -> float:
    """sqrt(square_sum / count), or 1 when there is nothing (or nothing but zeros)."""
    value = (float(square_sum) / float(count)) ** 0.5 if float(count) > 0 else 0.0
    return value if value > 0 else 1.0


def label_sums(basis, numbers, edge_index, node_blocks, edge_blocks) -> LabelSums:
    """Sums of the labels of one graph or partition: ``node_blocks`` ``(n_owned, u, u)`` for
    the first atoms, ``edge_blocks`` ``(m_owned, u, u)`` for the first edges (torch, any
    device). Only entries the species have are counted; ghosts without orbitals (Z = 0), and
    ghosts that are no species of ``basis``, are skipped."""
    species = tuple(int(z) for z in basis.species)
    device = node_blocks.device
    table = torch.full((2 * 118 + 1,), -1, dtype=torch.long, device=device)  # -Z wraps
    table[torch.tensor(species, device=device)] = torch.arange(len(species), device=device)
    n_owned, m_owned = node_blocks.shape[0], edge_blocks.shape[0]
    node_mask, edge_mask = block_masks_torch(numbers, edge_index, basis, n_owned, m_owned)
    s = len(species)
    kind = table[numbers.clamp(-118, 118)]

    nodes = torch.where(node_mask, node_blocks.to(torch.float64), 0.0)
    k_node = kind[:n_owned]
    keep = k_node >= 0
    u = basis.n_union
    node_sum = torch.zeros(s, u, u, dtype=torch.float64, device=device)
    node_sum.index_add_(0, k_node[keep], nodes[keep])
    node_square = torch.zeros_like(node_sum).index_add_(0, k_node[keep], nodes[keep].square())
    node_count = torch.bincount(k_node[keep], minlength=s).to(torch.float64)

    edges = torch.where(edge_mask, edge_blocks.to(torch.float64), 0.0)
    ki, kj = kind[edge_index[1, :m_owned]], kind[edge_index[0, :m_owned]]
    keep = (ki >= 0) & (kj >= 0)
    pair = ki[keep] * s + kj[keep]
    edge_square = torch.zeros(s * s, dtype=torch.float64, device=device).index_add_(
        0, pair, edges[keep].square().sum((1, 2))).reshape(s, s)
    edge_entries = torch.zeros(s * s, dtype=torch.float64, device=device).index_add_(
        0, pair, edge_mask[keep].sum((1, 2)).to(torch.float64)).reshape(s, s)
    return LabelSums(species, node_sum, node_square, node_count, edge_square, edge_entries)
