import numpy as np
import pytest
import scipy.sparse as sp

from hampart.basis import load_basis
from hampart.errors import InputError
from hampart.evaluate.metrics import HARTREE_EV, eigenvalue_errors
from hampart.evaluate.spectrum import (Spectrum, band_edges, count_below, density_of_states,
                                       energy_in_gap, occupied_states, solve)
from hampart.generate import SyntheticParams, make_structure, synthetic_hamiltonian


@pytest.fixture(scope="module")
def si_hamiltonian():
    """64 Si atoms, 256 orbitals: the synthetic (orthogonal) H."""
    s = make_structure("si", seed=1, size=(2, 2, 2))
    return synthetic_hamiltonian(s, load_basis("SZV"), SyntheticParams(interaction_radius=4.0))


def test_relative_l1_and_mae_are_the_papers_formulas():
    ref = np.array([-2.0, -1.0, 0.5, 3.0])
    pred = np.array([-2.1, -0.9, 0.5, 2.8])
    err = eigenvalue_errors(pred[::-1], ref)  # compared sorted
    assert err["eig_l1_percent"] == pytest.approx(100 * 0.4 / 6.5, rel=1e-12)
    assert err["eig_mae_meV"] == pytest.approx(1e3 * HARTREE_EV * 0.1, rel=1e-12)
    assert err["eig_max_meV"] == pytest.approx(1e3 * HARTREE_EV * 0.2, rel=1e-12)
    assert err["n_eigenvalues"] == 4
    # windows are matched by state index: only states 2..3 are in both
    a = Spectrum(np.array([0.4, 3.1, 5.0]), 2, 10, "sparse", 1.0)
    b = Spectrum(np.array([-1.0, 0.5, 3.0]), 1, 10, "sparse", 1.0)
    err = eigenvalue_errors(a, b)
    assert err["n_eigenvalues"] == 2
    assert err["eig_l1_percent"] == pytest.approx(100 * 0.2 / 3.5, rel=1e-12)
    with pytest.raises(InputError, match="do not overlap"):
        eigenvalue_errors(Spectrum(np.ones(2), 5, 10, "sparse"), b)


def test_a_common_shift_is_reported_apart_and_removed_by_the_aligned_errors():
    # a cell's energy zero is its own mean potential: a common shift moves every eigenvalue
    ref = np.array([-2.0, -1.0, 0.5, 3.0])
    noise = np.array([0.01, -0.02, 0.0, 0.0])
    err = eigenvalue_errors(ref + 0.1 + noise, ref)
    assert err["eig_shift_meV"] == pytest.approx(1e3 * HARTREE_EV * 0.1, rel=1e-12)  # median
    assert err["eig_mae_aligned_meV"] == pytest.approx(1e3 * HARTREE_EV * 0.0075, rel=1e-12)
    assert err["eig_l1_aligned_percent"] == pytest.approx(100 * 0.03 / 6.5, rel=1e-12)
    assert err["eig_l1_percent"] == pytest.approx(100 * (0.11 + 0.08 + 0.1 + 0.1) / 6.5)
    # the median is the shift that leaves the least: never more than without it
    skewed = eigenvalue_errors(ref + np.array([0.0, 0.0, 0.0, 0.5]), ref)
    assert skewed["eig_shift_meV"] == 0.0
    assert skewed["eig_l1_aligned_percent"] == pytest.approx(skewed["eig_l1_percent"])


def test_gap_from_the_electron_count_closed_shell():
    H = sp.diags([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]).tocsr()
    spectrum = solve(H)
    n_occ = occupied_states(6, 6)
    assert n_occ == 3 and band_edges(spectrum, n_occ) == (-1.0, 1.0)
    assert band_edges(spectrum, occupied_states(2, 6)) == (-3.0, -2.0)
    assert occupied_states(5, 6) is None  # odd: no closed-shell gap
    assert occupied_states(None, 6) is None
    with pytest.raises(InputError, match="12 electrons fill 6 states"):
        occupied_states(12, 6)
    assert energy_in_gap(H, None, 3) == pytest.approx(0.0, abs=1.0)  # between -1 and 1
    assert -1.0 < energy_in_gap(H, None, 3) < 1.0
    with pytest.raises(InputError, match="degenerate"):
        energy_in_gap(sp.identity(4, format="csr"), None, 2)
    # degenerate HOMO and LUMO: a window around both still exists
    pair = sp.diags([-3.0, -2.0, 0.0, 0.0, 2.0, 3.0]).tocsr()
    assert -2.0 < energy_in_gap(pair, None, 3, window=2) < 2.0


def test_generalised_eigenvalues_are_not_the_orthogonal_ones(si_hamiltonian, synthetic_overlap):
    H = si_hamiltonian
    S = synthetic_overlap(H)
    got = solve(H, S).values
    L = np.linalg.cholesky(S.toarray())
    Linv = np.linalg.inv(L)
    want = np.linalg.eigvalsh(Linv @ H.toarray() @ Linv.T)  # L^-1 H L^-T c' = E c'
    assert np.abs(got - want).max() < 1e-10
    assert np.abs(got - np.linalg.eigvalsh(H.toarray())).max() > 1e-2  # S matters
    # S = I gives the orthogonal problem exactly
    assert np.abs(solve(H, sp.identity(H.shape[0])).values - solve(H).values).max() < 1e-12
    with pytest.raises(InputError, match="positive definite"):
        solve(H, S - 2 * sp.identity(H.shape[0]))


def test_shift_invert_window_agrees_with_dense_near_the_gap(si_hamiltonian, synthetic_overlap):
    H = si_hamiltonian
    S = synthetic_overlap(H, seed=1)
    dense = solve(H, S).values
    for energy in (dense[20] + 1e-6, 0.5 * (dense[127] + dense[128]), dense[-3] - 1e-6):
        assert count_below(H, S, energy) == int((dense < energy).sum())
    n_occ = 128  # 256 electrons in 256 orbitals: half filling
    assert dense[n_occ] - dense[n_occ - 1] > 1e-6  # a (small) gap to place the window in
    window = solve(H, S, method="sparse", k=16, n_occupied=n_occ)
    assert window.method == "sparse" and window.first is not None
    assert window.first <= n_occ - 1 and n_occ < window.first + 16  # HOMO and LUMO inside
    assert count_below(H, S, energy_in_gap(H, S, n_occ)) == n_occ  # without a window: in the gap
    assert np.abs(window.values - dense[window.first:window.first + 16]).max() < 1e-8
    assert band_edges(window, n_occ) == pytest.approx(band_edges(solve(H, S), n_occ), abs=1e-8)
    # a given energy instead of the gap
    at = solve(H, S, method="sparse", k=10, sigma=float(dense[40]) + 1e-5)
    assert np.abs(at.values - dense[at.first:at.first + 10]).max() < 1e-8
    assert at.first <= 40 < at.first + 10
    with pytest.raises(InputError, match="--electrons"):
        solve(H, S, method="sparse", k=10)
    # auto: dense at this size, sparse when a window is asked for
    assert solve(H, S).method == "dense" and solve(H, S, k=8, sigma=0.0).method == "sparse"


def test_density_of_states_counts_every_state():
    values = np.array([-1.0, 0.0, 0.0, 2.0])
    grid = np.linspace(-3, 4, 7001)
    dos = density_of_states(values, grid, 0.1)
    assert dos.sum() * (grid[1] - grid[0]) == pytest.approx(4.0, rel=1e-6)
    assert dos[np.argmin(abs(grid))] == pytest.approx(2 / (0.1 * np.sqrt(2 * np.pi)), rel=1e-6)


def test_real_cp2k_block_inertia_and_window_agree_with_dense():
    """H and S of 32 neighbouring Si atoms (128 orbitals) cut from a real CP2K calculation of
    amorphous Si (asi216-b: 216 atoms, SZV-MOLOPT-SR-GTH, PBE, Gamma point; the 32 atoms nearest
    atom 0, their principal blocks of H and S): a real overlap, far from diagonally dominant."""
    from pathlib import Path

    with np.load(Path(__file__).parent.parent / "data" / "cp2k_si32_block.npz",
                 allow_pickle=False) as data:
        H, S = sp.csr_matrix(data["H"]), sp.csr_matrix(data["S"])
    assert H.shape == S.shape == (128, 128)
    off = abs(S - sp.diags(S.diagonal())).sum(axis=1).max()
    assert off > 2 * S.diagonal().max()  # Gershgorin says nothing: a genuine test of the solver
    dense = solve(H, S).values
    assert np.abs(dense - np.linalg.eigvalsh(H.toarray())).max() > 0.1  # S matters, by Hartrees
    for index in (5, 63, 100):
        energy = 0.5 * (dense[index] + dense[index + 1])
        assert count_below(H, S, energy) == index + 1
    window = solve(H, S, method="sparse", k=16, n_occupied=64)  # 32 Si x 4 electrons
    assert np.abs(window.values - dense[window.first:window.first + 16]).max() < 1e-8
    assert band_edges(window, 64) == pytest.approx((dense[63], dense[64]), abs=1e-8)
