"""Predict the Hamiltonian of a structure of any size, in bounded memory.

The structure's graph is cut into slabs of at most ``max_atoms`` owned atoms; each slab gets a
halo of depth L + 1 (L = the model's layers) so that every owned atom and every owned edge is
computed exactly as in the full graph (DESIGN.md §3), one slab at a time. Owned blocks are turned
into sparse entries and the matrix is assembled as (P + P^T) / 2: exactly symmetric, H in Hartree,
orbitals in the internal (CP2K) order.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import InputError

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
    delta = positions - structure.positions
    ref_cell = np.asarray(structure.cell, dtype=np.float64)
    pbc = np.asarray(structure.pbc, dtype=bool)
    if pbc.any() and abs(np.linalg.det(ref_cell)) > 1e-9:
        frac = delta @ np.linalg.inv(ref_cell)
        frac[:, pbc] -= np.round(frac[:, pbc])
        delta = frac @ ref_cell
    worst = float(np.abs(delta).max(initial=0.0))
    if worst > tolerance or not np.allclose(cell, ref_cell, atol=tolerance):
        raise InputError(prediction_path, f"was predicted for other positions or another cell "
                         f"(atoms up to {worst:.3g} A from the reference's)", fix)


def _slab_owner(structure, parts: int) -> np.ndarray:
    from ..partition import slab_owners

    lengths = np.linalg.norm(structure.cell, axis=1)
    axis = "xyz"[int(np.argmax(lengths))] if lengths.any() else "x"
    return slab_owners(structure.positions, structure.cell, parts, axis=axis, balance="atoms")


def _local_to_global_orbitals(node_ids, offsets, counts) -> np.ndarray:
    """Global orbital index of every orbital of the local nodes, in local order."""
    c = counts[node_ids]
    starts = np.repeat(offsets[node_ids] - np.concatenate([[0], np.cumsum(c)[:-1]]), c)
    return starts + np.arange(int(c.sum()))


@torch.no_grad()
def predict_hamiltonian(model, basis, structure, n_layers: int, rcut: float,
                        images: str = "refuse", max_atoms: int = 20000,
                        device="cpu", dtype=torch.float32, progress=None) -> tuple[sp.csr_matrix, dict]:
    """(H, info) for a :class:`~hampart.io.structure.Structure`; see the module docstring."""
    from ..blocks import assemble_blocks
    from ..graph import radius_graph
    from ..partition import build_partitions

    t0 = time.perf_counter()
    numbers = np.asarray(structure.numbers, dtype=np.int64)
    basis.check(numbers, source=structure.source or "structure")
    graph = radius_graph(structure.positions, structure.cell, structure.pbc, rcut,
                         images=images, source=structure.source or "structure")
    n = graph.n_nodes
    offsets = basis.orbital_offsets(numbers)
    counts = np.diff(offsets)
    parts = max(1, math.ceil(n / max(1, int(max_atoms))))
    owner = np.zeros(n, dtype=np.int64) if parts == 1 else _slab_owner(structure, parts)
    rows, cols, vals = [], [], []
    positions = torch.as_tensor(structure.positions, dtype=dtype, device=device)
    cell = torch.as_tensor(np.asarray(structure.cell), dtype=dtype, device=device)
    z_all = torch.as_tensor(numbers, device=device)
    peak_edges = 0
    for p, arrays in build_partitions(graph, owner, halo=n_layers + 1):
        node_ids = arrays["node_ids"]
        n_owned = int((arrays["node_hop"] == 0).sum())
        m_owned = int(arrays["edge_owned"].sum())
        peak_edges = max(peak_edges, arrays["edge_index"].shape[1])
        idx = torch.as_tensor(node_ids, device=device)
        pred_nodes, pred_edges = model(z_all[idx], positions[idx], cell,
                                       torch.as_tensor(arrays["edge_index"], device=device),
                                       torch.as_tensor(arrays["edge_shift"], device=device))
        node_blocks = np.zeros((len(node_ids),) + tuple(pred_nodes.shape[1:]))
        node_blocks[:n_owned] = pred_nodes[:n_owned].double().cpu().numpy()
        local = assemble_blocks(node_blocks, pred_edges[:m_owned].double().cpu().numpy(),
                                numbers[node_ids], basis, arrays["edge_index"][:, :m_owned],
                                symmetrize=False).tocoo()
        glob = _local_to_global_orbitals(node_ids, offsets, counts)
        rows.append(glob[local.row])
        cols.append(glob[local.col])
        vals.append(local.data)
        if progress is not None:
            progress(p + 1, parts)
    size = int(offsets[-1])
    P = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(size, size)).tocsr()
    H = ((P + P.T) * 0.5).tocsr()
    H.eliminate_zeros()
    info = {"n_atoms": n, "n_edges": graph.n_edges, "parts": parts, "largest_part_edges": peak_edges,
            "n_orbitals": size, "nnz": int(H.nnz), "seconds": time.perf_counter() - t0}
    return H, info


def _warn_untrained_elements(payload, structure, model_path) -> None:
    """The basis may cover elements the training data had none of; their heads are untrained."""
    import json
    import warnings

    from ase.data import chemical_symbols

    from ..errors import InputWarning

    try:
        summary = json.loads((payload.get("info") or {}).get("summary") or "{}")
        trained = set((summary.get("label_statistics") or {}).get("atoms") or {})
    except (TypeError, ValueError):
        return
    if not trained:
        return  # a model file from before training recorded its elements
    present = {chemical_symbols[z] for z in np.unique(structure.numbers) if z > 0}
    missing = sorted(present - trained)
    if missing:
        warnings.warn(InputWarning(model_path, f"was trained on {', '.join(sorted(trained))} "
                                   f"only; the blocks of {', '.join(missing)} in "
                                   f"{structure.source or 'the structure'} are not learned",
                                   "train on structures containing these elements"))


def predict_file(model_path, structure_path, out=None, images="refuse", max_atoms=20000,
                 device="auto", dtype="float32"):
    """Load the model and the structure (file or dataset directory), predict, write ``out``."""
    import os

    from ..basis import Basis
    from ..distributed.launch import resolve_device
    from ..distributed.trainer import load_model
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
    _warn_untrained_elements(payload, structure, model_path)
    H, info = predict_hamiltonian(model, basis, structure, int(payload["model"].get("layers", 1)),
                                  float(payload["model"]["rcut"]), images=images,
                                  max_atoms=max_atoms, device=device, dtype=tdtype)
    if out is not None:
        extra = dict(zip(STRUCTURE_KEYS, (structure.numbers, structure.positions, structure.cell)))
        write_matrix(out, H, extra=extra if str(out).lower().endswith(".npz") else None)
    return H, info
