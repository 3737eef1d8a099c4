"""Which rank trains which partitions: longest-processing-time first on edge counts."""

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["assign_parts"]


def assign_parts(costs, n_ranks: int) -> list[list[int]]:
    """Greedy LPT: parts sorted by cost (largest first) go to the least-loaded rank.

    costs ``(n_parts,)`` (e.g. stored edges per part). Returns, per rank, its part indices in
    ascending order. A rank may get no part when there are fewer parts than ranks.
    """
    costs = np.asarray(costs, dtype=np.float64)
    heap = [(0.0, r) for r in range(n_ranks)]
    out: list[list[int]] = [[] for _ in range(n_ranks)]
    for p in np.argsort(-costs, kind="stable"):
        load, r = heapq.heappop(heap)
        out[r].append(int(p))
        heapq.heappush(heap, (load + costs[p], r))
    return [sorted(parts) for parts in out]
