"""Atomic orbital basis: per element, the angular momenta of its shells.

Orbital order inside an atom (the package's *internal* order, which is CP2K's): shells in the
order listed, and within a shell of angular momentum l the 2l+1 real solid harmonics in
m = -l..l (for p that is p_y, p_z, p_x). Ghost atoms (atomic number 0) own no orbitals.

The *union basis* pads every species to one common set of shells so that every block fits a
``(u, u)`` array: for each l, as many slots as the species with the most shells of that l;
slots are ordered by l, then by shell count. The k-th shell of angular momentum l of a species
sits in the k-th slot of that l. :meth:`Basis.union_index` gives the map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import yaml
from ase.data import atomic_numbers, chemical_symbols

from .errors import InputError

__all__ = ["Basis", "BUILTIN_BASES", "builtin_basis", "load_basis"]

# Shell lists of CP2K's SZV- and DZVP-MOLOPT-SR-GTH sets (valence of the GTH-PBE potentials),
# equal to what hampart.dft.library parses from CP2K 2023.1's BASIS_MOLOPT (tested when the
# file is present). A YAML file overrides them.
BUILTIN_BASES: dict[str, dict[str, tuple[int, ...]]] = {
    "SZV": {
        "H": (0,), "O": (0, 1), "Si": (0, 1), "Ge": (0, 1), "Sb": (0, 1), "Te": (0, 1),
        "Hf": (0, 0, 1, 2), "Pt": (0, 0, 1, 2),
    },
    "DZVP": {
        "H": (0, 0, 1), "O": (0, 0, 1, 1, 2), "Si": (0, 0, 1, 1, 2), "Ge": (0, 0, 1, 1, 2),
        "Sb": (0, 0, 1, 1, 2), "Te": (0, 0, 1, 1, 2),
        "Hf": (0, 0, 0, 1, 1, 2, 2, 3), "Pt": (0, 0, 0, 1, 1, 2, 2, 3),
    },
}


def _to_number(element) -> int:
    if isinstance(element, (int, np.integer)):
        return int(element)
    if element not in atomic_numbers:
        raise KeyError(element)
    return atomic_numbers[element]


@dataclass(frozen=True)
class Basis:
    """Shells per atomic number: ``shells[Z] = (l0, l1, ...)``."""

    shells: Mapping[int, tuple[int, ...]]
    name: str = "custom"
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self):
        clean = {}
        for z, ls in self.shells.items():
            ls = tuple(int(l) for l in ls)
            if any(l < 0 for l in ls):
                raise InputError(f"basis {self.name}", f"negative angular momentum for Z={z}",
                                 "give shells as non-negative l values, e.g. O: [0, 1]")
            clean[int(z)] = ls
        clean.pop(0, None)  # ghosts own nothing, whatever a file says
        object.__setattr__(self, "shells", dict(sorted(clean.items())))

    # ------------------------------------------------------------------ per species
    @property
    def elements(self) -> list[int]:
        return list(self.shells)

    def shells_of(self, z: int) -> tuple[int, ...]:
        if z == 0:
            return ()
        return self.shells[z]

    def n_orbitals(self, z: int) -> int:
        return sum(2 * l + 1 for l in self.shells_of(z))

    @property
    def lmax(self) -> int:
        return max((max(ls) for ls in self.shells.values() if ls), default=0)

    def check(self, numbers: Sequence[int], source: str = "structure") -> None:
        """Raise :class:`InputError` naming the elements of ``numbers`` the basis lacks."""
        missing = sorted({int(z) for z in np.unique(numbers)} - set(self.shells) - {0})
        if missing:
            names = ", ".join(chemical_symbols[z] for z in missing)
            raise InputError(source, f"element(s) {names} not in basis '{self.name}' "
                             f"(it has {', '.join(chemical_symbols[z] for z in self.shells)})",
                             "add their shells to a basis YAML file and pass it with --basis")

    def orbital_counts(self, numbers: Sequence[int]) -> np.ndarray:
        """Orbitals per atom, ``(n_atoms,)`` int64."""
        numbers = np.asarray(numbers, dtype=np.int64)
        self.check(numbers)
        table = np.zeros(max(int(numbers.max(initial=0)), max(self.shells, default=0)) + 1,
                         dtype=np.int64)
        for z in self.shells:
            table[z] = self.n_orbitals(z)
        return table[numbers]

    def orbital_offsets(self, numbers: Sequence[int]) -> np.ndarray:
        """First orbital of each atom in the matrix, ``(n_atoms + 1,)``; last entry = size."""
        counts = self.orbital_counts(numbers)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    # ------------------------------------------------------------------ union basis
    @property
    def union_shells(self) -> tuple[int, ...]:
        """Angular momenta of the padded union basis, sorted by l."""
        if "union" not in self._cache:
            most: dict[int, int] = {}
            for ls in self.shells.values():
                for l in set(ls):
                    most[l] = max(most.get(l, 0), ls.count(l))
            self._cache["union"] = tuple(l for l in sorted(most) for _ in range(most[l]))
        return self._cache["union"]

    @property
    def n_union(self) -> int:
        return sum(2 * l + 1 for l in self.union_shells)

    def union_index(self, z: int) -> np.ndarray:
        """For each orbital of species ``z`` (internal order), its index in the union basis."""
        key = ("uidx", z)
        if key not in self._cache:
            starts, pos = {}, 0
            for l in self.union_shells:
                starts.setdefault(l, []).append(pos)
                pos += 2 * l + 1
            seen: dict[int, int] = {}
            idx = []
            for l in self.shells_of(z):
                k = seen.get(l, 0)
                seen[l] = k + 1
                idx.extend(range(starts[l][k], starts[l][k] + 2 * l + 1))
            self._cache[key] = np.asarray(idx, dtype=np.int64)
        return self._cache[key]

    def union_mask(self, z: int) -> np.ndarray:
        """Boolean ``(u,)``: which union orbitals species ``z`` has."""
        mask = np.zeros(self.n_union, dtype=bool)
        mask[self.union_index(z)] = True
        return mask

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        return {"name": self.name,
                "shells": {chemical_symbols[z]: list(ls) for z, ls in self.shells.items()}}

    def to_yaml(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "basis") -> "Basis":
        if not isinstance(data, Mapping) or "shells" not in data:
            raise InputError(source, "no 'shells' mapping",
                             "write the basis as  shells: {O: [0, 1], Hf: [0, 0, 1, 2]}")
        shells = {}
        for el, ls in data["shells"].items():
            try:
                z = _to_number(el)
            except KeyError:
                raise InputError(source, f"unknown element '{el}'",
                                 "use chemical symbols such as O, Hf, Ge") from None
            if not isinstance(ls, (list, tuple)) or not all(isinstance(l, int) for l in ls):
                raise InputError(source, f"shells of {el} are {ls!r}, not a list of integers",
                                 f"write e.g. {el}: [0, 0, 1, 2]")
            shells[z] = tuple(ls)
        return cls(shells, name=str(data.get("name", os.path.basename(str(source)))))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "Basis":
        try:
            with open(path) as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise InputError(path, f"cannot read basis file ({e.strerror})",
                             "give an existing YAML file or a built-in name (SZV, DZVP)") from None
        except yaml.YAMLError as e:
            raise InputError(path, f"not valid YAML ({e})", "fix the file's syntax") from None
        return cls.from_dict(data, source=str(path))


def builtin_basis(name: str) -> Basis:
    key = name.upper()
    if key not in BUILTIN_BASES:
        raise InputError(f"basis '{name}'", "not a built-in basis",
                         f"use one of {', '.join(BUILTIN_BASES)} or a YAML file path")
    return Basis({atomic_numbers[el]: ls for el, ls in BUILTIN_BASES[key].items()}, name=key)


def load_basis(spec: str | os.PathLike | Basis) -> Basis:
    """A :class:`Basis` from a built-in name (``"SZV"``), a YAML path or a Basis."""
    if isinstance(spec, Basis):
        return spec
    if str(spec).upper() in BUILTIN_BASES:
        return builtin_basis(str(spec))
    return Basis.from_yaml(spec)
