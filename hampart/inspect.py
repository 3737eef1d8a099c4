"""``hampart inspect PATH``: what a dataset, a partition directory or a trained model holds.

For a dataset (``hampart generate``/``label`` directory, or a structure file with
``--hamiltonian`` and ``--basis``): atoms, species, ghosts, orbitals, cell and density, edges at
r_cut, H's norms split into node and edge blocks, and *locality*: the share of H (Frobenius)
between atom pairs farther apart than r_cut, which no model at this r_cut can represent, and the
largest |H_ij| per distance bin. A directory with a ``manifest.json`` is a partition directory and
is reported by :func:`hampart.partition.inspect_partitions`; a ``.pt`` file written by
``hampart train`` by :func:`inspect_model` (hyperparameters, basis, training summary).

Units: Angstrom, Hartree. Distances are minimum-image. The matrix is read in row chunks, so the
memory used is about twice H (H and its transpose, for the symmetry error).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from .basis import species_name

from .command import Command

__all__ = ["inspect_dataset", "inspect_model", "INSPECT"]


def _pair_distances(structure, rows_atom, cols_atom):
    """Minimum-image distance (Angstrom) of atom pairs ``(k,)``."""
    from .graph import minimum_image

    d = structure.positions[cols_atom] - structure.positions[rows_atom]
    return np.linalg.norm(minimum_image(d, structure.cell, structure.pbc), axis=1)


def _matrix_report(H, structure, basis, rcut, chunk_nnz=4_000_000):
    """Norms, locality and symmetry of H, streamed over row chunks (bounded memory)."""
    H = sp.csr_matrix(H)
    HT = H.T.tocsr()  # row r of HT = column r of H: the symmetry check needs both
    offsets = basis.orbital_offsets(structure.numbers)
    atom_of = np.repeat(np.arange(structure.n_atoms), np.diff(offsets))
    bin_width = 1.0  # Angstrom
    sums = {"node": 0.0, "edge": 0.0, "beyond": 0.0}
    max_beyond, asym, bin_max = 0.0, 0.0, {}
    row_ends = np.searchsorted(H.indptr, np.arange(chunk_nnz, H.nnz + chunk_nnz, chunk_nnz))
    r0 = 0
    for r1 in np.unique(np.clip(np.r_[row_ends, H.shape[0]], 1, H.shape[0])):
        if r1 <= r0:
            continue
        block, block_t = H[r0:r1], HT[r0:r1]
        diff = block - block_t
        asym = max(asym, float(abs(diff).max()) if diff.nnz else 0.0)
        rows = atom_of[np.repeat(np.arange(r0, r1), np.diff(block.indptr))]
        cols = atom_of[block.indices]
        vals = block.data
        on_site = rows == cols
        dist = _pair_distances(structure, rows[~on_site], cols[~on_site])
        off = np.abs(vals[~on_site])
        sums["node"] += float(np.sum(vals[on_site] ** 2))
        sums["edge"] += float(np.sum(off ** 2))
        beyond = dist >= rcut
        sums["beyond"] += float(np.sum(off[beyond] ** 2))
        max_beyond = max(max_beyond, float(off[beyond].max(initial=0.0)))
        which = (dist // bin_width).astype(np.int64)
        if which.size:
            top = np.full(int(which.max()) + 1, -1.0)
            np.maximum.at(top, which, off)
            for k in np.flatnonzero(top >= 0):
                bin_max[int(k)] = max(bin_max.get(int(k), 0.0), float(top[k]))
        r0 = r1
    total = sums["node"] + sums["edge"]
    return {
        "H_nnz": int(H.nnz),
        "H_symmetry_error": asym,
        "node_block_frobenius": float(np.sqrt(sums["node"])),
        "edge_block_frobenius": float(np.sqrt(sums["edge"])),
        "fraction_beyond_rcut": sums["beyond"] / total if total else 0.0,
        "max_abs_beyond_rcut": max_beyond,
        "max_abs_by_distance": [{"from_A": k * bin_width, "to_A": (k + 1) * bin_width,
                                 "max_abs_Ha": bin_max[k]} for k in sorted(bin_max)],
    }


def inspect_dataset(path, rcut: float = 8.0, hamiltonian=None, basis=None,
                    images: str = "refuse") -> dict:
    """What the dataset ``path`` holds, as a JSON-ready dict (see the module docstring).

    ``fraction_beyond_rcut`` is the share of ||H||_F^2 in atom pairs at least ``rcut`` Angstrom
    apart (minimum image): what a model at this r_cut cannot represent.
    """
    from .graph import radius_graph
    from .io.dataset import load_dataset

    ds = load_dataset(path, hamiltonian=hamiltonian, basis=basis)
    s = ds.structure
    zs, counts = np.unique(s.numbers, return_counts=True)
    volume = abs(np.linalg.det(s.cell)) if s.pbc.any() else float("nan")
    graph = radius_graph(s.positions, s.cell, s.pbc, rcut, images=images, source=s.source)
    report = {
        "path": str(path), "n_atoms": s.n_atoms,
        "species": {("ghost" if z == 0 else species_name(z)): int(c)
                    for z, c in zip(zs, counts)},
        "n_ghosts": int((s.numbers <= 0).sum()),
        "cell": np.asarray(s.cell).round(4).tolist(),
        "cell_lengths": np.linalg.norm(s.cell, axis=1).round(4).tolist(),
        "pbc": s.pbc.tolist(),
        "density_atoms_per_A3": s.n_atoms / volume if volume == volume else None,
        "basis": ds.basis.name,
        "orbitals_per_species": {species_name(z): ds.basis.n_orbitals(int(z)) for z in zs if z},
        "n_orbitals": int(ds.basis.orbital_offsets(s.numbers)[-1]),
        "rcut": rcut, "n_edges": graph.n_edges, "mean_degree": graph.n_edges / s.n_atoms,
        "merged_images": graph.merged, "meta": ds.meta,
    }
    if ds.hamiltonian is not None:
        report.update(_matrix_report(ds.hamiltonian, s, ds.basis, rcut))
    return report


def inspect_model(path) -> dict:
    """What a model file holds: hyperparameters, elements and shells, parameters, the
    partitions it was trained on and its training summary (JSON-ready)."""
    from .model.io import load_model

    model, payload = load_model(path)
    info = dict(payload.get("info") or {})
    summary = json.loads(info.pop("summary", "{}") or "{}")
    basis = model.basis
    last = summary.get("last") or {}
    return {
        "path": str(path), "format": f"{payload['format']} v{payload['version']}",
        "hyperparameters": dict(payload["model"]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "basis": basis.name,
        "shells": {species_name(z): list(basis.shells_of(z)) for z in basis.species},
        "trained_on": info.get("parts"), "dtype": info.get("dtype"),
        "epochs_run": summary.get("epochs_run"), "stop": summary.get("stop"),
        "ranks": summary.get("ranks"),
        "last_mse": last.get("mse"), "last_mae_mEh": last.get("mae_mEh"),
        "last_val_mae_mEh": last.get("val_mae_mEh"),
        "label_statistics": summary.get("label_statistics"),
    }


def _text(r: dict) -> str:
    lines = []
    for k, v in r.items():
        if k == "max_abs_by_distance":
            lines.append(f"{'max |H_ij| by distance':>26}:")
            lines += [f"{'':>28}{b['from_A']:5.1f} - {b['to_A']:5.1f} A  {b['max_abs_Ha']:.3e} Ha"
                      for b in v]
        elif isinstance(v, float):
            lines.append(f"{k:>26}: {v:.6g}")
        else:
            lines.append(f"{k:>26}: {v}")
    return "\n".join(lines)


@dataclass(frozen=True)
class InspectConfig:
    path: str
    rcut: float = 8.0
    hamiltonian: str | None = None
    basis: str | None = None
    images: str = "refuse"
    verify: bool = False
    json: bool = False


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="dataset directory, structure file, partition directory, or "
                   "model.pt")
    p.add_argument("--rcut", type=float, default=8.0, help="Angstrom (datasets)")
    p.add_argument("--hamiltonian", help="matrix for a bare structure file")
    p.add_argument("--basis", help="basis for a bare structure file")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse")
    p.add_argument("--verify", action="store_true",
                   help="check every part's checksum and coverage (partitions); exits 1 if any "
                   "check fails")
    p.add_argument("--json", action="store_true")


def run(config: InspectConfig) -> int:
    if config.path.endswith(".pt"):
        report = inspect_model(config.path)
        print(json.dumps(report, indent=1) if config.json else _text(report))
        return 0
    if os.path.isfile(os.path.join(config.path, "manifest.json")):
        from .partition import format_inspection, inspect_partitions

        report = inspect_partitions(config.path, verify=config.verify)
        print(json.dumps(report, indent=1) if config.json else format_inspection(report))
        # a failed --verify exits 1 so scripts and CI stop on corrupted partitions
        return 1 if report["verify"] is not None and not report["verify"]["ok"] else 0
    report = inspect_dataset(config.path, config.rcut, config.hamiltonian, config.basis,
                             config.images)
    print(json.dumps(report, indent=1) if config.json else _text(report))
    return 0


INSPECT = Command("inspect", "describe a dataset (atoms, orbitals, edges, locality), partitions "
                  "or a trained model",
                  _add, lambda a: InspectConfig(a.path, a.rcut, a.hamiltonian, a.basis, a.images,
                                                a.verify, a.json), run)
