"""Partition exactness (DESIGN.md §3) with the real partitioner: halo k = L + 1 gives the full
graph's loss and gradients as a sum over partitions; k = L gives the owned atoms' outputs
exactly. Data: a disordered 144-atom HfO2 cell with vacancies and its synthetic Hamiltonian."""

import pytest
import torch

from hampart.basis import load_basis
from hampart.blocks import extract_blocks
from hampart.generate import SyntheticParams, make_structure, synthetic_hamiltonian
from hampart.model import OFFICIAL_OPTIONS, HamiltonianModel, block_loss
from hampart.partition import partition_arrays, to_batch

RCUT = 3.6
PARTS = 3


@pytest.fixture(scope="module")
def data():
    s = make_structure("hfo2", seed=5, size=(3, 2, 2), vacancies=0.05)  # 144 atoms, 5 ghosts
    basis = load_basis("SZV")
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=RCUT))
    return s, basis, H


def _parts(data, halo, layers):
    s, basis, H = data
    parts, info = partition_arrays(s, RCUT, method="slab", parts=PARTS, halo=halo, axis="x",
                                   hamiltonian=H, basis=basis)
    g = info["graph"]
    nodes, edges, _ = extract_blocks(H, s.numbers, basis, g)
    full = (torch.as_tensor(s.numbers), torch.as_tensor(s.positions), torch.as_tensor(s.cell),
            torch.as_tensor(g.edge_index), torch.as_tensor(g.edge_shift))
    batches = [to_batch(a, layers, dtype=torch.float64) for a in parts]
    ids = [torch.as_tensor(a["edge_ids"]) for a in parts]  # global ids of the owned edges
    return full, torch.as_tensor(nodes), torch.as_tensor(edges), batches, ids


def _model(layers, basis=None, **kw):
    torch.manual_seed(0)
    model = HamiltonianModel(basis or load_basis("SZV"), lmax=4, mmax=4, channels=8, ff_hidden=16,
                             heads=2, layers=layers, rcut=RCUT, **kw).double()
    with torch.no_grad():  # node heads start at zero with neighbour sums: make them count here
        for head in model.node_heads.values():
            for w in head.weight:
                w.normal_(0.0, 0.3)
            if head.scalar_weight is not None:
                head.scalar_weight.normal_(0.0, 0.3)
    return model


def _inputs(b):
    return b.numbers, b.positions, b.cell, b.edge_index, b.edge_shift


@pytest.mark.parametrize("layers,options", [(1, {}), (2, {}), (2, {"attention_degree": 5.0}),
                                            (2, {"degree_embedding": False, "onsite_channels": 0}),
                                            (1, {"onsite_invariants": True}),
                                            (2, {"onsite_products": True}),
                                            (1, {"edge_embedding": True}),
                                            (2, {"edge_embedding": True, "message_edges": True}),
                                            (2, {"message_edges": True}),
                                            (2, OFFICIAL_OPTIONS)])
def test_halo_l_plus_1_sums_to_full_graph(data, layers, options):
    basis = data[1]
    full, tn, te, batches, _ = _parts(data, layers + 1, layers)
    model = _model(layers, **options)
    sse_full, count_full = block_loss(*model(*full), tn, te, full[0], full[3], basis)
    sse_full.backward()
    sse_full = sse_full.detach()
    # heads of species absent from HfO2 (the SZV file has more elements) get no gradient
    grads_full = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert len(grads_full) > 20
    model.zero_grad()
    sse_sum, count_sum = 0.0, 0
    for b in batches:
        assert bool(b.node_exact.all()) and bool(b.edge_exact.all())
        sse, count = block_loss(*model(*_inputs(b)), b.node_blocks, b.edge_blocks, b.numbers,
                                b.edge_index, basis, b.node_exact, b.edge_exact)
        sse.backward()
        sse_sum, count_sum = sse_sum + sse.detach(), count_sum + int(count)
    assert sum(b.n_owned for b in batches) == len(full[0])  # every atom owned once
    assert count_sum == int(count_full)
    assert abs(float(sse_sum) - float(sse_full)) <= 1e-9 * float(sse_full)
    assert {n for n, p in model.named_parameters() if p.grad is not None} == set(grads_full)
    for n, p in model.named_parameters():
        if n not in grads_full:
            continue
        g_full = grads_full[n]
        assert torch.allclose(p.grad, g_full, rtol=1e-9, atol=1e-9 * g_full.abs().max() + 1e-300)


@pytest.mark.parametrize("layers,options", [(1, {}), (2, {}), (2, {"onsite_invariants": True}),
                                            (1, {"onsite_products": True}),
                                            (1, {"degree_embedding": False, "onsite_channels": 0}),
                                            (2, {"degree_embedding": False, "onsite_channels": 0}),
                                            (1, {"edge_embedding": True}),
                                            (2, {"edge_embedding": True, "message_edges": True}),
                                            (2, OFFICIAL_OPTIONS)])
def test_halo_l_gives_exact_owned_atoms(data, layers, options):
    full, _, _, batches, ids = _parts(data, layers, layers)
    model = _model(layers, **options)
    with torch.no_grad():
        full_nodes, full_edges = model(*full)
        for b, eid in zip(batches, ids):
            pn, pe = model(*_inputs(b))
            own = b.node_ids[:b.n_owned]
            assert bool(b.node_exact.all())
            assert torch.allclose(pn[:b.n_owned], full_nodes[own], rtol=1e-12, atol=1e-12)
            # owned edges with an owned sender are exact too; the others are not (hence k = L + 1)
            exact = b.edge_exact
            assert 0 < int(exact.sum()) < len(exact)
            got, want = pe[:b.n_owned_edges], full_edges[eid]
            assert torch.allclose(got[exact], want[exact], rtol=1e-12, atol=1e-12)
            assert not torch.allclose(got[~exact], want[~exact], rtol=1e-6, atol=1e-9)


@pytest.fixture(scope="module")
def ghost_data(data):
    """The same cell with 3 of its 5 vacancies ghosts keeping O's orbitals (-8), the others
    orbital-less (0), and a random H with exactly the graph's pattern (ghost rows included)."""
    import numpy as np

    from hampart.blocks import assemble_blocks
    from hampart.graph import radius_graph
    from hampart.io.structure import Structure

    s, basis, _ = data
    numbers = s.numbers.copy()
    numbers[np.flatnonzero(numbers == 0)[:3]] = -8
    s = Structure(numbers, s.positions, s.cell, s.pbc)
    basis = basis.with_ghosts(numbers)
    g = radius_graph(s.positions, s.cell, s.pbc, RCUT)
    rng = np.random.default_rng(2)
    u = basis.n_union
    H = assemble_blocks(rng.normal(size=(s.n_atoms, u, u)), rng.normal(size=(g.n_edges, u, u)),
                        numbers, basis, g.edge_index)
    return s, basis, H


def test_ghost_species_halo_l_plus_1_sums_to_full_graph(ghost_data):
    layers, basis = 2, ghost_data[1]
    full, tn, te, batches, _ = _parts(ghost_data, layers + 1, layers)
    ghosts = full[0] == -8
    assert int(ghosts.sum()) == 3 and tn[ghosts].abs().sum() > 0  # ghost rows are labelled
    model = _model(layers, basis)
    sse_full, count_full = block_loss(*model(*full), tn, te, full[0], full[3], basis)
    sse_full.backward()
    sse_full = sse_full.detach()
    grads_full = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert {"node_heads.-8.bias", "embed.weight"} <= set(grads_full)
    assert any(n.startswith("edge_heads.-8-72.") for n in grads_full)
    model.zero_grad()
    sse_sum, count_sum = 0.0, 0
    for b in batches:
        sse, count = block_loss(*model(*_inputs(b)), b.node_blocks, b.edge_blocks, b.numbers,
                                b.edge_index, basis, b.node_exact, b.edge_exact)
        sse.backward()
        sse_sum, count_sum = sse_sum + sse.detach(), count_sum + int(count)
    assert count_sum == int(count_full)
    assert abs(float(sse_sum) - float(sse_full)) <= 1e-9 * float(sse_full)
    for n, p in model.named_parameters():
        if n in grads_full:
            g_full = grads_full[n]
            assert torch.allclose(p.grad, g_full, rtol=1e-9, atol=1e-9 * g_full.abs().max())
