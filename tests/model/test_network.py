"""HamiltonianModel: equivariance, invariances, shapes, padding and bad input."""

import numpy as np
import pytest
import torch

from hampart.basis import Basis
from hampart.errors import InputError
from hampart.model import OFFICIAL_OPTIONS, HamiltonianModel, PAPER_HYPERPARAMETERS
from hampart.model.loss import block_masks_torch
from hampart.testing import OrbitalBlocks, assert_equivariant, graph_tensors, random_structure

HF, O = 72, 8
RCUT = 4.0


def szv_basis() -> Basis:
    return Basis({HF: (0, 0, 1, 2), O: (0, 1)}, name="SZV-HfO")


def _model(dtype, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(PAPER_HYPERPARAMETERS, rcut=RCUT, layers=2)
    args.update(kw)
    return _random_node_heads(HamiltonianModel(szv_basis(), **args)).to(dtype)


def _random_node_heads(model):
    """Node heads start at zero with neighbour sums (they are fitted from labels): random
    weights here, so that the checks see every path into the node blocks."""
    with torch.no_grad():
        for head in model.node_heads.values():
            for w in head.weight:
                w.normal_(0.0, 0.3)
            if head.scalar_weight is not None:
                head.scalar_weight.normal_(0.0, 0.3)
    if model.needs_mean_degree:  # the structure's typical neighbour count, as training sets it
        model.set_mean_degree(8.0)
    return model


@pytest.fixture(scope="module")
def structure():
    box = 9.5
    return random_structure(30, np.diag([box, box * 1.05, box * 0.97]), seed=1, cell_noise=0.3,
                            ghosts=2)


# float64 is the proof; float32 bounds rounding (measured up to 1.2e-5: lmax 5 with every
# option and the neighbour sums' quadratic products)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("lmax,mmax,options", [(4, 4, {}), (4, 2, {}), (5, 3, {}),
                                               (4, 4, {"attention_degree": 6.0}),
                                               (4, 2, {"degree_embedding": True}),
                                               (4, 2, {"onsite_channels": 4}),
                                               (4, 2, {"onsite_channels": 4,
                                                       "onsite_invariants": True}),
                                               (4, 2, {"onsite_channels": 4,
                                                       "onsite_products": True}),
                                               (4, 2, {"edge_embedding": True}),
                                               (4, 2, {"message_edges": True}),
                                               (4, 2, {"radial_species": True}),
                                               (4, 2, {"att_channels": 16, "attention_norm": True,
                                                       "value_channels": 4}),
                                               (4, 2, {"radial_stop": 6.5, "radial_width": 2.0}),
                                               (4, 4, OFFICIAL_OPTIONS),
                                               (5, 3, dict(OFFICIAL_OPTIONS, onsite_channels=4,
                                                           degree_embedding=True))])
def test_rotation_equivariance(structure, dtype, tol, lmax, mmax, options):
    """Rotating positions and cell turns every node and edge block into D_i H_ij D_j^T."""
    numbers, positions, cell = structure
    args, _ = graph_tensors(numbers, positions, cell, RCUT, torch.float64)
    model = _model(dtype, lmax=lmax, mmax=mmax, **options)

    def blocks(z, pos, box, ei, es):  # inputs rotated in float64, then cast: the test
        return model(z, pos.to(dtype), box.to(dtype), ei, es)  # measures the model, not rounding

    with torch.no_grad():
        nb, eb = blocks(*args)
    assert nb.abs().max() > 1e-3 and eb.abs().max() > 1e-3  # not trivially zero
    shells = OrbitalBlocks(szv_basis().union_shells)
    assert_equivariant(blocks, args, [None, "cartesian", "cartesian", None, None],
                       [shells, shells], seed=7, tolerance=tol)


def test_translation_and_permutation(structure):
    numbers, positions, cell = structure
    (z, pos, box, ei, es), g = graph_tensors(numbers, positions, cell, RCUT)
    model = _model(torch.float64)
    with torch.no_grad():
        nb, eb = model(z, pos, box, ei, es)
        nb_t, eb_t = model(z, pos + torch.tensor([1.3, -0.4, 2.2], dtype=pos.dtype), box, ei, es)
        assert torch.allclose(nb, nb_t, atol=1e-11) and torch.allclose(eb, eb_t, atol=1e-11)

        rng = np.random.default_rng(3)
        perm = torch.as_tensor(rng.permutation(len(numbers)))
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(len(perm))
        eperm = torch.as_tensor(rng.permutation(g.n_edges))
        nb_p, eb_p = model(z[perm], pos[perm], box, inv[ei][:, eperm], es[eperm])
    assert torch.allclose(nb_p, nb[perm], atol=1e-11)
    assert torch.allclose(eb_p, eb[eperm], atol=1e-11)


def test_shapes_padding_and_ghosts(structure):
    numbers, positions, cell = structure
    (z, pos, box, ei, es), g = graph_tensors(numbers, positions, cell, RCUT)
    basis = szv_basis()
    model = _model(torch.float64, layers=1)
    nb, eb = model(z, pos, box, ei, es)
    u = basis.n_union
    assert nb.shape == (len(numbers), u, u) and eb.shape == (g.n_edges, u, u)
    node_mask, edge_mask = block_masks_torch(z, ei, basis)
    assert (nb[~node_mask] == 0).all() and (eb[~edge_mask] == 0).all()
    assert (nb[z == 0] == 0).all()  # ghosts own no blocks
    # every entry a species pair owns is predicted: no owned entry stuck at zero
    assert (z == O).any() and (nb[node_mask] != 0).all() and (eb[edge_mask] != 0).all()
    assert torch.equal(nb, nb.transpose(1, 2))  # H_ii is symmetric
    assert (eb.abs().sum((1, 2)) > 0).sum() == int(edge_mask.any(-1).any(-1).sum())


def test_bad_input(structure):
    numbers, positions, cell = structure
    (z, pos, box, ei, es), _ = graph_tensors(numbers, positions, cell, RCUT)
    model = _model(torch.float64, layers=1)
    with pytest.raises(InputError, match="lmax >= 4"):
        HamiltonianModel(szv_basis(), lmax=3)
    with pytest.raises(InputError, match="divisible"):
        HamiltonianModel(szv_basis(), channels=15, heads=2)
    with pytest.raises(InputError, match="value_channels"):
        HamiltonianModel(szv_basis(), value_channels=0)
    with pytest.raises(InputError, match="radial_stop"):
        HamiltonianModel(szv_basis(), radial_stop=-1.0)
    with pytest.raises(InputError, match="radial_width"):
        HamiltonianModel(szv_basis(), radial_width=0)
    with pytest.raises(InputError, match="no edges"):
        model(z, pos, box, ei[:, :0], es[:0])
    bad = pos.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model(z, bad, box, ei, es)
    zz = z.clone()
    zz[0] = 14  # Si: not in the basis
    with pytest.raises(InputError, match="Si"):
        model(zz, pos, box, ei, es)
    with pytest.raises(InputError, match="edge_index"):
        model(z, pos, box, ei + len(numbers), es)
    with pytest.raises(InputError, match="positions"):
        model(z, pos[:-1], box, ei, es)


def test_heads_only_for_the_given_elements(structure):
    """``elements``: heads and embedding for those species only; the blocks of those species are
    what a model of the whole basis with the same weights predicts; others are refused."""
    numbers, positions, cell = structure
    (z, pos, box, ei, es), _ = graph_tensors(numbers, positions, cell, RCUT)
    basis = Basis({HF: (0, 0, 1, 2), O: (0, 1), 14: (0, 1), 1: (0,)}, name="SZV-HfOSiH")
    full = _random_node_heads(HamiltonianModel(basis, rcut=RCUT, lmax=4, mmax=2, channels=8,
                                               heads=2)).double()
    torch.manual_seed(1)
    small = HamiltonianModel(basis, rcut=RCUT, lmax=4, mmax=2, channels=8, heads=2,
                             elements=[O, HF]).double()
    assert small.elements == [O, HF] and set(small.node_heads) == {"8", "72"}
    assert set(small.edge_heads) == {"8-8", "8-72", "72-8", "72-72"}
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small < sum(p.numel() for p in full.parameters())
    # the same weights where both have them (the embedding rows of ghost, O and Hf)
    state = {k: v for k, v in full.state_dict().items() if k in small.state_dict()}
    rows = torch.tensor([full.species.index(zz) for zz in small.species])
    state["embed.weight"] = full.embed.weight[rows]
    if small.onsite is not None:
        state["onsite.species.weight"] = full.onsite.species.weight[rows]
    small.load_state_dict(state)
    for a, b in zip(small(z, pos, box, ei, es), full(z, pos, box, ei, es)):
        assert torch.allclose(a, b, atol=1e-12)
    zz = z.clone()
    zz[0] = 14  # Si: in the basis, not in the model's elements
    assert small.unknown_elements(zz.numpy()) == [14] and full.unknown_elements(zz.numpy()) == []
    with pytest.raises(InputError, match="Si"):
        small(zz, pos, box, ei, es)
    with pytest.raises(InputError, match="Pt not in basis"):
        HamiltonianModel(basis, elements=[O, 78])


def test_basis_with_f_shells_needs_lmax_6():
    basis = Basis({HF: (0, 1, 2, 3)})
    with pytest.raises(InputError, match="lmax >= 6"):
        HamiltonianModel(basis, lmax=4)


@pytest.mark.parametrize("options", [{}, {"attention_degree": 6.0},
                                     {"degree_embedding": True, "onsite_channels": 4},
                                     {"onsite_channels": 4, "onsite_invariants": True},
                                     {"onsite_channels": 4, "onsite_products": True},
                                     {"edge_embedding": True}, {"message_edges": True},
                                     dict(OFFICIAL_OPTIONS, degree_embedding=True)])
def test_edge_chunks_with_checkpointing_change_nothing(structure, options):
    numbers, positions, cell = structure
    (z, pos, box, ei, es), g = graph_tensors(numbers, positions, cell, RCUT)
    whole = _model(torch.float64, **options)
    chunked = _model(torch.float64, edge_chunk=40, **options)
    assert len(chunked._edge_chunks(ei[1], len(numbers), 40)[1]) > 4  # really several chunks
    outs = []
    for model in (whole, chunked):
        nb, eb = model(z, pos, box, ei, es)
        (nb.square().sum() + eb.square().sum()).backward()
        outs.append((nb.detach(), eb.detach(), [p.grad for p in model.parameters() if p.requires_grad]))
    (n1, e1, g1), (n2, e2, g2) = outs
    assert torch.allclose(n1, n2, atol=1e-12) and torch.allclose(e1, e2, atol=1e-12)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)


def test_edge_chunk_is_an_argument_of_forward_not_state(structure):
    """``forward(..., edge_chunk=c)`` runs in chunks of c (0: all at once) whatever the
    model was built with, bit for bit as a model built with that chunk, and leaves the model
    as it was: memory plans pass a chunk per graph instead of setting one on the model."""
    numbers, positions, cell = structure
    (z, pos, box, ei, es), g = graph_tensors(numbers, positions, cell, RCUT)
    whole, chunked = _model(torch.float64), _model(torch.float64, edge_chunk=40)
    assert chunked.chunk_size() == 40 and chunked.chunk_size(0) is None
    assert whole.chunk_size() is None and whole.chunk_size(40) == 40
    for model, given, like in ((whole, 40, chunked), (chunked, 0, whole)):
        nb, eb = model(z, pos, box, ei, es, edge_chunk=given)
        (nb.square().sum() + eb.square().sum()).backward()
        n2, e2 = like(z, pos, box, ei, es)
        (n2.square().sum() + e2.square().sum()).backward()
        assert torch.equal(nb, n2) and torch.equal(eb, e2)
        for p, q in zip(model.parameters(), like.parameters()):
            assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad)
        model.zero_grad(), like.zero_grad()
    assert whole.edge_chunk is None and chunked.edge_chunk == 40


@pytest.mark.parametrize("edge_chunk", [None, 40])
@pytest.mark.parametrize("options", [{}, {"edge_embedding": True, "message_edges": True}])
def test_edge_outputs_are_the_first_edges_blocks(structure, edge_chunk, options):
    """Asking for the first k edges' blocks gives exactly those of the full output, and the
    gradient of a loss on them is the full model's gradient of the same loss."""
    numbers, positions, cell = structure
    (z, pos, box, ei, es), g = graph_tensors(numbers, positions, cell, RCUT)
    k = ei.shape[1] // 3 + 1  # not a multiple of the chunk
    outs = []
    for outputs in (None, k):
        model = _model(torch.float64, edge_chunk=edge_chunk, **options)
        nb, eb = model(z, pos, box, ei, es, edge_outputs=outputs)
        assert eb.shape[0] == (ei.shape[1] if outputs is None else k)
        (nb.square().sum() + eb[:k].square().sum()).backward()
        outs.append((nb.detach(), eb[:k].detach(), [p.grad for p in model.parameters() if p.requires_grad]))
    (n1, e1, g1), (n2, e2, g2) = outs
    assert torch.allclose(n1, n2, atol=1e-12) and torch.allclose(e1, e2, atol=1e-12)
    for a, b in zip(g1, g2):
        if a is None:
            assert b is None or not b.any()
        else:
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)
    nb, eb = _model(torch.float64, **options)(z, pos, box, ei, es, edge_outputs=0)
    assert eb.shape == (0, 10, 10) and torch.allclose(nb, n1, atol=1e-12)
    with pytest.raises(InputError, match="edge blocks"):
        _model(torch.float64)(z, pos, box, ei, es, edge_outputs=ei.shape[1] + 1)


def test_ghost_keeping_orbitals_is_a_species_of_its_own(structure):
    """A ghost of O (-8) and of Hf (-72): own embedding row and heads, blocks with the
    element's orbitals, equivariant; a model without the ghost species refuses it."""
    numbers, positions, cell = structure
    numbers = numbers.copy()
    numbers[np.flatnonzero(numbers == O)[:2]] = -O
    numbers[np.flatnonzero(numbers == HF)[:1]] = -HF
    basis = szv_basis().with_ghosts(numbers)
    assert basis.species == [O, HF, -O, -HF]
    torch.manual_seed(0)
    model = _random_node_heads(HamiltonianModel(basis, **dict(PAPER_HYPERPARAMETERS, rcut=RCUT)))
    model = model.double()
    assert model.embed.num_embeddings == 5 and {"-8", "-72"} <= set(model.node_heads)
    assert len(model.edge_heads) == 16 and "-8-72" in model.edge_heads
    args, _ = graph_tensors(numbers, positions, cell, RCUT)
    z, pos, box, ei, es = args
    with torch.no_grad():
        nb, eb = model(*args)
    shells = OrbitalBlocks(basis.union_shells)
    assert_equivariant(model, args, [None, "cartesian", "cartesian", None, None],
                       [shells, shells], seed=3, tolerance=1e-10)
    node_mask, edge_mask = block_masks_torch(z, ei, basis)
    assert (nb[~node_mask] == 0).all() and (eb[~edge_mask] == 0).all()
    ghost = z == -O
    assert int(node_mask[ghost].sum()) == 2 * 4 * 4 and (nb[ghost][node_mask[ghost]] != 0).all()
    touches = ((z[ei[0]] < 0) | (z[ei[1]] < 0)) & (z[ei[0]] != 0) & (z[ei[1]] != 0)
    assert int(touches.sum()) > 10  # edges to and from these ghosts have blocks
    assert (eb[touches].abs().sum((1, 2)) > 0).all()
    # the ghost is not its element: the same atom as O gets another block
    z_real = z.abs()
    with torch.no_grad():
        nb_real, _ = model(z_real, pos, box, ei, es)
    assert (nb_real[ghost] - nb[ghost]).abs().max() > 1e-6
    with pytest.raises(InputError, match="O_ghost.*not covered by the model"):
        _model(torch.float64, layers=1)(z, pos, box, ei, es)


def test_options_from_the_papers_code_build_what_they_say(structure):
    """Each option changes the network as documented: the radial basis's centres and width,
    the attention's value width and norm, the message input width, species in the radials, and
    an edge update per layer in place of the single edge block."""
    numbers, positions, cell = structure
    (z, pos, box, ei, es), _ = graph_tensors(numbers, positions, cell, RCUT)
    plain = _model(torch.float64)
    assert plain.edge_block is not None and plain.edge_update is None
    assert plain.radial_basis.width == pytest.approx(RCUT / 15)
    model = _model(torch.float64, **OFFICIAL_OPTIONS)
    assert model.radial_basis.centres[-1] == pytest.approx(13.0)
    assert model.radial_basis.width == pytest.approx(2 * 13.0 / 15)
    assert model.edge_block is None and len(model.edge_update) == 2
    block = model.message[0]
    assert block.values == 2 * 16 and block.proj.weight.shape[1:] == (32, 16)
    assert block.att_norm is not None and block.conv1.c_in == 3 * 16
    assert block.radial.receiver_embed.num_embeddings == len(model.species)
    # the species-aware radial sees the species: swapping O and Hf changes a same-geometry edge
    geom = model._geometry(ei[0], ei[1], pos[ei[0]] + es.double() @ box - pos[ei[1]], len(z),
                           model.species_of_z[z])
    swapped = geom.kind.clone()
    hf, o = model.species.index(HF), model.species.index(O)
    swapped[geom.kind == hf], swapped[geom.kind == o] = o, hf
    w1 = block.radial.edge_weights(geom)
    geom.kind = swapped
    assert not torch.allclose(w1, block.radial.edge_weights(geom))
    nb, eb = model(z, pos, box, ei, es)
    assert torch.isfinite(nb).all() and torch.isfinite(eb).all()
