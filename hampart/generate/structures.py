"""Disordered structures at the right density: rattled crystalline supercells.

Positions in Angstrom, periodic cells. Materials (unit cell, default repeats):

==========  ==========================================  ===========  ==========================
material    crystal                                     default      default cell (Angstrom)
==========  ==========================================  ===========  ==========================
hfo2        fluorite HfO2, 12 atoms, a = 5.08           10 x 5 x 5   52.3 x 26.2 x 26.3, 3,000
gst         rocksalt Ge1Sb2Te4: Te anions, cations      6 x 6 x 4    36 x 36 x 24, 1,008
            Ge/Sb with 1 intrinsic vacancy in 4, a = 6
ptge        CsCl-type PtGe, 2 atoms, a = 3.38           16 x 12 x 7  54.1 x 40.6 x 23.7, 2,688
si          diamond Si, 8 atoms, a = 5.431              3 x 3 x 3    16.3 cube, 216
==========  ==========================================  ===========  ==========================

Size: ``size`` is the number of unit-cell repeats, ``(n1, n2, n3)`` or one int N for N x N x N;
or ``atoms`` asks for about that many atoms: the repeats in the default cell's proportions
whose atom count is closest (e.g. ``atoms=100_000`` gives 101,376 HfO2 atoms in 33 x 16 x 16
cells; ``atoms=200`` gives 216 Si atoms in 3 x 3 x 3 cells). Give at most one. The default
HfO2 cell is stretched to the paper's 52.3 x 26.2 x 26.3 Angstrom, and other HfO2 sizes are
scaled to the same density (0.0832 atoms per cubic Angstrom). Disorder:
Gaussian displacements (``rattle`` Angstrom), then pairs closer than ``min_distance`` are pushed
apart. ``vacancies`` turns that fraction of the anion sites (O, Te, Ge, Si) into ghost atoms
that keep their positions: atomic number 0 (no orbitals), or with ``vacancy_orbitals`` -Z,
ghosts keeping the anion's orbitals as CP2K's GHOST kinds do. Deterministic for a given seed
(the same sites either way).

``make_vacancies`` does the same to any structure (a melt-quenched cell, a user's file): the
sites stay where they are, unrelaxed, as in CP2K's ghost-atom vacancies of the paper's HfO_x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vesin
from ase.build import bulk

from ..errors import InputError
from ..io.structure import Structure

__all__ = ["MATERIALS", "Material", "make_structure", "make_vacancies"]


@dataclass(frozen=True)
class Material:
    name: str
    default_size: tuple[int, int, int]
    anion: int                      # atomic number whose sites can become vacancies
    rattle: float                   # Angstrom, standard deviation of each coordinate
    min_distance: float             # Angstrom, no pair closer after relaxation
    paper_cell: tuple[float, float, float] | None = None  # lengths the default is stretched to


MATERIALS = {
    "hfo2": Material("hfo2", (10, 5, 5), 8, 0.25, 1.7, (52.3, 26.2, 26.3)),
    "gst": Material("gst", (6, 6, 4), 52, 0.25, 2.4),
    "ptge": Material("ptge", (16, 12, 7), 32, 0.2, 2.2),
    "si": Material("si", (3, 3, 3), 14, 0.15, 2.0),
}


def _unit_cell(name: str, rng):
    """(numbers, fractional positions, cell) of one unit cell."""
    if name == "hfo2":
        atoms = bulk("HfO2", "fluorite", a=5.08, cubic=True)
    elif name == "si":
        atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    elif name == "ptge":
        atoms = bulk("PtGe", "cesiumchloride", a=3.38)
    elif name == "gst":
        atoms = bulk("NaCl", "rocksalt", a=6.0, cubic=True)
        atoms.numbers[atoms.numbers == 17] = 52  # anions: Te
        atoms.numbers[atoms.numbers == 11] = -1  # cations: filled per supercell below
    else:
        raise KeyError(name)
    return atoms.numbers.copy(), atoms.get_scaled_positions(), atoms.cell.array.copy()


def _relax_overlaps(positions, cell, min_distance, rng, iterations=60):
    """Push apart pairs closer than ``min_distance`` (periodic), a few vectorised sweeps."""
    nl = vesin.NeighborList(cutoff=float(min_distance), full_list=False)
    for _ in range(iterations):
        i, j, d, D = nl.compute(points=positions, box=cell, periodic=True, quantities="ijdD")
        close = d < min_distance
        if not close.any():
            return positions
        i, j, d, D = i[close], j[close], d[close], D[close]
        push = (min_distance - d + 1e-3)[:, None] * 0.5 * D / np.maximum(d, 1e-6)[:, None]
        np.add.at(positions, i, -push)
        np.add.at(positions, j, push)
    d = nl.compute(points=positions, box=cell, periodic=True, quantities="d")
    if d.size and d.min() < min_distance:
        raise InputError("rattle", f"atoms still {d.min():.2f} Angstrom apart after {iterations} "
                         f"relaxation sweeps (minimum {min_distance})", "give a smaller rattle")
    return positions


def _atoms_per_cell(key):
    numbers = _unit_cell(key, None)[0]
    return len(numbers) - 0.25 * int((numbers == -1).sum())  # GST: one cation site in 4 empty


def _repeats(key, spec, size, atoms):
    if size is not None and atoms is not None:
        raise InputError("size / atoms", "both given", "give unit-cell repeats or an atom count")
    if atoms is not None:
        if not int(atoms) >= 1:
            raise InputError("atoms", f"{atoms}", "give a positive number of atoms")
        base = np.array(spec.default_size, dtype=float)
        scale = (int(atoms) / (base.prod() * _atoms_per_cell(key))) ** (1.0 / 3.0)
        # repeats in the default cell's proportions whose atom count is closest to the target
        trial = np.maximum(1, np.rint(np.outer(np.linspace(0.7, 1.3, 601) * scale, base)))
        count = trial.prod(axis=1) * _atoms_per_cell(key)
        return tuple(int(n) for n in trial[np.argmin(np.abs(count - int(atoms)))])
    if size is None:
        return spec.default_size
    reps = tuple(int(n) for n in np.broadcast_to(np.asarray(size).ravel(), (3,)))
    if min(reps) < 1:
        raise InputError("size", f"repeats {reps}", "give three positive integers")
    return reps


def make_structure(material: str, seed: int = 0, vacancies: float = 0.0, size=None,
                   rattle: float | None = None, atoms: int | None = None,
                   vacancy_orbitals: bool = False) -> Structure:
    """A disordered periodic structure; see the module docstring.

    size: unit-cell repeats ``(n1, n2, n3)`` or N (N x N x N); atoms: about this many atoms
    instead (default: the material's default cell). rattle: Gaussian sigma in Angstrom
    (default per material). Raises InputError for an unknown material or bad arguments.
    """
    key = str(material).lower()
    if key not in MATERIALS:
        raise InputError(f"material '{material}'", "unknown",
                         f"choose one of {', '.join(MATERIALS)}")
    spec = MATERIALS[key]
    if not 0.0 <= vacancies < 1.0:
        raise InputError("vacancies", f"fraction {vacancies}", "give a fraction in [0, 1)")
    reps = _repeats(key, spec, size, atoms)
    rng = np.random.default_rng(seed)
    numbers, frac, unit = _unit_cell(key, rng)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in reps], indexing="ij"), -1).reshape(-1, 3)
    frac_all = ((grid[:, None, :] + frac[None, :, :]) / np.array(reps)).reshape(-1, 3)
    numbers = np.tile(numbers, len(grid)).astype(np.int64)
    cell = unit * np.array(reps)[:, None]
    if spec.paper_cell is not None:  # the paper's density, whatever the size
        if reps == spec.default_size:
            cell = np.diag(spec.paper_cell)
        else:
            per_unit = np.prod(spec.paper_cell) / np.prod(spec.default_size)
            cell = cell * (per_unit / abs(np.linalg.det(unit))) ** (1.0 / 3.0)
    if key == "gst":  # cation sublattice: Ge : Sb : vacancy = 1 : 2 : 1, randomly placed
        cation = np.flatnonzero(numbers == -1)
        kinds = np.resize(np.array([32, 51, 51, -1]), cation.size)
        numbers[cation] = rng.permutation(kinds)
        keep = numbers != -1
        numbers, frac_all = numbers[keep], frac_all[keep]
    positions = frac_all @ cell
    positions = positions + rng.normal(scale=spec.rattle if rattle is None else rattle,
                                       size=positions.shape)
    positions = _relax_overlaps(positions, cell, spec.min_distance, rng)
    positions = (positions @ np.linalg.inv(cell)) % 1.0 @ cell  # wrap into the cell
    if vacancies > 0:
        sites = np.flatnonzero(numbers == spec.anion)
        chosen = rng.choice(sites, size=int(round(vacancies * sites.size)), replace=False)
        numbers[chosen] = -spec.anion if vacancy_orbitals else 0
    kept = ", vacancy_orbitals=True" if vacancy_orbitals else ""
    return Structure(numbers, positions, cell, np.ones(3, dtype=bool),
                     source=f"{key}(seed={seed}, size={reps}, vacancies={vacancies}{kept})")


def make_vacancies(structure: Structure, element: str | int, count: int | None = None,
                   seed: int = 0, keep_orbitals: bool = True,
                   fraction: float | None = None) -> Structure:
    """``structure`` with ``count`` of its ``element`` atoms (or ``fraction`` of them,
    rounded), chosen at random (``seed``), made vacancies in place: ghosts keeping the
    element's orbitals (atomic number -Z, CP2K's GHOST) or, ``keep_orbitals=False``,
    orbital-less ghosts (0). InputError when the structure has fewer such atoms than asked."""
    from ase.data import atomic_numbers

    z = int(element) if str(element).lstrip("-").isdigit() else atomic_numbers.get(str(element))
    what = structure.source or "structure"
    if z is None or z <= 0:
        raise InputError(f"element '{element}'", "is not a chemical element",
                         "give a symbol such as O, or an atomic number")
    if (count is None) == (fraction is None):
        raise InputError(what, "vacancies asked as neither or both of a count and a fraction",
                         "give one of them")
    sites = np.flatnonzero(structure.numbers == z)
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise InputError(f"fraction {fraction}", "is not in [0, 1]",
                             "give a fraction of the element's sites, e.g. 0.0625")
        count = int(round(fraction * sites.size))
    if not 0 <= count <= sites.size:
        raise InputError(what, f"has {sites.size} atoms of Z = {z}, cannot make {count} vacancies",
                         f"ask for 0 to {sites.size}")
    chosen = np.random.default_rng(seed).choice(sites, size=count, replace=False)
    numbers = structure.numbers.copy()
    numbers[chosen] = -z if keep_orbitals else 0
    kind = "ghosts keeping orbitals" if keep_orbitals else "orbital-less ghosts"
    return Structure(numbers, structure.positions, structure.cell, structure.pbc,
                     source=f"{what} with {count} of {sites.size} Z = {z} sites as {kind} "
                            f"(seed {seed})")
