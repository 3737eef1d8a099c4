"""Losses that add up over partitions.

Everything returns sums, never a mean: the sum of squared errors (Hartree^2) and the number of
elements summed, so that summing over the partitions of a graph gives exactly the full graph's
totals (DESIGN.md §3) and the trainer divides once by the global count. One computation of the
errors, :func:`masked_errors`, serves both :class:`PartitionLoss` (what training minimises:
node and edge sums apart, weighted) and :func:`block_loss` (``(sse, count)`` of given outputs).

Labels of a partition cover its owned atoms and owned edges, which come first in its arrays:
``node_blocks`` ``(n_owned, u, u)``, ``edge_blocks`` ``(m_owned, u, u)``; predictions may be
longer (halo atoms and edges) and are cut to the labels' length.
"""

from __future__ import annotations

import torch

__all__ = ["masked_sse", "species_mask_table", "block_masks_torch", "masked_errors",
           "block_loss", "per_l_weights", "per_l_sse", "LOSS_WEIGHTINGS", "PartitionLoss"]


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


def masked_errors(pred_nodes, pred_edges, node_blocks, edge_blocks, node_mask, edge_mask):
    """``(node (k_n,), edge (k_e,))``: prediction minus label at the True entries of the masks
    ``(n, u, u)`` and ``(m, u, u)``, which cover the first n atoms' and m edges' blocks."""
    n, m = node_mask.shape[0], edge_mask.shape[0]
    dn = (pred_nodes[:n] - node_blocks[:n].to(pred_nodes.dtype))[node_mask]
    de = (pred_edges[:m] - edge_blocks[:m].to(pred_edges.dtype))[edge_mask]
    return dn, de


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
    dn, de = masked_errors(pred_nodes, pred_edges, node_blocks, edge_blocks, node_mask,
                           edge_mask)
    return dn.square().sum() + de.square().sum(), node_mask.sum() + edge_mask.sum()


LOSS_WEIGHTINGS = ("elements", "per-l")


def per_l_weights(layout, device=None) -> torch.Tensor:
    """``(u*u,)`` float64: 1 / (2L + 1) for each irreducible component of a padded block, so
    that every irreducible block (a shell pair's L part) weighs as one element would."""
    return (1.0 / (2 * layout.irreps_ls + 1).to(torch.float64)).to(device)


def per_l_sse(pred, target, mask, layout) -> torch.Tensor:
    """Sum over blocks of the squared error of each irreducible component times 1 / (2L + 1):
    ``pred``, ``target``, ``mask`` ``(k, u, u)`` (mask whole shell pairs, as the species masks
    are). ``U`` is orthogonal, so with weights 1 this is the element SSE."""
    k, u = pred.shape[0], pred.shape[-1]
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    diff = torch.where(mask, pred - target.to(pred.dtype), zero).reshape(k, u * u)
    irreps = diff @ layout.U.to(device=pred.device, dtype=pred.dtype).T
    weight = per_l_weights(layout, pred.device).to(pred.dtype)
    return (irreps.square() * weight).sum()


class PartitionLoss:
    """Squared and absolute errors over the exact outputs of one partition, on-site (node) and
    hopping (edge) elements apart; the training objective weights the on-site ones by
    ``node_weight``, since a structure has ~100 times more edge than node elements.
    ``weighting`` "elements" (default): every block element alike; "per-l": the error of
    each irreducible component times 1 / (2L + 1), so that the rotation-invariant parts (s-s,
    the trace of p-p) weigh as much as a whole L = 2 part (reported errors stay per element)."""

    def __init__(self, basis, node_weight: float = 1.0, weighting: str = "elements"):
        from ..blocks import IrrepsLayout

        if weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss weighting {weighting!r}: use one of {LOSS_WEIGHTINGS}")
        self.basis = basis
        self.node_weight = float(node_weight)
        self.weighting = weighting
        self.layout = IrrepsLayout(basis) if weighting == "per-l" else None

    def masks(self, batch):
        """Species masks cut to the partition's exact outputs; computed once per partition.
        When the exact owned edges come first (:func:`~hampart.partition.exact_edges_first`)
        the edge mask covers only them, and only their blocks are computed."""
        node, edge = block_masks_torch(batch.numbers, batch.edge_index, self.basis,
                                       batch.node_exact.shape[0], batch.edge_exact.shape[0])
        exact = batch.edge_exact
        n_exact = int(exact.sum())
        if bool(exact[:n_exact].all()):
            edge, exact = edge[:n_exact], exact[:n_exact]
        return node & batch.node_exact[:, None, None], edge & exact[:, None, None]

    def __call__(self, model, batch, masks, edge_chunk=None):
        """``(objective, sums)``: the weighted squared error to differentiate, and the float64
        ``(4,)`` node SSE, edge SSE, node SAE, edge SAE (unweighted) to report. ``edge_chunk``:
        the model's edges per chunk for this partition (None: the model's own)."""
        node_mask, edge_mask = masks
        # only exact owned edges count in the loss: the others' blocks are not computed
        pred_nodes, pred_edges = model(batch.numbers, batch.positions, batch.cell,
                                       batch.edge_index, batch.edge_shift,
                                       edge_outputs=edge_mask.shape[0], edge_chunk=edge_chunk)
        dn, de = masked_errors(pred_nodes, pred_edges, batch.node_blocks, batch.edge_blocks,
                               node_mask, edge_mask)
        sse_n, sse_e = dn.square().sum(), de.square().sum()
        sums = torch.stack([sse_n.detach(), sse_e.detach(), dn.detach().abs().sum(),
                            de.detach().abs().sum()]).to(torch.float64)
        if self.layout is not None:  # the objective in irreducible components, weighted by L
            n, m = node_mask.shape[0], edge_mask.shape[0]
            sse_n = per_l_sse(pred_nodes[:n], batch.node_blocks[:n], node_mask, self.layout)
            sse_e = per_l_sse(pred_edges[:m], batch.edge_blocks[:m], edge_mask, self.layout)
        return self.node_weight * sse_n + sse_e, sums
