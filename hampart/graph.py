"""Periodic radius graph with an integer image shift per edge.

Edge j -> i (``edge_index[:, e] = (j, i)``, sender first) exists when
``|r_ij| < rcut`` with ``r_ij = positions[j] + edge_shift[e] @ cell - positions[i]``
(Angstrom). Both directions of every pair are present; the on-site pair (i, i, shift 0) is not.
Edges are sorted by receiver, then sender (each ordered pair is one edge), so the graph is
deterministic.

At the Gamma point two images of one pair inside r_cut cannot be told apart (their blocks are
summed in H). ``images="refuse"`` (default) stops and names the cell height and the largest safe
r_cut; ``images="minimum"`` keeps one edge per pair, at its minimum image, whose label is then
the Gamma-point block, and reports how many edges it merged. The image is chosen once per
unordered pair and negated for the reverse edge, also at ties (a pair exactly half a cell
apart), so the edge j -> i with shift S always has the reverse i -> j with shift -S.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vesin

from .errors import InputError

__all__ = ["Graph", "radius_graph", "cell_heights", "edge_vectors", "minimum_image", "MIN_DISTANCE"]

MIN_DISTANCE = 0.5  # Angstrom: closer atoms are an input error (overlapping atoms)


@dataclass(frozen=True)
class Graph:
    """A directed radius graph. Arrays are numpy; see :mod:`hampart.keys` for meanings."""

    edge_index: np.ndarray  # int64 (2, n_edges): (sender j, receiver i)
    edge_shift: np.ndarray  # int64 (n_edges, 3)
    n_nodes: int
    rcut: float
    images: str = "refuse"
    merged: int = 0  # edges dropped by images="minimum"

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def in_degree(self) -> np.ndarray:
        return np.bincount(self.edge_index[1], minlength=self.n_nodes).astype(np.int64)


def cell_heights(cell: np.ndarray) -> np.ndarray:
    """Distance between opposite faces of the cell along each cell vector, ``(3,)`` Angstrom."""
    cell = np.asarray(cell, dtype=np.float64)
    volume = abs(np.linalg.det(cell))
    cross = np.stack([np.cross(cell[1], cell[2]), np.cross(cell[2], cell[0]),
                      np.cross(cell[0], cell[1])])
    return volume / np.linalg.norm(cross, axis=1)


def minimum_image(delta, cell, pbc) -> np.ndarray:
    """Displacements ``delta`` ``(k, 3)`` (Angstrom) moved by lattice vectors along the periodic
    axes (``pbc`` 3 bools; rows of ``cell`` are the lattice vectors) so that each fractional
    coordinate lies in [-0.5, 0.5]: the shortest image in orthogonal and mildly skewed cells.
    Unchanged without periodic axes or with a singular cell."""
    delta = np.asarray(delta, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    if not pbc.any() or abs(np.linalg.det(cell)) <= 1e-9:
        return delta
    frac = delta @ np.linalg.inv(cell)
    frac[:, pbc] -= np.round(frac[:, pbc])
    return frac @ cell


def edge_vectors(positions, cell, edge_index, edge_shift) -> np.ndarray:
    """r_ij ``(n_edges, 3)`` for edges j -> i, numpy or torch arrays alike."""
    j, i = edge_index[0], edge_index[1]
    return positions[j] + edge_shift.astype(positions.dtype) @ cell - positions[i] \
        if isinstance(positions, np.ndarray) else \
        positions[j] + edge_shift.to(positions.dtype) @ cell - positions[i]


def _minimum_image_pairs(i, j, shift, dist, n: int, rcut: float) -> Graph:
    """One image per *unordered* pair (the shortest; on a tie, e.g. a pair half a cell apart, the
    lexicographically smallest shift of the lower-index receiver), negated for the reverse edge,
    so every edge's reverse exists with the opposite shift. Self images are dropped.

    ``i, j, shift, dist``: vesin's pairs (receiver, sender, image shift, distance), both
    directions of every pair present. Choosing per ordered pair instead could pick (-1,0,0) one
    way and (0,0,0) the other at a tie: the reverse edges would then not match."""
    lo_receiver = i < j  # orient every pair as (receiver lo, sender hi, shift)
    lo = np.where(lo_receiver, i, j)
    hi = np.where(lo_receiver, j, i)
    oriented = np.where(lo_receiver[:, None], shift, -shift)
    pair = lo * n + hi
    candidates = np.flatnonzero(i != j)
    order = candidates[np.lexsort((oriented[candidates, 2], oriented[candidates, 1],
                                   oriented[candidates, 0], dist[candidates], pair[candidates]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair[order][1:] != pair[order][:-1]
    chosen = order[first]
    receiver = np.concatenate([lo[chosen], hi[chosen]])
    sender = np.concatenate([hi[chosen], lo[chosen]])
    shifts = np.concatenate([oriented[chosen], -oriented[chosen]])
    keep = np.argsort(receiver * n + sender, kind="stable")  # by receiver, then sender
    return Graph(edge_index=np.ascontiguousarray(np.stack([sender[keep], receiver[keep]])),
                 edge_shift=np.ascontiguousarray(shifts[keep]), n_nodes=n, rcut=float(rcut),
                 images="minimum", merged=int(len(i) - len(keep)))


def radius_graph(positions, cell, pbc, rcut: float, images: str = "refuse",
                 source: str = "structure", min_distance: float = MIN_DISTANCE) -> Graph:
    """Build the graph of all pairs closer than ``rcut`` (Angstrom).

    positions ``(n, 3)``; cell ``(3, 3)`` rows are cell vectors; pbc ``(3,)`` bool.
    Raises :class:`InputError` (naming ``source``) for overlapping atoms, a missing cell along
    a periodic direction, or a r_cut that makes images ambiguous (unless images="minimum").
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    n = len(positions)
    if images not in ("refuse", "minimum"):
        raise InputError(source, f"unknown images mode '{images}'", "use 'refuse' or 'minimum'")
    if not rcut > 0:
        raise InputError(source, f"r_cut = {rcut} Angstrom", "give a positive r_cut")
    if not np.isfinite(positions).all():
        raise InputError(source, "positions contain NaN or infinity", "fix the structure file")
    if pbc.any():
        lengths = np.linalg.norm(cell, axis=1)
        if (lengths[pbc] == 0).any() or abs(np.linalg.det(cell)) < 1e-8:
            raise InputError(source, "periodic along some direction but the cell is missing or flat",
                             "write the cell (extxyz Lattice=, or pass the cell) or mark pbc False")
    box = cell if pbc.any() else np.zeros((3, 3))
    if n == 0:
        raise InputError(source, "no atoms", "give a structure with atoms")

    nl = vesin.NeighborList(cutoff=float(rcut), full_list=True)
    i, j, shift, dist = nl.compute(points=positions, box=box, periodic=pbc if pbc.any() else False,
                                   quantities="ijSd")
    i = i.astype(np.int64)
    j = j.astype(np.int64)
    shift = shift.astype(np.int64).reshape(-1, 3)
    # vesin's pair (i, j, S): vector = x_j - x_i + S @ cell, i.e. sender j, receiver i.
    self_image = (i == j) & ~(shift == 0).all(axis=1)
    if len(dist) and dist.min() < min_distance:
        k = int(np.argmin(dist))
        raise InputError(source, f"atoms {i[k]} and {j[k]} are {dist[k]:.3f} Angstrom apart "
                         f"(closer than {min_distance})", "remove the duplicate or overlapping atom")

    heights = cell_heights(cell) if pbc.any() else np.full(3, np.inf)
    safe = 0.5 * float(np.min(np.where(pbc, heights, np.inf)))
    pair_key = i * n + j  # receiver-major: sorting by it orders edges by receiver, then sender
    if rcut < safe:
        # no pair can reach two of its images, nor an atom its own: one sort is enough
        keep = np.argsort(pair_key, kind="stable")
    else:
        order = np.lexsort((dist, pair_key))  # by pair, shortest image first
        first = np.ones(len(order), dtype=bool)
        first[1:] = pair_key[order][1:] != pair_key[order][:-1]
        n_dupes = int((~first).sum()) + int(self_image.sum())
        if n_dupes and images == "refuse":
            hmin = float(np.min(heights[pbc]))
            raise InputError(
                source,
                f"r_cut = {rcut} Angstrom reaches {n_dupes} second periodic image(s) of atom pairs "
                f"(smallest cell height {hmin:.3f} Angstrom); at the Gamma point their blocks "
                f"cannot be separated",
                f"use r_cut <= {safe:.3f} Angstrom (half the cell height), a larger cell, or "
                f"images='minimum' (--images minimum) to keep each pair once at its minimum image")
        if n_dupes:
            return _minimum_image_pairs(i, j, shift, dist, n, rcut)
        keep = order  # every ordered pair once, sorted by pair
    edge_index = np.stack([j[keep], i[keep]]).astype(np.int64)
    shift = shift[keep]
    return Graph(edge_index=np.ascontiguousarray(edge_index),
                 edge_shift=np.ascontiguousarray(shift), n_nodes=n, rcut=float(rcut),
                 images=images, merged=0)
