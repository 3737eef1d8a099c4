"""Shared fixtures of the model tests: a small periodic HfO2-like structure and its graph."""

import numpy as np
import torch

from hampart.basis import Basis
from hampart.graph import radius_graph

HF, O = 72, 8


def szv_basis() -> Basis:
    return Basis({HF: (0, 0, 1, 2), O: (0, 1)}, name="SZV-HfO")


def random_structure(n_atoms=24, box=9.0, seed=0, ghosts=0, min_dist=1.6):
    """Random periodic Hf/O structure (1:2) with ``ghosts`` Z = 0 atoms; numpy arrays."""
    rng = np.random.default_rng(seed)
    cell = np.diag([box, box * 1.05, box * 0.97]) + rng.normal(0, 0.3, (3, 3))
    frac = []
    while len(frac) < n_atoms:
        f = rng.random(3)
        if frac:
            d = np.array(frac) - f
            d -= np.round(d)
            if np.linalg.norm(d @ cell, axis=1).min() < min_dist:
                continue
        frac.append(f)
    positions = np.array(frac) @ cell
    numbers = np.where(np.arange(n_atoms) % 3 == 0, HF, O)
    numbers[rng.permutation(n_atoms)[:ghosts]] = 0
    return numbers, positions, cell


def graph_tensors(numbers, positions, cell, rcut, dtype=torch.float64):
    g = radius_graph(positions, cell, [True] * 3, rcut)
    return (torch.as_tensor(numbers), torch.as_tensor(positions, dtype=dtype),
            torch.as_tensor(cell, dtype=dtype), torch.as_tensor(g.edge_index),
            torch.as_tensor(g.edge_shift)), g
