"""Atomic orbital basis: per element, the angular momenta of its shells.

Orbital order inside an atom (the package's *internal* order, which is CP2K's): shells in the
order listed, and within a shell of angular momentum l the 2l+1 real solid harmonics in
m = -l..l (for p that is p_y, p_z, p_x).

Ghost atoms (vacancies): a position, no potential, no electrons. Two kinds:

* atomic number 0 (``X``): owns no orbitals (the synthetic generator's vacancies);
* atomic number ``-Z``: a ghost that keeps the orbitals of element Z (CP2K's ``GHOST`` kinds, the
  paper's "V"): its shells are Z's, in Z's order, and its rows are in H and S. It is a species
  of its own, named ``<El>_ghost`` (:func:`species_name`).

Every ghost ``-Z`` of an element Z of the basis has orbitals; :attr:`Basis.ghosts` lists the
elements whose ghosts are also *model species* (own embedding and heads, :attr:`Basis.species`),
set from the data with :meth:`Basis.with_ghosts`. Tables indexed by atomic number are
``2 * max Z + 1`` long (:meth:`Basis.table_rows`) so that a ghost's row ``-Z`` wraps, by numpy's
and torch's negative indexing, onto a row no element uses.

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

__all__ = ["Basis", "BUILTIN_BASES", "builtin_basis", "load_basis", "species_name",
           "same_shells", "merge_bases"]

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


def species_name(z: int) -> str:
    """``"O"`` for 8, ``"O_ghost"`` for -8 (ghost keeping O's orbitals), ``"X"`` for 0."""
    z = int(z)
    if z == 0:
        return "X"
    return chemical_symbols[abs(z)] + ("_ghost" if z < 0 else "")


def _to_number(element) -> int:
    if isinstance(element, (int, np.integer)):
        return int(element)
    if element not in atomic_numbers:
        raise KeyError(element)
    return atomic_numbers[element]


@dataclass(frozen=True)
class Basis:
    """Shells per atomic number: ``shells[Z] = (l0, l1, ...)``; ``ghosts``: elements whose
    ghosts (atomic number ``-Z``) are model species (see the module docstring)."""

    shells: Mapping[int, tuple[int, ...]]
    name: str = "custom"
    ghosts: tuple[int, ...] = ()
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
        ghosts = tuple(sorted({abs(int(z)) for z in self.ghosts} - {0}))
        unknown = [z for z in ghosts if z not in self.shells]
        if unknown:
            raise InputError(f"basis {self.name}", "ghosts of element(s) "
                             f"{', '.join(chemical_symbols[z] for z in unknown)} without shells",
                             "give the shells of every element whose ghosts keep orbitals")
        object.__setattr__(self, "ghosts", ghosts)

    # ------------------------------------------------------------------ per species
    @property
    def elements(self) -> list[int]:
        """The real elements (atomic numbers > 0)."""
        return list(self.shells)

    @property
    def species(self) -> list[int]:
        """The model's species that own orbitals: the elements, then the ghosts ``-Z`` of
        :attr:`ghosts`."""
        return list(self.shells) + [-z for z in self.ghosts]

    @property
    def orbital_species(self) -> list[int]:
        """Every atomic number that owns orbitals here: each element and its ghost."""
        return list(self.shells) + [-z for z in self.shells]

    def table_rows(self, numbers: Sequence[int] = ()) -> int:
        """Length of a table indexed by atomic number that covers the elements, their ghosts
        (negative rows wrap to the end) and ``numbers``: ``2 * max |Z| + 1``."""
        top = max(max(self.shells, default=0),
                  int(np.abs(np.asarray(numbers, dtype=np.int64)).max(initial=0)))
        return 2 * top + 1

    def with_ghosts(self, numbers: Sequence[int], source: str = "structure") -> "Basis":
        """This basis with the ghosts in ``numbers`` (atomic numbers < 0) as model species
        (InputError naming ``source`` for a ghost of an element without shells)."""
        numbers = np.asarray(numbers, dtype=np.int64)
        self.check(numbers, source=source)
        found = {-int(z) for z in np.unique(numbers[numbers < 0])}
        if found <= set(self.ghosts):
            return self
        return Basis(self.shells, self.name, tuple(sorted(found | set(self.ghosts))))

    def for_structure(self, numbers: Sequence[int], source: str = "structure") -> "Basis":
        """This basis with only the elements of ``numbers`` (a ghost's element included) and
        its ghosts as species: what partitions store, so data sets labelled from one basis
        table or from the elements they hold pad their blocks alike."""
        with_ghosts = self.with_ghosts(numbers, source=source)
        present = {abs(int(z)) for z in np.unique(np.asarray(numbers, dtype=np.int64))} - {0}
        shells = {z: ls for z, ls in self.shells.items() if z in present}
        if shells == self.shells:
            return with_ghosts
        return Basis(shells, self.name, with_ghosts.ghosts)

    def shells_of(self, z: int) -> tuple[int, ...]:
        """Shells of species ``z`` (a ghost ``-Z``: those of Z; 0: none)."""
        if z == 0:
            return ()
        return self.shells[abs(int(z))]

    def n_orbitals(self, z: int) -> int:
        return sum(2 * l + 1 for l in self.shells_of(z))

    @property
    def lmax(self) -> int:
        return max((max(ls) for ls in self.shells.values() if ls), default=0)

    def check(self, numbers: Sequence[int], source: str = "structure") -> None:
        """Raise :class:`InputError` naming the elements of ``numbers`` the basis lacks."""
        zs = np.unique(np.asarray(numbers, dtype=np.int64))
        if (np.abs(zs) > 118).any():
            raise InputError(source, f"atomic number(s) {zs[np.abs(zs) > 118].tolist()} outside "
                             "-118..118", "fix the element symbols")
        missing = sorted({int(z) for z in zs if z and abs(int(z)) not in self.shells},
                         key=lambda z: (abs(z), z < 0))
        if missing:
            names = ", ".join(species_name(z) for z in missing)
            ghost = " (a ghost keeps its element's orbitals)" if min(missing) < 0 else ""
            raise InputError(source, f"element(s) {names} not in basis '{self.name}'{ghost} "
                             f"(it has {', '.join(chemical_symbols[z] for z in self.shells)})",
                             "add their shells to a basis YAML file and pass it with --basis")

    def orbital_counts(self, numbers: Sequence[int]) -> np.ndarray:
        """Orbitals per atom, ``(n_atoms,)`` int64."""
        numbers = np.asarray(numbers, dtype=np.int64)
        self.check(numbers)
        table = np.zeros(self.table_rows(numbers), dtype=np.int64)
        for z in self.orbital_species:
            table[z] = self.n_orbitals(z)  # a ghost's row -z wraps to the end
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
        """``{name, shells: {El: [l, ...]}}``, plus ``ghosts: [El, ...]`` when there are any."""
        out = {"name": self.name,
               "shells": {chemical_symbols[z]: list(ls) for z, ls in self.shells.items()}}
        if self.ghosts:
            out["ghosts"] = [chemical_symbols[z] for z in self.ghosts]
        return out

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
        ghosts = data.get("ghosts") or []
        if not isinstance(ghosts, (list, tuple)) or not all(
                isinstance(g, str) and g in atomic_numbers for g in ghosts):
            raise InputError(source, f"ghosts are {ghosts!r}, not a list of element symbols",
                             "write e.g.  ghosts: [O]  (elements whose ghosts keep orbitals)")
        return cls(shells, name=str(data.get("name", os.path.basename(str(source)))),
                   ghosts=tuple(atomic_numbers[g] for g in ghosts))

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


def same_shells(a: Mapping | None, b: Mapping | None) -> bool:
    """Whether two :meth:`Basis.to_dict` records are one basis, whatever ghosts each data set
    made species (structures with and without vacancies train one model)."""
    def strip(d):
        return None if d is None else {k: v for k, v in d.items() if k != "ghosts"}

    return strip(a) == strip(b)


def merge_bases(records: Sequence[tuple[str, Mapping]]) -> Basis:
    """One basis for data sets labelled in one basis set, from their ``(source,``
    :meth:`Basis.to_dict` ``)`` records: the union of their elements' shells and ghosts.

    A data set may list only the elements it holds (``hampart label``) or a whole table (a
    basis file), so records agree when they have one name and every element two of them list
    has the same shells; otherwise InputError naming both sources.
    """
    shells: dict[int, tuple[int, ...]] = {}
    ghosts: set[int] = set()
    first_source, first = records[0]
    name = first.get("name")
    seen: dict[int, str] = {}
    for source, record in records:
        basis = Basis.from_dict(record, source=source)
        if record.get("name") != name:
            raise InputError(source, f"was labelled in basis '{record.get('name')}', "
                             f"{first_source} in '{name}'",
                             "train and validate on structures labelled in one basis set")
        for z, ls in basis.shells.items():
            if z in shells and shells[z] != ls:
                raise InputError(source, f"gives {chemical_symbols[z]} the shells {list(ls)}, "
                                 f"{seen[z]} gives it {list(shells[z])}",
                                 "train and validate on structures labelled in one basis set")
            shells.setdefault(z, ls)
            seen.setdefault(z, source)
        ghosts.update(basis.ghosts)
    return Basis(shells, str(name), tuple(sorted(ghosts)))


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
