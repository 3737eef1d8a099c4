"""What a partition directory holds, per part and in total (``hampart inspect DIR``).

Reads only ``manifest.json`` unless ``verify`` is asked for, which re-hashes and loads every
part file (see :func:`hampart.partition.store.verify`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .store import load_manifest, verify as verify_directory

__all__ = ["inspect_partitions", "format_inspection"]


def inspect_partitions(path, verify: bool = False) -> dict:
    """``{path, format, version, key, source, params, stats, parts: [{part, file, n_owned,
    n_halo, n_nodes, n_owned_edges, n_halo_edges, n_edges}], totals, verify}``."""
    path = Path(path)
    manifest = load_manifest(path)
    parts = []
    for k, p in enumerate(manifest["parts"]):
        parts.append({"part": k, "file": p["file"], "n_owned": p["n_owned"],
                      "n_halo": p["n_nodes"] - p["n_owned"], "n_nodes": p["n_nodes"],
                      "n_owned_edges": p["n_owned_edges"],
                      "n_halo_edges": p["n_edges"] - p["n_owned_edges"], "n_edges": p["n_edges"]})
    edges = np.array([p["n_edges"] for p in parts])
    nodes = np.array([p["n_nodes"] for p in parts])
    report = {
        "path": str(path), "format": manifest["format"], "version": manifest["version"],
        "key": manifest["key"], "source": manifest["source"],
        "params": {k: v for k, v in manifest["params"].items() if k != "basis"},
        "basis": (manifest["params"].get("basis") or {}).get("name"),
        "stats": manifest["stats"], "parts": parts,
        "totals": {"parts": len(parts), "stored_nodes": int(nodes.sum()),
                   "stored_edges": int(edges.sum()), "largest_part_edges": int(edges.max())},
        "verify": None,
    }
    if verify:
        report["verify"] = verify_directory(path)
    return report


def format_inspection(report: dict) -> str:
    """The report as a table a person reads."""
    s, p, st = report["source"], report["params"], report["stats"]
    lines = [
        f"{report['path']}: {report['format']} v{report['version']}, key {report['key'][:12]}",
        f"  source {s.get('file')}: {s['n_atoms']} atoms, {s['n_edges']} edges",
        f"  method {p['method']}, parts {p['parts']}, halo {p['halo']}, r_cut {p['rcut']} A, "
        f"axis {p.get('axis')}, seed {p.get('seed')}, images {p.get('images')}, "
        f"labels {p.get('labels')}, basis {report.get('basis')}",
        f"  replication {st['replication']:.3f}, node imbalance {st['node_imbalance']:.3f}, "
        f"edge imbalance {st['edge_imbalance']:.3f}, edge cut {st['edge_cut']}, "
        f"sliced in {st['seconds']:.2f} s",
    ]
    if p.get("budget"):
        b = p["budget"]
        lines.append(f"  parts chosen for {b['max_gib']:g} GiB per rank ({b['dtype']}, model "
                     f"{b['model'] or 'paper defaults'}): the largest needs about "
                     f"{b['largest_part_gib']:.2f} GiB")
    lines.append("  part   owned    halo  owned_edges  halo_edges")
    for q in report["parts"]:
        lines.append(f"  {q['part']:4d} {q['n_owned']:7d} {q['n_halo']:7d} "
                     f"{q['n_owned_edges']:12d} "
                     f"{q['n_halo_edges']:11d}")
    v = report.get("verify")
    if v is not None:
        lines.append("  verify: ok" if v["ok"]
                     else "  verify: FAILED\n    " + "\n    ".join(v["problems"]))
    return "\n".join(lines)
