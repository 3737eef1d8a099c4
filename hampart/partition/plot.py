"""A picture of a partitioning a person can check: atoms projected on two Cartesian axes,
coloured by owner; the halo atoms of one selected part drawn as hollow rings (Angstrom axes).

Halo atoms are drawn at their global positions (the halo may be reached through a periodic
image, so a ring can sit on the far side of the cell from its part: that is correct).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..keys import NODE_HOP, NODE_IDS, POSITIONS
from .store import load_manifest, load_partition

__all__ = ["plot_partitions"]


def _parts_from(dir_or_arrays):
    if isinstance(dir_or_arrays, (str, os.PathLike)):
        manifest = load_manifest(dir_or_arrays)
        return [load_partition(dir_or_arrays, k, manifest=manifest)
                for k in range(len(manifest["parts"]))]
    return list(dir_or_arrays)


def plot_partitions(dir_or_arrays, out_png, axes: str = "xy", selected: int = 0) -> Path:
    """Write ``out_png``: owners in colour, halo of part ``selected`` hollow. ``dir_or_arrays``:
    a partition directory or a list of part array dicts. Returns the written path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = ["xyz".index(a) for a in axes] if len(axes) == 2 and set(axes) <= set("xyz") else None
    if idx is None or idx[0] == idx[1]:
        raise InputError("--plot axes", f"axes {axes!r}", "give two of x, y, z, e.g. 'xy'")
    parts = _parts_from(dir_or_arrays)
    if not 0 <= selected < len(parts):
        raise InputError("selected part", f"{selected} not in 0..{len(parts) - 1}",
                         "pick an existing part")
    n_atoms = max(int(p[NODE_IDS].max()) for p in parts) + 1
    position = np.zeros((n_atoms, 3))
    owner = np.full(n_atoms, -1)
    for k, p in enumerate(parts):
        owned = p[NODE_HOP] == 0
        position[p[NODE_IDS][owned]] = p[POSITIONS][owned]
        owner[p[NODE_IDS][owned]] = k
    sel = parts[selected]
    halo = sel[NODE_HOP] > 0

    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    base = plt.get_cmap("tab20" if len(parts) > 10 else "tab10")
    n_colours = min(len(parts), base.N)
    cmap = matplotlib.colors.ListedColormap(base.colors[:n_colours])
    sc = ax.scatter(position[:, idx[0]], position[:, idx[1]], c=owner % n_colours, cmap=cmap,
                    vmin=-0.5, vmax=n_colours - 0.5, s=10, linewidths=0)
    hop = sel[NODE_HOP][halo]
    ax.scatter(sel[POSITIONS][halo, idx[0]], sel[POSITIONS][halo, idx[1]], s=36 + 14 * hop,
               facecolors="none", edgecolors="black", linewidths=0.7,
               label=f"halo of part {selected} ({int(halo.sum())} atoms)")
    ax.set_xlabel(f"{axes[0]} (Angstrom)")
    ax.set_ylabel(f"{axes[1]} (Angstrom)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{len(parts)} parts, coloured by owner")
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(sc, ax=ax, label="owner" if len(parts) <= base.N else "owner (mod 20)",
                 ticks=range(n_colours))
    out_png = Path(out_png)
    tmp = out_png.with_name(out_png.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png
