"""Partition tests' defaults for :func:`hampart.testing.random_structure`: a tilted cell, a few
atoms outside it; the random H is :func:`hampart.testing.random_hamiltonian`."""

import numpy as np

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


random_hamiltonian = testing.random_hamiltonian
