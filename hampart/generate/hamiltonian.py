"""A synthetic but physically structured Hamiltonian for any structure.

H is built in the internal orbital basis (per atom its shells in basis order, real solid
harmonics m = -l..l, z polar; Hartree) from three terms, each exactly rotation covariant.
Write r_ij = d n for the vector from atom i to atom j (Angstrom) and D^l(n) for the Wigner
matrix (orbital basis) of the rotation taking the bond frame's polar axis (e3nn's y) onto n.
The bond-frame |m| coupling of shells la and lb is

    P^{la lb}_m(n) = sum_{+-m} D^la(n)[:, la +- m] D^lb(n)[:, lb +- m]^T      (sigma, pi, delta)

* **two-centre hoppings** (Slater-Koster-like), shell a of i, shell b of j::

      H_ij[a, b] = s_ij  sum_{m=0..min(la,lb)}  h A_{Zi a, Zj b, m}  exp(-(d - 2 A) / 1.2 A) f(d)
                   P^{la lb}_m(n)

  f(d) = cos^2(pi d / 2 r_int) for d < r_int, 0 beyond: blocks vanish smoothly (value and slope)
  at the **interaction radius** r_int (default 6 Angstrom). The amplitudes obey the
  Slater-Koster parity rule A_{Zj b, Zi a, m} = (-1)^(la+lb) A_{Zi a, Zj b, m} (V_ps = -V_sp),
  which with P^{lb la}_m(-n) = (-1)^(la+lb) P^{la lb}_m(n)^T makes H_ji = H_ij^T exactly: each
  pair is evaluated once and written twice.
* **environment**: coordination numbers CN_i = sum_j c(d_ij), c(d) = 1 / (1 + exp(4 (d - r_cn)))
  (r_cn = 3.2 Angstrom) scale hoppings by s_ij = 1 + 0.3 tanh((CN_i + CN_j) / 2 CN_0 - 1)
  (CN_0 = 6) and shift on-site energies by delta_{Z,a} (CN_i - CN_0).
* **crystal field**: the node block of i gets sum_j sum_m c W_{Zi ab, Zj, m} g(d_ij)
  P^{la lb}_m(n_ij) over its neighbours (g like the hopping radial with a 1 Angstrom decay), so
  H_ii depends on the directions of the neighbours; it is symmetrised, (B + B^T) / 2.

Amplitudes depend only on (Z, shell, m) through a fixed seed, never on the structure's seed,
so all structures share one 'physics'. Ghost atoms (Z = 0, vacancies) own no orbitals and are
*absent* for H: they neither hop nor count in coordination numbers (a vacancy lowers its
neighbours' CN and so changes their blocks). A ghost keeping element Z's orbitals (-Z, as CP2K's
GHOST kinds) is a species of its own: Z's shells, on-site energies 0.5 Hartree above Z's (no
potential at the vacancy), its own hopping and crystal-field amplitudes; like the orbital-less
ghost it does not count in coordination numbers.

The graph is :func:`hampart.graph.radius_graph` at r_int. An r_int of half the smallest periodic
cell height or more is refused (InputError naming the largest safe radius), so no pair meets two
periodic images and no atom its own: every pair is one block, and H is written straight into CSR
arrays (no COO stage), rows sorted, exactly symmetric.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..basis import Basis
from ..errors import InputError
from ..graph import cell_heights, edge_vectors, radius_graph
from ..so3 import edge_angles, orbital_from_e3nn, wigner_D

__all__ = ["SyntheticParams", "synthetic_hamiltonian", "PHYSICS_SEED"]

PHYSICS_SEED = 20250713


@dataclass(frozen=True)
class SyntheticParams:
    interaction_radius: float = 6.0  # Angstrom: blocks are exactly zero beyond
    hop_scale: float = 0.15          # Hartree: h, the largest |hopping| at d = 2 Angstrom
    hop_decay: float = 1.2           # Angstrom
    field_scale: float = 0.03        # Hartree: c, crystal-field amplitude
    field_decay: float = 1.0         # Angstrom
    cn_radius: float = 3.2           # Angstrom
    cn_ref: float = 6.0
    env_strength: float = 0.3
    chunk_pairs: int = 200_000       # atom pairs per vectorised chunk (bounds memory)


@functools.lru_cache(maxsize=None)
def _draw(*key, size=None):
    """Deterministic uniform(-1, 1) numbers for an integer key (the shared 'physics'); a
    ghost's -Z is drawn as 1000 + Z (seeds are non-negative)."""
    key = [int(k) if k >= 0 else 1000 - int(k) for k in key]
    return np.random.default_rng([PHYSICS_SEED, *key]).uniform(-1.0, 1.0, size)


def _onsite(z, a, l):
    u = _draw(1, abs(z), a, size=2)
    ghost = 0.5 if z < 0 else 0.0  # no potential at a ghost: its levels lie higher
    return -0.6 + ghost + 0.25 * l + 0.15 * u[0], 0.01 * u[1]  # energy (Ha), CN slope (Ha)


def _hop_amplitudes(zi, a, la, zj, b, lb):
    """A_{Zi a, Zj b, m} for m = 0..min(la, lb), with the Slater-Koster parity under swapping."""
    mm = min(la, lb) + 1
    if (zi, a) <= (zj, b):
        return np.array([_draw(2, zi, a, zj, b, m) for m in range(mm)])
    return (-1.0) ** (la + lb) * np.array([_draw(2, zj, b, zi, a, m) for m in range(mm)])


def _field_amplitudes(zi, a, b, zj, mm):
    return np.array([_draw(3, zi, min(a, b), max(a, b), zj, m) for m in range(mm)])


def _smooth_cut(d, r):
    return torch.where(d < r, torch.cos(0.5 * torch.pi * d / r) ** 2, torch.zeros_like(d))


class _Projectors:
    """P^{la lb}_m of a batch of bonds, stacked over m ``(k, 2la+1, 2lb+1, m)``, made once."""

    def __init__(self, D):
        self.D, self.cache = D, {}

    def block(self, la, lb, amps):
        """sum_m amps[m] P^{la lb}_m ``(k, 2la+1, 2lb+1)``."""
        if (la, lb) not in self.cache:
            Da, Db, terms = self.D[la], self.D[lb], []
            for m in range(min(la, lb) + 1):
                t = Da[:, :, la + m, None] * Db[:, None, :, lb + m]
                if m:
                    t = t + Da[:, :, la - m, None] * Db[:, None, :, lb - m]
                terms.append(t)
            self.cache[(la, lb)] = torch.stack(terms, dim=-1)
        return self.cache[(la, lb)] @ torch.as_tensor(amps, dtype=torch.float64)


def _csr_layout(numbers, counts, i, j):
    """CSR row pointers and, per block, the column where it starts inside its rows.

    Blocks are (i, j) and (j, i) for every pair and (k, k) for every real atom; columns in a row
    are sorted. Returns indptr ``(n_orb + 1,)``, the column starts of the (i, j) and (j, i)
    blocks ``(m,)`` and of the (k, k) blocks ``(n,)`` (offsets inside a row, not columns).
    """
    n = len(numbers)
    atoms = np.flatnonzero(numbers != 0)
    row = np.concatenate([i, j, atoms])
    col = np.concatenate([j, i, atoms])
    order = np.argsort(row * n + col)
    width = counts[col[order]]
    row_len = np.bincount(row, weights=counts[col], minlength=n).astype(np.int64)
    row_base = np.concatenate([[0], np.cumsum(row_len)[:-1]])
    start_sorted = np.cumsum(width) - width - row_base[row[order]]
    start = np.empty_like(start_sorted)
    start[order] = start_sorted
    indptr = np.concatenate([[0], np.cumsum(np.repeat(row_len, counts))]).astype(np.int64)
    m = len(i)
    start_self = np.zeros(n, dtype=np.int64)
    start_self[atoms] = start[2 * m:]
    return indptr, start[:m], start[m:2 * m], start_self


def synthetic_hamiltonian(structure, basis: Basis, params: SyntheticParams | None = None,
                          return_info: bool = False):
    """H (``scipy.sparse.csr_matrix``, Hartree) of ``structure`` in ``basis``; see module doc.

    ``structure`` needs numbers ``(n,)``, positions ``(n, 3)`` Angstrom, cell ``(3, 3)``, pbc.
    Raises InputError for elements the basis lacks, overlapping atoms, or an interaction radius
    that reaches a second periodic image. ``return_info`` adds a dict (radius, pairs, mean CN).
    """
    threads = torch.get_num_threads()
    if len(structure.numbers) < 2000:  # thread start-up costs more than small batches gain
        torch.set_num_threads(1)
    try:
        return _synthetic_hamiltonian(structure, basis, params or SyntheticParams(), return_info)
    finally:
        torch.set_num_threads(threads)


def _synthetic_hamiltonian(structure, basis, p, return_info):
    numbers = np.asarray(structure.numbers, dtype=np.int64)
    source = getattr(structure, "source", "") or "structure"
    basis.check(numbers, source=source)
    pbc = np.broadcast_to(np.asarray(structure.pbc, dtype=bool), (3,))
    if pbc.any() and abs(np.linalg.det(np.asarray(structure.cell, dtype=np.float64))) > 1e-8:
        safe = 0.5 * float(cell_heights(structure.cell)[pbc].min())
        if p.interaction_radius >= safe:
            raise InputError(
                source, f"interaction radius {p.interaction_radius} Angstrom is not below half the "
                f"cell height ({safe:.3f} Angstrom): a pair would meet two periodic images",
                f"use --interaction-radius (interaction_radius=) below {safe:.3f}, or a larger "
                f"cell (--size / --atoms)")
    graph = radius_graph(structure.positions, structure.cell, structure.pbc,
                         p.interaction_radius, source=source)
    j, i = graph.edge_index
    # one direction per pair: the lower species (then lower index) is i
    keep = (numbers[i] != 0) & (numbers[j] != 0) & (
        (numbers[i] < numbers[j]) | ((numbers[i] == numbers[j]) & (i < j)))
    i, j, shift = i[keep], j[keep], graph.edge_shift[keep]
    del graph, keep
    vec_all = torch.as_tensor(edge_vectors(np.asarray(structure.positions, dtype=np.float64),
                                           np.asarray(structure.cell, dtype=np.float64),
                                           np.stack([j, i]), shift))
    d_all = vec_all.norm(dim=1)
    n = len(numbers)
    bond_cn = torch.sigmoid(-4.0 * (d_all - p.cn_radius)).numpy()
    bond_cn = bond_cn * ((numbers[i] > 0) & (numbers[j] > 0))  # ghosts are no neighbours
    cn = np.bincount(i, bond_cn, minlength=n) + np.bincount(j, bond_cn, minlength=n)

    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    indptr, start_ij, start_ji, start_self = _csr_layout(numbers, counts, i, j)
    nnz, size = int(indptr[-1]), int(offsets[-1])
    index_dtype = np.int32 if max(nnz, size) < 2**31 - 1 else np.int64  # halves index memory
    data = np.empty(nnz, dtype=np.float64)
    indices = np.empty(nnz, dtype=index_dtype)

    lmax = basis.lmax
    q = [orbital_from_e3nn(l) for l in range(lmax + 1)]
    species = [z for z in basis.orbital_species if (numbers == z).any()]  # ghosts -Z included
    shells = {z: [(a, l, int(sum(2 * x + 1 for x in basis.shells_of(z)[:a])))
                  for a, l in enumerate(basis.shells_of(z))] for z in species}

    def write(rows_first, cols_first, col_start, block):
        """Blocks ``(k, nr, nc)``: rows rows_first + r, columns cols_first + c, whose first
        column sits col_start entries into each row."""
        k, nr, nc = block.shape
        pos = (indptr[rows_first[:, None] + np.arange(nr)][:, :, None]
               + col_start[:, None, None] + np.arange(nc))
        data[pos] = block.numpy()
        indices[pos] = (cols_first[:, None, None] + np.arange(nc)).astype(index_dtype)

    node_field = {z: torch.zeros(int((numbers == z).sum()), basis.n_orbitals(z),
                                 basis.n_orbitals(z), dtype=torch.float64)
                  for z in species}
    local_index = np.zeros(n, dtype=np.int64)  # index of an atom among its species
    for z in species:
        local_index[numbers == z] = np.arange(int((numbers == z).sum()))

    for first in range(0, len(i), p.chunk_pairs):
        sl = slice(first, first + p.chunk_pairs)
        ic, jc, vec, d = i[sl], j[sl], vec_all[sl], d_all[sl]
        alpha, beta = edge_angles(vec)
        D = [q[l] @ wigner_D(l, alpha, beta) for l in range(lmax + 1)]  # orbital basis
        env = 1.0 + p.env_strength * torch.tanh(
            torch.as_tensor(0.5 * (cn[ic] + cn[jc]) / p.cn_ref - 1.0))
        cut = _smooth_cut(d, p.interaction_radius)
        radial_hop = p.hop_scale * torch.exp(-(d - 2.0) / p.hop_decay) * cut * env
        radial_field = p.field_scale * torch.exp(-(d - 2.0) / p.field_decay) * cut
        zi_c, zj_c = numbers[ic], numbers[jc]
        for zi in species:
            for zj in species:
                if zj < zi:
                    continue
                sel_np = np.flatnonzero((zi_c == zi) & (zj_c == zj))
                if sel_np.size == 0:
                    continue
                sel = torch.as_tensor(sel_np)
                proj = _Projectors([x[sel] for x in D])
                k = sel_np.size
                ii, jj = ic[sel_np], jc[sel_np]
                hop = torch.empty(k, counts[ii[0]], counts[jj[0]], dtype=torch.float64)
                for a, la, oa in shells[zi]:
                    for b, lb, ob in shells[zj]:
                        hop[:, oa:oa + 2 * la + 1, ob:ob + 2 * lb + 1] = proj.block(
                            la, lb, _hop_amplitudes(zi, a, la, zj, b, lb))
                hop *= radial_hop[sel][:, None, None]
                # H_ij, and H_ji = its transpose
                write(offsets[ii], offsets[jj], start_ij[sl][sel_np], hop)
                write(offsets[jj], offsets[ii], start_ji[sl][sel_np], hop.transpose(1, 2))
                del hop
                for z_recv, z_send, recv, sign_n in ((zi, zj, ii, 1.0), (zj, zi, jj, -1.0)):
                    # crystal field on the receiver from the sender's direction (n or -n)
                    no = int(counts[recv[0]])
                    field = torch.empty(k, no, no, dtype=torch.float64)
                    for a, la, oa in shells[z_recv]:
                        for b, lb, ob in shells[z_recv][a:]:
                            f = proj.block(la, lb, sign_n ** (la + lb) * _field_amplitudes(
                                z_recv, a, b, z_send, min(la, lb) + 1))
                            field[:, oa:oa + 2 * la + 1, ob:ob + 2 * lb + 1] = f
                            field[:, ob:ob + 2 * lb + 1, oa:oa + 2 * la + 1] = f.transpose(1, 2)
                    field *= radial_field[sel][:, None, None]
                    node_field[z_recv].index_add_(0, torch.as_tensor(local_index[recv]), field)
                del proj
        del D

    for z in species:
        atoms = np.flatnonzero(numbers == z)
        block = node_field[z]
        block = 0.5 * (block + block.transpose(1, 2))  # exactly symmetric node blocks
        for a, l, o in shells[z]:
            eps, slope = _onsite(z, a, l)
            idx = torch.arange(o, o + 2 * l + 1)
            block[:, idx, idx] += torch.as_tensor(eps + slope * (cn[atoms] - p.cn_ref))[:, None]
        write(offsets[atoms], offsets[atoms], start_self[atoms], block)

    H = sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=(size, size))
    H.has_sorted_indices = True
    if return_info:
        real = numbers > 0
        return H, {"interaction_radius": p.interaction_radius, "n_pairs": int(len(i)),
                   "mean_cn": float(cn[real].mean()) if real.any() else 0.0}
    return H
