"""HamiltonianModel: equivariance, invariances, shapes, padding and bad input."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hampart import so3
from hampart.basis import Basis
from hampart.errors import InputError
from hampart.model import OFFICIAL_OPTIONS, HamiltonianModel, PAPER_HYPERPARAMETERS
from hampart.model.loss import block_masks_torch

from conftest import HF, O, graph_tensors, random_structure, szv_basis

RCUT = 4.0


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
    if model.needs_mean_degree:  # the structure's typical neighbour count, as training sets it
        model.set_mean_degree(8.0)
    return model


@pytest.fixture(scope="module")
def structure():
    return random_structure(30, box=9.5, seed=1, ghosts=2)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("lmax,mmax,options", [(4, 4, {}), (4, 2, {}), (5, 3, {}),
                                               (4, 4, {"attention_degree": 6.0}),
                                               (4, 2, {"degree_embedding": True}),
                                               (4, 2, {"onsite_channels": 4}),
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
    numbers, positions, cell = structure
    (z, pos, box, ei, es), _ = graph_tensors(numbers, positions, cell, RCUT, torch.float64)
    model = _model(dtype, lmax=lmax, mmax=mmax, **options)
    rot = torch.tensor(Rotation.random(random_state=7).as_matrix())
    with torch.no_grad():
        nb, eb = model(z, pos.to(dtype), box.to(dtype), ei, es)
        # rotate in float64, then cast: the test measures the model, not the input's rounding
        nb_r, eb_r = model(z, (pos @ rot.T).to(dtype), (box @ rot.T).to(dtype), ei, es)
    d = so3.block_rotation(szv_basis().union_shells, rot).to(dtype)
    scale_n, scale_e = nb.abs().max(), eb.abs().max()
    assert scale_n > 1e-3 and scale_e > 1e-3  # not trivially zero
    assert ((d @ nb @ d.T - nb_r).abs().max() / scale_n) < tol
    assert ((d @ eb @ d.T - eb_r).abs().max() / scale_e) < tol


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
    assert nb[z == O][:, :4, :4].abs().min() > 0 or nb[z == O][:, :4, :4].abs().max() > 0
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


def test_basis_with_f_shells_needs_lmax_6():
    basis = Basis({HF: (0, 1, 2, 3)})
    with pytest.raises(InputError, match="lmax >= 6"):
        HamiltonianModel(basis, lmax=4)


@pytest.mark.parametrize("options", [{}, {"attention_degree": 6.0},
                                     {"degree_embedding": True, "onsite_channels": 4},
                                     {"edge_embedding": True}, {"message_edges": True},
                                     dict(OFFICIAL_OPTIONS, degree_embedding=True)])
def test_edge_chunks_with_checkpointing_change_nothing(structure, options):
    numbers, positions, cell = structure
    (z, pos, box, ei, es), g = graph_tensors(numbers, positions, cell, RCUT)
    whole = _model(torch.float64, **options)
    chunked = _model(torch.float64, edge_chunk=40, **options)
    assert len(chunked._edge_chunks(ei[1], len(numbers))[1]) > 4  # really several chunks
    outs = []
    for model in (whole, chunked):
        nb, eb = model(z, pos, box, ei, es)
        (nb.square().sum() + eb.square().sum()).backward()
        outs.append((nb.detach(), eb.detach(), [p.grad for p in model.parameters() if p.requires_grad]))
    (n1, e1, g1), (n2, e2, g2) = outs
    assert torch.allclose(n1, n2, atol=1e-12) and torch.allclose(e1, e2, atol=1e-12)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)


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
