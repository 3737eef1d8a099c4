"""``hampart inspect PATH``: what a dataset holds, or what a partition directory holds.

For a dataset (``hampart generate``/``label`` directory, or a structure file with
``--hamiltonian`` and ``--basis``): atoms, species, ghosts, orbitals, cell and density, edges at
r_cut, H's norms split into node and edge blocks, and *locality*: the share of H (Frobenius)
between atom pairs farther apart than r_cut, which no model at this r_cut can represent, and the
largest |H_ij| per distance bin. A directory with a ``manifest.json`` is a partition directory and
is reported by :func:`hampart.partition.inspect_partitions`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from ase.data import chemical_symbols

from .command import Command

__all__ = ["inspect_dataset", "INSPECT"]


def _pair_distances(structure, rows_atom, cols_atom):
    """Minimum-image distance (Angstrom) of atom pairs."""
    d = structure.positions[cols_atom] - structure.positions[rows_atom]
    if structure.pbc.any():
        frac = d @ np.linalg.inv(structure.cell)
        frac[:, structure.pbc] -= np.round(frac[:, structure.pbc])
        d = frac @ structure.cell
    return np.linalg.norm(d, axis=1)


def inspect_dataset(path, rcut: float = 8.0, hamiltonian=None, basis=None,
                    images: str = "refuse") -> dict:
    from .graph import radius_graph
    from .io.dataset import load_dataset

    ds = load_dataset(path, hamiltonian=hamiltonian, basis=basis)
    s = ds.structure
    zs, counts = np.unique(s.numbers, return_counts=True)
    volume = abs(np.linalg.det(s.cell)) if s.pbc.any() else float("nan")
    graph = radius_graph(s.positions, s.cell, s.pbc, rcut, images=images, source=s.source)
    report = {
        "path": str(path), "n_atoms": s.n_atoms,
        "species": {("ghost" if z == 0 else chemical_symbols[z]): int(c) for z, c in zip(zs, counts)},
        "cell_lengths": np.linalg.norm(s.cell, axis=1).round(4).tolist(),
        "pbc": s.pbc.tolist(),
        "density_atoms_per_A3": s.n_atoms / volume if volume == volume else None,
        "basis": ds.basis.name,
        "orbitals_per_species": {chemical_symbols[z]: ds.basis.n_orbitals(int(z)) for z in zs if z},
        "n_orbitals": int(ds.basis.orbital_offsets(s.numbers)[-1]),
        "rcut": rcut, "n_edges": graph.n_edges, "mean_degree": graph.n_edges / s.n_atoms,
        "merged_images": graph.merged, "meta": ds.meta,
    }
    H = ds.hamiltonian
    if H is not None:
        H = sp.coo_matrix(H)
        offsets = ds.basis.orbital_offsets(s.numbers)
        atom_of = np.repeat(np.arange(s.n_atoms), np.diff(offsets))
        ra, ca = atom_of[H.row], atom_of[H.col]
        on_site = ra == ca
        dist = _pair_distances(s, ra, ca)
        total = float(np.sum(H.data ** 2))
        beyond = (~on_site) & (dist >= rcut)
        asym = abs(sp.csr_matrix(H) - sp.csr_matrix(H).T)
        report.update({
            "H_nnz": int(H.nnz),
            "H_symmetry_error": float(asym.max()) if asym.nnz else 0.0,
            "node_block_frobenius": float(np.sqrt(np.sum(H.data[on_site] ** 2))),
            "edge_block_frobenius": float(np.sqrt(np.sum(H.data[~on_site] ** 2))),
            "fraction_beyond_rcut": float(np.sum(H.data[beyond] ** 2) / total) if total else 0.0,
            "max_abs_beyond_rcut": float(np.abs(H.data[beyond]).max()) if beyond.any() else 0.0,
        })
        edges = np.arange(0.0, max(rcut, float(dist.max(initial=0.0))) + 1.0, 1.0)
        which = np.digitize(dist[~on_site], edges)
        vals = np.abs(H.data[~on_site])
        locality = []
        for k in np.unique(which):
            locality.append({"from_A": float(edges[k - 1]), "to_A": float(edges[k]) if k < len(edges)
                             else None, "max_abs_Ha": float(vals[which == k].max())})
        report["max_abs_by_distance"] = locality
    return report


def _text(r: dict) -> str:
    lines = []
    for k, v in r.items():
        if k == "max_abs_by_distance":
            lines.append(f"{'max |H_ij| by distance':>26}:")
            lines += [f"{'':>28}{b['from_A']:5.1f} - {b['to_A'] if b['to_A'] is not None else 'inf':>5} A"
                      f"  {b['max_abs_Ha']:.3e} Ha" for b in v]
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
    p.add_argument("path", help="dataset directory, structure file, or partition directory")
    p.add_argument("--rcut", type=float, default=8.0, help="Angstrom (datasets)")
    p.add_argument("--hamiltonian", help="matrix for a bare structure file")
    p.add_argument("--basis", help="basis for a bare structure file")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse")
    p.add_argument("--verify", action="store_true", help="check every part's checksum (partitions)")
    p.add_argument("--json", action="store_true")


def run(config: InspectConfig) -> int:
    if os.path.isfile(os.path.join(config.path, "manifest.json")):
        from .partition import format_inspection, inspect_partitions

        report = inspect_partitions(config.path, verify=config.verify)
        print(json.dumps(report, indent=1) if config.json else format_inspection(report))
        return 0
    report = inspect_dataset(config.path, config.rcut, config.hamiltonian, config.basis,
                             config.images)
    print(json.dumps(report, indent=1) if config.json else _text(report))
    return 0


INSPECT = Command("inspect", "describe a dataset (atoms, orbitals, edges, locality) or partitions",
                  _add, lambda a: InspectConfig(a.path, a.rcut, a.hamiltonian, a.basis, a.images,
                                                a.verify, a.json), run)
