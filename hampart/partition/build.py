"""Building partitions in memory: slicing parameters, graph, owners, labels and the arrays of
each part file (format in :mod:`hampart.partition.store`, docs/partitions.md).

Edge direction as everywhere: ``edge_index[0]`` = sender j, ``edge_index[1]`` = receiver i;
an edge is owned by the part owning its receiver. Positions in Angstrom (global, unwrapped),
labels in Hartree in the padded union basis. Nothing here writes a file: :mod:`.slicing`
composes these steps with :mod:`.plan` (``--parts auto``) and :mod:`.store` (the directory).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..keys import (CELL, EDGE_BLOCKS, EDGE_IDS, EDGE_INDEX, EDGE_OWNED, HALO, NODE_BLOCKS,
                    NODE_HOP, NODE_IDS, NUMBERS, PART, PBC, POSITIONS, gather)
from .halo import _check_halo, build_partition, incoming_csr, partition_stats
from .owners import AXES, check_owner, metis_owners, slab_owners

__all__ = ["METHODS", "AUTO", "SliceParams", "check_params", "structure_arrays", "make_graph",
           "owners_for", "part_labels", "iter_parts", "part_sizes", "partition_arrays"]

METHODS = ("slab", "metis", "custom")
AUTO = "auto"  # --parts auto: the fewest parts whose largest fits a memory budget


@dataclass(frozen=True)
class SliceParams:
    """How a structure is cut, validated and normalised by :func:`check_params` (slab-only
    options are ``None`` for other methods). ``parts`` is a count or ``"auto"``; ``budget`` is
    the normalised memory request of ``"auto"`` (:func:`hampart.partition.plan.check_budget`).
    :meth:`as_dict` is the form in manifest.json and in the key."""

    rcut: float
    method: str
    parts: int | str
    halo: int
    axis: str | None
    balance: str | None
    seed: int
    images: str
    budget: dict | None = None

    def as_dict(self) -> dict:
        out = {"rcut": self.rcut, "method": self.method, "parts": self.parts, "halo": self.halo,
               "axis": self.axis, "balance": self.balance, "seed": self.seed,
               "images": self.images}
        if self.budget is not None:
            out["budget"] = self.budget
        return out

    def with_parts(self, parts: int) -> "SliceParams":
        return dataclasses.replace(self, parts=parts)


def check_params(rcut, method, parts, halo, axis=None, balance="width", seed=0, images="refuse",
                 owner=None) -> SliceParams:
    """Validated parameters (an :class:`InputError` naming the flag otherwise)."""
    if method == "slab" and balance is None:
        balance = "width"
    if method not in METHODS:
        raise InputError("--method", f"unknown method {method!r}", "use slab or metis")
    try:
        rcut = float(rcut)
    except (TypeError, ValueError):
        raise InputError("--rcut", f"r_cut = {rcut!r}", "give r_cut in Angstrom, e.g. --rcut 8")
    if not np.isfinite(rcut) or rcut <= 0:
        raise InputError("--rcut", f"r_cut = {rcut}", "give a positive r_cut in Angstrom")
    if parts != AUTO and (isinstance(parts, bool) or not isinstance(parts, (int, np.integer))
                          or parts < 1):
        raise InputError("--parts", f"parts = {parts!r}",
                         "give a whole number of parts, 1 or more, or auto with --max-gib")
    halo = _check_halo(halo)
    if images not in ("refuse", "minimum"):
        raise InputError("--images", f"unknown mode {images!r}", "use refuse or minimum")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError("--seed", f"seed = {seed!r}", "give an integer seed")
    if method == "slab":
        axis = "x" if axis is None else axis
        key = axis.lower() if isinstance(axis, str) else axis
        if key not in AXES:
            raise InputError("--axis", f"unknown axis {axis!r}",
                             "use x, y or z (cell vector a, b or c)")
        axis = "xyz"[AXES[key]]
        if balance not in ("width", "atoms"):
            raise InputError("--balance", f"unknown balance {balance!r}", "use width or atoms")
    else:
        if axis is not None:
            raise InputError("--axis", f"--axis is for --method slab, not {method}",
                             "drop --axis or use --method slab")
        axis, balance = None, None
    if method == "custom" and owner is None:
        raise InputError("owner", "method 'custom' needs an owner array", "pass owner=...")
    if owner is not None and method != "custom":
        raise InputError("owner", f"an owner array was given with method {method!r}",
                         "use method='custom' with an owner array")
    if parts == AUTO and method == "custom":
        raise InputError("--parts", "auto with an owner array", "give the owner array's parts")
    return SliceParams(rcut=rcut, method=method, parts=parts if parts == AUTO else int(parts),
                       halo=halo, axis=axis, balance=balance, seed=int(seed), images=images)


def structure_arrays(structure) -> dict:
    """``numbers`` int64 (n,), ``positions`` float64 (n, 3) Angstrom, ``cell`` (3, 3) rows,
    ``pbc`` bool (3,) of a structure, as stored in every part file."""
    return {NUMBERS: np.asarray(structure.numbers, dtype=np.int64),
            POSITIONS: np.asarray(structure.positions, dtype=np.float64),
            CELL: np.asarray(structure.cell, dtype=np.float64).reshape(3, 3),
            PBC: np.broadcast_to(np.asarray(structure.pbc, dtype=bool), (3,)).copy()}


def _source(structure) -> str:
    return str(getattr(structure, "source", None) or "structure")


def make_graph(structure, params: SliceParams):
    """The radius graph the parts are cut from (:func:`hampart.graph.radius_graph`)."""
    from ..graph import radius_graph

    a = structure_arrays(structure)
    return radius_graph(a[POSITIONS], a[CELL], a[PBC], params.rcut, images=params.images,
                        source=_source(structure))


def owners_for(structure, graph, params: SliceParams, owner=None) -> np.ndarray:
    """Owner (part index) of every atom, ``(n,)`` int64, by ``params.method`` with a whole
    ``params.parts``; ``owner`` is the user's array for method ``custom``."""
    if params.parts > graph.n_nodes:
        raise InputError("--parts", f"{params.parts} parts for {graph.n_nodes} atoms "
                         "(every part must own an atom)", f"use at most {graph.n_nodes} parts")
    if params.method == "slab":
        return slab_owners(structure.positions, structure.cell, params.parts,
                           axis=params.axis, balance=params.balance, pbc=structure.pbc)
    if params.method == "metis":
        return metis_owners(graph, params.parts, seed=params.seed)
    return check_owner(owner, graph.n_nodes, params.parts, source="owner array")


def part_labels(structure, hamiltonian, basis, graph):
    """``(node (n, u, u), edge (m, u, u), info)`` of :func:`hampart.blocks.extract_blocks`:
    the labels of every atom and graph edge, Hartree."""
    from ..blocks import extract_blocks

    numbers = np.asarray(structure.numbers, dtype=np.int64)
    return extract_blocks(hamiltonian, numbers, basis, graph, source=_source(structure))


def iter_parts(structure, graph, owner, params: SliceParams, labels=None, timings=None):
    """Yield ``(part, arrays)``: the arrays of each part file (module docstring of
    :mod:`.store`), parts ``0..params.parts - 1`` with halo ``params.halo``. ``labels`` is ``(node, edge)`` from
    :func:`part_labels` or ``None``; building time adds up in ``timings["halo"]``."""
    timings = {} if timings is None else timings
    whole = structure_arrays(structure)  # node and graph fields of the whole structure
    labels = {} if labels is None else {NODE_BLOCKS: labels[0], EDGE_BLOCKS: labels[1]}
    ptr = incoming_csr(graph)
    timings["halo"] = 0.0
    halo = params.halo
    for part in range(params.parts):
        t = time.perf_counter()
        arrays = build_partition(graph, owner, part, halo, ptr=ptr)
        nid, eid = arrays[NODE_IDS], arrays[EDGE_IDS]
        n_owned = int((arrays[NODE_HOP] == 0).sum())
        m_owned = int(arrays[EDGE_OWNED].sum())
        # every field by its registered kind (keys.FIELDS), the labels of owned outputs only
        arrays.update(gather(whole, nid, eid, n_owned, m_owned))
        arrays.update({HALO: np.int64(halo), PART: np.int64(part)})
        # global ids of the owned edges only: halo edges' ids are never needed, and at deep
        # halos they would be a sixth of the bytes written
        arrays[EDGE_IDS] = eid[:m_owned]
        arrays.update(gather(labels, nid, eid, n_owned, m_owned))
        timings["halo"] += time.perf_counter() - t
        yield part, arrays


def part_sizes(arrays) -> dict:
    """``n_owned``, ``n_nodes``, ``n_owned_edges``, ``n_edges`` of one part's arrays (what the
    manifest lists per part and the memory law takes)."""
    return {"n_owned": int((arrays[NODE_HOP] == 0).sum()), "n_nodes": int(len(arrays[NODE_IDS])),
            "n_owned_edges": int(arrays[EDGE_OWNED].sum()),
            "n_edges": int(arrays[EDGE_INDEX].shape[1])}


def partition_arrays(structure, rcut, method="metis", parts=2, halo=1, axis=None,
                     balance="width", seed=0, images="refuse", owner=None, hamiltonian=None,
                     basis=None):
    """In memory, nothing written: ``(list of per-part array dicts, info)``; the arrays are
    those of a part file. ``structure`` has ``numbers, positions, cell, pbc``; labels are added
    when ``hamiltonian`` (scipy sparse, Hartree) and ``basis`` are given. ``info`` holds
    ``graph``, ``owner``, ``params`` (dict), ``stats``, ``timings``."""
    params = check_params(rcut, method, parts, halo, axis, balance, seed, images, owner)
    if params.parts == AUTO:
        raise InputError("parts", "'auto' is for slice_dataset (with max_gib)",
                         "give a number of parts")
    if hamiltonian is not None and basis is None:
        raise InputError("basis", "a Hamiltonian was given without its basis", "pass basis=...")
    timings = {}
    t = time.perf_counter()
    graph = make_graph(structure, params)
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    own = owners_for(structure, graph, params, owner)
    timings["owners"] = time.perf_counter() - t
    labels = None
    if hamiltonian is not None:
        t = time.perf_counter()
        node, edge, timings["labels_info"] = part_labels(structure, hamiltonian, basis, graph)
        timings["labels"] = time.perf_counter() - t
        labels = (node, edge)
    out = [arrays for _, arrays in iter_parts(structure, graph, own, params, labels,
                                              timings)]
    stats = partition_stats(graph, own, [part_sizes(a) for a in out])
    return out, {"graph": graph, "owner": own, "params": params.as_dict(), "stats": stats,
                 "timings": timings}
