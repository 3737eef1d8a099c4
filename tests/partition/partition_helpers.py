"""Helpers of the partition tests (not a conftest: tests/model has its own): small random periodic
structures and their graphs."""

import numpy as np
import scipy.sparse as sp

from hampart import testing
from hampart.graph import radius_graph


def random_structure(n_atoms=80, lengths=(14.0, 9.0, 9.5), seed=0, min_dist=1.7, tilt=0.4):
    """:func:`hampart.testing.random_structure` in a tilted cell, with a few atoms moved one
    cell vector out of it; returns (numbers, positions, cell)."""
    numbers, positions, cell = testing.random_structure(n_atoms, np.diag(lengths), seed=seed,
                                                        min_dist=min_dist, cell_noise=tilt)
    # some atoms sit just outside the cell: periodic wrap must still place them right
    positions[:5] -= cell[0] * 1.0
    return numbers, positions, cell


def random_graph(n_atoms=80, rcut=4.0, seed=0, **kw):
    numbers, positions, cell = random_structure(n_atoms, seed=seed, **kw)
    graph = radius_graph(positions, cell, [True] * 3, rcut)
    return numbers, positions, cell, graph


def random_hamiltonian(numbers, graph, basis, seed=0):
    """Random symmetric H with entries only on-site and between atoms joined by an edge."""
    offsets = basis.orbital_offsets(numbers)
    n_orb = int(offsets[-1])
    rng = np.random.default_rng(seed)
    counts = np.diff(offsets)
    atom_of = np.repeat(np.arange(len(numbers)), counts)
    adjacency = np.eye(len(numbers), dtype=bool)
    adjacency[graph.edge_index[1], graph.edge_index[0]] = True
    A = rng.normal(size=(n_orb, n_orb)) * adjacency[atom_of][:, atom_of]
    return sp.csr_matrix(A + A.T)
