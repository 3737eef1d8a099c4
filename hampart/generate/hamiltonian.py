"""A synthetic but physically structured Hamiltonian for any structure.

H is built in the internal orbital basis (per atom its shells in basis order, real solid
harmonics m = -l..l, z polar; Hartree) from three terms, each exactly rotation covariant:

* **two-centre hoppings** (Slater-Koster-like). For the edge j -> i with r_ij = d n and shells
  a of i, b of j::

      H_ij[a, b] = s_ij  sum_{m=0..min(la,lb)}  V_{ab m}(d)  P^{la lb}_m(n)
      V_{ab m}(d) = A_{Zi a, Zj b, m} exp(-(d - 2 A) / 1.2 A) f(d)

  where P_m(n) = sum_{+-m} D^la(n)[:, la +- m] D^lb(n)[:, lb +- m]^T is the bond-frame
  projector on |m| (D(n) rotates the bond frame, y polar, onto n; orbital basis), and
  f(d) = cos^2(pi d / 2 r_int) for d < r_int, 0 beyond: blocks vanish smoothly at the
  **interaction radius** r_int (default 6 Angstrom).
* **environment**: coordination numbers CN_i = sum_j c(d_ij) with c(d) = 1 / (1 + exp(4 (d - r_cn)))
  (r_cn = 3.2 Angstrom, smooth) scale hoppings by s_ij = 1 + 0.3 tanh((CN_i + CN_j) / 2 CN_0 - 1)
  (CN_0 = 6) and shift on-site energies by delta_{Z,a} (CN_i - CN_0).
* **crystal field**: node block of i gets sum_j W_{Zi ab, Zj, m} g(d_ij) P^{la lb}_m(n_ij)
  over its neighbours (g like V with a 1 Angstrom decay), so H_ii depends on the directions
  of the neighbours: message passing is needed to predict it.

Amplitudes depend only on (Z, shell, m) through a fixed seed, never on the structure's seed,
so all structures share one 'physics'. Every directed edge is evaluated and
H = (P + P^T) / 2 is assembled, so H is exactly symmetric and invariant under permutations of
the atoms. Ghost atoms (Z = 0, vacancies) own no orbitals and are *absent* for H: they neither
hop nor count in coordination numbers (a vacancy lowers its neighbours' CN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..basis import Basis
from ..errors import InputError
from ..graph import radius_graph
from ..so3 import edge_angles, orbital_from_e3nn, wigner_D

__all__ = ["SyntheticParams", "synthetic_hamiltonian", "PHYSICS_SEED"]

PHYSICS_SEED = 20250713


@dataclass(frozen=True)
class SyntheticParams:
    interaction_radius: float = 6.0  # Angstrom: blocks are exactly zero beyond
    hop_scale: float = 0.15          # Hartree: typical |A| at d = 2 Angstrom
    hop_decay: float = 1.2           # Angstrom
    field_scale: float = 0.03        # Hartree: crystal-field amplitude
    field_decay: float = 1.0         # Angstrom
    cn_radius: float = 3.2           # Angstrom
    cn_ref: float = 6.0
    env_strength: float = 0.3
    chunk_edges: int = 500_000       # edges per vectorised chunk (bounds memory)


def _draw(*key, size=None):
    """Deterministic uniform(-1, 1) numbers for an integer key (the shared 'physics')."""
    return np.random.default_rng([PHYSICS_SEED, *[int(k) for k in key]]).uniform(-1.0, 1.0, size)


def _onsite(z, a, l):
    u = _draw(1, z, a, size=2)
    return -0.6 + 0.25 * l + 0.15 * u[0], 0.01 * u[1]  # energy (Ha), CN slope (Ha per neighbour)


def _hop_amplitude(zi, a, zj, b, m):
    # symmetric in the pair key so that swapping the two atoms' roles is a pure transpose
    key = sorted([(zi, a), (zj, b)])
    return _draw(2, *key[0], *key[1], m)


def _field_amplitude(zi, a, b, zj, m):
    return _draw(3, zi, min(a, b), max(a, b), zj, m)


def _smooth_cut(d, r):
    return torch.where(d < r, torch.cos(0.5 * torch.pi * d / r) ** 2, torch.zeros_like(d))


def _projector(Dla, Dlb, la, lb, m):
    """P_m ``(k, 2la+1, 2lb+1)`` from per-edge orbital-basis Wigner matrices."""
    out = Dla[:, :, la + m, None] * Dlb[:, None, :, lb + m]
    if m:
        out = out + Dla[:, :, la - m, None] * Dlb[:, None, :, lb - m]
    return out


def synthetic_hamiltonian(structure, basis: Basis, params: SyntheticParams | None = None,
                          return_info: bool = False):
    """H (``scipy.sparse.csr_matrix``, Hartree) of ``structure`` in ``basis``; see module doc."""
    p = params or SyntheticParams()
    numbers = np.asarray(structure.numbers, dtype=np.int64)
    source = getattr(structure, "source", "") or "structure"
    basis.check(numbers, source=source)
    graph = radius_graph(structure.positions, structure.cell, structure.pbc,
                         p.interaction_radius, source=source)
    j_all, i_all = graph.edge_index
    real = numbers > 0
    keep = real[i_all] & real[j_all]
    j_all, i_all, shift = j_all[keep], i_all[keep], graph.edge_shift[keep]
    pos = torch.as_tensor(structure.positions, dtype=torch.float64)
    cell = torch.as_tensor(np.asarray(structure.cell), dtype=torch.float64)
    vec_all = pos[j_all] + torch.as_tensor(shift, dtype=torch.float64) @ cell - pos[i_all]
    d_all = vec_all.norm(dim=1)

    n = len(numbers)
    cn = torch.zeros(n, dtype=torch.float64).index_add_(
        0, torch.as_tensor(i_all), torch.sigmoid(-4.0 * (d_all - p.cn_radius)))
    offsets = basis.orbital_offsets(numbers)
    index_dtype = np.int32 if offsets[-1] < 2**31 - 1 else np.int64  # halves index memory
    lmax = basis.lmax
    q = [orbital_from_e3nn(l) for l in range(lmax + 1)]
    shells = {z: [(a, l, int(sum(2 * x + 1 for x in basis.shells_of(z)[:a])))
                  for a, l in enumerate(basis.shells_of(z))] for z in basis.elements}

    rows, cols, vals = [], [], []
    node_field = {z: torch.zeros(int((numbers == z).sum()), basis.n_orbitals(z),
                                 basis.n_orbitals(z), dtype=torch.float64)
                  for z in basis.elements}
    local_index = np.zeros(n, dtype=np.int64)  # index of an atom among its species
    for z in basis.elements:
        local_index[numbers == z] = np.arange(int((numbers == z).sum()))

    def emit(r0, c0, block):
        k, nr, nc = block.shape
        rr = torch.as_tensor(r0)[:, None, None] + torch.arange(nr)[None, :, None]
        cc = torch.as_tensor(c0)[:, None, None] + torch.arange(nc)[None, None, :]
        rows.append(rr.expand(k, nr, nc).reshape(-1).numpy().astype(index_dtype))
        cols.append(cc.expand(k, nr, nc).reshape(-1).numpy().astype(index_dtype))
        vals.append(block.reshape(-1).numpy())

    for start in range(0, len(i_all), p.chunk_edges):
        sl = slice(start, start + p.chunk_edges)
        i, j, vec, d = i_all[sl], j_all[sl], vec_all[sl], d_all[sl]
        alpha, beta = edge_angles(vec)
        D = [q[l] @ wigner_D(l, alpha, beta) for l in range(lmax + 1)]  # orbital basis
        env = 1.0 + p.env_strength * torch.tanh(
            0.5 * (cn[torch.as_tensor(i)] + cn[torch.as_tensor(j)]) / p.cn_ref - 1.0)
        radial_hop = torch.exp(-(d - 2.0) / p.hop_decay) * _smooth_cut(d, p.interaction_radius)
        radial_field = torch.exp(-(d - 2.0) / p.field_decay) * _smooth_cut(d, p.interaction_radius)
        zi_e, zj_e = numbers[i], numbers[j]
        for zi in basis.elements:
            for zj in basis.elements:
                sel_np = np.flatnonzero((zi_e == zi) & (zj_e == zj))
                if sel_np.size == 0:
                    continue
                sel = torch.as_tensor(sel_np)
                Ds = [x[sel] for x in D]
                hop_r = (radial_hop * env)[sel]
                fld_r = radial_field[sel]
                recv = i[sel_np]
                for a, la, oa in shells[zi]:
                    for b, lb, ob in shells[zj]:  # hopping H_ij[a, b]
                        block = sum(p.hop_scale * _hop_amplitude(zi, a, zj, b, m)
                                    * hop_r[:, None, None] * _projector(Ds[la], Ds[lb], la, lb, m)
                                    for m in range(min(la, lb) + 1))
                        emit(offsets[recv] + oa, offsets[j[sel_np]] + ob, block)
                    for b, lb, ob in shells[zi]:  # crystal field on i from neighbour species zj
                        field = sum(p.field_scale * _field_amplitude(zi, a, b, zj, m)
                                    * fld_r[:, None, None] * _projector(Ds[la], Ds[lb], la, lb, m)
                                    for m in range(min(la, lb) + 1))
                        node_field[zi][:, oa:oa + 2 * la + 1, ob:ob + 2 * lb + 1].index_add_(
                            0, torch.as_tensor(local_index[recv]), field)

    cn_np = cn.numpy()
    for z in basis.elements:
        atoms = np.flatnonzero(numbers == z)
        if atoms.size == 0:
            continue
        block = node_field[z]
        for a, l, o in shells[z]:
            eps, slope = _onsite(z, a, l)
            diag = eps + slope * (cn_np[atoms] - p.cn_ref)
            idx = torch.arange(o, o + 2 * l + 1)
            block[:, idx, idx] += torch.as_tensor(diag)[:, None]
        emit(offsets[atoms], offsets[atoms], block)

    size = int(offsets[-1])
    P = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(size, size)).tocsr()
    del rows, cols, vals
    H = (P + P.T).tocsr()
    H.data *= 0.5
    H.sort_indices()
    if return_info:
        return H, {"interaction_radius": p.interaction_radius, "n_pairs": int(len(i_all)),
                   "mean_cn": float(cn_np[real].mean()) if real.any() else 0.0}
    return H
