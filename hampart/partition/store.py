"""Partition directories on disk: format ``hampart-partitions`` version 1 (docs/partitions.md).

::

    DIR/manifest.json          written last; format, version, key, source, params, parts, stats
    DIR/part-00000.npz         one file per part, np.load(..., allow_pickle=False)

Each part file holds the arrays of :func:`hampart.partition.halo.build_partition` (``node_ids``,
``node_hop``, ``edge_index``, ``edge_shift``, ``edge_owned``; ``edge_ids`` of the owned edges
only, ``(n_owned_edges,)``) plus ``numbers``,
``positions`` (Angstrom, global, unwrapped), ``cell``, ``pbc``, ``halo`` and ``part`` (int64
scalars) and, when the dataset has a Hamiltonian, the labels ``node_blocks``
``(n_owned, u, u)`` and ``edge_blocks`` ``(n_owned_edges, u, u)`` in Hartree, padded union basis.

The *key* is a sha256 over the input files' sha256 (structure, Hamiltonian, basis: hashed as
bytes, never parsed; .npz by member contents, without zip time stamps; of a dataset directory
only those three files, not meta.json) and every parameter, so a repeated ``hampart slice``
recognises its own output without building the graph. Writes go to a temporary directory renamed into place; each
part file's sha256 is in the manifest and is checked on every load.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import InputError, InputWarning
from ..keys import (CELL, EDGE_BLOCKS, EDGE_INDEX, EDGE_OWNED, EDGE_SHIFT, NODE_BLOCKS, NODE_HOP,
                    NODE_IDS, NUMBERS, PBC, POSITIONS)
from .halo import EDGE_IDS, _check_halo, build_partition, incoming_csr, partition_stats
from .owners import AXES, check_owner, metis_owners, slab_owners

__all__ = ["FORMAT", "VERSION", "MANIFEST", "METHODS", "slice_dataset", "partition_arrays",
           "load_manifest", "load_partition", "verify", "part_file", "sha256_file"]

FORMAT = "hampart-partitions"
VERSION = 1
MANIFEST = "manifest.json"
METHODS = ("slab", "metis", "custom")
REPLICATION_WARNING = 4.0  # stored / graph edges above which slicing warns
AUTO = "auto"  # --parts auto: the fewest parts whose largest fits a memory budget
HALO = "halo"  # int64 scalar in each part file: the halo depth k it was built with
PART = "part"  # int64 scalar in each part file: its index
REQUIRED = (NODE_IDS, NODE_HOP, NUMBERS, POSITIONS, CELL, EDGE_INDEX, EDGE_SHIFT, EDGE_OWNED, HALO)


def part_file(k: int) -> str:
    return f"part-{k:05d}.npz"


def sha256_file(path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_arrays(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _sha256_input(path) -> str:
    """sha256 of an input file's content; of an .npz (zip) archive its member names and
    uncompressed bytes, not the zip's time stamps, so identical data rewritten keep their key."""
    if not zipfile.is_zipfile(path):
        return sha256_file(path)
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                h.update(name.encode() + b"\0")
                with archive.open(name) as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(path, f"damaged archive ({e})", "rewrite or regenerate the file") from None
    return h.hexdigest()


def _sha256_path(path) -> str:
    """sha256 of a file, or of a dataset directory's data files (structure, H, basis; not
    meta.json, which records timings, nor anything else a user keeps there)."""
    from ..io.dataset import BASIS_FILE, HAMILTONIAN_FILE, STRUCTURE_FILE

    path = Path(path)
    if path.is_file():
        return _sha256_input(path)
    h = hashlib.sha256()
    for name in (STRUCTURE_FILE, HAMILTONIAN_FILE, BASIS_FILE):
        if (path / name).is_file():
            h.update(name.encode() + b"\0" + _sha256_input(path / name).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------- parameters
def _params(rcut, method, parts, halo, axis, balance, seed, images, owner) -> dict:
    """Validated parameters, normalised (slab-only options are null for other methods)."""
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
    return {"rcut": rcut, "method": method, "parts": parts if parts == AUTO else int(parts),
            "halo": halo, "axis": axis,
            "balance": balance, "seed": int(seed), "images": images}


def _input_hashes(data, hamiltonian, basis, owner) -> dict:
    """sha256 of every input, from file bytes when given paths (fast: nothing is parsed)."""
    from ..basis import Basis

    hashes = {}
    if isinstance(data, (str, os.PathLike)):
        if not Path(data).exists():
            raise InputError(data, "no such file or directory",
                             "give a dataset directory (hampart generate) or a structure file")
        hashes["structure"] = _sha256_path(data)
    else:
        s = data.structure
        hashes["structure"] = _sha256_arrays(s.numbers, s.positions, s.cell, s.pbc)
        if data.hamiltonian is not None:
            H = data.hamiltonian.tocsr()
            hashes["hamiltonian"] = _sha256_arrays(H.data, H.indices, H.indptr, np.array(H.shape))
        if data.basis is not None:
            hashes["basis"] = hashlib.sha256(
                json.dumps(data.basis.to_dict(), sort_keys=True).encode()).hexdigest()
    if hamiltonian is not None:
        if isinstance(hamiltonian, (str, os.PathLike)):
            if not Path(hamiltonian).is_file():
                raise InputError(hamiltonian, "no such file",
                                 "give the Hamiltonian file (.csr or .npz)")
            hashes["hamiltonian"] = _sha256_input(hamiltonian)
        else:
            H = hamiltonian.tocsr()
            hashes["hamiltonian"] = _sha256_arrays(H.data, H.indices, H.indptr, np.array(H.shape))
    if basis is not None:
        if isinstance(basis, Basis):
            spec = json.dumps(basis.to_dict(), sort_keys=True)
        elif Path(str(basis)).is_file():
            spec = sha256_file(basis)
        else:
            spec = str(basis)  # a built-in basis name
        hashes["basis"] = hashlib.sha256(spec.encode()).hexdigest()
    if owner is not None:
        hashes["owner"] = _sha256_arrays(np.asarray(owner, dtype=np.int64))
    return hashes


def _key(hashes: dict, params: dict) -> str:
    text = json.dumps({"format": FORMAT, "version": VERSION, "inputs": hashes, "params": params},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- building
def _owners(structure, graph, params, owner):
    if params["parts"] > graph.n_nodes:
        raise InputError("--parts", f"{params['parts']} parts for {graph.n_nodes} atoms "
                         "(every part must own an atom)", f"use at most {graph.n_nodes} parts")
    if params["method"] == "slab":
        return slab_owners(structure.positions, structure.cell, params["parts"],
                           axis=params["axis"], balance=params["balance"], pbc=structure.pbc)
    if params["method"] == "metis":
        return metis_owners(graph, params["parts"], seed=params["seed"])
    return check_owner(owner, graph.n_nodes, params["parts"], source="owner array")


def _check_budget(budget: dict, halo: int) -> dict:
    """The memory request of ``--parts auto``, normalised (it is part of the key)."""
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


def _parts_chooser(params, basis, part_memory, source):
    """``choose(structure, graph) -> (parts, owner, record)``: the fewest parts (from
    ``min_parts``) whose largest part needs at most ``max_gib``; grows the count by the ratio
    of need to budget, then bisects down to the fewest that fits."""
    budget = params["budget"]
    if basis is None:
        raise InputError(source, "--parts auto needs the basis (the model's size depends on it)",
                         "pass --basis, or a dataset directory with basis.yaml")
    need = part_memory(basis, budget["model"], budget["dtype"])
    max_gib = budget["max_gib"]

    def choose(structure, graph):
        ptr = incoming_csr(graph)
        tried = {}  # parts -> (GiB of the largest part, owner, sizes of the largest part)

        def no_fit(count):
            gib, _, sz = tried[count]
            return InputError(source, f"no number of parts fits {max_gib:g} GiB: with {count} "
                              f"parts the largest still needs {gib:.2f} GiB ({sz['n_nodes']} "
                              f"atoms, {sz['n_owned']} of them owned, {sz['n_edges']} edges: a "
                              f"{params['halo']}-hop halo at r_cut {params['rcut']:g} A)",
                              "raise --max-gib, slice with a shallower --halo or a smaller "
                              "--rcut, or give --parts N and train with --max-gib (edges in "
                              "chunks)")

        def worst(count):
            if count not in tried:
                try:
                    owner = _owners(structure, graph, {**params, "parts": count}, None)
                except InputError:  # as many parts as the method can make: none fitted
                    if not tried:
                        raise
                    raise no_fit(max(tried)) from None
                sizes = [_sizes(build_partition(graph, owner, k, params["halo"], ptr=ptr))
                         for k in range(count)]
                gib = [need(sz) for sz in sizes]
                k = int(np.argmax(gib))
                tried[count] = (gib[k], owner, sizes[k])
            return tried[count][0]

        count, fail, stalled = min(budget["min_parts"], graph.n_nodes), None, 0
        while worst(count) > max_gib:
            previous, fail = worst(count), count
            step = math.ceil(count * min(2.0, previous / max_gib))
            count = min(graph.n_nodes, max(count + 1, step))
            stalled = stalled + 1 if count in tried or worst(count) > 0.97 * previous else 0
            if fail == graph.n_nodes or stalled >= 3:
                raise no_fit(count)
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

    return choose


def _iter_parts(structure, hamiltonian, basis, params, owner=None, timings=None, choose=None):
    """Build the graph, owners and labels; yield ``(graph, owner, part, arrays)`` per part.
    With ``params["parts"] == "auto"``, ``choose(structure, graph)`` gives ``(parts, owner,
    record)``; the record lands in ``timings["plan"]``."""
    from ..graph import radius_graph

    timings = {} if timings is None else timings
    source = str(getattr(structure, "source", None) or "structure")
    numbers = np.asarray(structure.numbers, dtype=np.int64)
    positions = np.asarray(structure.positions, dtype=np.float64)
    cell = np.asarray(structure.cell, dtype=np.float64).reshape(3, 3)
    pbc = np.broadcast_to(np.asarray(structure.pbc, dtype=bool), (3,)).copy()
    t = time.perf_counter()
    graph = radius_graph(positions, cell, pbc, params["rcut"], images=params["images"],
                         source=source)
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    if params["parts"] == AUTO:
        parts, owner, timings["plan"] = choose(structure, graph)
        params = {**params, "parts": parts}
    else:
        owner = _owners(structure, graph, params, owner)
    timings["owners"] = time.perf_counter() - t
    node_labels = edge_labels = None
    if hamiltonian is not None:
        from ..blocks import extract_blocks

        t = time.perf_counter()
        node_labels, edge_labels, info = extract_blocks(hamiltonian, numbers, basis, graph,
                                                        source=source)
        timings["labels"] = time.perf_counter() - t
        timings["labels_info"] = info
    ptr = incoming_csr(graph)
    timings["halo"] = 0.0
    for part in range(params["parts"]):
        t = time.perf_counter()
        arrays = build_partition(graph, owner, part, params["halo"], ptr=ptr)
        nid = arrays[NODE_IDS]
        arrays.update({NUMBERS: numbers[nid], POSITIONS: positions[nid], CELL: cell, PBC: pbc,
                       HALO: np.int64(params["halo"]), PART: np.int64(part)})
        n_owned = int((arrays[NODE_HOP] == 0).sum())
        m_owned = int(arrays[EDGE_OWNED].sum())
        # global ids of the owned edges only: halo edges' ids are never needed, and at deep
        # halos they would be a sixth of the bytes written
        arrays[EDGE_IDS] = arrays[EDGE_IDS][:m_owned]
        if node_labels is not None:
            arrays[NODE_BLOCKS] = np.take(node_labels, nid[:n_owned], axis=0)
            arrays[EDGE_BLOCKS] = np.take(edge_labels, arrays[EDGE_IDS], axis=0)
        timings["halo"] += time.perf_counter() - t
        yield graph, owner, part, arrays


def _sizes(arrays) -> dict:
    return {"n_owned": int((arrays[NODE_HOP] == 0).sum()), "n_nodes": int(len(arrays[NODE_IDS])),
            "n_owned_edges": int(arrays[EDGE_OWNED].sum()),
            "n_edges": int(arrays[EDGE_INDEX].shape[1])}


def partition_arrays(structure, rcut, method="metis", parts=2, halo=1, axis=None,
                     balance="width", seed=0, images="refuse", owner=None, hamiltonian=None,
                     basis=None):
    """In memory, nothing written: ``(list of per-part array dicts, info)``; the arrays are
    those of a part file. ``structure`` has ``numbers, positions, cell, pbc``; labels are added
    when ``hamiltonian`` (scipy sparse, Hartree) and ``basis`` are given. ``info`` holds
    ``graph``, ``owner``, ``params``, ``stats``."""
    if method == "slab" and balance is None:
        balance = "width"
    params = _params(rcut, method, parts, halo, axis, balance, seed, images, owner)
    if params["parts"] == AUTO:
        raise InputError("parts", "'auto' is for slice_dataset (with max_gib)",
                         "give a number of parts")
    if hamiltonian is not None and basis is None:
        raise InputError("basis", "a Hamiltonian was given without its basis", "pass basis=...")
    timings = {}
    out, sizes, graph, own = [], [], None, None
    for graph, own, part, arrays in _iter_parts(structure, hamiltonian, basis, params, owner,
                                                timings):
        out.append(arrays)
        sizes.append(_sizes(arrays))
    stats = partition_stats(graph, own, sizes)
    return out, {"graph": graph, "owner": own, "params": params, "stats": stats,
                 "timings": timings}


# ---------------------------------------------------------------------------- manifest
def load_manifest(directory) -> dict:
    """Read and check ``DIR/manifest.json`` (format name and version)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(directory, "no manifest.json: not a partition directory",
                         "give a directory written by hampart slice")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(path, f"unreadable manifest ({e})", "re-run hampart slice") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise InputError(path, f"format is {found!r}, "
                         f"not {FORMAT!r}", "give a directory written by hampart slice")
    version = manifest.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and version > VERSION
        raise InputError(path, f"partition format version {version}; this hampart reads version "
                         f"{VERSION}", "upgrade hampart" if newer else
                         "re-run hampart slice with this hampart to write version "
                         f"{VERSION} (add --force to replace the old directory)")
    for field in ("key", "source", "params", "parts", "stats"):
        if field not in manifest:
            raise InputError(path, f"manifest lacks '{field}'", "re-run hampart slice --force")
    return manifest


def load_partition(directory, k: int, verify: bool = True, manifest: dict | None = None) -> dict:
    """Arrays of part ``k`` (numpy, see the module docstring). With ``verify`` the file's
    sha256 must match the manifest; a mismatch or unreadable file is an :class:`InputError`."""
    directory = Path(directory)
    manifest = load_manifest(directory) if manifest is None else manifest
    n_parts = len(manifest["parts"])
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < n_parts:
        raise InputError(directory, f"no part {k!r} (it has parts 0..{n_parts - 1})",
                         "ask for an existing part")
    entry = manifest["parts"][k]
    path = directory / entry["file"]
    fix = "re-run hampart slice with --force to rewrite the partitions"
    if not path.is_file():
        raise InputError(path, "part file is missing", fix)
    if verify and sha256_file(path) != entry["sha256"]:
        raise InputError(path, "corrupt or edited part file (sha256 differs from manifest.json)",
                         fix)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as e:  # damaged zip, pickled object arrays, truncated file
        raise InputError(path, f"corrupt or edited part file ({type(e).__name__}: {e})",
                         fix) from None
    missing = [name for name in REQUIRED if name not in arrays]
    n, m = len(arrays.get(NODE_IDS, ())), arrays.get(EDGE_INDEX, np.zeros((2, 0))).shape[-1]
    if missing or n != entry["n_nodes"] or m != entry["n_edges"]:
        raise InputError(path, f"part file does not match manifest.json (missing {missing}, "
                         f"{n} nodes, {m} edges)", fix)
    return arrays


def verify(directory) -> dict:
    """Check everything: manifest, every part's sha256 and readability, and that the owned
    atoms cover every atom once and the owned edges number the graph's edges. Returns
    ``{"ok": bool, "problems": [str], "parts": [{"file", "ok", "problem"}]}``."""
    manifest = load_manifest(directory)
    n_atoms = int(manifest["source"]["n_atoms"])
    n_edges = int(manifest["source"]["n_edges"])
    problems, parts = [], []
    seen = np.zeros(n_atoms, dtype=np.int64)
    owned_edges, edge_ids = 0, []
    for k, entry in enumerate(manifest["parts"]):
        try:
            arrays = load_partition(directory, k, verify=True, manifest=manifest)
            n_owned = int((arrays[NODE_HOP] == 0).sum())
            ids = arrays[NODE_IDS][:n_owned]
            if (ids < 0).any() or (ids >= n_atoms).any():
                raise InputError(entry["file"], "node ids outside the structure", "re-slice")
            np.add.at(seen, ids, 1)
            owned_edges += int(arrays[EDGE_OWNED].sum())
            if EDGE_IDS in arrays:
                edge_ids.append(arrays[EDGE_IDS])
            parts.append({"file": entry["file"], "ok": True, "problem": None})
        except InputError as e:
            parts.append({"file": entry["file"], "ok": False, "problem": str(e)})
            problems.append(str(e))
    if not problems:
        if not (seen == 1).all():
            problems.append(f"{int((seen == 0).sum())} atoms unowned, {int((seen > 1).sum())} "
                            "owned twice")
        # raw parts (halo 0) hold only the edges inside a part: those across a cut are nowhere
        raw = int(manifest["params"]["halo"]) == 0
        expected = n_edges - int(manifest["stats"]["edge_cut"]) if raw else n_edges
        if owned_edges != expected:
            problems.append(f"owned edges {owned_edges} != graph edges {expected}"
                            + (" inside the parts (halo 0)" if raw else ""))
        elif len(edge_ids) == len(manifest["parts"]):
            ids = np.concatenate(edge_ids)
            if ids.min(initial=0) < 0 or ids.max(initial=0) >= max(n_edges, 1):
                problems.append("owned edge ids outside the graph's edges")
            else:
                counts = np.bincount(ids, minlength=n_edges)
                if (counts > 1).any() or (not raw and (counts != 1).any()):
                    problems.append("owned edge ids do not cover the graph's edges once each")
    return {"ok": not problems, "problems": problems, "parts": parts}


# ---------------------------------------------------------------------------- slicing
def _check_out(out, key: str, replace: bool):
    """(reuse?, remove-old?) for the output directory; refuses to clobber anything else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out is a file", "give a directory path for the partitions")
    if not out.exists():
        return False
    if (out / MANIFEST).is_file():
        try:
            old = json.loads((out / MANIFEST).read_text())
        except (OSError, ValueError):
            old = {}
        if (isinstance(old, dict) and old.get("format") == FORMAT and old.get("version") == VERSION
                and old.get("key") == key
                and all((out / p.get("file", "")).is_file() for p in old.get("parts", []))):
            return True
        if isinstance(old, dict) and old.get("format") == FORMAT:
            if not replace:
                raise InputError(out, "holds partitions of other inputs or parameters "
                                 f"(key {str(old.get('key'))[:12]}, wanted {key[:12]})",
                                 "choose another --out, or add --force to replace them")
            return False
    if any(out.iterdir()):
        raise InputError(out, "exists and is not a partition directory",
                         "choose a new or empty --out directory (hampart never deletes it)")
    return False


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
    t_start = time.perf_counter()
    if method == "slab" and balance is None:
        balance = "width"
    params = _params(rcut, method, parts, halo, axis, balance, seed, images, owner)
    if (params["parts"] == AUTO) != (budget is not None):
        raise InputError("--parts", "auto and --max-gib go together: auto needs a memory budget, "
                         "and a budget needs auto", "give --parts auto --max-gib G, or --parts N "
                         "alone")
    if budget is not None:
        params["budget"] = _check_budget(budget, params["halo"])
        if part_memory is None:
            raise InputError("part_memory", "--parts auto needs the memory a part takes to train",
                             "pass part_memory=hampart.model.memory.part_memory (the model's "
                             "memory law), as hampart slice does")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out is a file", "give a directory path for the partitions")
    hashes = _input_hashes(dataset_or_path, hamiltonian, basis, owner)
    key = _key(hashes, params)
    if _check_out(out, key, replace):
        if log:
            log(f"reusing {out} (key {key[:12]})")
        return out, True

    from ..io.atomic import atomic_directory

    if isinstance(dataset_or_path, (str, os.PathLike)):
        from ..io.dataset import load_dataset

        dataset = load_dataset(dataset_or_path, hamiltonian=hamiltonian, basis=basis)
    else:
        dataset = dataset_or_path
        if hamiltonian is not None:
            dataset = _replace_field(dataset, "hamiltonian", hamiltonian)
        if basis is not None:
            dataset = _replace_field(dataset, "basis", basis)
    structure, H, the_basis = dataset.structure, dataset.hamiltonian, dataset.basis
    if H is not None and the_basis is None:
        raise InputError(dataset_or_path, "a Hamiltonian without a basis", "pass --basis")
    if the_basis is not None:  # the structure's elements, and its ghosts keeping orbitals
        the_basis = the_basis.for_structure(structure.numbers,
                                            source=str(getattr(structure, "source", "structure")))

    timings, entries, sizes = {}, [], []
    graph = own = None
    with atomic_directory(out, replace=True) as tmp, ThreadPoolExecutor(max_workers=1) as pool:
        tmp = Path(tmp)
        pending = None  # one part written (and hashed) in a thread while the next is built
        t_wait = 0.0
        choose = None
        if budget is not None:
            choose = _parts_chooser(params, the_basis, part_memory, str(dataset_or_path))
        parts_iter = _iter_parts(structure, H, the_basis, params, owner, timings, choose)
        for graph, own, part, arrays in parts_iter:
            size = _sizes(arrays)
            sizes.append(size)
            entries.append({"file": part_file(part), **size})
            t = time.perf_counter()
            if pending is not None:
                pending.result()
            t_wait += time.perf_counter() - t
            pending = pool.submit(_write_part, tmp / part_file(part), arrays, entries[-1])
            del arrays
        t = time.perf_counter()
        if pending is not None:
            pending.result()
        timings["write_wait"] = t_wait + time.perf_counter() - t
        stats = partition_stats(graph, own, sizes)
        info = timings.pop("labels_info", None)
        if info is not None:
            stats["labels_outside_frobenius"] = info.get("outside_frobenius")
            stats["labels_total_frobenius"] = info.get("total_frobenius")
        plan = timings.pop("plan", None)
        stats["merged_images"] = int(graph.merged)
        stats["stage_seconds"] = {k: round(float(v), 4) for k, v in timings.items()}
        stats["seconds"] = round(time.perf_counter() - t_start, 4)
        src = dataset_or_path if isinstance(dataset_or_path, (str, os.PathLike)) \
            else getattr(dataset, "path", None)
        manifest = {
            "format": FORMAT, "version": VERSION, "key": key,
            "source": {"file": None if src is None else str(src), "sha256": hashes["structure"],
                       "hamiltonian_sha256": hashes.get("hamiltonian"),
                       "n_atoms": int(graph.n_nodes), "n_edges": int(graph.n_edges),
                       "cell": np.asarray(structure.cell, dtype=float).reshape(3, 3).tolist(),
                       "pbc": [bool(b) for b in np.broadcast_to(structure.pbc, (3,))]},
            "params": {**params, "basis": None if the_basis is None else the_basis.to_dict(),
                       "labels": H is not None, "parts": len(entries),
                       **({"budget": {**params["budget"], **plan}} if plan else {})},
            "parts": entries,
            "stats": stats,
        }
        # manifest last: a directory without it is never taken for a finished one
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1)
    if log:
        log(summary_text(out, manifest))
    if stats["replication"] > REPLICATION_WARNING:
        warnings.warn(InputWarning(out, f"the parts hold {stats['replication']:.1f}x the graph's "
                                   "edges (halos), so every epoch computes that many",
                                   "a shallower --halo or fewer, larger parts (trained with "
                                   "train --max-gib, edges in chunks) cost less"))
    return out, False


class _HashingWriter:
    """Write-only file that hashes what passes through. Having no ``seek`` makes zipfile
    stream (sizes after each entry), so the sha256 is known without reading the file back."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.h.update(data)
        self.n += len(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.n

    def read(self, *args):  # numpy takes objects with .read for files; zipfile never reads here
        raise OSError("write-only")

    def flush(self) -> None:
        self.f.flush()


def _write_part(path, arrays, entry) -> None:
    with open(path, "wb") as f:
        writer = _HashingWriter(f)
        np.savez(writer, **arrays)
    entry["sha256"] = writer.h.hexdigest()


def _replace_field(dataset, name, value):
    import dataclasses

    if name == "basis" and not hasattr(value, "union_shells"):
        from ..basis import load_basis

        value = load_basis(value)
    if name == "hamiltonian" and isinstance(value, (str, os.PathLike)):
        from ..io.csr import read_matrix

        value = read_matrix(value)
    return dataclasses.replace(dataset, **{name: value})


def summary_text(out, manifest) -> str:
    """A few lines a person reads after slicing."""
    parts, stats = manifest["parts"], manifest["stats"]
    owned = np.array([p["n_owned"] for p in parts])
    nodes = np.array([p["n_nodes"] for p in parts])
    oe = np.array([p["n_owned_edges"] for p in parts])
    edges = np.array([p["n_edges"] for p in parts])
    p = manifest["params"]
    return "\n".join([
        f"wrote {out} (key {manifest['key'][:12]}): {len(parts)} parts, method {p['method']}, "
        f"halo {p['halo']}, r_cut {p['rcut']} A",
        f"  atoms  {manifest['source']['n_atoms']}: owned per part {owned.min()}..{owned.max()}, "
        f"halo per part {(nodes - owned).min()}..{(nodes - owned).max()}",
        f"  edges  {manifest['source']['n_edges']}: owned per part {oe.min()}..{oe.max()}, "
        f"halo per part {(edges - oe).min()}..{(edges - oe).max()}",
        f"  replication {stats['replication']:.3f}, node imbalance {stats['node_imbalance']:.3f}, "
        f"edge imbalance {stats['edge_imbalance']:.3f}, edge cut {stats['edge_cut']}, "
        f"{stats['seconds']:.2f} s",
    ] + ([f"  parts chosen for {p['budget']['max_gib']:g} GiB per rank: the largest needs about "
          f"{p['budget']['largest_part_gib']:.2f} GiB to train whole (tried "
          + ", ".join(f"{c}: {g:.2f}" for c, g in p['budget']['tried']) + ")"]
         if p.get("budget") else []) + ([f"  labels: "
          f"{100 * stats['labels_outside_frobenius'] / stats['labels_total_frobenius']:.2f}% "
          "of H's Frobenius norm lies between atoms farther apart than r_cut (not learnable)"]
         if stats.get("labels_total_frobenius") else [])
        + ([f"  halo 0: raw parts for comparison only; the {stats['edge_cut']} edges across cuts "
            "are stored nowhere and outputs near a cut are not exact"] if p["halo"] == 0 else []))
