"""Predict the Hamiltonian of a structure of any size, in bounded memory.

The structure's graph is cut into slabs along its longest cell vector, as few as fit the memory
budget (or of at most ``max_atoms`` owned atoms); each slab gets a
halo of depth L + 1 (L = the model's layers) so that every owned atom and every edge with an
owned end is computed exactly as in the full graph (DESIGN.md §3), one slab at a time. The edge
j -> i predicts H_ij and i -> j predicts H_ji; the rows of the slab's atoms are final there:
H_ij = (B_{j->i} + B_{i->j}^T) / 2, which is exactly symmetric (both sides add the same two
numbers), and they are written straight into the CSR arrays of the whole matrix, laid out from
the graph beforehand. So memory is the matrix plus one slab, never a second copy of the
matrix. H in Hartree, orbitals in the internal (CP2K) order.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import InputError
from ..keys import EDGE_INDEX, EDGE_OWNED, EDGE_SHIFT, NODE_HOP, NODE_IDS, take

__all__ = ["predict_hamiltonian", "predict_file", "STRUCTURE_KEYS", "check_predicted_for"]

# arrays stored beside a predicted H (.npz): the structure it was predicted for, so that
# `hampart evaluate` can refuse a reference of another structure with the same orbital count
STRUCTURE_KEYS = ("structure_numbers", "structure_positions", "structure_cell")


def check_predicted_for(prediction_path, structure, tolerance: float = 1e-3) -> None:
    """Raise :class:`InputError` when ``prediction_path`` records a structure (see
    STRUCTURE_KEYS) other than ``structure``: other species or atoms more than ``tolerance``
    Angstrom apart (periodic images count as the same place). Files without it pass."""
    if not str(prediction_path).lower().endswith(".npz"):
        return
    with np.load(prediction_path, allow_pickle=False) as data:
        if not all(k in data.files for k in STRUCTURE_KEYS):
            return
        numbers, positions, cell = (data[k] for k in STRUCTURE_KEYS)
    fix = "evaluate against the structure the prediction was made for"
    if numbers.shape != structure.numbers.shape or not np.array_equal(numbers, structure.numbers):
        raise InputError(prediction_path, f"was predicted for another structure than the "
                         f"reference: {len(numbers)} and {len(structure.numbers)} atoms whose "
                         "species differ atom by atom", fix)
    from ..graph import minimum_image

    ref_cell = np.asarray(structure.cell, dtype=np.float64)
    delta = minimum_image(positions - structure.positions, ref_cell, structure.pbc)
    worst = float(np.abs(delta).max(initial=0.0))
    if worst > tolerance or not np.allclose(cell, ref_cell, atol=tolerance):
        raise InputError(prediction_path, f"was predicted for other positions or another cell "
                         f"(atoms up to {worst:.3g} A from the reference's)", fix)


def _longest_axis(structure) -> str:
    """The cell axis slabs are cut along: the longest cell vector's."""
    lengths = np.linalg.norm(structure.cell, axis=1)
    return "xyz"[int(np.argmax(lengths))] if lengths.any() else "x"


def _slab_owner(structure, parts: int) -> np.ndarray:
    from ..partition import slab_owners

    return slab_owners(structure.positions, structure.cell, parts, axis=_longest_axis(structure),
                       balance="atoms")


def _row_layout(graph, counts: np.ndarray, index_dtype) -> np.ndarray:
    """CSR row pointer of the predicted H: row of an orbital of atom i holds one entry per
    orbital of i and of each distinct neighbour of i (edges both ways; images of one pair
    share a block, as at the Gamma point), all of them, zeros included."""
    n = len(counts)
    sender, receiver = graph.edge_index
    ones = np.ones(len(sender), dtype=np.int8)
    A = sp.coo_matrix((ones, (receiver, sender)), shape=(n, n)).tocsr()
    A = (A + A.T + sp.identity(n, dtype=np.int8, format="csr")).tocsr()
    A.data[:] = 1
    per_row = np.repeat(A @ counts.astype(np.int64), counts)
    return np.concatenate([[0], np.cumsum(per_row)]).astype(index_dtype)


def _reverse_edges_next(arrays, n_owned: int, m_owned: int):
    """Edge order: owned edges, then edges from an owned sender to a halo receiver (the
    reverses of owned edges), then the rest; and how many of them need blocks."""
    sender = arrays[EDGE_INDEX][0]
    rest = np.arange(m_owned, len(sender))
    back = sender[rest] < n_owned
    order = np.concatenate([np.arange(m_owned), rest[back], rest[~back]])
    return order, m_owned + int(back.sum())


class _RowWriter:
    """The CSR arrays of the whole predicted H, laid out from the graph, filled row by row.

    A pair of atoms in two slabs gets its values in the earlier slab; they are handed over,
    transposed, to the later one, so that H_ji is the same number as H_ij (a re-computation in
    the other slab would only agree up to rounding)."""

    def __init__(self, graph, counts: np.ndarray, owner: np.ndarray):
        self.size = int(counts.sum())
        indptr = _row_layout(graph, counts, np.int64)
        nnz = int(indptr[-1])
        self.index_dtype = np.int32 if max(nnz, self.size) < np.iinfo(np.int32).max else np.int64
        self.indptr = indptr.astype(self.index_dtype)
        self.indices = np.empty(nnz, dtype=self.index_dtype)
        self.data = np.empty(nnz, dtype=np.float64)
        self.filled = np.zeros(self.size, dtype=bool)
        self.atom_of_orbital = np.repeat(np.arange(len(counts)), counts)
        self.owner = owner
        self.handed: dict[int, list] = {}  # slab -> [(rows, cols, values)] from earlier slabs

    def nbytes(self) -> int:
        return self.indptr.nbytes + self.indices.nbytes + self.data.nbytes

    def take_handed(self, slab: int):
        """Entries earlier slabs set for ``slab``'s rows: (rows, cols, values)."""
        got = self.handed.pop(slab, [])
        return tuple(np.concatenate([g[k] for g in got]) if got else np.zeros(0, dt)
                     for k, dt in enumerate((np.int64, np.int64, np.float64)))

    def write(self, slab: int, rows, cols, vals) -> None:
        """Entries of complete rows of ``slab``'s atoms, each position once."""
        # tocsr gives canonical rows: columns sorted, a position once
        block = sp.coo_matrix((vals, (rows, cols)), shape=(self.size, self.size)).tocsr()
        lengths = np.diff(block.indptr)
        own = np.flatnonzero(lengths)
        lengths = lengths[own]
        if not np.array_equal(lengths, np.diff(self.indptr)[own]) or self.filled[own].any():
            raise RuntimeError(f"slab {slab}: predicted rows do not match the graph's layout")
        self.filled[own] = True
        starts = self.indptr[own].astype(np.int64)
        at = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(block.nnz)
        self.indices[at] = block.indices
        self.data[at] = block.data

    def hand_over(self, rows, cols, vals) -> None:
        """Entries of rows that later slabs own, kept until their slab is written."""
        row_owner = self.owner[self.atom_of_orbital[rows]]
        for q in np.unique(row_owner):
            pick = row_owner == q
            self.handed.setdefault(int(q), []).append((rows[pick], cols[pick], vals[pick]))

    def matrix(self) -> sp.csr_matrix:
        if not self.filled.all():
            raise RuntimeError("some rows of H were not predicted")
        H = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.size, self.size))
        H.has_sorted_indices = True
        return H


def _reverse_of_owned(arrays, m_owned: int, m_out: int) -> np.ndarray:
    """For each owned edge j -> i (shift S), the index of its reverse i -> j (shift -S) among
    the first ``m_out`` edges (every owned edge's reverse is there, see _reverse_edges_next)."""
    ei, shift = arrays[EDGE_INDEX][:, :m_out], arrays[EDGE_SHIFT][:m_out]
    n = len(arrays[NODE_IDS])
    reach = int(np.abs(shift).max(initial=0))
    width = 2 * reach + 1
    if n * n * width ** 3 >= 2 ** 62:
        raise RuntimeError("slab too large to match edges with their reverses")

    def key(first, second, s):
        cell = ((s[:, 0] + reach) * width + (s[:, 1] + reach)) * width + (s[:, 2] + reach)
        return (first * n + second) * width ** 3 + cell

    reverse_key = key(ei[0], ei[1], -shift)  # f = i -> j, S' answers the owned edge j -> i, -S'
    order = np.argsort(reverse_key, kind="stable")
    own_key = key(ei[1, :m_owned], ei[0, :m_owned], shift[:m_owned])
    at = order[np.minimum(np.searchsorted(reverse_key[order], own_key), m_out - 1)]
    if not np.array_equal(reverse_key[at], own_key):
        raise RuntimeError("an owned edge's reverse is missing from its slab")
    return at


def _write_slab(writer, slab, arrays, numbers, offsets, basis, pred_nodes, pred_edges,
                n_owned, m_owned, group_atoms):
    """Turn a slab's predicted blocks into its atoms' rows, ``group_atoms`` atoms at a time
    (bounds the entry arrays): node blocks, and for each owned edge j -> i the block
    (B_{j->i} + B_{i->j}^T) / 2 at (i, j); its transpose goes to row j's slab when that comes
    later, and an earlier slab's values replace it when that came first."""
    from ..blocks import block_entries

    ei = arrays[EDGE_INDEX]
    z = numbers[arrays[NODE_IDS]]
    off = offsets[arrays[NODE_IDS]]
    reverse = _reverse_of_owned(arrays, m_owned, pred_edges.shape[0])
    sender_slab = writer.owner[arrays[NODE_IDS][ei[0, :m_owned]]]
    starts = np.arange(0, n_owned + group_atoms, group_atoms).clip(max=n_owned)
    into = np.searchsorted(ei[1, :m_owned], starts)  # owned edges are sorted by receiver
    h_rows, h_cols, h_vals = writer.take_handed(slab)
    local = np.full(len(writer.owner), -1, dtype=np.int64)  # global atom -> slab node
    local[arrays[NODE_IDS]] = np.arange(len(arrays[NODE_IDS]))
    h_group = np.searchsorted(starts, local[writer.atom_of_orbital[h_rows]], side="right") - 1
    h_order = np.argsort(h_group, kind="stable")
    h_bounds = np.searchsorted(h_group[h_order], np.arange(len(starts)))

    def blocks(t, idx):
        return t[torch.as_tensor(idx, device=t.device)].double().cpu().numpy()

    for g in range(len(starts) - 1):
        atoms = np.arange(starts[g], starts[g + 1])
        e_in = np.arange(into[g], into[g + 1])
        e_in = e_in[sender_slab[e_in] >= slab]  # pairs with an earlier slab: handed over
        pair = 0.5 * (blocks(pred_edges, e_in)
                      + blocks(pred_edges, reverse[e_in]).transpose(0, 2, 1))
        ahead = sender_slab[e_in] > slab
        if ahead.any():  # row j of a later slab gets the transpose: H_ji = H_ij^T
            rows, cols, vals = block_entries(pair[ahead].transpose(0, 2, 1), ei[0, e_in[ahead]],
                                             ei[1, e_in[ahead]], z, off, basis)
            writer.hand_over(rows, cols, vals)
        parts = [block_entries(blocks(pred_nodes, atoms), atoms, atoms, z, off, basis),
                 block_entries(pair, ei[1, e_in], ei[0, e_in], z, off, basis)]
        rows, cols, vals = (np.concatenate(x) for x in zip(*parts))
        h = h_order[h_bounds[g]:h_bounds[g + 1]]
        writer.write(slab, np.concatenate([rows, h_rows[h]]), np.concatenate([cols, h_cols[h]]),
                     np.concatenate([vals, h_vals[h]]))


def _memory_law(model, max_gib):
    if max_gib is None:
        return None
    if not max_gib > 0:
        raise InputError("--max-gib", f"{max_gib} GiB", "give a positive memory budget")
    from ..model.memory import measure_memory_law

    with torch.enable_grad():  # the law is measured on training steps
        return measure_memory_law(model)


def _slab_chunk(law, arrays, m_out: int, max_gib: float, structure):
    """Edge chunk for one slab within ``max_gib`` (None: the whole slab at once), from the
    planner training uses; without gradients only the parameters stay resident."""
    from ..model.memory import plan_chunks

    receiver = arrays[EDGE_INDEX][1]
    degree = int(np.bincount(receiver).max()) if len(receiver) else 1
    n_nodes, m = len(arrays[NODE_IDS]), len(receiver)
    source = structure.source or "structure"
    (chunk,) = plan_chunks(law, [(n_nodes, m, degree, m_out)], max_gib, source=source,
                           fixed_bytes=law.parameters * law.itemsize,
                           too_large=functools.partial(_slab_too_large, source, max_gib))
    return chunk


def _slab_too_large(source, max_gib, k, n_nodes, n_edges, need_gib) -> InputError:
    return InputError(source, f"a slab of {n_nodes} atoms and {n_edges} edges needs about "
                      f"{need_gib:.1f} GiB even in the smallest edge chunks, over --max-gib "
                      f"{max_gib:g}", "give fewer --max-atoms per slab, or raise --max-gib")


MIN_CHUNK = 50_000  # edges: slabs are sized so that chunks of at least this many fit


def _slab_sizes(arrays) -> dict:
    """A slab's sizes for the memory law: a part's (:func:`~hampart.partition.build.part_sizes`)
    and ``m_out``, the edges given blocks (owned edges and the reverses that follow them)."""
    from ..partition.build import part_sizes

    sizes = part_sizes(arrays)
    _, sizes["m_out"] = _reverse_edges_next(arrays, sizes["n_owned"], sizes["n_owned_edges"])
    return sizes


def _plan_slabs(graph, structure, n_layers: int, law, max_gib, max_atoms, rcut, images):
    """Owner of each atom: slabs along the longest cell vector, at most ``max_atoms`` owned
    atoms each, and (``max_atoms`` None) as few as let every slab's network step run in edge
    chunks of MIN_CHUNK within ``max_gib``: fewer slabs, less halo computed twice. The search
    is the one ``hampart slice --parts auto`` makes (:func:`hampart.partition.plan.choose_parts`)."""
    from ..model.memory import GIB
    from ..partition.build import SliceParams
    from ..partition.plan import choose_parts

    n = graph.n_nodes
    parts = math.ceil(n / int(max_atoms)) if max_atoms else 1
    if max_atoms or law is None:
        return np.zeros(n, dtype=np.int64) if parts == 1 else _slab_owner(structure, parts)
    params = SliceParams(rcut=float(rcut), method="slab", parts=1, halo=n_layers + 1,
                         axis=_longest_axis(structure), balance="atoms", seed=0, images=images,
                         budget={"max_gib": float(max_gib), "min_parts": 1})
    fixed = law.parameters * law.itemsize  # without gradients only the parameters stay

    def need(sizes) -> float:
        m = sizes["n_edges"]
        return (law.step_bytes(sizes["n_nodes"], m, min(m, MIN_CHUNK), sizes["m_out"])
                + fixed) / GIB

    _, owner, _ = choose_parts(structure, graph, params, need,
                               source=structure.source or "structure", sizes_of=_slab_sizes,
                               fix="raise --max-gib, or give --max-atoms per slab (the "
                                   "network then runs in smaller edge chunks)")
    return owner


@torch.no_grad()
def predict_hamiltonian(model, basis, structure, n_layers: int, rcut: float,
                        images: str = "refuse", max_atoms: int | None = None,
                        device="cpu", dtype=torch.float32, progress=None,
                        group_atoms: int = 2048,
                        max_gib: float | None = None,
                        neighbour_range: tuple[float, float] | None = None,
                        ) -> tuple[sp.csr_matrix, dict]:
    """(H, info) for a :class:`~hampart.io.structure.Structure`; see the module docstring.
    ``info["neighbour_count"]``: smallest, mean and largest smooth neighbour count of the
    atoms; with ``neighbour_range`` (the training atoms' smallest and largest) also
    ``atoms_outside_neighbour_range``, beyond it by more than a quarter of its width.

    Memory: the matrix itself (12 bytes per entry with 32-bit indices), filled row by row,
    plus one slab at a time: its activations, its predicted blocks, and the entries of
    ``group_atoms`` atoms' rows being written. ``max_gib`` bounds the activations: each slab
    runs in the largest edge chunks whose training-step memory law (an upper bound without
    gradients) fits (:func:`hampart.model.memory.plan_chunks`, passed to the model's forward);
    None keeps the model's ``edge_chunk``. On CPU no chunk is larger than
    :func:`~hampart.model.memory.cpu_edge_chunk` (about 10k edges at 16 channels in float32:
    twice as fast as 80k, docs/model.md "Allocation"). ``max_atoms`` caps the owned atoms
    of a slab; None (with ``max_gib``) takes the fewest slabs that run in chunks of at least
    MIN_CHUNK edges within the budget. ``progress(k, parts, owned atoms, edges, seconds so
    far)`` is called after each slab."""
    from ..graph import radius_graph
    from ..model.memory import cpu_edge_chunk
    from ..partition import build_partitions

    t0 = time.perf_counter()
    if max_atoms is not None and (isinstance(max_atoms, bool)
                                  or not isinstance(max_atoms, (int, np.integer))
                                  or max_atoms < 1):
        raise InputError("--max-atoms", f"{max_atoms!r}", "give a positive number of atoms "
                         "per slab, or leave it out (slabs sized by --max-gib)")
    if max_atoms is None and max_gib is None:
        max_atoms = 20000  # no budget to size slabs by
    numbers = np.asarray(structure.numbers, dtype=np.int64)
    basis.check(numbers, source=structure.source or "structure")
    graph = radius_graph(structure.positions, structure.cell, structure.pbc, rcut,
                         images=images, source=structure.source or "structure")
    n = graph.n_nodes
    t_counts = time.perf_counter()
    counts = neighbour_counts(structure, graph, rcut)
    count_seconds = time.perf_counter() - t_counts
    if neighbour_range is not None:  # the training atoms' (min, max)
        low, high = neighbour_range
        slack = NEIGHBOUR_COUNT_SLACK * max(high - low, 1e-3 * high)
        outside = int(((counts < low - slack) | (counts > high + slack)).sum())
    offsets = basis.orbital_offsets(numbers)
    law = _memory_law(model, max_gib)
    # on CPU, chunks small enough for malloc to reuse freed memory (no fresh pages per op)
    cpu_chunk = cpu_edge_chunk(model) if torch.device(device).type == "cpu" else None
    owner = _plan_slabs(graph, structure, n_layers, law, max_gib, max_atoms, rcut, images)
    parts = int(owner.max()) + 1
    writer = _RowWriter(graph, np.diff(offsets), owner)
    positions = torch.as_tensor(structure.positions, dtype=dtype, device=device)
    cell = torch.as_tensor(np.asarray(structure.cell), dtype=dtype, device=device)
    z_all = torch.as_tensor(numbers, device=device)
    chunks = set()
    peak_edges, model_seconds = 0, 0.0
    for p, arrays in build_partitions(graph, owner, halo=n_layers + 1):
        n_owned = int((arrays[NODE_HOP] == 0).sum())
        m_owned = int(arrays[EDGE_OWNED].sum())
        order, m_out = _reverse_edges_next(arrays, n_owned, m_owned)
        # every edge field (keys.FIELDS) alike; the owned edges stay first, in their order
        arrays.update(take(arrays, "edge", order, owned=order[:m_owned]))
        peak_edges = max(peak_edges, len(order))
        # None or 0: the whole slab at once
        chunk = (_slab_chunk(law, arrays, m_out, max_gib, structure) if law is not None
                 else model.edge_chunk)
        if cpu_chunk and len(order) > cpu_chunk:
            chunk = min(chunk or cpu_chunk, cpu_chunk)
        chunks.add(chunk if chunk and chunk < len(order) else None)
        idx = torch.as_tensor(arrays[NODE_IDS], device=device)
        t1 = time.perf_counter()
        pred_nodes, pred_edges = model(z_all[idx], positions[idx], cell,
                                       torch.as_tensor(arrays[EDGE_INDEX], device=device),
                                       torch.as_tensor(arrays[EDGE_SHIFT], device=device),
                                       edge_outputs=m_out,
                                       edge_chunk=chunk or 0)
        model_seconds += time.perf_counter() - t1
        _write_slab(writer, p, arrays, numbers, offsets, basis, pred_nodes[:n_owned], pred_edges,
                    n_owned, m_owned, max(1, int(group_atoms)))
        del pred_nodes, pred_edges
        if progress is not None:
            progress(p + 1, parts, n_owned, len(order), time.perf_counter() - t0)
    H = writer.matrix()
    info = {"n_atoms": n, "n_edges": graph.n_edges, "parts": parts,
            "neighbour_count": {"min": float(counts.min()), "mean": float(counts.mean()),
                                "max": float(counts.max())} if n else {},
            **({} if neighbour_range is None else {"atoms_outside_neighbour_range": outside}),
            "largest_part_edges": int(peak_edges), "n_orbitals": writer.size, "nnz": int(H.nnz),
            "matrix_gib": writer.nbytes() / 2 ** 30, "model_seconds": model_seconds,
            "neighbour_count_seconds": count_seconds,
            "edge_chunks": sorted(chunks, key=lambda c: -1 if c is None else c),
            "seconds": time.perf_counter() - t0}
    return H, info


def neighbour_counts(structure, graph, rcut: float, chunk: int = 1 << 20) -> np.ndarray:
    """``sum_j envelope(r_ij)`` of every atom ``(n,)``: the smooth neighbour count the model's
    degree normalisation and on-site sums see (edges in chunks: bounded memory)."""
    from ..graph import edge_vectors
    from ..model.radial import smooth_degree

    counts = torch.zeros(graph.n_nodes, dtype=torch.float64)
    positions, cell = np.asarray(structure.positions, float), np.asarray(structure.cell, float)
    for a in range(0, graph.n_edges, chunk):
        index, shift = graph.edge_index[:, a:a + chunk], graph.edge_shift[a:a + chunk]
        r = np.linalg.norm(edge_vectors(positions, cell, index, shift), axis=-1)
        counts += smooth_degree(torch.from_numpy(r), torch.from_numpy(index[1]).long(),
                                graph.n_nodes, rcut)
    return counts.numpy()


# how far past the training atoms' range a neighbour count may go, in units of that range
NEIGHBOUR_COUNT_SLACK = 0.25


def _label_statistics(payload) -> dict:
    """The training summary's ``label_statistics`` kept in a model file ({} when absent)."""
    import json

    try:
        summary = json.loads((payload.get("info") or {}).get("summary") or "{}")
        return dict(summary.get("label_statistics") or {})
    except (TypeError, ValueError):
        return {}


def _training_neighbour_range(payload) -> tuple[float, float] | None:
    """The training atoms' smallest and largest smooth neighbour count, when recorded."""
    seen = _label_statistics(payload).get("neighbour_count") or {}
    try:
        return float(seen["min"]), float(seen["max"])
    except (TypeError, ValueError, KeyError):
        return None  # a model file from before the range was recorded


def _warn_unseen_neighbour_counts(info, neighbour_range, model_path, structure, images) -> None:
    """Atoms with more or fewer neighbours than any training atom had (another density, or a
    cell predicted with all its images by a model trained with --images minimum) are
    extrapolated, the on-site blocks first. One warning when over 5 % of them are."""
    import warnings

    from ..errors import InputWarning

    outside, n = info.get("atoms_outside_neighbour_range", 0), info["n_atoms"]
    if neighbour_range is None or not n or outside <= 0.05 * n:
        return
    seen, here = neighbour_range, info["neighbour_count"]
    warnings.warn(InputWarning(
        model_path, f"{outside} of {n} atoms of {structure.source or 'the structure'} have "
        f"smooth neighbour counts (the envelope summed within r_cut, images {images}) of "
        f"{here['min']:.1f}-{here['max']:.1f}, outside the training atoms' {seen[0]:.1f}-"
        f"{seen[1]:.1f}: the model extrapolates there, on-site blocks most",
        "train on structures of this density; a model trained on cells under 2 r_cut "
        "(--images minimum) predicts only such cells (docs/training.md)"))


def _check_species(model, structure, model_path, structure_path) -> None:
    """InputError naming the model file when the structure has species the model has no heads
    for (an element it was not trained on, or a ghost keeping orbitals it was not trained with)."""
    from ..basis import species_name

    unknown = model.unknown_elements(structure.numbers)
    if unknown:
        names = ", ".join(map(species_name, unknown))
        raise InputError(model_path, f"was trained on {', '.join(map(species_name, model.elements))}"
                         f" only, not on {names} (in {structure_path})",
                         f"predict structures of those species, or train on data containing "
                         f"{names} (a ghost keeping an element's orbitals, <El>_ghost, is a "
                         "species of its own)")


def _warn_untrained_elements(payload, structure, model_path) -> None:
    """The basis may cover elements the training data had none of; their heads are untrained."""
    import warnings

    from ..basis import species_name
    from ..errors import InputWarning

    trained = set(_label_statistics(payload).get("atoms") or {})
    if not trained:
        return  # a model file from before training recorded its elements
    present = {species_name(z) for z in np.unique(structure.numbers) if z}
    missing = sorted(present - trained)
    if missing:
        warnings.warn(InputWarning(model_path, f"was trained on {', '.join(sorted(trained))} "
                                   f"only; the blocks of {', '.join(missing)} in "
                                   f"{structure.source or 'the structure'} are not learned",
                                   "train on structures containing these elements"))


def predict_file(model_path, structure_path, out=None, images="refuse", max_atoms=None,
                 device="auto", dtype="float32", max_gib: float | None = 8.0, progress=None):
    """Load the model and the structure (file or dataset directory), predict, write ``out``."""
    import os

    from ..basis import Basis
    from ..distributed.launch import resolve_device
    from ..model.io import load_model
    from ..io.csr import write_matrix
    from ..io.structure import read_structure

    device = resolve_device(device)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    model, payload = load_model(model_path, device=device, dtype=tdtype)
    model.eval()
    basis = Basis.from_dict(payload["basis"], source=str(model_path))
    path = str(structure_path)
    if os.path.isdir(path):
        path = os.path.join(path, "structure.xyz")
        if not os.path.exists(path):
            raise InputError(structure_path, "directory without structure.xyz",
                             "give a structure file or a directory made by hampart generate")
    structure = read_structure(path)
    _check_species(model, structure, model_path, structure_path)
    _warn_untrained_elements(payload, structure, model_path)
    seen = _training_neighbour_range(payload)
    H, info = predict_hamiltonian(model, basis, structure, int(payload["model"].get("layers", 1)),
                                  float(payload["model"]["rcut"]), images=images,
                                  neighbour_range=seen,
                                  max_atoms=max_atoms, device=device, dtype=tdtype,
                                  max_gib=max_gib, progress=progress)
    _warn_unseen_neighbour_counts(info, seen, model_path, structure, images)
    if out is not None:
        extra = dict(zip(STRUCTURE_KEYS, (structure.numbers, structure.positions, structure.cell)))
        write_matrix(out, H, extra=extra if str(out).lower().endswith(".npz") else None)
    return H, info
