"""Loader: exact-output masks on a hand-checkable chain, refusal of shallow halos, tensors."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hampart.errors import InputError
from hampart.partition import exact_masks, partition_arrays, to_batch


@pytest.fixture(scope="module")
def chain():
    """Six atoms on a line 1.5 A apart, r_cut 2 A: edges only between neighbours.
    Slabs of equal width: part 0 owns atoms 0, 1, 2; part 1 owns 3, 4, 5."""
    positions = np.zeros((6, 3))
    positions[:, 0] = 1.5 * np.arange(6)
    return SimpleNamespace(numbers=np.full(6, 8), positions=positions, cell=np.zeros((3, 3)),
                           pbc=np.zeros(3, dtype=bool), source="chain")


def _part0(chain, halo):
    parts, info = partition_arrays(chain, 2.0, method="slab", parts=2, halo=halo, axis="x")
    return parts[0]


def test_chain_partition_by_hand(chain):
    a = _part0(chain, 2)
    assert a["node_ids"].tolist() == [0, 1, 2, 3, 4]
    assert a["node_hop"].tolist() == [0, 0, 0, 1, 2]
    # owned edges (receiver 0, 1, 2), then the incoming edges of hop-1 atom 3
    pairs = [tuple(a["node_ids"][e]) for e in a["edge_index"].T]
    assert pairs == [(1, 0), (0, 1), (2, 1), (1, 2), (3, 2), (2, 3), (4, 3)]
    assert a["edge_owned"].tolist() == [True] * 5 + [False] * 2


@pytest.mark.parametrize("halo,layers,edge_exact", [
    (1, 1, [True, True, True, True, False]),   # k = L: only edges with both ends owned
    (2, 1, [True] * 5),                        # k = L + 1: every owned edge
    (2, 2, [True, True, True, True, False]),
    (3, 2, [True] * 5),
    (3, 1, [True] * 5),
])
def test_exact_masks_by_hand(chain, halo, layers, edge_exact):
    batch = to_batch(_part0(chain, halo), n_layers=layers)
    assert batch.node_exact.tolist() == [True, True, True]
    assert batch.edge_exact.tolist() == edge_exact
    assert batch.halo == halo and batch.n_owned == 3 and batch.n_owned_edges == 5


@pytest.mark.parametrize("halo,layers", [(0, 1), (1, 2), (2, 3)])
def test_refuses_halo_shallower_than_layers(chain, halo, layers):
    with pytest.raises(InputError, match=f"--halo {layers}"):
        to_batch(_part0(chain, halo), n_layers=layers)


def test_halo_zero_keeps_no_edges(chain):
    a = _part0(chain, 0)
    assert a["edge_index"].shape == (2, 0)
    node_exact, edge_exact = exact_masks(a["node_hop"], a["edge_index"], a["edge_owned"], 0, 0)
    assert node_exact.all() and edge_exact.shape == (0,)


def test_batch_tensors(chain):
    batch = to_batch(_part0(chain, 2), n_layers=1, dtype=torch.float64)
    assert batch.positions.dtype == torch.float64 and batch.edge_index.dtype == torch.int64
    assert batch.edge_shift.shape == (7, 3) and batch.node_blocks is None
    assert batch.node_ids.tolist() == [0, 1, 2, 3, 4]
