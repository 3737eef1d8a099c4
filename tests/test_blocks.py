"""hampart.blocks: sparse H <-> padded blocks (exact round trips) and blocks <-> irreps."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hampart.basis import Basis, builtin_basis
from hampart.blocks import (IrrepsLayout, assemble_blocks, block_masks, extract_blocks,
                            species_masks, union_local_table)
from hampart.errors import InputError
from hampart.graph import Graph, radius_graph
from hampart.testing import (OrbitalBlocks, assert_equivariant, random_hamiltonian,
                             random_structure)

HF, O = 72, 8
BASIS = Basis({HF: (0, 0, 1, 2), O: (0, 1)}, name="SZV-HfO")


def structure(n=30, seed=0, ghosts=2, kept=3):
    """Hf/O with ``ghosts`` orbital-less ghosts (0) and ``kept`` ghosts keeping their element's
    orbitals (-Z)."""
    numbers, positions, cell = random_structure(n, np.diag([9.0, 9.5, 8.8]), seed=seed,
                                                ghosts=ghosts)
    numbers[np.flatnonzero(numbers)[:kept]] *= -1
    return numbers, positions, cell


def random_h(numbers, graph, basis, seed=1):
    """Dense symmetric H whose atom-pair pattern is exactly the graph's (plus on-site)."""
    return random_hamiltonian(numbers, graph, basis, seed=seed).toarray() / 2


@pytest.fixture(scope="module")
def system():
    numbers, positions, cell = structure()
    graph = radius_graph(positions, cell, [True] * 3, 4.0)
    H = random_hamiltonian(numbers, graph, BASIS, seed=1).toarray() / 2
    return numbers, positions, cell, graph, H


def test_round_trip_csr_blocks_csr_is_exact(system):
    numbers, _, _, graph, H = system
    Hs = sp.csr_matrix(H)
    node, edge, info = extract_blocks(Hs, numbers, BASIS, graph)
    assert node.shape == (len(numbers), 10, 10) and edge.shape == (graph.n_edges, 10, 10)
    assert info["outside_count"] == 0 and info["outside_max_abs"] == 0.0
    assert info["total_frobenius"] == pytest.approx(np.linalg.norm(H))
    back = assemble_blocks(node, edge, numbers, BASIS, graph.edge_index)
    assert back.nnz == Hs.nnz
    assert (back != Hs).nnz == 0
    assert (back - back.T).nnz == 0
    # dense input gives the same blocks
    node2, edge2, _ = extract_blocks(H, numbers, BASIS, graph)
    assert np.array_equal(node, node2) and np.array_equal(edge, edge2)


def test_blocks_are_the_submatrices(system):
    numbers, _, _, graph, H = system
    node, edge, _ = extract_blocks(sp.csr_matrix(H), numbers, BASIS, graph)
    off = BASIS.orbital_offsets(numbers)
    for e in (0, 7, graph.n_edges // 2, graph.n_edges - 1):  # a few edges, by hand
        j, i = graph.edge_index[:, e]
        ui, uj = BASIS.union_index(numbers[i]), BASIS.union_index(numbers[j])
        want = np.zeros((10, 10))
        want[np.ix_(ui, uj)] = H[off[i]:off[i + 1], off[j]:off[j + 1]]
        assert np.array_equal(edge[e], want)
    for a in range(len(numbers)):
        ua = BASIS.union_index(numbers[a])
        assert np.array_equal(node[a][np.ix_(ua, ua)], H[off[a]:off[a + 1], off[a]:off[a + 1]])
    node_mask, edge_mask = block_masks(numbers, BASIS, graph.edge_index)
    assert not node[~node_mask].any() and not edge[~edge_mask].any()
    ghosts = numbers == 0
    assert not node[ghosts].any() and not node_mask[ghosts].any()
    kept = np.flatnonzero(numbers < 0)  # ghosts keeping orbitals: blocks of their element
    assert len(kept) == 3 and all(node[a][node_mask[a]].any() for a in kept)
    assert all(node_mask[a].sum() == BASIS.n_orbitals(-numbers[a]) ** 2 for a in kept)


def test_masks_per_species():
    table = species_masks(BASIS)
    assert table.shape == (2 * HF + 1, 10)  # ghost rows -Z wrap to the end
    assert not table[0].any() and not table[1].any() and not table[-1].any()
    assert table[HF].all() and table[-HF].all()
    assert table[O].tolist() == [True, False, True, True, True] + [False] * 5
    assert np.array_equal(table[-O], table[O]) and table[-O].sum() == 4
    assert table.sum() == 2 * (10 + 4)  # only Hf, O and their ghosts own orbitals
    local = union_local_table(BASIS)
    assert local[O].tolist() == [0, -1, 1, 2, 3] + [-1] * 5
    assert np.array_equal(local[-O], local[O]) and np.array_equal(local[-HF], local[HF])
    numbers = np.array([HF, O, 0])
    node_mask, edge_mask = block_masks(numbers, BASIS, np.array([[1, 0, 2], [0, 1, 1]]))
    assert node_mask[0].all() and node_mask[1].sum() == 16 and not node_mask[2].any()
    assert edge_mask[0].sum() == 10 * 4 and edge_mask[1].sum() == 4 * 10
    assert not edge_mask[2].any()  # ghost sender


def test_assembly_is_exactly_symmetric_from_torch_float32():
    numbers, positions, cell = structure(seed=3)
    graph = radius_graph(positions, cell, [True] * 3, 4.0)
    gen = torch.Generator().manual_seed(0)
    node = torch.randn(len(numbers), 10, 10, generator=gen, dtype=torch.float32)
    edge = torch.randn(graph.n_edges, 10, 10, generator=gen, dtype=torch.float32)
    H = assemble_blocks(node, edge, numbers, BASIS, torch.as_tensor(graph.edge_index))
    assert H.dtype == np.float64
    assert abs(H - H.T).max() == 0.0
    P = assemble_blocks(node, edge, numbers, BASIS, graph.edge_index, symmetrize=False)
    assert np.allclose(H.toarray(), (P + P.T).toarray() / 2, rtol=0, atol=0)
    assert abs(P - P.T).max() > 0


def test_images_of_one_pair_are_summed():
    numbers = np.array([O, HF])
    edge_index = np.array([[1, 1, 0], [0, 0, 1]])  # two images of 1 -> 0, one of 0 -> 1
    edge = np.zeros((3, 10, 10))
    edge[0, 0, 0], edge[1, 0, 0], edge[2, 0, 0] = 1.0, 2.0, 3.0
    P = assemble_blocks(np.zeros((2, 10, 10)), edge, numbers, BASIS, edge_index,
                        symmetrize=False).toarray()
    assert P[0, 4] == 3.0 and P[4, 0] == 3.0  # O s (row 0) x Hf first s (column 4)
    H = assemble_blocks(np.zeros((2, 10, 10)), edge, numbers, BASIS, edge_index).toarray()
    assert H[0, 4] == H[4, 0] == 3.0


def test_outside_entries_are_reported(system):
    numbers, positions, cell, _, H = system
    short = radius_graph(positions, cell, [True] * 3, 2.5)
    node, edge, info = extract_blocks(sp.csr_matrix(H), numbers, BASIS, short)
    lost = sp.csr_matrix(H) - assemble_blocks(node, edge, numbers, BASIS, short.edge_index)
    lost.eliminate_zeros()
    assert info["outside_count"] == lost.nnz > 0
    assert info["outside_max_abs"] == pytest.approx(abs(lost).max())
    assert info["outside_frobenius"] == pytest.approx(sp.linalg.norm(lost))


def test_bad_inputs(system):
    numbers, _, _, graph, H = system
    with pytest.raises(InputError, match="H.csr: matrix is"):
        extract_blocks(sp.csr_matrix(H[:-1, :-1]), numbers, BASIS, graph, source="H.csr")
    doubled = Graph(np.concatenate([graph.edge_index, graph.edge_index[:, :1]], axis=1),
                    np.zeros((graph.n_edges + 1, 3), dtype=np.int64), graph.n_nodes, graph.rcut)
    with pytest.raises(InputError, match="several edges"):
        extract_blocks(H, numbers, BASIS, doubled)
    bad = H.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        extract_blocks(bad, numbers, BASIS, graph)
    with pytest.raises(InputError, match="blocks of shapes"):
        assemble_blocks(np.zeros((3, 10, 10)), np.zeros((0, 10, 10)), numbers, BASIS,
                        np.zeros((2, 0), dtype=np.int64))


# ---------------------------------------------------------------------------- irreps
@pytest.mark.parametrize("basis", [BASIS, builtin_basis("DZVP")], ids=["SZV-HfO", "DZVP"])
def test_layout_orthogonal_and_round_trip(basis):
    layout = IrrepsLayout(basis)
    u = basis.n_union
    U = layout.U
    assert U.dtype == torch.float64 and U.shape == (u * u, u * u)
    assert (U @ U.T - torch.eye(u * u)).abs().max() < 1e-12
    blocks = torch.randn(3, 2, u, u, dtype=torch.float64)
    irreps = layout.blocks_to_irreps(blocks)
    assert irreps.shape == (3, 2, u * u)
    assert (layout.irreps_to_blocks(irreps) - blocks).abs().max() < 1e-12
    # entries tile the irreps vector, in order, with 2L+1 components each
    stops = 0
    for a, b, la, lb, L, start, stop in layout.entries:
        assert start == stops and stop - start == 2 * L + 1 and abs(la - lb) <= L <= la + lb
        assert (layout.irreps_ls[start:stop] == L).all()
        assert layout.irreps_m[start:stop].tolist() == list(range(2 * L + 1))
        stops = stop
    assert stops == u * u
    f32 = layout.irreps_to_blocks(irreps.float())
    assert f32.dtype == torch.float32 and (f32 - blocks).abs().max() < 1e-5


@pytest.mark.parametrize("basis", [BASIS, builtin_basis("DZVP")], ids=["SZV-HfO", "DZVP"])
def test_irreps_transform_with_e3nn_wigner_D(basis):
    """Blocks turning as D B D^T (orbital basis, union shells) give irreps whose L slices turn
    with e3nn's D^L."""
    layout = IrrepsLayout(basis)
    irreps = "+".join(f"1x{L}e" for *_ab, L, _start, _stop in layout.entries)
    B = torch.randn(4, basis.n_union, basis.n_union, dtype=torch.float64)
    assert_equivariant(layout.blocks_to_irreps, [B], [OrbitalBlocks(basis.union_shells)],
                       [irreps], tolerance=1e-10)


def test_empty_graph_and_zero_matrix():
    numbers = np.array([HF, O, 0])
    n_orb = 14
    empty = Graph(np.zeros((2, 0), dtype=np.int64), np.zeros((0, 3), dtype=np.int64), 3, 1.0)
    node, edge, info = extract_blocks(sp.csr_matrix((n_orb, n_orb)), numbers, BASIS, empty)
    assert node.shape == (3, 10, 10) and edge.shape == (0, 10, 10) and not node.any()
    assert info["outside_count"] == 0 and info["total_frobenius"] == 0.0
    H = np.eye(n_orb)
    H[0, 12] = H[12, 0] = 0.5  # Hf s - O p: outside the (empty) graph
    node, edge, info = extract_blocks(H, numbers, BASIS, empty)
    assert info["outside_count"] == 2 and info["outside_max_abs"] == 0.5
    back = assemble_blocks(node, edge, numbers, BASIS, empty.edge_index).toarray()
    assert np.array_equal(back, np.eye(n_orb))
