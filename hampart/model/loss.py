"""Losses that add up over partitions.

Everything returns ``(sse, count)``: the sum of squared errors (Hartree^2) and the number of
elements summed, never a mean, so that summing over the partitions of a graph gives exactly the
full graph's totals (DESIGN.md §3) and the trainer divides once by the global count.

Labels of a partition cover its owned atoms and owned edges, which come first in its arrays:
``node_blocks`` ``(n_owned, u, u)``, ``edge_blocks`` ``(m_owned, u, u)``; predictions may be
longer (halo atoms and edges) and are cut to the labels' length.
"""

from __future__ import annotations

import torch

__all__ = ["masked_sse", "species_mask_table", "block_masks_torch", "block_loss"]


def masked_sse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
    """``(sum of (pred - target)^2 over mask, number of True in mask)``; same shapes."""
    diff = torch.where(mask, pred - target.to(pred.dtype), torch.zeros((), dtype=pred.dtype,
                                                                       device=pred.device))
    return diff.square().sum(), mask.sum()


def species_mask_table(basis, device=None) -> torch.Tensor:
    """:func:`hampart.blocks.species_masks` as a torch tensor on ``device``."""
    from ..blocks import species_masks

    return torch.from_numpy(species_masks(basis)).to(device)


def block_masks_torch(numbers, edge_index, basis, n_nodes: int | None = None,
                      n_edges: int | None = None):
    """Species masks ``(n, u, u)`` and ``(m, u, u)`` of the first ``n_nodes`` atoms and
    ``n_edges`` edges: True where both orbitals exist (edge j -> i: rows of i, columns of j)."""
    table = species_mask_table(basis, numbers.device)
    species = table[numbers.clamp(max=table.shape[0] - 1)] & (numbers <= table.shape[0] - 1)[:, None]
    s_nodes = species if n_nodes is None else species[:n_nodes]
    node = s_nodes[:, :, None] & s_nodes[:, None, :]
    ei = edge_index if n_edges is None else edge_index[:, :n_edges]
    edge = species[ei[1]][:, :, None] & species[ei[0]][:, None, :]
    return node, edge


def block_loss(pred_nodes, pred_edges, node_blocks, edge_blocks, numbers, edge_index, basis,
               node_exact=None, edge_exact=None):
    """``(sse, count)`` over node and edge blocks, counting only entries the species have and,
    when given, only exact outputs: ``node_exact`` ``(n_owned,)`` and ``edge_exact``
    ``(m_owned,)`` bool (from the partition's hop distances)."""
    n_owned, m_owned = node_blocks.shape[0], edge_blocks.shape[0]
    node_mask, edge_mask = block_masks_torch(numbers, edge_index, basis, n_owned, m_owned)
    if node_exact is not None:
        node_mask = node_mask & node_exact[:, None, None]
    if edge_exact is not None:
        edge_mask = edge_mask & edge_exact[:, None, None]
    sse_n, cnt_n = masked_sse(pred_nodes[:n_owned], node_blocks, node_mask)
    sse_e, cnt_e = masked_sse(pred_edges[:m_owned], edge_blocks, edge_mask)
    return sse_n + sse_e, cnt_n + cnt_e
