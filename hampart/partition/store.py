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
(:func:`hampart.partition.build.iter_parts` makes them.)

The manifest's *key* (:mod:`hampart.partition.key`) identifies the inputs and parameters, so a
repeated ``hampart slice`` recognises its own output. Writes go to a temporary directory
renamed into place; each part file's sha256 is in the manifest and is checked on every load.
This module only writes, reads and verifies that format; building the parts is
:mod:`.build`'s, choosing their number :mod:`.plan`'s, and :mod:`.slicing` composes them.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..keys import (CELL, EDGE_IDS, EDGE_INDEX, EDGE_OWNED, EDGE_SHIFT, HALO, NODE_HOP, NODE_IDS,
                    NUMBERS, PART, POSITIONS)
from .build import part_sizes
from .key import sha256_file

__all__ = ["FORMAT", "VERSION", "MANIFEST", "HALO", "PART", "REQUIRED", "part_file",
           "sha256_file", "reusable", "new_manifest", "write_partitions", "load_manifest",
           "load_partition", "verify", "summary_text"]

FORMAT = "hampart-partitions"
VERSION = 1
MANIFEST = "manifest.json"
REQUIRED = (NODE_IDS, NODE_HOP, NUMBERS, POSITIONS, CELL, EDGE_INDEX, EDGE_SHIFT, EDGE_OWNED, HALO)


def part_file(k: int) -> str:
    return f"part-{k:05d}.npz"


# ---------------------------------------------------------------------------- writing
def reusable(out, key: str, replace: bool) -> bool:
    """True when ``out`` holds finished partitions with this ``key`` (reuse them untouched);
    False when it is new or empty, or holds other partitions and ``replace``. Refuses to
    clobber anything else."""
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


def new_manifest(key: str, source: dict, params: dict, parts: list, stats: dict) -> dict:
    """The manifest.json of a partition directory: ``source`` (input file, sha256, n_atoms,
    n_edges, cell, pbc), ``params`` (slicing parameters, basis, labels, parts), ``parts``
    (per part its file, sha256 and sizes), ``stats``."""
    return {"format": FORMAT, "version": VERSION, "key": key, "source": source,
            "params": params, "parts": parts, "stats": stats}


def write_partitions(out, parts, manifest_for) -> dict:
    """Write a partition directory atomically and return its manifest.

    ``parts`` yields ``(k, arrays)``; each part file is written (and hashed) in a thread while
    the next part is built. Then ``manifest_for(entries, write_wait)`` gives the manifest from
    the per-part entries (``file``, sizes, ``sha256``) and the seconds spent waiting on the
    writer; it is written last, so a directory without it is never taken for a finished one.
    """
    from ..io.atomic import atomic_directory

    entries = []
    with atomic_directory(out, replace=True) as tmp, ThreadPoolExecutor(max_workers=1) as pool:
        tmp = Path(tmp)
        pending = None  # one part written (and hashed) in a thread while the next is built
        t_wait = 0.0
        for k, arrays in parts:
            entries.append({"file": part_file(k), **part_sizes(arrays)})
            t = time.perf_counter()
            if pending is not None:
                pending.result()
            t_wait += time.perf_counter() - t
            pending = pool.submit(_write_part, tmp / part_file(k), arrays, entries[-1])
            del arrays
        t = time.perf_counter()
        if pending is not None:
            pending.result()
        manifest = manifest_for(entries, t_wait + time.perf_counter() - t)
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1)
    return manifest


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



# ---------------------------------------------------------------------------- reading
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
