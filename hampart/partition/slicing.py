"""``slice_dataset``: a dataset cut into a partition directory, written once and reused.

The composition of the steps of the other modules: validate the parameters
(:func:`.build.check_params`), key the inputs (:mod:`.key`) and reuse a finished directory with
that key (:func:`.store.reusable`); otherwise load the dataset, build the graph, choose the
owners (a given count, or :func:`.plan.choose_parts` for ``--parts auto``), extract the labels,
and write the parts and the manifest (:func:`.store.write_partitions`). Positions in Angstrom,
labels in Hartree; edge direction as in :mod:`hampart.keys`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError, InputWarning
from .build import (AUTO, SliceParams, check_params, iter_parts, make_graph, owners_for,
                    part_labels)
from .halo import partition_stats
from .key import input_hashes, partition_key
from .plan import check_budget, choose_parts
from .store import FORMAT, VERSION, new_manifest, reusable, summary_text, write_partitions

__all__ = ["REPLICATION_WARNING", "slice_params", "slice_dataset", "write_slices"]

REPLICATION_WARNING = 4.0  # stored / graph edges above which slicing warns


def slice_params(rcut, method, parts, halo, axis=None, balance="width", seed=0,
                 images="refuse", owner=None, budget=None, part_memory=None) -> SliceParams:
    """:func:`.build.check_params`, and for ``parts="auto"`` the budget
    (:func:`.plan.check_budget`) and the memory law it needs."""
    params = check_params(rcut, method, parts, halo, axis, balance, seed, images, owner)
    if (params.parts == AUTO) != (budget is not None):
        raise InputError("--parts", "auto and --max-gib go together: auto needs a memory budget, "
                         "and a budget needs auto", "give --parts auto --max-gib G, or --parts N "
                         "alone")
    if budget is None:
        return params
    params = dataclasses.replace(params, budget=check_budget(budget, params.halo))
    if part_memory is None:
        raise InputError("part_memory", "--parts auto needs the memory a part takes to train",
                         "pass part_memory=hampart.model.memory.part_memory (the model's "
                         "memory law), as hampart slice does")
    return params


def slice_dataset(dataset_or_path, rcut, method, parts, halo, out, axis=None, balance="width",
                  seed=0, images="refuse", owner=None, hamiltonian=None, basis=None,
                  replace=False, log=None, budget=None, part_memory=None):
    """Partition a dataset and write ``out`` (format version 1). Returns ``(Path, reused)``.

    ``dataset_or_path``: a dataset directory or structure file (read with
    :func:`hampart.io.dataset.load_dataset`, with ``hamiltonian`` and ``basis`` as overrides),
    or a loaded ``Dataset``. An existing ``out`` with the same key is reused untouched; one
    with another key is an :class:`InputError` unless ``replace``.

    ``parts="auto"`` with ``budget={"max_gib": G, "model": {...}, "dtype": "float32",
    "min_parts": 1}``: the fewest parts (at least ``min_parts``) whose largest part trains
    whole within G GiB per rank, as estimated by ``part_memory(basis, model, dtype) ->
    need(sizes) -> GiB``: pass :func:`hampart.model.memory.part_memory` (the model's memory law,
    what ``hampart slice --parts auto`` passes). Partitioning sits below the model, so it takes
    the law as an argument instead of importing it.
    """
    params = slice_params(rcut, method, parts, halo, axis, balance, seed, images, owner, budget,
                          part_memory)
    return write_slices(dataset_or_path, params, out, owner=owner, hamiltonian=hamiltonian,
                        basis=basis, replace=replace, log=log, part_memory=part_memory)


def write_slices(dataset_or_path, params: SliceParams, out, owner=None, hamiltonian=None,
                 basis=None, replace=False, log=None, part_memory=None):
    """:func:`slice_dataset` with checked parameters (:func:`slice_params`)."""
    t_start = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out is a file", "give a directory path for the partitions")
    hashes = input_hashes(dataset_or_path, hamiltonian, basis, owner)
    key = partition_key(hashes, params.as_dict(), FORMAT, VERSION)
    if reusable(out, key, replace):
        if log:
            log(f"reusing {out} (key {key[:12]})")
        return out, True

    dataset = _load(dataset_or_path, hamiltonian, basis)
    structure, H, the_basis = dataset.structure, dataset.hamiltonian, dataset.basis
    if H is not None and the_basis is None:
        raise InputError(dataset_or_path, "a Hamiltonian without a basis", "pass --basis")
    if the_basis is not None:  # the structure's elements, and its ghosts keeping orbitals
        the_basis = the_basis.for_structure(structure.numbers,
                                            source=str(getattr(structure, "source", "structure")))
    need = None
    if params.parts == AUTO:
        if the_basis is None:
            raise InputError(str(dataset_or_path), "--parts auto needs the basis (the model's "
                             "size depends on it)",
                             "pass --basis, or a dataset directory with basis.yaml")
        need = part_memory(the_basis, params.budget["model"], params.budget["dtype"])

    timings = {}
    t = time.perf_counter()
    graph = make_graph(structure, params)
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = None
    if params.parts == AUTO:
        parts, own, plan = choose_parts(structure, graph, params, need, str(dataset_or_path))
        params = params.with_parts(parts)
    else:
        own = owners_for(structure, graph, params, owner)
    timings["owners"] = time.perf_counter() - t
    labels = info = None
    if H is not None:
        t = time.perf_counter()
        node, edge, info = part_labels(structure, H, the_basis, graph)
        timings["labels"] = time.perf_counter() - t
        labels = (node, edge)
    src = dataset_or_path if isinstance(dataset_or_path, (str, os.PathLike)) \
        else getattr(dataset, "path", None)
    source = {"file": None if src is None else str(src), "sha256": hashes["structure"],
              "hamiltonian_sha256": hashes.get("hamiltonian"),
              "n_atoms": int(graph.n_nodes), "n_edges": int(graph.n_edges),
              "cell": np.asarray(structure.cell, dtype=float).reshape(3, 3).tolist(),
              "pbc": [bool(b) for b in np.broadcast_to(structure.pbc, (3,))]}
    manifest_for = functools.partial(_manifest, key, source, params, the_basis, H is not None,
                                     plan, graph, own, info, timings, t_start)
    manifest = write_partitions(out, iter_parts(structure, graph, own, params, labels, timings),
                                manifest_for)
    if log:
        log(summary_text(out, manifest))
    replication = manifest["stats"]["replication"]
    if replication > REPLICATION_WARNING:
        warnings.warn(InputWarning(out, f"the parts hold {replication:.1f}x the graph's "
                                   "edges (halos), so every epoch computes that many",
                                   "a shallower --halo or fewer, larger parts (trained with "
                                   "train --max-gib, edges in chunks) cost less"))
    return out, False


def _manifest(key, source, params: SliceParams, basis, labels: bool, plan, graph, owner, info,
              timings, t_start, entries, write_wait) -> dict:
    """The manifest once every part is written (``entries`` with their sha256)."""
    timings["write_wait"] = write_wait
    stats = partition_stats(graph, owner, entries)
    if info is not None:
        stats["labels_outside_frobenius"] = info.get("outside_frobenius")
        stats["labels_total_frobenius"] = info.get("total_frobenius")
    stats["merged_images"] = int(graph.merged)
    stats["stage_seconds"] = {k: round(float(v), 4) for k, v in timings.items()}
    stats["seconds"] = round(time.perf_counter() - t_start, 4)
    p = params.as_dict()
    p.update({"basis": None if basis is None else basis.to_dict(), "labels": labels,
              "parts": len(entries), **({"budget": {**p["budget"], **plan}} if plan else {})})
    return new_manifest(key, source, p, entries, stats)


def _load(dataset_or_path, hamiltonian, basis):
    """The dataset to slice, with ``hamiltonian`` and ``basis`` overriding its own."""
    if isinstance(dataset_or_path, (str, os.PathLike)):
        from ..io.dataset import load_dataset

        return load_dataset(dataset_or_path, hamiltonian=hamiltonian, basis=basis)
    dataset = dataset_or_path
    if hamiltonian is not None:
        dataset = _replace_field(dataset, "hamiltonian", hamiltonian)
    if basis is not None:
        dataset = _replace_field(dataset, "basis", basis)
    return dataset


def _replace_field(dataset, name, value):
    if name == "basis" and not hasattr(value, "union_shells"):
        from ..basis import load_basis

        value = load_basis(value)
    if name == "hamiltonian" and isinstance(value, (str, os.PathLike)):
        from ..io.csr import read_matrix

        value = read_matrix(value)
    return dataclasses.replace(dataset, **{name: value})
