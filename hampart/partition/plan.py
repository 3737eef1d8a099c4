"""Planning parts from a memory budget (``hampart slice --parts auto --max-gib G``).

The fewest parts (at least ``min_parts``) whose largest part trains whole within G GiB per
rank. What a part costs is the model's business: the caller hands over ``need(sizes) -> GiB``
(from :func:`hampart.model.memory.part_memory`), so partitioning never imports the model.
``sizes`` are a part's ``n_owned``, ``n_nodes``, ``n_owned_edges``, ``n_edges``
(:func:`hampart.partition.build.part_sizes`), or what the caller's ``sizes_of(arrays)`` returns
(prediction sizes its slabs by the same search, with its own sizes and message).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .build import SliceParams, owners_for, part_sizes
from .halo import build_partition, incoming_csr

__all__ = ["check_budget", "largest_part", "choose_parts"]


def check_budget(budget: dict, halo: int) -> dict:
    """The memory request of ``--parts auto``, normalised (it is part of the key):
    ``{"max_gib", "model", "dtype", "min_parts"}``."""
    try:
        max_gib = float(budget["max_gib"])
    except (KeyError, TypeError, ValueError):
        raise InputError("--max-gib", f"budget {budget!r}", "give --max-gib in GiB") from None
    if not np.isfinite(max_gib) or max_gib <= 0:
        raise InputError("--max-gib", f"{max_gib} GiB", "give a positive memory budget")
    model = dict(budget.get("model") or {})
    layers = int(model.get("layers", 1))
    if 0 < halo < layers:  # halo 0: raw parts, trained for comparison only
        raise InputError("--halo", f"halo {halo} is shallower than the model's {layers} layers",
                         f"use --halo {layers} or more")
    min_parts = budget.get("min_parts", 1)
    if isinstance(min_parts, bool) or not isinstance(min_parts, (int, np.integer)) or min_parts < 1:
        raise InputError("--min-parts", f"{min_parts!r}", "give 1 or more (e.g. the ranks)")
    return {"max_gib": max_gib, "model": model, "dtype": str(budget.get("dtype", "float32")),
            "min_parts": int(min_parts)}


def largest_part(structure, graph, params: SliceParams, need, ptr=None, sizes_of=part_sizes):
    """``(GiB, owner, sizes)`` of the part needing the most memory when cut into
    ``params.parts`` (a whole number) parts."""
    ptr = incoming_csr(graph) if ptr is None else ptr
    owner = owners_for(structure, graph, params, None)
    sizes = [sizes_of(build_partition(graph, owner, k, params.halo, ptr=ptr))
             for k in range(params.parts)]
    gib = [need(sz) for sz in sizes]
    k = int(np.argmax(gib))
    return gib[k], owner, sizes[k]


SLICE_FIX = ("raise --max-gib, slice with a shallower --halo or a smaller --rcut, or give "
             "--parts N and train with --max-gib (edges in chunks)")


def _no_fit(tried: dict, count: int, params: SliceParams, source, fix) -> InputError:
    gib, _, sz = tried[count]
    return InputError(source, f"no number of parts fits {params.budget['max_gib']:g} GiB: with "
                      f"{count} parts the largest still needs {gib:.2f} GiB ({sz['n_nodes']} "
                      f"atoms, {sz['n_owned']} of them owned, {sz['n_edges']} edges: a "
                      f"{params.halo}-hop halo at r_cut {params.rcut:g} A)", fix)


def _worst(tried: dict, count: int, structure, graph, params, need, ptr, source, sizes_of,
           fix) -> float:
    """GiB of the largest of ``count`` parts, remembered in ``tried``."""
    if count not in tried:
        try:
            tried[count] = largest_part(structure, graph, params.with_parts(count), need, ptr,
                                        sizes_of)
        except InputError:  # as many parts as the method can make: none fitted
            if not tried:
                raise
            raise _no_fit(tried, max(tried), params, source, fix) from None
    return tried[count][0]


def choose_parts(structure, graph, params: SliceParams, need, source="structure",
                 sizes_of=part_sizes, fix=SLICE_FIX):
    """``(parts, owner, record)``: the fewest parts (from ``params.budget["min_parts"]``)
    whose largest needs at most ``params.budget["max_gib"]``. Grows the count by the ratio of
    need to budget, then bisects down to the fewest that fits. ``record`` (for the manifest):
    ``largest_part_gib`` and every count ``tried`` with its largest part's GiB. ``need`` takes
    what ``sizes_of(part arrays)`` returns; ``fix`` ends the error when nothing fits."""
    max_gib = params.budget["max_gib"]
    ptr = incoming_csr(graph)
    tried = {}  # parts -> (GiB of the largest part, owner, sizes of the largest part)

    def worst(count):
        return _worst(tried, count, structure, graph, params, need, ptr, source, sizes_of, fix)

    count, fail, stalled = min(params.budget["min_parts"], graph.n_nodes), None, 0
    while worst(count) > max_gib:
        previous, fail = worst(count), count
        step = math.ceil(count * min(2.0, previous / max_gib))
        count = min(graph.n_nodes, max(count + 1, step))
        stalled = stalled + 1 if count in tried or worst(count) > 0.97 * previous else 0
        if fail == graph.n_nodes or stalled >= 3:
            raise _no_fit(tried, count, params, source, fix)
    best = count
    while fail is not None and best - fail > 1:  # fewest parts: bisect (fail, best]
        mid = (fail + best) // 2
        if worst(mid) <= max_gib:
            best = mid
        else:
            fail = mid
    record = {"largest_part_gib": round(tried[best][0], 4),
              "tried": [[c, round(tried[c][0], 4)] for c in sorted(tried)]}
    return best, tried[best][1], record
