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


@pytest.mark.parametrize("halo,layers", [(1, 2), (2, 3), (1, 3)])
def test_refuses_halo_shallower_than_layers(chain, halo, layers):
    with pytest.raises(InputError, match=f"--halo {layers}"):
        to_batch(_part0(chain, halo), n_layers=layers)


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_halo_zero_is_the_raw_part_trained_on_owned_outputs(chain, layers):
    """Raw part 0 of the chain: atoms 0, 1, 2 and the four edges between them; edge 3 -> 2
    crosses the cut and is stored nowhere. Every stored output is trained (not exact)."""
    a = _part0(chain, 0)
    assert a["node_ids"].tolist() == [0, 1, 2] and (a["node_hop"] == 0).all()
    pairs = [tuple(a["node_ids"][e]) for e in a["edge_index"].T]
    assert pairs == [(1, 0), (0, 1), (2, 1), (1, 2)] and a["edge_owned"].all()
    batch = to_batch(a, n_layers=layers)
    assert batch.node_exact.tolist() == [True] * 3 and batch.edge_exact.tolist() == [True] * 4
    # the masks' rule: owned atoms, owned edges whose sender is owned (never a halo sender)
    hop = np.array([0, 0, 1])
    node, edge = exact_masks(hop, np.array([[1, 2, 0], [0, 0, 1]]), np.ones(3, bool), 0, layers)
    assert node.tolist() == [True, True] and edge.tolist() == [True, False, True]


def test_batch_tensors(chain):
    batch = to_batch(_part0(chain, 2), n_layers=1, dtype=torch.float64)
    assert batch.positions.dtype == torch.float64 and batch.edge_index.dtype == torch.int64
    assert batch.edge_shift.shape == (7, 3) and batch.node_blocks is None
    assert batch.node_ids.tolist() == [0, 1, 2, 3, 4]


def test_partition_losses_sum_to_full_graph_loss():
    """With halo L + 1 the per-part losses (exact masks from the loader) add up to the
    full-graph loss, gradients included; with halo L the owned atoms still match."""
    from hampart.basis import Basis
    from hampart.blocks import extract_blocks
    from hampart.graph import radius_graph
    from hampart.model import HamiltonianModel, block_loss

    from partition_helpers import random_hamiltonian, random_structure

    basis = Basis({72: (0, 0, 1, 2), 8: (0, 1)}, name="SZV-HfO")
    numbers, positions, cell = random_structure(40, lengths=(11.0, 8.0, 8.0), seed=8)
    rcut, layers = 3.4, 2  # two layers: hops 1 and 2 both matter (one forward takes ~1 s)
    structure = SimpleNamespace(numbers=numbers, positions=positions, cell=cell,
                                pbc=np.ones(3, dtype=bool), source="random")
    graph = radius_graph(positions, cell, [True] * 3, rcut)
    H = random_hamiltonian(numbers, graph, basis)
    torch.manual_seed(0)
    model = HamiltonianModel(basis, lmax=4, mmax=2, channels=4, ff_hidden=8, heads=1,
                             layers=layers, rcut=rcut).double()

    node_blocks, edge_blocks, _ = extract_blocks(H, numbers, basis, graph)
    t = lambda x: torch.as_tensor(x)  # noqa: E731
    full_nodes, full_edges = model(t(numbers), t(positions), t(cell), t(graph.edge_index),
                                   t(graph.edge_shift))
    full, _ = block_loss(full_nodes, full_edges, t(node_blocks), t(edge_blocks), t(numbers),
                         t(graph.edge_index), basis)
    trained = [p for p in model.parameters() if p.requires_grad]  # neighbour sums are fixed
    grads_full = torch.autograd.grad(full, trained, allow_unused=True)

    parts, info = partition_arrays(structure, rcut, method="slab", parts=2, halo=layers + 1,
                                   hamiltonian=H, basis=basis)
    total = 0.0
    grads = [torch.zeros_like(p) for p in trained]
    for a in parts:
        b = to_batch(a, n_layers=layers, dtype=torch.float64)
        assert b.node_exact.all() and b.edge_exact.all()
        pn, pe = model(b.numbers, b.positions, b.cell, b.edge_index, b.edge_shift)
        loss, _ = block_loss(pn, pe, b.node_blocks, b.edge_blocks, b.numbers, b.edge_index,
                             basis, b.node_exact, b.edge_exact)
        for g, d in zip(grads, torch.autograd.grad(loss, trained, allow_unused=True)):
            if d is not None:
                g += d
        total += float(loss.detach())
    assert total == pytest.approx(float(full.detach()), rel=1e-9)
    for g, d in zip(grads, grads_full):
        if d is not None:
            assert torch.allclose(g, d, rtol=1e-7, atol=1e-12)

    # halo L: owned atoms exact, edges with a halo sender masked out
    parts, _ = partition_arrays(structure, rcut, method="slab", parts=2, halo=layers,
                                hamiltonian=H, basis=basis)
    for a in parts:
        b = to_batch(a, n_layers=layers, dtype=torch.float64)
        pn, pe = model(b.numbers, b.positions, b.cell, b.edge_index, b.edge_shift)
        nid = a["node_ids"][: b.n_owned]
        assert torch.allclose(pn[: b.n_owned], full_nodes[torch.as_tensor(nid)], atol=1e-10)
        eid = torch.as_tensor(a["edge_ids"][: b.n_owned_edges])
        exact = b.edge_exact
        assert torch.allclose(pe[: b.n_owned_edges][exact], full_edges[eid][exact], atol=1e-10)
        assert not exact.all()  # some owned edges cross the cut at this size


def test_exact_edges_first_computes_fewer_blocks_for_the_same_loss():
    """Halo L leaves owned edges with a halo sender inexact: moved behind the exact ones, the
    trainer's loss asks for the exact edges' blocks only, with the same value and gradients."""
    from hampart.basis import Basis
    from hampart.distributed.trainer import PartitionLoss
    from hampart.graph import radius_graph
    from hampart.model import HamiltonianModel
    from hampart.partition import exact_edges_first

    from partition_helpers import random_hamiltonian, random_structure

    basis = Basis({72: (0, 0, 1, 2), 8: (0, 1)}, name="SZV-HfO")
    numbers, positions, cell = random_structure(40, lengths=(11.0, 8.0, 8.0), seed=8)
    structure = SimpleNamespace(numbers=numbers, positions=positions, cell=cell,
                                pbc=np.ones(3, dtype=bool), source="random")
    graph = radius_graph(positions, cell, [True] * 3, 3.4)
    H = random_hamiltonian(numbers, graph, basis)
    parts, _ = partition_arrays(structure, 3.4, method="slab", parts=2, halo=1,
                                hamiltonian=H, basis=basis)
    torch.manual_seed(0)
    model = HamiltonianModel(basis, lmax=4, mmax=2, channels=4, ff_hidden=8, heads=1,
                             layers=1, rcut=3.4).double()
    loss_fn = PartitionLoss(basis)
    b = to_batch(parts[0], n_layers=1, dtype=torch.float64)
    first = exact_edges_first(b)
    n_exact = int(b.edge_exact.sum())
    assert 0 < n_exact < b.n_owned_edges and not b.edge_exact[:n_exact].all()
    assert first.edge_exact[:n_exact].all() and not first.edge_exact[n_exact:].any()
    assert exact_edges_first(first) is first
    masks = loss_fn.masks(first)
    assert masks[1].shape[0] == n_exact and loss_fn.masks(b)[1].shape[0] == b.n_owned_edges
    results = []
    for batch in (b, first):
        sse, sums = loss_fn(model, batch, loss_fn.masks(batch))  # sums: node, edge SSE, SAE
        grads = torch.autograd.grad(sse, [p for p in model.parameters() if p.requires_grad],
                                    allow_unused=True)
        results.append((float(sse.detach()), float(sums[2] + sums[3]), grads))
    (s1, a1, g1), (s2, a2, g2) = results
    assert s1 == pytest.approx(s2, rel=1e-12) and a1 == pytest.approx(a2, rel=1e-12)
    for x, y in zip(g1, g2):
        if x is not None and y is not None:
            assert torch.allclose(x, y, rtol=1e-9, atol=1e-13)
        else:  # a head only inexact edges used: no gradient, or zero
            assert (x is None or not x.any()) and (y is None or not y.any())
