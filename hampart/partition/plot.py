"""A picture of a partitioning a person can check: the atoms projected on the three Cartesian
planes (xy, xz, yz; Angstrom axes), coloured by owner, with the projected cell outline; the halo
atoms of one selected part drawn as black rings (larger for deeper hops); a legend giving each
part's owned atoms.

Points are sized by the atom count (large for a 96-atom cell, small for 100,000 atoms) so the
parts stay visible at both ends. Halo atoms are drawn at their global positions (the halo may
be reached through a periodic image, so a ring can sit on the far side of the cell from its
part: that is correct).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_file
from ..keys import CELL, NODE_HOP, NODE_IDS, POSITIONS
from .store import load_manifest, load_partition

__all__ = ["plot_partitions", "partition_figure", "marker_area", "PROJECTIONS"]

PROJECTIONS = ("xy", "xz", "yz")
MAX_LEGEND_PARTS = 20  # beyond this the legend summarises the part sizes


def _parts_from(dir_or_arrays):
    if isinstance(dir_or_arrays, (str, os.PathLike)):
        manifest = load_manifest(dir_or_arrays)
        return [load_partition(dir_or_arrays, k, manifest=manifest)
                for k in range(len(manifest["parts"]))]
    return list(dir_or_arrays)


def marker_area(n_atoms: int) -> float:
    """Scatter marker area (points^2) for a panel of ``n_atoms``: about 70 for 100 atoms, down
    to 1 for 100,000 (a fixed share of the panel's area, clipped)."""
    return float(np.clip(7000.0 / max(n_atoms, 1), 1.0, 90.0))


def _projections(axes) -> list[tuple[int, int]]:
    names = [axes] if isinstance(axes, str) else list(axes)
    out = []
    for a in names:
        if not (isinstance(a, str) and len(a) == 2 and set(a) <= set("xyz") and a[0] != a[1]):
            raise InputError("--plot axes", f"axes {a!r}", "give two of x, y, z, e.g. 'xy'")
        out.append(("xyz".index(a[0]), "xyz".index(a[1])))
    if not out:
        raise InputError("--plot axes", "no projection", "give e.g. ('xy', 'xz', 'yz')")
    return out


def _cell_outline(ax, cell, i: int, j: int) -> None:
    """The projection of the cell's twelve edges on axes (i, j), thin grey."""
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    points = corners @ cell
    for u in range(8):
        for v in range(u + 1, 8):
            if np.abs(corners[u] - corners[v]).sum() == 1:  # corners joined by one cell vector
                ax.plot(points[[u, v], i], points[[u, v], j], color="0.6", lw=0.6, zorder=0)


def partition_figure(dir_or_arrays, axes=PROJECTIONS, selected: int = 0):
    """The matplotlib figure of :func:`plot_partitions` (one panel per projection in ``axes``);
    the caller closes it."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    projections = _projections(axes)
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
    sizes = np.bincount(owner[owner >= 0], minlength=len(parts))
    sel = parts[selected]
    halo = sel[NODE_HOP] > 0
    hop = sel[NODE_HOP][halo]
    cell = np.asarray(sel[CELL], dtype=np.float64) if CELL in sel else None
    has_cell = cell is not None and abs(np.linalg.det(cell)) > 1e-8

    base = plt.get_cmap("tab20" if len(parts) > 10 else "tab10")
    n_colours = min(len(parts), base.N)
    colours = np.asarray(base.colors[:n_colours])
    area = marker_area(n_atoms)
    # one panel per projection, and a last, empty one that holds the legend
    width = 4.6 * len(projections) + 3.0  # inches
    fig, panels = plt.subplots(1, len(projections) + 1, figsize=(width, 5.0), dpi=110,
                               squeeze=False,
                               gridspec_kw={"width_ratios": [1.0] * len(projections) + [0.62]})
    ring_width = 0.8 if area >= 20 else 0.4  # thin rings where points are small and many
    for ax, (i, j) in zip(panels[0], projections):
        if has_cell:
            _cell_outline(ax, cell, i, j)
        ax.scatter(position[:, i], position[:, j], c=colours[owner % n_colours], s=area,
                   linewidths=0, alpha=0.9, zorder=2)
        ax.scatter(sel[POSITIONS][halo, i], sel[POSITIONS][halo, j],
                   s=area * (2.2 + 1.2 * (hop - 1)), facecolors="none", edgecolors="black",
                   linewidths=ring_width, alpha=0.8, zorder=3)
        ax.set_xlabel(f"{'xyz'[i]} (Angstrom)")
        ax.set_ylabel(f"{'xyz'[j]} (Angstrom)")
        ax.set_title(f"{'xyz'[i]}{'xyz'[j]} projection")
        ax.set_aspect("equal", adjustable="datalim")

    dot = dict(marker="o", linestyle="none", markersize=8)
    handles = [Line2D([], [], markerfacecolor=colours[k], markeredgewidth=0, **dot,
                      label=f"part {k}: {sizes[k]:,} atoms")
               for k in range(min(len(parts), MAX_LEGEND_PARTS))]
    if len(parts) > MAX_LEGEND_PARTS:
        handles.append(Line2D([], [], linestyle="none", label=(
            f"... {len(parts)} parts, {sizes.min():,} to {sizes.max():,} atoms"
            + ("; colours repeat every 20" if len(parts) > base.N else ""))))
    handles.append(Line2D([], [], markerfacecolor="none", markeredgecolor="black", **dot,
                          label=f"halo of part {selected}: {int(halo.sum()):,} atoms"
                          + (f", hops 1-{int(hop.max())}" if hop.size and hop.max() > 1
                             else "")))
    legend_ax = panels[0, -1]
    legend_ax.axis("off")
    legend_ax.legend(handles=handles, loc="center left", fontsize=8, frameon=False)
    fig.suptitle(f"{n_atoms:,} atoms in {len(parts)} parts, coloured by owner")
    fig.tight_layout()
    return fig


def plot_partitions(dir_or_arrays, out_png, axes=PROJECTIONS, selected: int = 0) -> Path:
    """Write ``out_png``: owners in colour, halo of part ``selected`` as rings, one panel per
    projection (default xy, xz, yz). ``dir_or_arrays``: a partition directory or a list of part
    array dicts. Returns the written path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = partition_figure(dir_or_arrays, axes, selected)
    out_png = Path(out_png)
    try:
        with atomic_file(out_png, suffix=".png") as tmp:  # matplotlib picks the format by it
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return out_png
