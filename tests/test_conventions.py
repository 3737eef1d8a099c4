"""The orbital-convention test (DESIGN.md §2): rotate real molecules, recompute H with PySCF,
and require H' = D H D^T in the internal order, D from hampart.so3 (exact integrals, 1e-8)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from e3nn import o3
from pyscf import gto, scf
from scipy.spatial.transform import Rotation

from hampart import conventions, so3
from hampart.basis import Basis
from hampart.errors import InputError


def basis_from_mol(mol) -> Basis:
    """Shells per element in PySCF's basis order (one representative atom per element)."""
    shells = {}
    for b in range(mol.nbas):
        z = int(mol.atom_charge(mol.bas_atom(b)))
        first = [a for a in range(mol.natm) if int(mol.atom_charge(a)) == z][0]
        if mol.bas_atom(b) == first:
            shells.setdefault(z, []).extend([mol.bas_angular(b)] * mol.bas_nctr(b))
    return Basis({z: tuple(ls) for z, ls in shells.items()}, name=str(mol.basis))


def rotation(seed) -> np.ndarray:
    return Rotation.random(random_state=seed).as_matrix()


def big_D(numbers, basis, R) -> np.ndarray:
    rot = torch.as_tensor(R, dtype=torch.float64)
    blocks = [so3.block_rotation(basis.shells_of(int(z)), rot).numpy() for z in numbers]
    return sp.block_diag(blocks).toarray()


def core_hamiltonian(atoms, basis_name, coords):
    mol = gto.M(atom=[(a, c) for a, c in zip(atoms, coords)], basis=basis_name, unit="Bohr",
                cart=False, verbose=0)
    return mol, mol.intor("int1e_kin") + mol.intor("int1e_nuc")


MOLECULES = {
    # O: s,p,d; H: s,p
    "H2O/cc-pvdz": (["O", "H", "H"], "cc-pvdz",
                    [[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.1, -1.43, -0.9]]),
    # N: s,p,d,f; H: s,p,d
    "NH3/cc-pvtz": (["N", "H", "H", "H"], "cc-pvtz",
                    [[0.0, 0.0, 0.0], [1.77, 0.0, 0.72], [-0.89, 1.53, 0.72],
                     [-0.85, -1.5, 0.8]]),
}


@pytest.mark.parametrize("name", sorted(MOLECULES))
def test_core_hamiltonian_rotates_as_D_H_DT(name):
    atoms, basis_name, coords = MOLECULES[name]
    coords = np.asarray(coords)
    mol, H = core_hamiltonian(atoms, basis_name, coords)
    basis = basis_from_mol(mol)
    numbers = np.array([int(mol.atom_charge(a)) for a in range(mol.natm)])
    assert basis.lmax >= 2
    for seed in (1, 2):
        R = rotation(seed)
        _, H_rot = core_hamiltonian(atoms, basis_name, coords @ R.T)
        A = conventions.reorder_matrix(H, numbers, basis, "pyscf", "internal")
        B = conventions.reorder_matrix(H_rot, numbers, basis, "pyscf", "internal")
        D = big_D(numbers, basis, R)
        assert np.abs(B - D @ A @ D.T).max() < 1e-8
        # the converted matrix is what changes the answer: without it the check must fail
        assert np.abs(H_rot - D @ H @ D.T).max() > 1e-3


def test_fock_matrix_scf_rotates():
    coords = np.array([[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.1, -1.43, -0.9]])
    R = rotation(7)
    focks = []
    for xyz in (coords, coords @ R.T):
        mol = gto.M(atom=[(a, c) for a, c in zip(["O", "H", "H"], xyz)], basis="sto-3g",
                    unit="Bohr", verbose=0)
        mf = scf.RHF(mol)
        mf.conv_tol = 1e-12
        mf.conv_tol_grad = 1e-10
        mf.kernel()
        assert mf.converged
        focks.append(mf.get_fock())
    basis = basis_from_mol(mol)
    numbers = np.array([8, 1, 1])
    A, B = (conventions.reorder_matrix(f, numbers, basis, "pyscf", "internal") for f in focks)
    D = big_D(numbers, basis, R)
    assert np.abs(B - D @ A @ D.T).max() < 1e-6


def test_pyscf_functions_equal_ours_with_signs():
    """Values on random points: PySCF's l = 0..4 functions are the e3nn harmonics of
    P r = (y, z, x) (our orbital basis) with the same positive factor per shell, after the
    PySCF -> internal permutation."""
    mol = gto.M(atom="Ne 0 0 0", basis={"Ne": [[l, [1.0, 1.0]] for l in range(5)]},
                unit="Bohr", verbose=0)
    pts = np.random.default_rng(0).normal(size=(40, 3))
    ao = mol.eval_gto("GTOval_sph", pts) / np.exp(-(pts ** 2).sum(1))[:, None]
    start = 0
    for l in range(5):
        n = 2 * l + 1
        ours = ao[:, start:start + n][:, conventions.permutation([l], "pyscf", "internal")]
        start += n
        e3nn_vals = o3.spherical_harmonics(l, torch.as_tensor(pts), normalize=False).numpy()
        expected = e3nn_vals @ so3.orbital_from_e3nn(l).numpy().T
        ratio = (ours * expected).sum(0) / (expected * expected).sum(0)
        assert np.all(ratio > 0)
        assert np.allclose(ratio, ratio[0], rtol=1e-10)
        assert np.abs(ours - ratio[0] * expected).max() < 1e-10 * np.abs(ours).max()


def test_permutation_values():
    assert conventions.permutation([1], "pyscf", "internal").tolist() == [1, 2, 0]
    assert conventions.permutation([1], "internal", "pyscf").tolist() == [2, 0, 1]
    assert conventions.permutation([0, 1, 2], "cp2k", "internal").tolist() == list(range(9))
    p = conventions.permutation([0, 1, 1, 2], "pyscf", "internal")
    assert p.tolist() == [0, 2, 3, 1, 5, 6, 4, 7, 8, 9, 10, 11]
    q = conventions.permutation([0, 1, 1, 2], "internal", "pyscf")
    assert np.array_equal(p[q], np.arange(12))


def test_reorder_round_trips_sparse_dense_and_e3nn():
    basis = Basis({8: (0, 1, 2), 1: (0, 1)})
    numbers = np.array([8, 0, 1, -8, 1, 8])  # a ghost without orbitals, one keeping O's
    n = sum(basis.n_orbitals(int(z)) for z in numbers)
    rng = np.random.default_rng(3)
    H = rng.normal(size=(n, n))
    H = H + H.T
    Hs = sp.csr_matrix(H)
    P = conventions.reorder_matrix(Hs, numbers, basis, "internal", "pyscf")
    assert sp.issparse(P)
    assert np.array_equal(P.toarray(), conventions.reorder_matrix(H, numbers, basis,
                                                                  "internal", "pyscf"))
    back = conventions.reorder_matrix(P, numbers, basis, "pyscf", "internal")
    assert np.array_equal(back.toarray(), H)
    ghost = slice(9 + 4, 9 + 4 + 9)  # the O ghost's p shell is permuted as O's
    perm = 9 + 4 + conventions.permutation((0, 1, 2), "internal", "pyscf")
    assert np.array_equal(P.toarray()[ghost, ghost], H[np.ix_(perm, perm)])
    E = conventions.reorder_matrix(H, numbers, basis, "internal", "e3nn")
    back = conventions.reorder_matrix(sp.csr_matrix(E), numbers, basis, "e3nn", "internal")
    assert np.abs(back.toarray() - H).max() < 1e-12
    # the e3nn-ordered matrix of one atom rotates with e3nn's own D
    R = torch.as_tensor(rotation(4))
    d_orb = so3.block_rotation((0, 1, 2), R).numpy()
    d_e3nn = sp.block_diag([so3.wigner_D_from_matrix(l, R).numpy() for l in (0, 1, 2)]).toarray()
    blk = H[:9, :9]
    rot_e3nn = conventions.reorder_matrix(d_orb @ blk @ d_orb.T, [8], basis, "internal", "e3nn")
    assert np.abs(rot_e3nn - d_e3nn @ conventions.reorder_matrix(blk, [8], basis, "internal",
                                                                 "e3nn") @ d_e3nn.T).max() < 1e-12


def test_bad_arguments():
    basis = Basis({8: (0, 1)})
    with pytest.raises(InputError, match="orbital order 'orca'"):
        conventions.permutation([1], "orca", "internal")
    with pytest.raises(InputError, match="not a permutation"):
        conventions.permutation([2], "e3nn", "internal")
    with pytest.raises(InputError, match="the basis gives 8 orbitals"):
        conventions.reorder_matrix(np.zeros((5, 5)), [8, 8], basis, "pyscf", "internal")
