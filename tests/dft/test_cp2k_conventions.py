"""CP2K's orbital order and signs, checked on real CP2K output (no CP2K needed to run this).

tests/data/cp2k-hfo2-rotation/<basis>/{a,b}: a fluorite HfO2 primitive cell with rattled atoms
(Hf: s, s, p, d in SZV; s, s, s, p, p, d, d, f in DZVP), and the same cell rotated as a whole
by a generic R (positions and cell vectors; rotation.json), both computed by CP2K 2023.1 at the
Gamma point (scripts/make_cp2k_test_data.py). CP2K's grid follows the cell vectors, so every
term, periodic images and grid included, rotates with the atoms. With D the block diagonal of
hampart.so3.wigner_D_orbital over every atom's shells (hampart's internal order, taken to be
CP2K's), S_b = D S_a D^T and H_b = D H_a D^T must hold; docs/conventions.md gives the
measured residuals.
"""

import json
import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hampart import conventions, so3
from hampart.io.csr import read_matrix
from hampart.io.dataset import load_dataset

ROOT = os.path.join(os.path.dirname(__file__), "..", "data", "cp2k-hfo2-rotation")
# measured residuals (max |.| over all elements) with margin; see docs/conventions.md
TOLERANCE = {"szv": {"S": 1e-12, "H": 2e-6}, "dzvp": {"S": 1e-12, "H": 2e-6}}
BASES = [b for b in ("szv", "dzvp") if os.path.isdir(os.path.join(ROOT, b, "b"))]


def load(basis):
    a, b = (load_dataset(os.path.join(ROOT, basis, k)) for k in "ab")
    R = np.array(json.load(open(os.path.join(ROOT, basis, "rotation.json")))["R"])
    Sa, Sb = (read_matrix(os.path.join(ROOT, basis, k, "S.npz")).toarray() for k in "ab")
    return a, b, R, a.hamiltonian.toarray(), b.hamiltonian.toarray(), Sa, Sb


def big_D(numbers, basis, R):
    rot = torch.as_tensor(R, dtype=torch.float64)
    return sp.block_diag([so3.block_rotation(basis.shells_of(int(z)), rot).numpy()
                          for z in numbers]).toarray()


@pytest.mark.parametrize("name", BASES)
def test_the_pair_is_one_molecule_rotated(name):
    a, b, R, *_ = load(name)
    assert np.abs(a.structure.positions @ R.T - b.structure.positions).max() < 1e-12
    assert np.abs(a.structure.cell @ R.T - b.structure.cell).max() < 1e-12
    assert np.array_equal(a.structure.numbers, b.structure.numbers)
    assert a.meta["scf_converged"] and b.meta["scf_converged"]
    assert abs(a.meta["energy_hartree"] - b.meta["energy_hartree"]) < 1e-4


@pytest.mark.parametrize("name", BASES)
def test_cp2k_matrices_rotate_as_D_M_DT_in_the_internal_order(name):
    a, b, R, Ha, Hb, Sa, Sb = load(name)
    numbers, basis = a.structure.numbers, a.basis
    assert basis.lmax >= 2  # d shells (and f in DZVP) are what the check is about
    D = big_D(numbers, basis, R)
    s_res = np.abs(Sb - D @ Sa @ D.T).max()
    h_res = np.abs(Hb - D @ Ha @ D.T).max()
    assert s_res < TOLERANCE[name]["S"], s_res
    assert h_res < TOLERANCE[name]["H"], h_res
    # the check has teeth: reading CP2K's p shells in PySCF's order breaks it by far more
    Pa, Pb = (conventions.reorder_matrix(M, numbers, basis, "pyscf", "internal")
              for M in (Sa, Sb))
    assert np.abs(Pb - D @ Pa @ D.T).max() > 1e-2
    # and without any rotation the matrices differ: the molecule did turn
    assert np.abs(Sb - Sa).max() > 1e-2
