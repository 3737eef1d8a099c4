"""Who owns which atom: an ``owner`` array ``(n_atoms,)`` int64 with values ``0 .. parts-1``.

Partitioning algorithms only decide owners; halos and storage live in :mod:`.halo` and
:mod:`.store`. Every part must own at least one atom: an empty part is an :class:`InputError`.

* :func:`slab_owners`: slabs along one cell vector (``axis`` "x"/"y"/"z" = cell vector a/b/c),
  cut in *fractional* coordinates wrapped into [0, 1) so a periodic atom sitting just outside
  the cell lands in the slab it belongs to. ``balance="width"`` gives slabs of equal width
  (the paper's scheme); ``balance="atoms"`` gives slabs of equal atom count (sorted by the
  fractional coordinate, ties broken by atom index). Without a cell (non-periodic), Cartesian
  coordinates along x/y/z are used between their minimum and maximum.
* :func:`metis_owners`: METIS k-way on the undirected atom graph (each neighbouring pair once,
  however many periodic images join it), vertex weights = in-degree so that parts hold
  about the same number of edges (edges dominate memory). The METIS seed is an argument.
* :func:`owners_from_array`: validates an owner array from any other partitioner.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["slab_owners", "metis_owners", "owners_from_array", "check_owner", "AXES"]

AXES = {"x": 0, "y": 1, "z": 2, "a": 0, "b": 1, "c": 2, 0: 0, 1: 1, 2: 2}


def _check_parts(parts, n_atoms: int, what: str = "--parts") -> int:
    if isinstance(parts, bool) or not isinstance(parts, (int, np.integer)) or parts < 1:
        raise InputError(what, f"parts = {parts!r}", "give a whole number of parts, 1 or more")
    if parts > n_atoms:
        raise InputError(what, f"{parts} parts for {n_atoms} atoms (every part must own an atom)",
                         f"use at most {n_atoms} parts")
    return int(parts)


def check_owner(owner, n_atoms: int, parts: int | None = None,
                source: str = "owner array") -> np.ndarray:
    """Validate an owner array: shape ``(n_atoms,)``, integer values in ``0..parts-1``, every
    part non-empty. Returns it as int64. ``parts`` defaults to ``owner.max() + 1``."""
    owner = np.asarray(owner)
    if owner.shape != (n_atoms,):
        raise InputError(source, f"shape {owner.shape}, expected ({n_atoms},) (one owner per atom)",
                         "give one part index per atom")
    if owner.dtype.kind not in "iu":
        whole = owner.dtype.kind == "f" and bool(np.isfinite(owner).all()
                                                  and (owner == np.round(owner)).all())
        if whole:
            owner = owner.astype(np.int64)
        else:
            raise InputError(source, f"dtype {owner.dtype} is not integer",
                             "give integer part indices")
    owner = owner.astype(np.int64)
    if n_atoms == 0:
        raise InputError(source, "no atoms", "give a structure with atoms")
    if parts is None:
        parts = int(owner.max()) + 1
    if owner.min() < 0 or owner.max() >= parts:
        raise InputError(source, f"part indices span {owner.min()}..{owner.max()}, "
                         f"expected 0..{parts - 1}", "number parts from 0 to parts-1")
    counts = np.bincount(owner, minlength=parts)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise InputError(source, f"{len(empty)} of {parts} parts own no atom "
                         f"(first: part {empty[0]})",
                         "use fewer parts, or a method/balance that fills every part "
                         "(e.g. --balance atoms for slabs)")
    return owner


def owners_from_array(array, parts: int | None = None, source: str = "owner array") -> np.ndarray:
    """The hook for any partitioner: validate its owner per atom (see :func:`check_owner`)."""
    array = np.asarray(array)
    if array.ndim != 1:
        raise InputError(source, f"shape {array.shape}, expected one owner per atom",
                         "give a 1-D array of part indices")
    return check_owner(array, len(array), parts, source)


def _axis_index(axis) -> int:
    key = axis.lower() if isinstance(axis, str) else axis
    if key not in AXES:
        raise InputError("--axis", f"unknown axis {axis!r}",
                         "use x, y or z (cell vector a, b or c)")
    return AXES[key]


def slab_owners(positions, cell, parts: int, axis="x", balance: str = "width",
                pbc=None) -> np.ndarray:
    """Slabs along cell vector ``axis``; see the module docstring. positions ``(n, 3)`` Angstrom,
    cell ``(3, 3)`` rows = cell vectors. Returns owner ``(n,)`` int64."""
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = len(positions)
    parts = _check_parts(parts, n)
    a = _axis_index(axis)
    if balance not in ("width", "atoms"):
        raise InputError("--balance", f"unknown balance {balance!r}", "use 'width' or 'atoms'")
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    periodic = abs(np.linalg.det(cell)) > 1e-8 and (pbc is None or bool(np.asarray(pbc).any()))
    if periodic:
        frac = np.linalg.solve(cell.T, positions.T).T[:, a]
        coord = frac - np.floor(frac)
        coord[coord >= 1.0] = 0.0  # -1e-17 wraps to 1.0 in floating point
    else:
        x = positions[:, a]
        span = x.max() - x.min()
        coord = (x - x.min()) / span if span > 0 else np.zeros(n)
    if balance == "width":
        owner = np.minimum(np.floor(coord * parts).astype(np.int64), parts - 1)
    else:
        order = np.lexsort((np.arange(n), coord))
        owner = np.empty(n, dtype=np.int64)
        owner[order] = np.arange(n, dtype=np.int64) * parts // n
    try:
        return check_owner(owner, n, parts, source="slab partition")
    except InputError as e:
        raise InputError(f"--parts {parts} --method slab --balance {balance}", e.problem,
                         "use fewer parts or --balance atoms (equal atom counts)") from None


def _undirected_adjacency(sender, receiver, n: int):
    """METIS CSR ``(xadj, adjncy)`` int32: each neighbour once, both directions, no self loop."""
    key = receiver * n + sender
    # Fast path: radius_graph's edges are sorted by receiver then sender, one per pair, both
    # directions present; then the edge list already is the adjacency (checked, not assumed).
    simple = len(key) == 0 or bool((np.diff(key) > 0).all() and (sender != receiver).all())
    if not (simple and np.array_equal(np.sort(sender * n + receiver), key)):
        keep = sender != receiver
        a = np.concatenate([receiver[keep], sender[keep]])
        b = np.concatenate([sender[keep], receiver[keep]])
        key = np.unique(a * n + b)
    rows, cols = key // n, key % n
    xadj = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int32)
    return xadj, cols.astype(np.int32)


def metis_owners(graph, parts: int, seed: int = 0) -> np.ndarray:
    """METIS k-way partition of ``graph`` (a :class:`hampart.graph.Graph`) into ``parts``.

    Vertex weights = in-degree (at least 1) so that edges balance; the adjacency is the
    symmetric pair set without self loops or duplicate neighbours from periodic images.
    Disconnected graphs are fine (METIS partitions each component). Returns owner ``(n,)``.
    """
    import pymetis

    n = int(graph.n_nodes)
    parts = _check_parts(parts, n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError("--seed", f"seed = {seed!r}", "give an integer seed")
    if parts == 1:
        return np.zeros(n, dtype=np.int64)
    sender, receiver = graph.edge_index
    xadj, adjncy = _undirected_adjacency(sender, receiver, n)
    vweights = np.maximum(np.bincount(receiver, minlength=n), 1).astype(np.int32)
    options = pymetis.Options(seed=int(seed) & 0x7FFFFFFF)
    try:
        _, membership = pymetis.part_graph(parts, pymetis.CSRAdjacency(xadj, adjncy),
                                           vweights=vweights,
                                           options=options)
    except Exception as e:  # METIS reports failures as RuntimeError with a code
        raise InputError("--method metis", f"METIS failed ({type(e).__name__}: {e})",
                         "try --method slab or fewer parts") from None
    owner = np.asarray(membership, dtype=np.int64)
    try:
        return check_owner(owner, n, parts, source="METIS partition")
    except InputError as e:
        raise InputError(f"--parts {parts} --method metis", e.problem,
                         "use fewer parts (METIS left a part empty), or --method slab") from None
