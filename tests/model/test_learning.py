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
from hampart.testing import random_structure

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
    # Bars from one measurement (seed 0, this data, 150 steps): loss ratio 1170, relative edge
    # error 7.1 untrained and 0.0012 trained. Each bar leaves a factor of 2 or more for other
    # CPUs and library versions and still fails if training stalls.
    assert losses[0] / min(losses[-5:]) > 500, (losses[0], min(losses[-5:]))
    # beyond the on-site constants: the directional hoppings are learned
    assert trained[0] < 0.01, trained
    # not trivial: 1.0 is the error of predicting zero for every edge element
    assert untrained[0] > 0.5, untrained


def test_label_statistics_let_the_on_site_environment_be_learned():
    """Node blocks = species constants + milli-Hartree changes with coordination and neighbour
    directions; with head scales and biases from the labels those changes are learned too."""
    basis, args, tn, te = _data()
    model = _small_model(basis)
    model.set_label_statistics(label_sums(basis, args[0], args[3], tn, te))
    untrained = _relative_errors(model, args, tn, te, basis)
    losses = _train(model, args, tn, te, basis)
    trained = _relative_errors(model, args, tn, te, basis)
    # Measured (seed 0, 150 steps): loss ratio 364; trained relative errors 0.00048 (edges)
    # and 0.12 (nodes); Hf-Hf edges below 0.012. Bars a factor 3 to 20 above, below for the ratio.
    assert losses[0] / min(losses[-5:]) > 100, (losses[0], min(losses[-5:]))
    assert trained[0] < 0.01 and trained[1] < 0.4, trained
    # the bars are not trivial: an edge error of 1.0 is that of predicting zero, a node error
    # of 1.0 that of predicting each species' mean block (what the label biases start from;
    # measured untrained: 1.0 and 1.15)
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


def _coordination_data(seed=0):
    """Si atoms at random (min. 2.1 A apart) in a 10 A box, s orbitals only, whose on-site
    energy depends on the number of neighbours alone: E_i = -0.4 + 0.01 sum_j c(r_ij),
    c a smooth step from 1 (r < 2.6 A) to 0 (r > 3.4 A); hoppings zero."""
    import numpy as np

    from hampart.basis import Basis

    # random packing: neighbour counts spread from about 1 to 7
    numbers, positions, cell = random_structure(48, np.eye(3) * 10.0, seed=seed, min_dist=2.1,
                                                species=(14,))
    g = radius_graph(positions, cell, [True] * 3, RCUT)
    s, r = g.edge_index
    dist = np.linalg.norm(positions[s] + g.edge_shift @ cell - positions[r], axis=1)
    step = np.clip((3.4 - dist) / 0.8, 0.0, 1.0)
    count = np.bincount(r, weights=step * step * (3 - 2 * step), minlength=len(numbers))
    nodes = torch.as_tensor(-0.4 + 0.01 * count)[:, None, None]
    edges = torch.zeros(g.edge_index.shape[1], 1, 1, dtype=torch.float64)
    args = (torch.as_tensor(numbers), torch.as_tensor(positions, dtype=torch.float32),
            torch.as_tensor(cell, dtype=torch.float32), torch.as_tensor(g.edge_index),
            torch.as_tensor(g.edge_shift))
    return Basis({14: (0,)}, name="s-only"), args, nodes, edges, count


def _node_error_after(basis, args, nodes, edges, steps, **options):
    """Node RMSE over the spread of the on-site energies after ``steps`` Adam steps."""
    torch.manual_seed(0)
    model = HamiltonianModel(basis, rcut=RCUT, lmax=1, layers=1, channels=8, ff_hidden=16,
                             radial_hidden=16, **options)
    if model.needs_mean_degree:
        model.set_mean_degree(float(args[3].shape[1]) / args[0].shape[0])
    if model.onsite is not None:
        model.set_neighbour_sum_statistics(model.neighbour_sum_statistics(*args))
    model.set_label_statistics(label_sums(basis, args[0], args[3], nodes, edges))
    if model.onsite is not None:
        model.set_onsite_fit(model.onsite_normal_equations(*args, nodes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):  # on-site energies only: the question is whether they can be seen
        opt.zero_grad()
        (model(*args, edge_outputs=0)[0].double() - nodes).square().mean().backward()
        opt.step()
    with torch.no_grad():
        pred = model(*args)[0].double()
    return float((pred - nodes).square().mean().sqrt() / nodes.std())


def test_on_site_energy_that_counts_neighbours_is_learned_quickly():
    """The slow on-site convergence on real CP2K data: a softmax mean of messages cannot count
    neighbours, and small differences between atoms need large head weights, which Adam grows
    at lr per step. The default model reads standardised neighbour sums, its node heads fitted
    to them by least squares before training. Measured (seed 0, 16 neighbour-sum channels):
    0.047 of the spread after the fit alone and 0.047 after 40 steps; the paper's network (no
    neighbour sums, no degree embedding) 0.99 after 40 steps, i.e. no better than predicting
    the mean energy (1.0). Bars: a factor 2-3 above the default's values, and half-way to
    the mean's error for the paper's."""
    basis, args, nodes, edges, count = _coordination_data()
    assert count.max() - count.min() > 3  # the data vary with the neighbour count (5.4 here)
    assert _node_error_after(basis, args, nodes, edges, 0) < 0.1
    assert _node_error_after(basis, args, nodes, edges, 40) < 0.15
    paper = dict(onsite_channels=0, degree_embedding=False)
    assert _node_error_after(basis, args, nodes, edges, 40, **paper) > 0.5


def test_least_squares_start_does_not_shrink_the_species_mean():
    """The ridge of the on-site fit penalises the neighbour-sum weights, not the L = 0 bias:
    a penalised bias pulled every atom's on-site energy towards zero, a common shift of the
    whole spectrum (measured on real a-Si: -0.49 mE_h at ridge 1e-2, +0.10 without it)."""
    basis, args, nodes, edges, _ = _coordination_data()
    torch.manual_seed(0)
    model = HamiltonianModel(basis, rcut=RCUT, lmax=1, layers=1, channels=8, ff_hidden=16,
                             radial_hidden=16)
    model.set_mean_degree(float(args[3].shape[1]) / args[0].shape[0])
    model.set_neighbour_sum_statistics(model.neighbour_sum_statistics(*args))
    model.set_label_statistics(label_sums(basis, args[0], args[3], nodes, edges))
    # a ridge so strong that the weights vanish: what is left must be the mean energy
    model.set_onsite_fit(model.onsite_normal_equations(*args, nodes), ridge=1e6)
    with torch.no_grad():
        pred = model(*args)[0].double()
    assert abs(float(pred.mean() - nodes.mean())) < 1e-3 * float(nodes.std())
    assert float((pred - nodes).std()) > 0.9 * float(nodes.std())  # the weights did vanish


def test_neighbour_sum_products_reach_anisotropic_on_site_terms():
    """``onsite_products``: an s-p on-site term that is a three-body function of the
    neighbours (here a combination of the model's own products (s_l1 x s_l2)_1) is fitted by
    the least-squares start; the linear sums alone cannot reach it. Checks the wiring of the
    products into the node heads and the normal equations, which must agree."""
    import numpy as np

    from hampart.basis import Basis
    from hampart.blocks import IrrepsLayout

    _, args, _, _, _ = _coordination_data()
    basis = Basis({14: (0, 1)}, name="sp")
    n = args[0].shape[0]

    def fitted(products: bool, nodes=None):
        torch.manual_seed(0)
        model = HamiltonianModel(basis, rcut=RCUT, lmax=2, layers=1, channels=8, ff_hidden=16,
                                 radial_hidden=16, onsite_channels=6,
                                 onsite_products=products).double()
        a64 = (args[0], args[1].double(), args[2].double(), args[3], args[4])
        model.set_mean_degree(float(args[3].shape[1]) / n)
        model.set_neighbour_sum_statistics(model.neighbour_sum_statistics(*a64))
        if nodes is None:
            return model, a64
        edges = torch.zeros(args[3].shape[1], 4, 4, dtype=torch.float64)
        model.set_label_statistics(label_sums(basis, args[0], args[3], nodes, edges))
        model.set_onsite_fit(model.onsite_normal_equations(*a64, nodes), ridge=1e-9)
        with torch.no_grad():
            return model(*a64)[0]

    model, a64 = fitted(True)
    with torch.no_grad():
        raw = model._raw_neighbour_sums(*a64)
        prods = model.onsite.products(model.onsite.standardise(raw))  # (n, 9, P)
    assert model.onsite.n_products == 3 * 6  # L = 2 has the most pairs: (0,2), (1,1), (2,2)
    assert float(prods[:, :1].abs().max()) == 0.0  # L = 0 is the invariants' place
    rng = np.random.default_rng(0)
    v = prods[:, 1:4] @ torch.as_tensor(rng.normal(size=prods.shape[2]))  # (n, 3), an L = 1 term
    layout = IrrepsLayout(basis)
    (start, stop), = [(e[5], e[6]) for e in layout.entries if e[:2] == (0, 1)]
    irreps = torch.zeros(n, 16, dtype=torch.float64)
    irreps[:, start:stop] = 1e-3 * v
    nodes = (irreps @ layout.U).reshape(n, 4, 4)
    nodes = 0.5 * (nodes + nodes.transpose(1, 2)) - 0.2 * torch.eye(4)  # symmetric, as H is
    spread = float((nodes - nodes.mean(0)).square().mean().sqrt())
    with_products = float((fitted(True, nodes) - nodes).square().mean().sqrt()) / spread
    linear = float((fitted(False, nodes) - nodes).square().mean().sqrt()) / spread
    # measured: 2e-8 with products (float64 least squares), 0.87 with the sums alone
    assert with_products < 1e-4 and linear > 0.3, (with_products, linear)
