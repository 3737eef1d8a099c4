"""Stand-in for hampart.blocks.IrrepsLayout, used by the model tests only until it lands."""

import numpy as np
import torch
from e3nn import o3

from hampart import so3


class StandinLayout:
    def __init__(self, basis):
        shells = basis.union_shells
        u = basis.n_union
        offs = np.cumsum([0] + [2 * l + 1 for l in shells])
        rows, entries, ls = [], [], []
        for a, la in enumerate(shells):
            for b, lb in enumerate(shells):
                qa, qb = so3.orbital_from_e3nn(la).numpy(), so3.orbital_from_e3nn(lb).numpy()
                for L in range(abs(la - lb), la + lb + 1):
                    w = o3.wigner_3j(la, lb, L, dtype=torch.float64).numpy() * np.sqrt(2 * L + 1)
                    start = len(rows)
                    for M in range(2 * L + 1):
                        blk = np.zeros((u, u))
                        blk[offs[a]:offs[a + 1], offs[b]:offs[b + 1]] = qa @ w[:, :, M] @ qb.T
                        rows.append(blk.reshape(-1))
                        ls.append(L)
                    entries.append((a, b, la, lb, L, start, len(rows)))
        self.U = np.array(rows)
        self.entries = entries
        self.irreps_ls = np.array(ls)
