"""Partition exactness (DESIGN.md §3): halo k = L + 1 gives the full-graph loss and gradients as a
sum over partitions; k = L gives the owned atoms' outputs exactly."""

import numpy as np
import pytest
import torch

from hampart.model import HamiltonianModel, block_loss

from conftest import graph_tensors, random_structure, szv_basis

RCUT = 3.6


def _halo_partition(edge_index, n_nodes, owner, part, depth):
    """Local arrays of one partition: owned atoms first, then by hop; owned edges first.

    Written here with a plain BFS so the test does not depend on hampart.partition.
    """
    sender, receiver = edge_index
    hop = np.full(n_nodes, -1)
    hop[owner == part] = 0
    for d in range(1, depth + 1):
        frontier = hop == d - 1
        reached = np.unique(sender[frontier[receiver]])
        new = reached[hop[reached] < 0]
        hop[new] = d
    nodes = np.flatnonzero(hop >= 0)
    nodes = nodes[np.argsort(hop[nodes], kind="stable")]
    local = np.full(n_nodes, -1)
    local[nodes] = np.arange(len(nodes))
    keep = (hop[receiver] >= 0) & (hop[receiver] < depth)
    edges = np.flatnonzero(keep)
    edges = edges[np.argsort(hop[receiver[edges]] > 0, kind="stable")]  # owned edges first
    return {"node_ids": nodes, "node_hop": hop[nodes], "edge_ids": edges,
            "edge_index": local[edge_index[:, edges]]}


@pytest.fixture(scope="module")
def setup():
    numbers, positions, cell = random_structure(60, box=12.0, seed=5, ghosts=3)
    (z, pos, box, ei, es), g = graph_tensors(numbers, positions, cell, RCUT)
    owner = np.minimum((positions @ np.linalg.inv(cell))[:, 0] % 1.0 * 3, 2).astype(int)
    u = szv_basis().n_union
    gen = torch.Generator().manual_seed(1)
    target_nodes = torch.randn(len(numbers), u, u, generator=gen, dtype=torch.float64)
    target_edges = torch.randn(g.n_edges, u, u, generator=gen, dtype=torch.float64)
    return z, pos, box, ei, es, owner, target_nodes, target_edges


def _model(layers):
    torch.manual_seed(0)
    return HamiltonianModel(szv_basis(), lmax=4, mmax=4, channels=8, ff_hidden=16, heads=2,
                            layers=layers, rcut=RCUT).double()


def _run_part(model, setup, part, depth, layers):
    z, pos, box, ei, es, owner, tn, te = setup
    arrays = _halo_partition(ei.numpy(), len(z), owner, part, depth)
    nid, eid = torch.as_tensor(arrays["node_ids"]), torch.as_tensor(arrays["edge_ids"])
    hop = torch.as_tensor(arrays["node_hop"])
    lei = torch.as_tensor(arrays["edge_index"])
    n_owned = int((hop == 0).sum())
    m_owned = int((hop[lei[1]] == 0).sum())
    pn, pe = model(z[nid], pos[nid], box, lei, es[eid])
    # exact outputs for L layers: atoms with hop <= k - L, owned edges whose sender has hop <= k - L
    node_exact = hop[:n_owned] <= depth - layers
    edge_exact = hop[lei[0, :m_owned]] <= depth - layers
    return dict(pn=pn, pe=pe, nid=nid, eid=eid, n_owned=n_owned, m_owned=m_owned,
                node_exact=node_exact, edge_exact=edge_exact, lei=lei)


@pytest.mark.parametrize("layers", [1, 2])
def test_halo_l_plus_1_sums_to_full_graph(setup, layers):
    z, pos, box, ei, es, owner, tn, te = setup
    basis = szv_basis()
    model = _model(layers)
    sse_full, count_full = block_loss(*model(z, pos, box, ei, es), tn, te, z, ei, basis)
    sse_full.backward()
    sse_full = sse_full.detach()
    grads_full = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sse_sum, count_sum = 0.0, 0
    for part in range(3):
        r = _run_part(model, setup, part, layers + 1, layers)
        assert bool(r["node_exact"].all()) and bool(r["edge_exact"].all())
        sse, count = block_loss(r["pn"], r["pe"], tn[r["nid"][:r["n_owned"]]],
                                te[r["eid"][:r["m_owned"]]], z[r["nid"]], r["lei"], basis,
                                r["node_exact"], r["edge_exact"])
        sse.backward()
        sse_sum, count_sum = sse_sum + sse.detach(), count_sum + int(count)
    assert count_sum == int(count_full)
    assert abs(float(sse_sum) - float(sse_full)) <= 1e-9 * float(sse_full)
    for p, g_full in zip(model.parameters(), grads_full):
        assert torch.allclose(p.grad, g_full, rtol=1e-9, atol=1e-9 * g_full.abs().max() + 1e-300)


@pytest.mark.parametrize("layers", [1, 2])
def test_halo_l_gives_exact_owned_atoms(setup, layers):
    z, pos, box, ei, es, *_ = setup
    model = _model(layers)
    with torch.no_grad():
        full_nodes, full_edges = model(z, pos, box, ei, es)
        for part in range(3):
            r = _run_part(model, setup, part, layers, layers)
            own = r["nid"][:r["n_owned"]]
            assert torch.allclose(r["pn"][:r["n_owned"]], full_nodes[own], rtol=1e-12, atol=1e-12)
            # owned edges with an owned sender are exact too; the others are not (hence k = L + 1)
            exact = r["edge_exact"]
            got, want = r["pe"][:r["m_owned"]], full_edges[r["eid"][:r["m_owned"]]]
            assert torch.allclose(got[exact], want[exact], rtol=1e-12, atol=1e-12)
            assert not torch.allclose(got[~exact], want[~exact], rtol=1e-6, atol=1e-9)
