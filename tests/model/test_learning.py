"""The model learns an equivariant, environment-dependent synthetic Hamiltonian on CPU."""

import pytest
import torch
from e3nn import o3

import hampart.model.network as network
from hampart.model import HamiltonianModel, block_loss
from hampart.model.loss import block_masks_torch

from conftest import graph_tensors, random_structure, szv_basis

RCUT = 4.0


def _synthetic_target(z, pos, cell, ei, es, basis):
    """Blocks from irreps built of Y_L(edge direction): edges decay with distance and depend on
    both atoms' coordination; node blocks are on-site constants plus a crystal field summed over
    neighbours (so one message-passing layer is needed)."""
    layout = network._make_layout(basis)
    u = basis.n_union
    U = torch.as_tensor(layout.U, dtype=torch.float64)
    vec = pos[ei[0]] + es.double() @ cell - pos[ei[1]]
    r = vec.norm(dim=-1)
    env = (1 - (r / RCUT) ** 2).clamp(min=0) ** 2
    coord = torch.zeros(len(z), dtype=torch.float64).index_add_(0, ei[1], env * (z[ei[0]] > 0))
    coef = torch.randn(len(layout.entries), generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    irr_e = torch.zeros(len(r), u * u, dtype=torch.float64)
    irr_n = torch.zeros(len(z), u * u, dtype=torch.float64)
    for k, (_a, _b, _la, _lb, L, s, e) in enumerate(e[:7] for e in layout.entries):
        Y = o3.spherical_harmonics(L, vec, normalize=True)
        irr_e[:, s:e] = coef[k] * torch.exp(-r)[:, None] * Y \
            * (1 + 0.015 * coord[ei[1]] * coord[ei[0]])[:, None]
        field = torch.zeros(len(z), 2 * L + 1, dtype=torch.float64).index_add_(
            0, ei[1], (env * torch.exp(-r))[:, None] * Y)
        irr_n[:, s:e] = coef[k] * (field + 2.0 * (L == 0))
    node_mask, edge_mask = block_masks_torch(z, ei, basis)
    nodes = (irr_n @ U).reshape(-1, u, u)
    nodes = 0.5 * (nodes + nodes.transpose(1, 2)) * node_mask
    edges = (irr_e @ U).reshape(-1, u, u) * edge_mask
    return nodes, edges, node_mask, edge_mask


def _relative_errors(model, args, target_nodes, target_edges, node_mask, edge_mask, z):
    """(edge MSE / edge mean square, node MSE / node variance about each species' mean)."""
    with torch.no_grad():
        pn, pe = model(*args)
    edge = ((pe.double() - target_edges)[edge_mask]).square().mean() \
        / target_edges[edge_mask].square().mean()
    var = 0.0
    for zz in z.unique():
        sel = z == zz
        if int(zz) == 0:
            continue
        var = var + (target_nodes[sel] - target_nodes[sel].mean(0))[node_mask[sel]].square().sum()
    node = ((pn.double() - target_nodes)[node_mask]).square().sum() / var
    return float(edge), float(node)


def test_loss_falls_by_orders_of_magnitude():
    basis = szv_basis()
    numbers, positions, cell = random_structure(36, box=10.0, seed=2, ghosts=2)
    (z, pos, box, ei, es), _ = graph_tensors(numbers, positions, cell, RCUT)
    tn, te, nm, em = _synthetic_target(z, pos, box, ei, es, basis)
    torch.manual_seed(0)
    model = HamiltonianModel(basis, rcut=RCUT, layers=1)  # paper hyperparameters, float32
    args = (z, pos.float(), box.float(), ei, es)
    untrained = _relative_errors(model, args, tn, te, nm, em, z)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        sse, count = block_loss(*model(*args), tn.float(), te.float(), z, ei, basis)
        (sse / count).backward()
        opt.step()
        losses.append((sse / count).item())
    trained = _relative_errors(model, args, tn, te, nm, em, z)
    assert losses[0] / min(losses[-5:]) > 100
    # beyond the on-site constants: the directional edges and the crystal field are learned
    assert trained[0] < 0.02 and trained[1] < 0.6, trained
    assert untrained[0] > 0.5 and untrained[1] > 1.0, untrained  # the bar is not trivial
