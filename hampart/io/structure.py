"""Atomic structures in and out, through ase.

Positions in Angstrom; ``cell`` rows are the cell vectors (Angstrom); ``pbc`` per cell vector.
Ghost atoms (vacancies) come in two kinds (see :mod:`hampart.basis`):

* without orbitals: atomic number 0, written as the symbol ``X``;
* keeping the orbitals of element Z (CP2K's ``GHOST``): atomic number ``-Z``, written in extended
  xyz as the element's symbol with a per-atom logical column ``ghost`` that is ``T``
  (``Properties=species:S:1:pos:R:3:ghost:L:1``). ase reads such a file as plain atoms of Z plus
  an array ``ghost``; any format ase reads with a boolean per-atom array ``ghost`` works.

Read: anything ase reads (extxyz, CIF, POSCAR, ...; of a multi-frame file the last frame, as
ase does), and CP2K-style plain xyz whose comment line carries the cell: 3 lengths
(orthorhombic), 6 (lengths and angles in degrees) or 9 components (a, b, c rows), alone or after
a word such as ``cell:``, ``cell =``, ``Lattice`` or ``box``. Such a file is periodic in all
three directions; a plain xyz without cell numbers is non-periodic.
Write: extended xyz with the cell, pbc and positions at full float64 precision (``%.17g``), so
a write/read round trip is exact.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .atomic import atomic_file

__all__ = ["Structure", "read_structure", "write_structure"]

@dataclass(frozen=True)
class Structure:
    """numbers ``(n,)`` int64; positions ``(n, 3)``; cell ``(3, 3)``; pbc ``(3,)`` bool."""

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "numbers", np.asarray(self.numbers, dtype=np.int64).reshape(-1))
        object.__setattr__(self, "positions",
                           np.asarray(self.positions, dtype=np.float64).reshape(-1, 3))
        object.__setattr__(self, "cell", np.asarray(self.cell, dtype=np.float64).reshape(3, 3))
        pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        object.__setattr__(self, "pbc", pbc)

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    def check(self) -> "Structure":
        """Raise :class:`InputError` for an empty structure, NaN, or pbc without a cell."""
        what = self.source or "structure"
        if self.n_atoms == 0:
            raise InputError(what, "contains no atoms", "give a structure with atoms")
        if len(self.positions) != self.n_atoms:
            raise InputError(what, "positions and numbers differ in length", "fix the structure")
        if not np.isfinite(self.positions).all() or not np.isfinite(self.cell).all():
            raise InputError(what, "positions or cell contain NaN or infinity", "fix the file")
        if (np.abs(self.numbers) > 118).any():
            raise InputError(what, "atomic numbers outside -118..118 (negative: a ghost "
                             "keeping that element's orbitals)", "fix the element symbols")
        if self.pbc.any():
            lengths = np.linalg.norm(self.cell, axis=1)
            if (lengths[self.pbc] == 0).any() or abs(np.linalg.det(self.cell)) < 1e-8:
                raise InputError(what, "is periodic but has no (or a flat) cell",
                                 "write the cell (extxyz Lattice=\"...\" or numbers in the xyz "
                                 "comment line) or mark the structure non-periodic")
        return self


_CELL_WORDS = ("cell", "lattice", "abc", "box", "cell_abc")


def _as_number(token: str):
    try:
        return float(token.replace("d", "e").replace("D", "e"))
    except ValueError:
        return None


def _cell_from_numbers(values, source):
    """3 lengths, 6 lengths + angles (degrees) or 9 components -> (3, 3) cell."""
    if len(values) == 3:
        return np.diag(values)
    if len(values) == 6:
        from ase.geometry import cellpar_to_cell

        return cellpar_to_cell(values)
    if len(values) == 9:
        return np.array(values, dtype=np.float64).reshape(3, 3)
    raise InputError(source, f"the comment line names a cell but gives {len(values)} numbers",
                     "give 3 lengths, 6 lengths and angles, or 9 components (a, b, c rows)")


def _cell_from_comment(comment: str, source: str = "xyz"):
    """The cell in a CP2K-style xyz comment line, or None when it carries none.

    Either the line is only 3/6/9 numbers, or a word from ``_CELL_WORDS`` (``cell:``,
    ``cell =``, ``Lattice``, ``box``) is followed by them; other numbers on the line (energies,
    step counters, a formula such as HfO2) are ignored.
    """
    tokens = [t for t in re.split(r"[\s,;:=\"'\[\]()]+", comment) if t]
    values = [_as_number(t) for t in tokens]
    if tokens and all(v is not None for v in values):
        return _cell_from_numbers(values, source) if len(values) in (3, 6, 9) else None
    for k, token in enumerate(tokens):
        if token.lower() in _CELL_WORDS:
            after = []
            for v in values[k + 1:]:
                if v is None:
                    break
                after.append(v)
            if len(after) >= 2:  # a lone number after "box" is prose, not a cell
                return _cell_from_numbers(after, source)
    return None


def read_structure(path, format: str | None = None) -> Structure:
    """Read a structure file (see the module docstring); errors name the file."""
    import ase.io

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "no such structure file", "check the path")
    try:
        # parallel=False: under MPI, ase would make every read a broadcast from rank 0, which
        # hangs or garbles messages when one rank reads alone (rank 0 slicing before training)
        try:
            atoms = ase.io.read(path, format=format, parallel=False)
        except ValueError:
            if format is not None or not path.lower().endswith(".xyz"):
                raise
            # plain xyz whose comment extxyz misreads
            atoms = ase.io.read(path, format="xyz", parallel=False)
    except KeyError as e:
        raise InputError(path, f"unknown element {e}",
                         "use chemical symbols (X for ghost atoms)") from None
    except Exception as e:  # ase raises many kinds on malformed files
        raise InputError(path, f"cannot be read as a structure ({type(e).__name__}: {e})",
                         "give extxyz, xyz with the cell in the comment line, CIF or POSCAR"
                         ) from None
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any() and not cell.any() and path.lower().endswith(".xyz"):
        with open(path) as f:
            f.readline()
            found = _cell_from_comment(f.readline(), path)
        if found is not None:
            cell, pbc = found, np.ones(3, dtype=bool)
    numbers = np.asarray(atoms.numbers, dtype=np.int64)
    if "ghost" in atoms.arrays:
        ghost = np.asarray(atoms.arrays["ghost"])
        if ghost.dtype != bool or ghost.shape != numbers.shape:
            raise InputError(path, f"per-atom column 'ghost' is {ghost.dtype} {ghost.shape}, "
                             "not one logical (T/F) per atom",
                             "write it as ghost:L:1 in Properties, T for a ghost atom")
        numbers = np.where(ghost, -np.abs(numbers), numbers)  # X (0) stays 0
    structure = Structure(numbers, atoms.positions, cell, pbc, source=path)
    return structure.check()


def write_structure(path, structure: Structure) -> None:
    """Extended xyz with Lattice, pbc and positions in full precision; written atomically.
    Ghosts keeping orbitals (numbers < 0) add the logical column ``ghost``."""
    from ase.data import chemical_symbols

    structure.check()
    symbols = np.array(["X"] + chemical_symbols[1:])[np.abs(structure.numbers)]
    lattice = " ".join(f"{v:.17g}" for v in structure.cell.reshape(-1))
    lattice = f'Lattice="{lattice}" ' if structure.cell.any() else ""  # none for a molecule
    pbc = " ".join("T" if p else "F" for p in structure.pbc)
    ghost = structure.numbers < 0
    columns = "species:S:1:pos:R:3" + (":ghost:L:1" if ghost.any() else "")
    flags = [" T" if g else " F" for g in ghost.tolist()] if ghost.any() else [""] * len(ghost)
    lines = [str(structure.n_atoms), f'{lattice}Properties={columns} pbc="{pbc}"']
    lines += [f"{s} {x:.17g} {y:.17g} {z:.17g}{g}"  # text is made line by line
              for s, (x, y, z), g in zip(symbols.tolist(), structure.positions.tolist(), flags)]
    with atomic_file(path) as tmp:
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
