"""How much memory one training step of a graph needs, known before running it.

DESIGN.md §8 asks that memory follow a budget (``--max-gib``), not guesswork. The activations
autograd keeps for the backward pass dominate a step; they grow linearly with the number of
atoms, of edges and of edges whose blocks are output (``edge_outputs``: a partition's owned
edges), and with edge chunks (``model(..., edge_chunk=...)``) only one chunk's edge
activations are alive at a time. :func:`measure_memory_law` counts, with
``torch.autograd.graph.saved_tensors_hooks``, the bytes saved for the backward pass of small
random graphs (more atoms, more edges, fewer outputs, in chunks) and fits

    step bytes = HEADROOM * (per_node * atoms + per_edge * edges + per_output_edge * outputs
                             + per_active_edge * active edges
                             + per_active_output_edge * active outputs)

where active = min(edge_chunk, count). HEADROOM covers what the saved tensors miss: the
gradients being formed in the backward pass and temporaries of the forward pass
(benchmarks/bench_model.py checks the law against measured peaks). Parameters, their gradients
and the optimiser state are added separately (:meth:`MemoryLaw.fixed_bytes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import InputError

__all__ = ["MemoryLaw", "measure_memory_law", "plan_chunks", "part_memory", "cpu_edge_chunk",
           "HEADROOM", "GIB", "REUSED_BLOCK_BYTES"]

GIB = 2 ** 30
HEADROOM = 1.3  # peak / saved activations, from the benchmark (see docs/model.md)
# glibc's malloc keeps freed blocks up to this size for reuse and maps larger ones afresh from
# the kernel (a page fault and zeroing per 4 KiB, op after op); see hampart.allocator
REUSED_BLOCK_BYTES = 32 * 2 ** 20


@dataclass(frozen=True)
class MemoryLaw:
    """Bytes of one training step as a linear function of atoms, edges and output edges."""

    per_node: float
    per_edge: float                # kept for every edge during the whole step
    per_active_edge: float         # messages: alive only for the edges of the chunk computed
    per_output_edge: float         # kept for every edge whose block is output (outputs, loss)
    per_active_output_edge: float  # edge block and heads: alive only for the chunk computed
    parameters: int                # number of parameters
    itemsize: int                  # bytes per number of the model's dtype

    def fixed_bytes(self) -> float:
        """Parameters, their gradients and Adam's two moments."""
        return 4.0 * self.parameters * self.itemsize

    def _saved(self, n_nodes, n_edges, edge_chunk, edge_outputs) -> float:
        outputs = n_edges if edge_outputs is None else min(int(edge_outputs), n_edges)
        chunk = int(edge_chunk) if edge_chunk else n_edges
        return (self.per_node * n_nodes + self.per_edge * n_edges
                + self.per_output_edge * outputs + self.per_active_edge * min(chunk, n_edges)
                + self.per_active_output_edge * min(chunk, outputs))

    def step_bytes(self, n_nodes: int, n_edges: int, edge_chunk: int | None = None,
                   edge_outputs: int | None = None) -> float:
        """Bytes of one step; ``edge_outputs`` edges (default all) have their blocks output."""
        return HEADROOM * self._saved(n_nodes, n_edges, edge_chunk, edge_outputs)

    def largest_chunk(self, n_nodes: int, n_edges: int, budget: float,
                      max_in_degree: int = 1, edge_outputs: int | None = None) -> int | None:
        """The largest ``edge_chunk`` whose step fits in ``budget`` bytes: None when the whole
        graph fits at once, 0 when nothing fits (a chunk holds at least one atom's edges)."""
        if self.step_bytes(n_nodes, n_edges, None, edge_outputs) <= budget:
            return None
        least = max(int(max_in_degree), 1)
        if self.step_bytes(n_nodes, n_edges, least, edge_outputs) > budget:
            return 0
        lo, hi = least, max(n_edges, least)  # step bytes grow with the chunk: bisect
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.step_bytes(n_nodes, n_edges, mid, edge_outputs) <= budget:
                lo = mid
            else:
                hi = mid
        return lo


def _saved_bytes(model, inputs, edge_outputs: int | None = None, edge_chunk: int = 0) -> int:
    """Bytes of the distinct storages autograd saves in one forward (+ a sum-of-squares loss),
    the edges in chunks of ``edge_chunk`` (0: all at once)."""
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type != "meta":
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        nodes, edges = model(*inputs, edge_outputs=edge_outputs, edge_chunk=edge_chunk)
        loss = nodes.square().sum() + edges.square().sum()
    # inputs the caller holds anyway (positions, edge lists) are not the step's cost
    for t in inputs:
        seen.pop(t.untyped_storage().data_ptr(), None)
    del loss, nodes, edges
    return sum(seen.values())


def _random_graph(model, n_nodes: int, n_edges: int, device, dtype, seed: int = 0):
    """Atoms of the model's species at distinct points, ``n_edges`` random edges within rcut."""
    gen = torch.Generator().manual_seed(seed)
    species = torch.tensor(list(model.elements))
    numbers = species[torch.randint(len(species), (n_nodes,), generator=gen)]
    side = model.rcut * 0.5
    positions = torch.rand(n_nodes, 3, generator=gen, dtype=torch.float64) * side
    receiver = torch.sort(torch.randint(n_nodes, (n_edges,), generator=gen)).values
    sender = (receiver + 1 + torch.randint(n_nodes - 1, (n_edges,), generator=gen)) % n_nodes
    cell = torch.eye(3, dtype=torch.float64) * 100.0
    return (numbers.to(device), positions.to(device=device, dtype=dtype), cell.to(device=device, dtype=dtype),
            torch.stack([sender, receiver]).to(device), torch.zeros(n_edges, 3, dtype=torch.long,
                                                                    device=device))


def measure_memory_law(model, n_nodes: int = 48, n_edges: int = 2400) -> MemoryLaw:
    """Fit :class:`MemoryLaw` for ``model`` (its dtype, device and hyperparameters) from the
    saved activations of small random graphs: more edges, more atoms, fewer outputs, chunks."""
    p = next(model.parameters())
    device, dtype = p.device, p.dtype
    half, chunk = n_edges // 2, n_edges // 8

    def saved(n, m, chunk=0, outputs=None):  # chunk 0: all edges at once
        return _saved_bytes(model, _random_graph(model, n, m, device, dtype), outputs, chunk)

    base = saved(n_nodes, n_edges)
    per_edge_all = (saved(n_nodes, 2 * n_edges) - base) / n_edges  # messages and outputs
    per_node = (saved(2 * n_nodes, n_edges) - base) / n_nodes
    per_output_all = (base - saved(n_nodes, n_edges, outputs=half)) / (n_edges - half)
    chunked = saved(n_nodes, n_edges, chunk)
    per_output = (chunked - saved(n_nodes, n_edges, chunk, half)) / (n_edges - half)
    per_node = max(per_node, 0.0)
    per_output_all = min(max(per_output_all, 0.0), per_edge_all)
    per_output = min(max(per_output, 0.0), per_output_all)
    per_edge = max((chunked - per_node * n_nodes) / n_edges - per_output, 0.0)
    return MemoryLaw(per_node=per_node, per_edge=per_edge,
                     per_active_edge=max(per_edge_all - per_output_all - per_edge, 1.0),
                     per_output_edge=per_output,
                     per_active_output_edge=max(per_output_all - per_output, 1.0),
                     parameters=sum(q.numel() for q in model.parameters()),
                     itemsize=torch.finfo(dtype).bits // 8)


def cpu_edge_chunk(model) -> int:
    """Edges per chunk for a forward pass without gradients on CPU: the widest per-edge tensor,
    the message input ``(m, (lmax+1)^2, 2C)`` (3C with ``message_edges``), stays within
    :data:`REUSED_BLOCK_BYTES`, so each op reuses freed memory instead of faulting in new pages
    (2x faster predictions than 80k-edge chunks, docs/model.md "Allocation")."""
    width = (3 if getattr(model, "message_edges", False) else 2) * int(model.channels)
    itemsize = next(model.parameters()).element_size()
    return max(1024, REUSED_BLOCK_BYTES // ((int(model.lmax) + 1) ** 2 * width * itemsize))


def plan_chunks(law: MemoryLaw, graphs, budget_gib: float, resident_bytes: float = 0.0,
                source: str = "partitions", fixed_bytes: float | None = None,
                too_large=None) -> list[int | None]:
    """The one edge-chunk planner (training, prediction): ``edge_chunk`` for each graph
    ``(n_nodes, n_edges, max_in_degree, edge_outputs)`` (the last may be left out: all edges
    output), None where the whole graph fits, so that its step plus ``resident_bytes`` (data
    kept on the device) and ``fixed_bytes`` (default :meth:`MemoryLaw.fixed_bytes`, the
    parameters with their gradients and optimiser state) fits in ``budget_gib``.

    A graph that cannot fit even in the smallest chunks raises :class:`InputError`: the one
    ``too_large(k, n_nodes, n_edges, need_gib)`` returns, by default one naming the part and
    the number of parts to slice into."""
    fixed = law.fixed_bytes() if fixed_bytes is None else float(fixed_bytes)
    budget = budget_gib * GIB - resident_bytes - fixed
    chunks = []
    for k, (n_nodes, n_edges, degree, *outputs) in enumerate(graphs):
        outputs = outputs[0] if outputs else None
        chunk = law.largest_chunk(n_nodes, n_edges, budget, degree, outputs)
        if chunk == 0:
            least = law.step_bytes(n_nodes, n_edges, max(int(degree), 1), outputs)
            need = (least + resident_bytes + fixed) / GIB
            if too_large is not None:
                raise too_large(k, n_nodes, n_edges, need)
            raise InputError(source, f"part {k} ({n_nodes} atoms, {n_edges} edges) needs about "
                             f"{need:.1f} GiB even in the smallest edge chunks, over the "
                             f"budget of {budget_gib:g} GiB",
                             f"slice into about {math.ceil(need / budget_gib * 1.2 + 0.5)}x "
                             "more parts, or raise --max-gib")
        chunks.append(chunk)
    return chunks


def part_memory(basis, model_kwargs: dict | None = None, dtype: str = "float32"):
    """``need(sizes) -> GiB``: the memory one rank needs to train a partition of ``sizes``
    (``n_nodes``, ``n_edges``, ``n_owned``, ``n_owned_edges``) whole, with the model of
    ``model_kwargs`` (default: the default model) in ``dtype``: the step, the partition's tensors and
    the parameters with their gradients and Adam state. Used to choose the number of parts."""
    from ..partition.loader import batch_bytes
    from .network import HamiltonianModel

    if dtype not in ("float32", "float64"):
        raise InputError("--dtype", f"'{dtype}' is not supported", "use float32 or float64")
    kwargs = dict(model_kwargs or {})
    try:
        model = HamiltonianModel(basis, **kwargs).to(getattr(torch, dtype))
    except TypeError as e:
        raise InputError("--model", f"not a hyperparameter set of the model ({e})",
                         "use the keys of hampart train --model") from None
    law = measure_memory_law(model)
    u, itemsize = basis.n_union, law.itemsize

    def need(sizes: dict) -> float:
        data = batch_bytes(sizes["n_nodes"], sizes["n_edges"], sizes["n_owned"],
                           sizes["n_owned_edges"], u, itemsize)
        # the trainer asks for the owned edges' blocks only
        return (law.step_bytes(sizes["n_nodes"], sizes["n_edges"], None,
                               sizes["n_owned_edges"]) + data
                + law.fixed_bytes()) / GIB

    return need
