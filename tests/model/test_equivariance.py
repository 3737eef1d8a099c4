"""Every equivariant block of the model passes the one shared check,
:func:`hampart.testing.assert_equivariant` (float64, relative error < 1e-9).

Node features are ``(n, (lmax+1)^2, C)`` in the e3nn basis (``Features(lmax)``); edge vectors
are Cartesian; edge-frame outputs are rotated back with the edge's Wigner blocks before the
comparison (the frame itself turns with the input); head outputs are turned into orbital blocks
and compared with D_i H_ij D_j^T; radial features must be invariant.
"""

import pytest
import torch

from hampart.basis import Basis
from hampart.blocks import IrrepsLayout
from hampart.graph import edge_vectors, radius_graph
from hampart.model.heads import EdgeHead, NodeHead, present_entries
from hampart.model.layers import (EdgeBlock, EdgeGeometry, EquivariantLayerNorm, FeedForward,
                                  LinearPerL, MessageBlock, gate_nodes)
from hampart.model.onsite import NeighbourSum
from hampart.model.radial import GaussianBasis, RadialMLP, envelope
from hampart.model.so2 import EdgeFrame, SO2Linear, gate_frame
from hampart.testing import Features, OrbitalBlocks, assert_equivariant, random_structure

HF, O = 72, 8
BASIS = Basis({HF: (0, 0, 1, 2), O: (0, 1)}, name="SZV-HfO")
RCUT, C, N_RADIAL = 4.0, 6, 8


def _randomise(module, seed=0):
    """Random weights everywhere (zero biases and unit gains would hide paths)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    return module.double()


@pytest.fixture(scope="module")
def graph():
    """``(sender, receiver, n_nodes, vec (m, 3), kind (n,))`` of a small periodic structure."""
    numbers, positions, cell = random_structure(20, [[8.0, 0, 0], [0, 8.4, 0], [0, 0, 7.8]],
                                                seed=2, cell_noise=0.3, ghosts=1)
    g = radius_graph(positions, cell, [True] * 3, RCUT)
    vec = torch.as_tensor(edge_vectors(positions, cell, g.edge_index, g.edge_shift))
    kind = torch.as_tensor(numbers).clone()
    kind[kind == HF], kind[kind == O] = 1, 2
    ei = torch.as_tensor(g.edge_index)
    return ei[0], ei[1], len(numbers), vec, kind


def _geometry(graph, vec, lmax, mmax):
    sender, receiver, n, _, _ = graph
    dist = vec.norm(dim=-1)
    rbf = GaussianBasis(N_RADIAL, RCUT).double()(dist)
    return EdgeGeometry(sender, receiver, n, EdgeFrame(vec, lmax, mmax, vec.dtype), rbf,
                        envelope(dist, RCUT))


def _features(n, lmax, c=C, seed=1):
    return torch.randn(n, (lmax + 1) ** 2, c, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


LM = [(4, 4), (4, 2), (3, 1)]


@pytest.mark.parametrize("lmax", [0, 2, 4])
def test_node_wise_maps(lmax):
    x = _features(11, lmax)
    gates = torch.randn(11, lmax * C, dtype=torch.float64)
    f = Features(lmax)
    assert_equivariant(_randomise(LinearPerL(lmax, C, 2 * C)), [x], [f], [f])
    assert_equivariant(_randomise(EquivariantLayerNorm(lmax, C)), [x], [f], [f])
    assert_equivariant(lambda a, g: gate_nodes(a, g if lmax else None, lmax), [x, gates],
                       [f, None], [f])
    assert_equivariant(_randomise(FeedForward(lmax, C, 3 * C)), [x], [f], [f])


@pytest.mark.parametrize("lmax,mmax", LM)
def test_so2_linear_and_gate_in_the_edge_frame(graph, lmax, mmax):
    """Into the edge frame, the per-m map (or the gate), and back: equivariant whatever mmax,
    also with lmax_out != lmax_in; the extra m = 0 outputs (scalars) are invariant."""
    vec = graph[3]
    x = _features(vec.shape[0], lmax, seed=3)
    for lmax_out in (lmax, lmax - 1, lmax + 1):
        lin = _randomise(SO2Linear(lmax, mmax, C, 5, lmax_out=lmax_out, n_scalars=4))

        def so2(x, vec, lin=lin, lmax_out=lmax_out):
            # the same edge frames at both lmax (one set of angles)
            into, out = EdgeFrame(vec, lmax, mmax, vec.dtype), EdgeFrame(vec, lmax_out, mmax, vec.dtype)
            y, scalars = lin(into.rotate_in(x.split([2 * l + 1 for l in range(lmax + 1)], dim=1)))
            return torch.cat(out.rotate_out(y), dim=1), scalars

        assert_equivariant(so2, [x, vec], [Features(lmax), "cartesian"],
                           [Features(lmax_out), None])
    gates = torch.randn(vec.shape[0], lmax * C, dtype=torch.float64)

    def gated(x, gates, vec):
        frame = EdgeFrame(vec, lmax, mmax, vec.dtype)
        y = gate_frame(frame.rotate_in(x.split([2 * l + 1 for l in range(lmax + 1)], dim=1)),
                       gates, lmax, mmax)
        return torch.cat(frame.rotate_out(y), dim=1)

    assert_equivariant(gated, [x, gates, vec], [Features(lmax), None, "cartesian"],
                       [Features(lmax)])


@pytest.mark.parametrize("lmax,mmax", LM)
@pytest.mark.parametrize("options", [{}, {"attention_degree": 6.0}, {"degree": True}])
def test_message_block(graph, lmax, mmax, options):
    n, vec = graph[2], graph[3]
    block = _randomise(MessageBlock(lmax, mmax, C, 2, N_RADIAL, 16, att_channels=4, **options))
    assert_equivariant(lambda x, v: block(x, _geometry(graph, v, lmax, mmax)),
                       [_features(n, lmax), vec], [Features(lmax), "cartesian"], [Features(lmax)])


@pytest.mark.parametrize("lmax,mmax", LM)
def test_edge_block_rotated_back(graph, lmax, mmax):
    n, vec = graph[2], graph[3]
    block = _randomise(EdgeBlock(lmax, mmax, C, 5, N_RADIAL, 16))

    def edge(x, v):
        geom = _geometry(graph, v, lmax, mmax)
        return torch.cat(geom.frame.rotate_out(block(x, geom)), dim=1)

    assert_equivariant(edge, [_features(n, lmax), vec], [Features(lmax), "cartesian"],
                       [Features(lmax)])


@pytest.mark.parametrize("lmax,mmax", [(4, 4), (4, 2)])
def test_neighbour_sum(graph, lmax, mmax):
    kind, vec = graph[4], graph[3]
    onsite = _randomise(NeighbourSum(3, lmax, mmax, C, N_RADIAL, 16))
    assert_equivariant(lambda k, v: onsite.standardise(onsite(k, _geometry(graph, v, lmax, mmax))),
                       [kind, vec], [None, "cartesian"], [Features(lmax)])


def test_radial_features_are_invariant(graph):
    vec = graph[3]
    rbf = GaussianBasis(N_RADIAL, RCUT).double()
    mlp = _randomise(RadialMLP(N_RADIAL, 16, 7))

    def radial(v):
        dist = v.norm(dim=-1)
        return rbf(dist), envelope(dist, RCUT), mlp(rbf(dist), envelope(dist, RCUT))

    assert_equivariant(radial, [vec], ["cartesian"], [None, None, None])


@pytest.mark.parametrize("lmax,mmax", [(4, 4), (4, 2)])
def test_heads_give_blocks_that_turn_as_D_H_DT(graph, lmax, mmax):
    """Node head (global features) and edge head (edge-frame features, rotated back per L) of
    every species (pair), as padded orbital blocks: D_i H D_j^T over the union shells."""
    layout = IrrepsLayout(BASIS)
    u = BASIS.n_union
    U = layout.U
    blocks = OrbitalBlocks(BASIS.union_shells)
    x = _features(9, lmax)
    vec = graph[3][:40]
    xe = _features(vec.shape[0], lmax, c=5, seed=4)
    for zi in (HF, O):
        head = _randomise(NodeHead(layout, present_entries(layout, BASIS, zi, zi), u * u, C))
        assert_equivariant(lambda a: (head(a) @ U).reshape(-1, u, u), [x], [Features(lmax)],
                           [blocks])
        for zj in (HF, O):
            ids = present_entries(layout, BASIS, zi, zj)
            ehead = _randomise(EdgeHead(layout, ids, u * u, lmax, mmax, 5))

            def edge(a, v, ehead=ehead):
                frame = EdgeFrame(v, lmax, mmax, v.dtype)
                feats = frame.rotate_in(a.split([2 * l + 1 for l in range(lmax + 1)], dim=1))
                return (ehead(feats, frame) @ U).reshape(-1, u, u)

            assert_equivariant(edge, [xe, vec], [Features(lmax), "cartesian"], [blocks])
