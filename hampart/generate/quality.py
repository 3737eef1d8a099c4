"""Structural quality of an amorphous structure: g(r), first peak, coordination, density.

Units: distances in Angstrom, density in g/cm^3 (atomic masses from ase). Periodic cells are
handled by vesin's neighbour list, which finds every image within the cutoff, so ``rmax`` may
exceed half the cell.

* ``radial_distribution`` gives the partial g_AB(r) of neighbours B around centres A (``None``
  = every element), normalised so that g -> 1 in a homogeneous structure:
  ``g(r) = n_AB(r) / (N_A * rho_B * 4 pi r^2 dr)`` with ``n_AB`` the pair count in the shell
  ``[r - dr/2, r + dr/2)`` and ``rho_B`` the number density of B atoms.
* ``first_peak`` is the maximum of g below the coordination cutoff, refined by a parabola
  through the highest bin and its two neighbours (the bin centre for a delta-like peak).
* The coordination of an atom is its number of B neighbours closer than the cutoff (e.g. 2.85
  Angstrom for Si-Si, the first minimum of g(r) in a-Si).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np
from ase.data import atomic_masses, chemical_symbols

from ..io.atomic import atomic_file
from ..io.structure import Structure

__all__ = ["Reference", "QualityReport", "radial_distribution", "first_peak", "coordination",
           "density", "closest_pairs", "analyse", "write_report", "plot_rdf", "summary_line"]

_AVOGADRO = 6.02214076e23


@dataclass(frozen=True)
class Reference:
    """Measured values to compare with, and where they come from."""

    first_peak: float           # Angstrom
    coordination: float | None  # mean number of neighbours within the cutoff
    density: float | None       # g/cm^3
    source: str                 # full citation(s)
    short: str = ""             # a few words for plot legends


@dataclass
class QualityReport:
    """What :func:`analyse` measured (distances in Angstrom, density in g/cm^3)."""

    n_atoms: int
    formula: str
    centre: str                      # element of the centre atoms ("all" for every element)
    neighbour: str
    cutoff: float
    density: float
    first_peak: float
    mean_coordination: float
    coordination_fractions: dict     # {"3": fraction, "4": ..., ...} of centre atoms
    min_distance: float
    reference: dict | None
    r: list = field(repr=False)
    g: list = field(repr=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def _select(numbers, element):
    if element is None:
        return np.ones(len(numbers), dtype=bool)
    return numbers == chemical_symbols.index(element)


def _neighbour_pairs(structure: Structure, cutoff: float):
    """``(i, j, d)`` over every ordered pair and periodic image closer than ``cutoff``."""
    import vesin

    periodic = bool(structure.pbc.all())
    box = structure.cell if periodic else np.zeros((3, 3))
    i, j, d = vesin.NeighborList(cutoff=float(cutoff), full_list=True).compute(
        structure.positions, box, periodic, "ijd")
    return np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64), np.asarray(d)


def radial_distribution(structure: Structure, rmax: float = 8.0, dr: float = 0.05,
                        centre: str | None = None, neighbour: str | None = None):
    """``(r, g)``: bin centres ``(n_bins,)`` and the partial g(r) of ``neighbour`` around
    ``centre`` (element symbols, None = all) in a periodic ``structure``."""
    if not structure.pbc.all():
        raise ValueError("g(r) needs a structure periodic in all three directions")
    i, j, d = _neighbour_pairs(structure, rmax)
    a, b = _select(structure.numbers, centre), _select(structure.numbers, neighbour)
    keep = a[i] & b[j]
    edges = np.arange(0.0, rmax + dr / 2, dr)
    counts, _ = np.histogram(d[keep], bins=edges)
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    volume = abs(np.linalg.det(structure.cell))
    g = counts / (a.sum() * (b.sum() / volume) * shell)
    return r, g


def first_peak(r, g, rmax: float) -> float:
    """Position (Angstrom) of the highest g below ``rmax``, refined by a parabola."""
    below = np.flatnonzero(r < rmax)
    k = below[np.argmax(g[below])]
    if k == 0 or k + 1 >= len(g):
        return float(r[k])
    y0, y1, y2 = g[k - 1], g[k], g[k + 1]
    curvature = y0 - 2 * y1 + y2
    shift = 0.0 if curvature == 0 else 0.5 * (y0 - y2) / curvature
    return float(r[k] + np.clip(shift, -0.5, 0.5) * (r[1] - r[0]))


def coordination(structure: Structure, cutoff: float, centre: str | None = None,
                 neighbour: str | None = None) -> np.ndarray:
    """``(n_centre,)`` int: neighbours of each centre atom closer than ``cutoff`` Angstrom."""
    i, j, _ = _neighbour_pairs(structure, cutoff)
    a, b = _select(structure.numbers, centre), _select(structure.numbers, neighbour)
    counts = np.bincount(i[a[i] & b[j]], minlength=structure.n_atoms)
    return counts[a]


def density(structure: Structure) -> float:
    """Mass density in g/cm^3 (ghost atoms weigh nothing)."""
    mass = float(np.where(structure.numbers > 0, atomic_masses[structure.numbers], 0.0).sum())
    return mass / _AVOGADRO / (abs(np.linalg.det(structure.cell)) * 1e-24)


def closest_pairs(structure: Structure, rmax: float = 4.0) -> dict:
    """``{"A-B": distance}``: the closest pair of each element pair (alphabetical, Angstrom)
    within ``rmax``; pairs with none that close are left out."""
    i, j, d = _neighbour_pairs(structure, rmax)
    symbols = np.array([chemical_symbols[abs(int(z))] for z in structure.numbers])
    closest = {}
    for a, b, dist in zip(symbols[i].tolist(), symbols[j].tolist(), d.tolist()):
        key = "-".join(sorted((a, b)))
        closest[key] = min(dist, closest.get(key, np.inf))
    return closest


def _formula(numbers) -> str:
    zs, counts = np.unique(numbers, return_counts=True)
    from ..basis import species_name  # ghosts: X, <El>_ghost

    return "".join(f"{species_name(z)}{c}" for z, c in zip(zs.tolist(), counts.tolist()))


def analyse(structure: Structure, cutoff: float, centre: str | None = None,
            neighbour: str | None = None, reference: Reference | None = None,
            rmax: float = 8.0, dr: float = 0.05) -> QualityReport:
    """g(r) to ``rmax``, first peak and coordination within ``cutoff``, density, closest pair."""
    r, g = radial_distribution(structure, rmax, dr, centre, neighbour)
    counts = coordination(structure, cutoff, centre, neighbour)
    values, n = np.unique(counts, return_counts=True)
    _, _, d = _neighbour_pairs(structure, max(cutoff, 4.0))
    return QualityReport(
        n_atoms=structure.n_atoms, formula=_formula(structure.numbers),
        centre=centre or "all", neighbour=neighbour or "all", cutoff=float(cutoff),
        density=density(structure), first_peak=first_peak(r, g, cutoff),
        mean_coordination=float(counts.mean()),
        coordination_fractions={str(v): float(c / counts.size)
                                for v, c in zip(values.tolist(), n.tolist())},
        min_distance=float(d.min()) if d.size else float("inf"),
        reference=None if reference is None else asdict(reference),
        r=np.round(r, 6).tolist(), g=np.round(g, 6).tolist())


def summary_line(report: QualityReport) -> str:
    """One line: density, first peak, coordination and the fractions of the folds around its
    mean (3/4/5-fold for a mean of 4)."""
    f = report.coordination_fractions
    middle = int(round(report.mean_coordination))  # a-Si: 3/4/5-fold, a-HfO2 (Hf by O): 5/6/7
    folds = ", ".join(f"{k}-fold {100 * f.get(str(k), 0.0):.1f}%"
                      for k in (middle - 1, middle, middle + 1))
    pair = "" if report.centre == report.neighbour == "all" else \
        f" ({report.centre}-{report.neighbour})"
    line = (f"{report.formula}: density {report.density:.3f} g/cm3, first peak{pair} "
            f"{report.first_peak:.3f} A, coordination {report.mean_coordination:.2f} within "
            f"{report.cutoff:g} A ({folds}), closest pair {report.min_distance:.2f} A")
    ref = report.reference
    if ref:
        extra = f"; reference peak {ref['first_peak']:g} A"
        if ref.get("coordination") is not None:
            extra += f", coordination {ref['coordination']:g}"
        line += extra + f" ({ref['source']})"
    return line


def plot_rdf(report: QualityReport, path, title: str = "") -> None:
    """PNG of g(r) with the cutoff, the measured and the reference first peak marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(report.r, report.g, color="black", lw=1.2, label="g(r), this structure")
    ax.axvline(report.first_peak, color="tab:blue", ls="-", lw=0.8, alpha=0.7,
               label=f"first peak {report.first_peak:.3f} A")
    if report.reference:
        ref = report.reference
        ax.axvline(ref["first_peak"], color="tab:red", ls="--", lw=1.2,
                   label=f"reference {ref['first_peak']:g} A ({ref.get('short') or ref['source']})")
    ax.axvline(report.cutoff, color="gray", ls=":", lw=1.2,
               label=f"cutoff {report.cutoff:g} A: coordination {report.mean_coordination:.2f}")
    ax.set_xlabel("r (Angstrom)")
    pair = "" if report.centre == report.neighbour == "all" else \
        f"$_{{{report.centre}-{report.neighbour}}}$"
    ax.set_ylabel(f"g{pair}(r)")
    ax.set_xlim(0, max(report.r) if report.r else 8)
    ax.set_ylim(bottom=0)
    ax.set_title(title or f"{report.formula}, {report.density:.3f} g/cm$^3$", fontsize=10)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_report(report: QualityReport, directory, title: str = "") -> dict:
    """``quality.json`` and ``rdf.png`` in ``directory``; returns their paths."""
    paths = {"json": os.path.join(directory, "quality.json"),
             "png": os.path.join(directory, "rdf.png")}
    with atomic_file(paths["json"]) as tmp:
        with open(tmp, "w") as f:
            f.write(report.to_json() + "\n")
    plot_rdf(report, paths["png"], title)
    return paths
