import numpy as np
import pytest
import torch

from hampart.basis import load_basis
from hampart.errors import InputError
from hampart.generate import SyntheticParams, make_structure, synthetic_hamiltonian
from hampart.io.structure import Structure
from hampart.so3 import block_rotation
from hampart.testing import OrbitalBlocks, assert_equivariant, random_rotation

BASIS = load_basis("SZV")
PARAMS = SyntheticParams(interaction_radius=4.5)


@pytest.fixture(scope="module")
def small():
    s = make_structure("hfo2", seed=2, size=(2, 2, 2), vacancies=0.05)
    return s, synthetic_hamiltonian(s, BASIS, PARAMS)


def test_exactly_symmetric_and_physical_range(small):
    _, H = small
    assert abs(H - H.T).max() == 0.0
    ev = np.linalg.eigvalsh(H.toarray())
    assert -3.0 < ev.min() < ev.max() < 2.0


def test_rotation_rotates_every_block(small):
    """H of the rotated structure is D H D^T, D over every atom's shells (ghosts own none)."""
    s, H = small
    shells = tuple(l for z in s.numbers if z > 0 for l in BASIS.shells_of(int(z)))

    def hamiltonian(positions, cell):
        rotated = Structure(s.numbers, positions.numpy(), cell.numpy(), s.pbc)
        return torch.as_tensor(synthetic_hamiltonian(rotated, BASIS, PARAMS).toarray())

    args = [torch.as_tensor(s.positions), torch.as_tensor(s.cell)]
    assert_equivariant(hamiltonian, args, ["cartesian", "cartesian"], [OrbitalBlocks(shells)],
                       tolerance=1e-12)
    R = random_rotation(0)
    H2 = hamiltonian(*(a @ R.T for a in args)).numpy()
    assert np.abs(np.linalg.eigvalsh(H2) - np.linalg.eigvalsh(H.toarray())).max() < 1e-12
    assert np.abs(H2 - H.toarray()).max() > 1e-3  # the rotation did change the blocks


def test_permuting_atoms_keeps_eigenvalues(small):
    s, H = small
    perm = np.random.default_rng(1).permutation(s.n_atoms)
    Hp = synthetic_hamiltonian(Structure(s.numbers[perm], s.positions[perm], s.cell, s.pbc),
                               BASIS, PARAMS)
    assert np.abs(np.linalg.eigvalsh(Hp.toarray()) - np.linalg.eigvalsh(H.toarray())).max() < 1e-12


def test_blocks_vanish_smoothly_at_the_interaction_radius():
    cell = np.eye(3) * 30.0
    values = []
    for d in (4.0, 4.4, 4.49, 4.499, 4.5, 4.6):
        s = Structure([8, 8], [[5.0, 5.0, 5.0], [5.0 + d, 5.0, 5.0]], cell, True)
        values.append(np.abs(synthetic_hamiltonian(s, BASIS, PARAMS).toarray()[:4, 4:]).max())
    assert values[0] > values[1] > values[2] > values[3] > 0
    assert values[3] < 1e-5 * values[0]  # continuous at the radius (cos^2 goes like delta^2)
    assert values[4] == 0.0 and values[5] == 0.0


def test_same_seed_same_H_and_different_seed_different():
    a, b, c = (synthetic_hamiltonian(make_structure("si", seed=k, size=(2, 2, 2)), BASIS, PARAMS)
               for k in (0, 0, 1))
    assert (a != b).nnz == 0
    assert abs(a - c).max() > 1e-3


def test_environment_dependence_needs_message_passing():
    """Moving a third atom changes the block between two others (and their on-site blocks)."""
    cell = np.eye(3) * 30.0
    base = [[10.0, 10.0, 10.0], [12.2, 10.0, 10.0]]
    H1 = synthetic_hamiltonian(Structure([72, 8, 8], base + [[10.0, 12.0, 10.0]], cell, True),
                               BASIS, PARAMS).toarray()
    H2 = synthetic_hamiltonian(Structure([72, 8, 8], base + [[10.0, 10.0, 12.0]], cell, True),
                               BASIS, PARAMS).toarray()
    H3 = synthetic_hamiltonian(Structure([72, 8, 8], base + [[10.0, 14.5, 10.0]], cell, True),
                               BASIS, PARAMS).toarray()
    hop = (slice(0, 10), slice(10, 14))
    assert np.abs(H1[hop] - H3[hop]).max() > 1e-4  # third atom's distance (coordination)
    assert np.abs(H1[:10, :10] - H2[:10, :10]).max() > 1e-4  # its direction (crystal field)


def test_ghosts_own_no_orbitals_and_lower_coordination():
    s = make_structure("hfo2", seed=2, size=(2, 2, 2))
    numbers = s.numbers.copy()
    ghost = np.flatnonzero(numbers == 8)[0]
    numbers[ghost] = 0
    H = synthetic_hamiltonian(Structure(numbers, s.positions, s.cell, s.pbc), BASIS, PARAMS)
    assert H.shape[0] == BASIS.orbital_offsets(numbers)[-1] == 32 * 10 + 63 * 4
    # a ghost is absent for H: the same as removing the atom (the orbital order is unchanged)
    keep = np.arange(s.n_atoms) != ghost
    removed = synthetic_hamiltonian(Structure(s.numbers[keep], s.positions[keep], s.cell, s.pbc),
                                    BASIS, PARAMS)
    assert np.abs(H.toarray() - removed.toarray()).max() < 1e-14
    # ... and it changes its neighbours' blocks: the nearest Hf's on-site block moves
    full = synthetic_hamiltonian(s, BASIS, PARAMS).toarray()
    frac = (s.positions - s.positions[ghost]) @ np.linalg.inv(s.cell)
    d = np.linalg.norm((frac - np.round(frac)) @ s.cell, axis=1)  # minimum image
    hf = np.flatnonzero(numbers == 72)[np.argmin(d[numbers == 72])]
    o_new, o_old = BASIS.orbital_offsets(numbers)[hf], BASIS.orbital_offsets(s.numbers)[hf]
    assert np.abs(H.toarray()[o_new:o_new + 10, o_new:o_new + 10]
                  - full[o_old:o_old + 10, o_old:o_old + 10]).max() > 1e-3


def test_ghosts_keeping_orbitals_are_a_species_with_rows_in_h():
    s = make_structure("hfo2", seed=2, size=(2, 2, 2), vacancies=0.05, vacancy_orbitals=True)
    plain = make_structure("hfo2", seed=2, size=(2, 2, 2), vacancies=0.05)
    ghosts = np.flatnonzero(s.numbers < 0)
    assert len(ghosts) == 3 and np.array_equal(np.flatnonzero(plain.numbers == 0), ghosts)
    assert (s.numbers[ghosts] == -8).all() and np.array_equal(s.positions, plain.positions)
    H = synthetic_hamiltonian(s, BASIS, PARAMS)
    A = H.toarray()
    off = BASIS.orbital_offsets(s.numbers)[:-1]
    assert A.shape[0] == 32 * 10 + 64 * 4 and abs(H - H.T).max() == 0.0
    g = off[ghosts[0]]
    assert np.abs(A[g:g + 4, :g]).max() > 1e-3  # hops to its neighbours
    # levels 0.5 Eh above an O's on average (no potential), not an O
    o = off[s.numbers == 8]
    assert 0.3 < A[off[ghosts], off[ghosts]].mean() - A[o, o].mean() < 0.7
    # the real atoms see the ghost as the orbital-less one in their coordination: on-site
    # blocks of a Hf far from every ghost are the same as with Z = 0 ghosts
    B = synthetic_hamiltonian(plain, BASIS, PARAMS).toarray()
    off_p = BASIS.orbital_offsets(plain.numbers)[:-1]
    frac = (s.positions[:, None] - s.positions[ghosts][None]) @ np.linalg.inv(s.cell)
    far = np.linalg.norm((frac - np.round(frac)) @ s.cell, axis=2).min(1) > PARAMS.interaction_radius
    hf = np.flatnonzero(far & (s.numbers == 72))[0]
    assert np.abs(A[off[hf]:off[hf] + 10, off[hf]:off[hf] + 10]
                  - B[off_p[hf]:off_p[hf] + 10, off_p[hf]:off_p[hf] + 10]).max() < 1e-14
    # exactly rotation covariant, ghost blocks included
    R = random_rotation(1).numpy()
    H2 = synthetic_hamiltonian(Structure(s.numbers, s.positions @ R.T, s.cell @ R.T, s.pbc),
                               BASIS, PARAMS).toarray()
    D = torch.block_diag(*[block_rotation(BASIS.shells_of(int(z)), torch.tensor(R))
                           for z in s.numbers if z]).numpy()
    assert np.abs(D @ A @ D.T - H2).max() < 1e-12


def test_refuses_radius_beyond_half_the_cell():
    s = make_structure("hfo2", seed=0, size=(2, 2, 2))
    with pytest.raises(InputError, match="below 5.2"):
        synthetic_hamiltonian(s, BASIS)  # default radius 6 > 5.2 = half the 10.5 A cell


def _dimer(z1, z2, vec):
    cell = np.eye(3) * 30.0
    return Structure([z1, z2], [[10.0, 10.0, 10.0], list(10.0 + np.asarray(vec))], cell, True)


def test_every_shell_pair_hops_with_slater_koster_parity():
    """s-p and p-d hoppings exist and flip sign with the bond direction (V_ps = -V_sp)."""
    vec = np.array([1.3, 0.9, -0.5])
    H = synthetic_hamiltonian(_dimer(72, 8, vec), BASIS, PARAMS).toarray()
    hop = H[:10, 10:]  # Hf shells s, s, p, d (0, 1, 2:5, 5:10) x O shells s, p (0, 1:4)
    for rows in (slice(0, 1), slice(1, 2), slice(2, 5), slice(5, 10)):
        for cols in (slice(0, 1), slice(1, 4)):
            assert np.abs(hop[rows, cols]).max() > 1e-3
    # O-O: H_ij[p, s] = -H_ij[s, p]^T and H_ij[p, p] = H_ij[p, p]^T (same species both ends)
    oo = synthetic_hamiltonian(_dimer(8, 8, vec), BASIS, PARAMS).toarray()[:4, 4:]
    assert np.abs(oo[1:, 0] + oo[0, 1:]).max() < 1e-14 and np.abs(oo[0, 1:]).max() > 1e-3
    assert np.abs(oo[1:, 1:] - oo[1:, 1:].T).max() < 1e-14
    # swapping which atom is first relabels the same pair: H is the same up to the permutation
    Hs = synthetic_hamiltonian(Structure([8, 72], [[10.0, 10.0, 10.0], list(10 + vec)],
                                         np.eye(3) * 30.0, True), BASIS, PARAMS).toarray()
    Hr = synthetic_hamiltonian(Structure([72, 8], [list(10 + vec), [10.0, 10.0, 10.0]],
                                         np.eye(3) * 30.0, True), BASIS, PARAMS).toarray()
    perm = np.r_[4:14, 0:4]
    assert np.abs(Hs[np.ix_(perm, perm)] - Hr).max() < 1e-14


def test_hoppings_decay_with_distance_in_a_physical_range():
    near = synthetic_hamiltonian(_dimer(72, 8, [2.1, 0, 0]), BASIS, PARAMS).toarray()
    far = synthetic_hamiltonian(_dimer(72, 8, [3.5, 0, 0]), BASIS, PARAMS).toarray()
    assert 0.02 < np.abs(near[:10, 10:]).max() < 0.3
    assert np.abs(far[:10, 10:]).max() < 0.5 * np.abs(near[:10, 10:]).max()
    onsite = np.diag(near)
    assert (-1.2 < onsite).all() and (onsite < 0.5).all()
