"""Halo invariants: edges owned once, complete neighbourhoods below depth k, the full graph
rebuilt from the parts, consistent positions across periodic images."""

import numpy as np
import pytest

from hampart.errors import InputError
from hampart.graph import edge_vectors
from hampart.partition.halo import build_partition, build_partitions, partition_stats
from hampart.partition.owners import metis_owners, slab_owners

from partition_helpers import random_graph


def _edge_keys(graph, edge_ids=None, n=None):
    """(j, i, shift) of global edges as one integer key each."""
    ei, es = graph.edge_index, graph.edge_shift
    if edge_ids is not None:
        ei, es = ei[:, edge_ids], es[edge_ids]
    n = graph.n_nodes
    s = es + 8
    return ((ei[0] * n + ei[1]) * 17 + s[:, 0]) * 17 * 17 + s[:, 1] * 17 + s[:, 2]


@pytest.fixture(scope="module", params=["slab", "metis"])
def setup(request):
    numbers, positions, cell, graph = random_graph(120, rcut=4.0, seed=3)
    if request.param == "slab":
        owner = slab_owners(positions, cell, 4, axis="x")
    else:
        owner = metis_owners(graph, 4, seed=1)
    return positions, cell, graph, owner


@pytest.mark.parametrize("halo", [1, 2, 3])
def test_every_edge_owned_exactly_once(setup, halo):
    positions, cell, graph, owner = setup
    owned_keys = []
    for part, a in build_partitions(graph, owner, halo):
        nid = a["node_ids"]
        local_j, local_i = a["edge_index"]
        # local arrays map back to the global (j, i, shift) of the edge they claim to be
        assert np.array_equal(nid[local_j], graph.edge_index[0, a["edge_ids"]])
        assert np.array_equal(nid[local_i], graph.edge_index[1, a["edge_ids"]])
        assert np.array_equal(a["edge_shift"], graph.edge_shift[a["edge_ids"]])
        m_owned = int(a["edge_owned"].sum())
        assert a["edge_owned"][:m_owned].all()  # owned edges first
        assert np.array_equal(owner[nid[local_i]] == part, a["edge_owned"])
        owned_keys.append(_edge_keys(graph, a["edge_ids"][:m_owned]))
    owned = np.concatenate(owned_keys)
    assert len(owned) == graph.n_edges
    assert np.array_equal(np.sort(owned), np.sort(_edge_keys(graph)))  # the full graph, back


@pytest.mark.parametrize("halo", [1, 2])
def test_halo_atoms_below_k_have_all_incoming_edges(setup, halo):
    positions, cell, graph, owner = setup
    in_degree = graph.in_degree()
    for part, a in build_partitions(graph, owner, halo):
        nid, hop = a["node_ids"], a["node_hop"]
        n_local = len(nid)
        local_in = np.bincount(a["edge_index"][1], minlength=n_local)
        inner = hop < halo
        assert np.array_equal(local_in[inner], in_degree[nid[inner]])
        assert (local_in[~inner] == 0).all()  # the outermost shell has no incoming edges
        # owned first, then by hop; hops are BFS distances: every hop-d atom (d >= 1)
        # sends an edge to some hop d-1 atom
        assert (np.diff(hop) >= 0).all() and (hop[: (owner[nid] == part).sum()] == 0).all()
        assert np.array_equal(hop == 0, owner[nid] == part)
        for d in range(1, halo + 1):
            senders = a["edge_index"][0][hop[a["edge_index"][1]] == d - 1]
            assert set(np.flatnonzero(hop == d)) <= set(senders.tolist())
        # no atom left out: every sender of an inner atom is in the partition
        assert len(np.unique(nid)) == n_local


def test_hops_are_graph_distances(setup):
    positions, cell, graph, owner = setup
    # reference BFS on a dense adjacency matrix
    n = graph.n_nodes
    adj = np.zeros((n, n), dtype=bool)
    adj[graph.edge_index[1], graph.edge_index[0]] = True
    a = build_partition(graph, owner, 2, halo=3)
    reach = owner == 2
    dist = np.where(reach, 0, -1)
    for d in range(1, 4):
        new = adj[reach].any(axis=0) & (dist < 0)
        dist[new] = d
        reach = reach | new
    expect = np.flatnonzero(dist >= 0)
    assert np.array_equal(np.sort(a["node_ids"]), expect)
    assert np.array_equal(a["node_hop"], dist[a["node_ids"]])


def test_periodic_images_keep_edge_vectors(setup):
    positions, cell, graph, owner = setup
    full = edge_vectors(positions, cell, graph.edge_index, graph.edge_shift)
    for part, a in build_partitions(graph, owner, 2):
        local = edge_vectors(positions[a["node_ids"]], cell, a["edge_index"], a["edge_shift"])
        assert np.allclose(local, full[a["edge_ids"]])
        assert (np.linalg.norm(local, axis=1) < graph.rcut).all()


def test_small_cell_atom_through_two_images_is_one_node():
    numbers, positions, cell, graph = random_graph(30, rcut=4.0, seed=5, lengths=(8.5, 8.5, 8.5))
    owner = slab_owners(positions, cell, 2, balance="atoms")
    a = build_partition(graph, owner, 0, halo=2)
    assert len(np.unique(a["node_ids"])) == len(a["node_ids"])
    # some halo atom sends edges under two different image shifts, still as one node
    j, shift = a["edge_index"][0], a["edge_shift"]
    key = np.unique(np.column_stack([j, shift]), axis=0)
    assert len(np.unique(key[:, 0])) < len(key)


def test_halo_zero_and_errors(setup):
    positions, cell, graph, owner = setup
    a = build_partition(graph, owner, 0, halo=0)  # raw part: owned atoms, edges between them
    assert (a["node_hop"] == 0).all() and a["edge_owned"].all()
    own = np.flatnonzero(owner == 0)
    inside = np.flatnonzero(np.isin(graph.edge_index, own).all(axis=0))
    assert 0 < len(inside) < int(np.isin(graph.edge_index[1], own).sum())  # cut edges left out
    assert a["edge_ids"].tolist() == inside.tolist()
    assert (a["node_ids"][a["edge_index"]] == graph.edge_index[:, inside]).all()
    for bad in (-1, 1.5, True):
        with pytest.raises(InputError, match="halo"):
            build_partition(graph, owner, 0, halo=bad)
    with pytest.raises(InputError, match="owns no atom"):
        build_partition(graph, owner, 9, halo=1)
    with pytest.raises(InputError):
        build_partition(graph, owner[:-1], 0, halo=1)


def test_stats(setup):
    positions, cell, graph, owner = setup
    sizes = []
    for part, a in build_partitions(graph, owner, 1):
        sizes.append({"n_owned": int((a["node_hop"] == 0).sum()), "n_nodes": len(a["node_ids"]),
                      "n_owned_edges": int(a["edge_owned"].sum()),
                      "n_edges": a["edge_index"].shape[1]})
    stats = partition_stats(graph, owner, sizes)
    # halo 1 stores exactly the incoming edges of owned atoms: nothing replicated
    assert stats["replication"] == pytest.approx(1.0)
    assert stats["node_imbalance"] >= 1.0 and stats["edge_cut"] > 0
