"""The model learns the synthetic Hamiltonian of hampart.generate on CPU: a disordered 96-atom
HfO2 cell with vacancies (ghosts), labelled at interaction radius 4 A, model at the same r_cut."""

import torch

from hampart.basis import load_basis
from hampart.blocks import extract_blocks
from hampart.generate import SyntheticParams, make_structure, synthetic_hamiltonian
from hampart.graph import radius_graph
from hampart.model import HamiltonianModel, block_loss
from hampart.model.loss import block_masks_torch
from hampart.model.statistics import label_sums

RCUT = 4.0  # = the generator's interaction radius: every nonzero block of H is an edge


def _data():
    s = make_structure("hfo2", seed=0, size=(2, 2, 2), vacancies=0.05)  # 96 atoms, 3 ghosts
    basis = load_basis("SZV")
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=RCUT))
    g = radius_graph(s.positions, s.cell, s.pbc, RCUT)
    nodes, edges, info = extract_blocks(H, s.numbers, basis, g)
    assert info["outside_count"] == 0  # nothing of H lies beyond the graph
    z = torch.as_tensor(s.numbers)
    args = (z, torch.as_tensor(s.positions, dtype=torch.float32),
            torch.as_tensor(s.cell, dtype=torch.float32), torch.as_tensor(g.edge_index),
            torch.as_tensor(g.edge_shift))
    return basis, args, torch.as_tensor(nodes), torch.as_tensor(edges)


def _relative_errors(model, args, target_nodes, target_edges, basis):
    """(edge MSE / edge mean square, node MSE / node variance about each species' mean)."""
    z, ei = args[0], args[3]
    node_mask, edge_mask = block_masks_torch(z, ei, basis)
    with torch.no_grad():
        pn, pe = model(*args)
    edge = ((pe.double() - target_edges)[edge_mask]).square().mean() \
        / target_edges[edge_mask].square().mean()
    var = 0.0
    for zz in z.unique():
        if int(zz) == 0:
            continue
        sel = z == zz
        var = var + (target_nodes[sel] - target_nodes[sel].mean(0))[node_mask[sel]].square().sum()
    node = ((pn.double() - target_nodes)[node_mask]).square().sum() / var
    return float(edge), float(node)


def _train(model, args, tn, te, basis, steps=150):
    """Full-batch Adam; the loss after every step."""
    z, ei = args[0], args[3]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    flush = torch.set_flush_denormal(True)  # float32 denormals in Adam's state slow CPUs 10x
    try:
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            sse, count = block_loss(*model(*args), tn.float(), te.float(), z, ei, basis)
            (sse / count).backward()
            opt.step()
            losses.append((sse / count).item())
    finally:
        torch.set_flush_denormal(False) if flush else None
    return losses


def _small_model(basis):
    torch.manual_seed(0)
    # the paper's lmax = mmax = 4 and 1 layer; narrower MLPs keep the test fast on CPU
    return HamiltonianModel(basis, rcut=RCUT, layers=1, channels=8, ff_hidden=16,
                            radial_hidden=16)


def test_loss_falls_by_orders_of_magnitude():
    basis, args, tn, te = _data()
    model = _small_model(basis)  # heads unscaled: the raw network
    untrained = _relative_errors(model, args, tn, te, basis)
    losses = _train(model, args, tn, te, basis)
    trained = _relative_errors(model, args, tn, te, basis)
    assert losses[0] / min(losses[-5:]) > 1000, (losses[0], min(losses[-5:]))
    # beyond the on-site constants: the directional hoppings are learned
    assert trained[0] < 0.01, trained
    assert untrained[0] > 0.5, untrained  # the bar is not trivial


def test_label_statistics_let_the_on_site_environment_be_learned():
    """Node blocks = species constants + milli-Hartree changes with coordination and neighbour
    directions; with head scales and biases from the labels those changes are learned too."""
    basis, args, tn, te = _data()
    model = _small_model(basis)
    model.set_label_statistics(label_sums(basis, args[0], args[3], tn, te))
    untrained = _relative_errors(model, args, tn, te, basis)
    losses = _train(model, args, tn, te, basis)
    trained = _relative_errors(model, args, tn, te, basis)
    assert losses[0] / min(losses[-5:]) > 100, (losses[0], min(losses[-5:]))
    assert trained[0] < 0.01 and trained[1] < 0.4, trained
    assert untrained[0] > 0.5 and untrained[1] > 1.0, untrained
    # Hf-Hf blocks are mostly small (atoms far apart) with a few large ones at short distance:
    # one pooled edge scale lets the Hf-Hf head reach them
    z, ei = args[0], args[3]
    _, edge_mask = block_masks_torch(z, ei, basis)
    with torch.no_grad():
        pred = model(*args)[1].double()
    hf_hf = (z[ei[0]] == 72) & (z[ei[1]] == 72)
    ref, got = te[hf_hf][edge_mask[hf_hf]], pred[hf_hf][edge_mask[hf_hf]]
    assert float((got - ref).square().mean() / ref.square().mean()) < 0.05
