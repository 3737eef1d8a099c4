"""Eigenvalues of H c = E S c, the band gap from an electron count, and the density of states.

Units: H, S and energies in Hartree (names ending in ``_eV``/``_meV`` say otherwise). H and S are
Gamma-point matrices in one orbital order; ``S = None`` means an orthogonal basis (S = I). S must
be symmetric positive definite, as every overlap matrix is.

Two solvers, chosen by size (``method="auto"``), either one can be forced:

* ``dense``: every eigenvalue, ``scipy.linalg.eigh(H, S)``; used up to :data:`DENSE_MAX_ORBITALS`
  orbitals (two dense n x n float64 matrices: 1 GiB at 8,000 orbitals; 864 orbitals take
  2.4 s on 2 CPU cores).
* ``sparse``: the ``k`` eigenvalues nearest an energy ``sigma``, by shift-invert Lanczos
  (``scipy.sparse.linalg.eigsh(H, M=S, sigma=...)``). Their place in the whole spectrum comes
  from Sylvester's law of inertia: the number of eigenvalues below ``sigma`` equals the number
  of negative pivots of H - sigma S = L D L^T, read off SuperLU with diagonal pivoting (see
  :func:`count_below`). Without a given ``sigma``, bisection on that count narrows an energy
  interval around the HOMO and LUMO until it holds at most k/2 states, and the window is
  centred there (:func:`energy_in_gap`). Each count or solve is one sparse LU factorisation,
  whose fill-in, not the matrix size, decides whether it fits in memory.

Closed shell: 2 electrons per state, so with N electrons the HOMO is state N/2 - 1 (from 0) and
the LUMO state N/2; an odd N has no closed-shell gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..errors import InputError

__all__ = ["DENSE_MAX_ORBITALS", "SPARSE_WINDOW", "Spectrum", "solve", "count_below",
           "energy_in_gap", "occupied_states", "band_edges", "density_of_states"]

DENSE_MAX_ORBITALS = 8000  # above this, method="auto" takes the sparse shift-invert solver
SPARSE_WINDOW = 64  # eigenvalues the sparse solver finds around sigma unless told otherwise


@dataclass(frozen=True)
class Spectrum:
    """Sorted eigenvalues (Hartree) of an n x n problem: all of them, or a window of them.

    ``first`` is the index of ``values[0]`` in the whole sorted spectrum (0 for the dense
    solver; from the inertia for the sparse one; None when it could not be counted).
    """

    values: np.ndarray
    first: int | None
    size: int
    method: str
    sigma: float | None = None

    @property
    def complete(self) -> bool:
        return self.first == 0 and len(self.values) == self.size

    def state(self, index: int) -> float | None:
        """Eigenvalue of state ``index`` (0 = lowest) if the window holds it, else None."""
        if self.first is None or not self.first <= index < self.first + len(self.values):
            return None
        return float(self.values[index - self.first])


def _dense(M) -> np.ndarray:
    return M.toarray() if sp.issparse(M) else np.asarray(M, dtype=np.float64)


def _shifted(H, S, energy):
    H = sp.csc_matrix(H)
    return (H - energy * (sp.identity(H.shape[0], format="csc") if S is None
                          else sp.csc_matrix(S))).tocsc()


def count_below(H, S, energy: float) -> int | None:
    """Number of eigenvalues of H c = E S c below ``energy`` (Sylvester's inertia of H - E S).

    SuperLU factors P (H - E S) P^T = L U with diagonal pivots only (``diag_pivot_thresh=0``,
    symmetric mode); for a symmetric matrix U = D L^T, so the negative entries of diag(U) count
    the negative eigenvalues of H - E S, which are those of (H, S) below E when S is positive
    definite. Returns None when SuperLU still pivoted off the diagonal (the count would be
    meaningless) or ``energy`` is an eigenvalue (a zero pivot)."""
    from scipy.sparse.linalg import splu

    try:
        lu = splu(_shifted(H, S, energy), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                  options={"SymmetricMode": True})
    except RuntimeError:  # exactly singular: energy is an eigenvalue
        return None
    if not np.array_equal(lu.perm_r, lu.perm_c):
        return None
    return int((lu.U.diagonal() < 0).sum())


def occupied_states(electrons, size: int, source: str = "--electrons") -> int | None:
    """Closed-shell occupied states for ``electrons`` (None if unknown or odd); checks range."""
    if electrons is None:
        return None
    if float(electrons) != int(electrons) or int(electrons) < 0:
        raise InputError(source, f"electron count {electrons} is not a whole number >= 0",
                         "give the number of valence electrons of the calculation")
    electrons = int(electrons)
    if electrons % 2 or not 0 < electrons // 2 < size:
        if electrons % 2 == 0:
            raise InputError(source, f"{electrons} electrons fill {electrons // 2} states, but "
                             f"the basis has {size}: no gap between them",
                             "give the valence electron count of this structure's calculation")
        return None
    return electrons // 2


def _count(H, S, lo, hi, fraction_first=0.5):
    """(energy, count below it) near ``lo + fraction (hi - lo)``, stepping off an eigenvalue
    hit exactly (a zero pivot); InputError when the inertia cannot be read."""
    for fraction in (fraction_first, fraction_first - 1e-4, fraction_first + 3e-4):
        energy = lo + fraction * (hi - lo)
        count = count_below(H, S, energy)
        if count is not None:
            return energy, count
    raise InputError("sparse eigenvalues", "the inertia of H - E S could not be read "
                     "(SuperLU pivoted off the diagonal)",
                     "pass --sigma ENERGY inside the gap, or --solver dense")


def energy_in_gap(H, S, n_occupied: int, window: int = 0, max_steps: int = 200) -> float:
    """An energy with exactly ``n_occupied`` eigenvalues below it (inside the HOMO-LUMO gap), by
    bisection on :func:`count_below`; with ``window`` > 0 it stops as soon as an interval holding
    the HOMO, the LUMO and at most ``window`` states in all is found, and returns its middle:
    the ``window`` eigenvalues nearest it then include HOMO and LUMO (every state of the
    interval lies closer to its middle than any state outside). Raises InputError when the
    counts cannot be read, or, with ``window`` 0, when HOMO and LUMO are degenerate."""
    size = H.shape[0]
    d = _dense_diagonal(H) / (np.ones(size) if S is None else _dense_diagonal(S))
    # widen a guess from the diagonal until it brackets the state: counts are exact anywhere
    centre = float(np.median(d))
    width = float(np.abs(d - centre).max()) + 1.0
    lo, c_lo = _count(H, S, centre - width, centre + width, 0.0)
    hi, c_hi = _count(H, S, centre - width, centre + width, 1.0)
    for _ in range(60):
        if c_lo <= n_occupied <= c_hi:
            break
        width *= 2
        if c_lo > n_occupied:
            lo, c_lo = _count(H, S, lo - width, lo, 0.0)
        else:
            hi, c_hi = _count(H, S, hi, hi + width, 1.0)
    for _ in range(max_steps):
        if c_lo == n_occupied:
            return lo
        if c_hi == n_occupied:
            return hi
        if window and c_hi - c_lo <= window:
            return 0.5 * (lo + hi)
        mid, count = _count(H, S, lo, hi)
        if count < n_occupied:
            lo, c_lo = mid, count
        else:
            hi, c_hi = mid, count
        if hi - lo < 1e-12 * max(1.0, abs(mid)):
            break
    raise InputError("sparse eigenvalues", f"no energy has exactly {n_occupied} eigenvalues below "
                     "it: the HOMO and LUMO are degenerate (no gap)",
                     "pass --sigma ENERGY to look at the spectrum around it")


def _dense_diagonal(M) -> np.ndarray:
    return np.asarray(M.diagonal(), dtype=np.float64)


def solve(H, S=None, method: str = "auto", k: int | None = None, sigma: float | None = None,
          n_occupied: int | None = None) -> Spectrum:
    """Eigenvalues of H c = E S c (Hartree).

    method: "auto" (dense up to :data:`DENSE_MAX_ORBITALS` orbitals and when ``k`` is None),
    "dense" or "sparse". The sparse solver finds the ``k`` (default :data:`SPARSE_WINDOW`)
    eigenvalues nearest ``sigma``; without ``sigma`` it needs ``n_occupied`` and looks around
    the gap (:func:`energy_in_gap`). Raises InputError if S is not positive definite."""
    size = H.shape[0]
    if method not in ("auto", "dense", "sparse"):
        raise InputError("--solver", f"unknown solver '{method}'", "use auto, dense or sparse")
    if method == "auto":
        method = "dense" if size <= DENSE_MAX_ORBITALS and k is None else "sparse"
    if method == "dense":
        try:
            values = scipy.linalg.eigh(_dense(H), None if S is None else _dense(S),
                                       eigvals_only=True)
        except np.linalg.LinAlgError as e:
            raise _not_definite(e) from None
        return Spectrum(values, 0, size, "dense")
    k = SPARSE_WINDOW if k is None else int(k)
    if not 0 < k < size - 1:
        raise InputError("--eigs", f"{k} eigenvalues of a {size} x {size} problem",
                         f"ask for 1 to {size - 2}, or use the dense solver")
    if sigma is None:
        if n_occupied is None:
            raise InputError("sparse eigenvalues", "no energy to look around: neither --sigma "
                             "nor the electron count is known",
                             "pass --sigma ENERGY (Hartree) or --electrons N")
        sigma = energy_in_gap(H, S, n_occupied, window=k // 2)
    from scipy.sparse.linalg import eigsh

    try:
        values = eigsh(sp.csc_matrix(H), k=k, M=None if S is None else sp.csc_matrix(S),
                       sigma=float(sigma), which="LM", return_eigenvectors=False)
    except (RuntimeError, np.linalg.LinAlgError) as e:
        raise _not_definite(e) from None
    values = np.sort(values)
    below = count_below(H, S, float(sigma))
    first = None if below is None else below - int((values < sigma).sum())
    return Spectrum(values, first, size, "sparse", float(sigma))


def _not_definite(e) -> InputError:
    return InputError("overlap S", f"the eigenvalue problem H c = E S c failed ({e})",
                      "S must be the symmetric positive definite overlap of the same orbitals")


def band_edges(spectrum: Spectrum, n_occupied: int | None) -> tuple[float, float] | None:
    """(HOMO, LUMO) in Hartree, or None when unknown or outside the solved window."""
    if n_occupied is None:
        return None
    homo, lumo = spectrum.state(n_occupied - 1), spectrum.state(n_occupied)
    return None if homo is None or lumo is None else (homo, lumo)


def density_of_states(values, energies, width: float) -> np.ndarray:
    """Gaussian-broadened DOS (states per unit energy, both spins not counted) of ``values`` on
    ``energies``; ``width`` is the Gaussian's standard deviation, same unit as the energies."""
    values, energies = np.asarray(values, dtype=np.float64), np.asarray(energies, dtype=np.float64)
    out = np.zeros_like(energies)
    norm = 1.0 / (width * np.sqrt(2 * np.pi))
    for chunk in np.array_split(values, max(1, len(values) // 2000)):  # bounded memory
        out += norm * np.exp(-0.5 * ((energies[:, None] - chunk[None, :]) / width) ** 2).sum(1)
    return out
