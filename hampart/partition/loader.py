"""Partitions as torch tensors for training, with the masks of the outputs that are exact.

Exactness (DESIGN.md §3), for a model of L message-passing layers on a partition with halo k:
an atom at hop d is computed as in the full graph when d <= k - L. Hence

* owned atoms (hop 0) are exact iff k >= L; partitions with 0 < k < L are refused;
* an owned edge j -> i (receiver owned) is exact iff its sender j has hop <= k - L: with
  k = L only edges whose two ends are owned (the paper's scheme), with k >= L + 1 all of them.

k = 0 (raw parts, the halo ablation) is the one exception, trained for comparison only: each
part is a graph of its own, its owned atoms see only owned neighbours, so its outputs are *not*
exact; the masks then mark what is trained, every owned atom and every owned edge whose sender
is owned (at k = 0 those are all the part's edges).

``node_exact`` ``(n_owned,)`` and ``edge_exact`` ``(n_owned_edges,)`` are those masks; the
labels ``node_blocks`` ``(n_owned, u, u)`` and ``edge_blocks`` ``(n_owned_edges, u, u)``
(Hartree) cover the owned atoms and owned edges, which come first in the node and edge arrays.
Positions and cell in Angstrom; ``edge_index`` is (sender j, receiver i), local.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..keys import (EDGE_BLOCKS, EDGE_EXACT, EDGE_INDEX, EDGE_OWNED, FIELDS, HALO, NODE_BLOCKS,
                    NODE_EXACT, NODE_HOP, take)
from .store import load_partition

__all__ = ["PartitionBatch", "exact_masks", "to_batch", "load_batch", "batch_bytes",
           "exact_edges_first"]


@dataclass(frozen=True)
class PartitionBatch:
    """One partition on a device. Nodes ``n`` (owned first), edges ``m`` (owned first)."""

    numbers: torch.Tensor            # int64 (n,)
    positions: torch.Tensor          # dtype (n, 3) Angstrom
    cell: torch.Tensor               # dtype (3, 3) Angstrom, rows = cell vectors
    edge_index: torch.Tensor         # int64 (2, m) local (sender j, receiver i)
    edge_shift: torch.Tensor         # int64 (m, 3) image shift of the sender
    node_hop: torch.Tensor           # int64 (n,) 0 = owned
    edge_owned: torch.Tensor         # bool (m,)
    node_ids: torch.Tensor           # int64 (n,) global atom index
    node_exact: torch.Tensor         # bool (n_owned,)
    edge_exact: torch.Tensor         # bool (n_owned_edges,)
    node_blocks: torch.Tensor | None  # dtype (n_owned, u, u) Hartree, None without labels
    edge_blocks: torch.Tensor | None  # dtype (n_owned_edges, u, u) Hartree
    halo: int
    n_layers: int

    @property
    def n_owned(self) -> int:
        return int(self.node_exact.shape[0])

    def fields(self) -> dict:
        """The batch's tensors by field name (:data:`hampart.keys.FIELDS`)."""
        return {name: getattr(self, name) for name in _TENSORS}

    @property
    def n_owned_edges(self) -> int:
        return int(self.edge_exact.shape[0])


def batch_bytes(n_nodes: int, n_edges: int, n_owned: int, n_owned_edges: int, u: int,
                itemsize: int, labels: bool = True) -> int:
    """Bytes a :class:`PartitionBatch` of these sizes keeps on its device, with the loss masks
    the trainer builds once per partition (bool ``(n_owned, u, u)`` and ``(m_owned, u, u)``)."""
    per_node = 8 * 3 + 3 * itemsize  # numbers, node_hop, node_ids; positions
    per_edge = 8 * 5 + 1             # edge_index, edge_shift; edge_owned
    exact = n_owned + n_owned_edges  # node_exact, edge_exact
    blocks = (n_owned + n_owned_edges) * u * u * (itemsize + 1) if labels else 0
    return int(per_node * n_nodes + per_edge * n_edges + exact + blocks + 9 * itemsize)


def exact_masks(node_hop, edge_index, edge_owned, halo: int, n_layers: int,
                source: str = "partition"):
    """``(node_exact (n_owned,), edge_exact (n_owned_edges,))`` numpy bool; see the module
    docstring. Raises :class:`InputError` when ``0 < halo < n_layers``; at ``halo == 0`` (raw
    parts) the masks are the trained, not exact, outputs: owned atoms, owned senders."""
    if int(n_layers) < 0:
        raise InputError("n_layers", f"{n_layers} layers", "give 0 or more layers")
    if 0 < int(halo) < int(n_layers):
        raise InputError(source, f"halo depth {halo} is shallower than the model's {n_layers} "
                         "message-passing layers, so no owned output would be exact",
                         f"re-slice with --halo {n_layers} or more (--halo {int(n_layers) + 1} "
                         "trains every edge)")
    node_hop = np.asarray(node_hop)
    n_owned = int((node_hop == 0).sum())
    m_owned = int(np.asarray(edge_owned).sum())
    reach = max(int(halo) - int(n_layers), 0)  # raw parts (halo 0): owned atoms and senders
    node_exact = node_hop[:n_owned] <= reach
    edge_exact = node_hop[np.asarray(edge_index)[0, :m_owned]] <= reach
    return node_exact, edge_exact


def to_batch(arrays: dict, n_layers: int, device="cpu", dtype=torch.float32, halo=None,
             source: str = "partition") -> PartitionBatch:
    """A :class:`PartitionBatch` from part arrays (a part file's, or
    :func:`hampart.partition.build.partition_arrays`'); ``halo`` defaults to the stored depth."""
    halo = int(arrays[HALO]) if halo is None else int(halo)
    node_exact, edge_exact = exact_masks(arrays[NODE_HOP], arrays[EDGE_INDEX], arrays[EDGE_OWNED],
                                         halo, n_layers, source)

    def t(key, x):  # the registered dtype; floating fields in the model's dtype
        dt = {"int64": torch.int64, "bool": torch.bool}.get(FIELDS[key][2], dtype)
        return torch.as_tensor(np.ascontiguousarray(x), device=device, dtype=dt)

    has_labels = NODE_BLOCKS in arrays and EDGE_BLOCKS in arrays
    stored = {name: None if name in (NODE_BLOCKS, EDGE_BLOCKS) and not has_labels
              else t(name, arrays[name]) for name in _STORED}
    return PartitionBatch(**stored, node_exact=t(NODE_EXACT, node_exact),
                          edge_exact=t(EDGE_EXACT, edge_exact), halo=halo,
                          n_layers=int(n_layers))


# the batch's tensors, each a registered field; those read from a part file (the exact masks
# are derived from the hops)
_TENSORS = tuple(f.name for f in dataclasses.fields(PartitionBatch)
                 if f.name in FIELDS and f.name != HALO)
_STORED = tuple(name for name in _TENSORS if name not in (NODE_EXACT, EDGE_EXACT))


def load_batch(directory, k: int, n_layers: int, device="cpu", dtype=torch.float32,
               verify: bool = True) -> PartitionBatch:
    """Part ``k`` of a partition directory as a :class:`PartitionBatch` (sha256 checked)."""
    arrays = load_partition(directory, k, verify=verify)
    return to_batch(arrays, n_layers, device=device, dtype=dtype,
                    source=f"{directory} (part {k})")


def exact_edges_first(batch: PartitionBatch) -> PartitionBatch:
    """The same partition with its exact owned edges moved before the inexact ones (edge
    arrays, labels and masks permuted alike; the first ``edge_exact.sum()`` owned edges are
    then the exact ones). With halo k = L the owned edges from a halo sender are inexact, about
    40 % at r_cut 8: the trainer then asks the network for the exact edges' blocks only."""
    exact = batch.edge_exact
    n_exact = int(exact.sum())
    if bool(exact[:n_exact].all()):
        return batch
    m = batch.edge_index.shape[1]
    owned = torch.cat([torch.nonzero(exact).flatten(), torch.nonzero(~exact).flatten()])
    order = torch.cat([owned, torch.arange(exact.shape[0], m, device=exact.device)])
    # every edge field (keys.FIELDS) alike: all edges by order, owned-only ones by owned
    return dataclasses.replace(batch, **take(batch.fields(), "edge", order, owned=owned))
