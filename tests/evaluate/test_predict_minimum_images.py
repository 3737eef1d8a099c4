"""Prediction on a cell where pairs sit exactly half a cell apart (ties between two images):
with images="minimum" every owned edge finds its reverse, and the streamed slabs give the full
graph's matrix."""

import numpy as np
import torch

from hampart.basis import load_basis
from hampart.blocks import assemble_blocks
from hampart.evaluate import predict_hamiltonian
from hampart.graph import radius_graph
from hampart.io.structure import Structure
from hampart.model import HamiltonianModel


def test_predict_with_half_cell_ties_matches_the_full_graph():
    # Si and O on a 2 A grid in a 4 A cell: every neighbour pair is half a cell apart along
    # at least one axis, so two of its images are equally short
    grid = np.stack(np.meshgrid(*[np.arange(2) * 2.0] * 3, indexing="ij"), -1).reshape(-1, 3)
    numbers = np.random.default_rng(0).permutation(np.where(np.arange(8) % 3 == 0, 8, 14))
    s = Structure(numbers=numbers, positions=grid, cell=np.eye(3) * 4.0, pbc=[True] * 3,
                  source="grid")
    basis = load_basis("SZV")
    torch.manual_seed(0)
    model = HamiltonianModel(basis, lmax=4, mmax=1, channels=4, ff_hidden=8, heads=1, layers=1,
                             rcut=3.0).double()
    g = radius_graph(s.positions, s.cell, s.pbc, 3.0, images="minimum")
    assert g.merged > 0 and g.n_edges == 8 * (3 + 3)  # 3 at 2 A, 3 at 2.83 A
    t = torch.as_tensor
    with torch.no_grad():
        nb, eb = model(t(s.numbers), t(s.positions), t(s.cell), t(g.edge_index), t(g.edge_shift))
    direct = assemble_blocks(nb, eb, s.numbers, basis, g.edge_index, symmetrize=True)
    for max_atoms in (8, 3):  # one slab, then slabs with halos
        H, info = predict_hamiltonian(model, basis, s, 1, 3.0, images="minimum",
                                      max_atoms=max_atoms, dtype=torch.float64, group_atoms=2)
        assert abs(H - direct).max() < 1e-12 and abs(H - H.T).max() == 0.0
    assert info["parts"] == 3
