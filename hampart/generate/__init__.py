"""Synthetic data: disordered structures and their physically structured Hamiltonians.

``generate`` makes a structure and labels it; ``label`` labels a structure a user gives. Both
write a dataset directory (:mod:`hampart.io.dataset`) atomically.
"""

from __future__ import annotations

import time

import numpy as np

from ..basis import load_basis
from ..io.atomic import check_output_directory
from ..io.dataset import save_dataset
from ..io.structure import read_structure
from .hamiltonian import PHYSICS_SEED, SyntheticParams, synthetic_hamiltonian
from .structures import MATERIALS, make_structure

__all__ = ["MATERIALS", "make_structure", "synthetic_hamiltonian", "SyntheticParams",
           "generate", "label"]


def _params(interaction_radius):
    return SyntheticParams() if interaction_radius is None else \
        SyntheticParams(interaction_radius=float(interaction_radius))


def _check_out(out, replace):
    """Refuse an occupied output before the labelling work, not after it."""
    check_output_directory(out, replace)


def _label_and_save(structure, out, basis, interaction_radius, meta, replace):
    basis = load_basis(basis)
    t = time.perf_counter()
    H, info = synthetic_hamiltonian(structure, basis, _params(interaction_radius), return_info=True)
    meta = dict(meta, generator="hampart synthetic v1", physics_seed=PHYSICS_SEED,
                label_seconds=time.perf_counter() - t, **info)
    return save_dataset(out, structure, H, basis, meta=meta, replace=replace)


def generate(material, seed=0, out="data/generated", vacancies=0.0, size=None, basis="SZV",
             interaction_radius=None, replace=False, atoms=None,
             vacancy_orbitals=False) -> str:
    """Make a disordered ``material`` structure and its Hamiltonian; write the dataset ``out``.

    size: unit-cell repeats (n1, n2, n3) or N; atoms: about this many atoms instead (see
    :func:`make_structure`). Returns the dataset path. Refuses an existing ``out`` unless
    ``replace``; nothing is written when anything fails. ``vacancy_orbitals``: vacancies are
    ghosts keeping the anion's orbitals (-Z) instead of orbital-less ghosts (0).
    """
    _check_out(out, replace)
    structure = make_structure(material, seed=seed, vacancies=vacancies, size=size, atoms=atoms,
                               vacancy_orbitals=vacancy_orbitals)
    meta = {"material": material, "seed": seed, "vacancies": vacancies,
            **({"vacancy_orbitals": True} if vacancy_orbitals else {}),
            "size": None if size is None else np.broadcast_to(size, (3,)).tolist(),
            "atoms_requested": atoms, "structure": structure.source}
    return _label_and_save(structure, out, basis, interaction_radius, meta, replace)


def label(structure_path, out, basis="SZV", interaction_radius=None, replace=False) -> str:
    """The synthetic Hamiltonian of a user's structure file; write the dataset ``out``."""
    _check_out(out, replace)
    structure = read_structure(structure_path)
    return _label_and_save(structure, out, basis, interaction_radius,
                           {"structure": str(structure_path)}, replace)
