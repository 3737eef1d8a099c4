"""CP2K's data files: basis sets (BASIS_MOLOPT) and GTH pseudopotentials (GTH_POTENTIALS).

Basis file entry: a header ``Element NAME [ALIAS ...]`` (MOLOPT aliases end in ``-qN``, the
valence the set was optimised for), the number of sets, then per set a line
``n lmin lmax nexp nshell(lmin) .. nshell(lmax)`` followed by ``nexp`` lines of exponents and
contraction coefficients. CP2K numbers the orbitals of an atom set by set, inside a set by l
from lmin to lmax, ``nshell(l)`` shells of each l, and inside a shell the 2l+1 real solid
harmonics m = -l..l (checked by rotating a molecule: docs/conventions.md). So an element's
shell list is e.g. Hf SZV-MOLOPT-SR-GTH ``2 0 2 6 2 1 1`` -> (0, 0, 1, 2).

Potential file entry: a header ``Element NAME [ALIAS ...]`` and a line with the number of
valence electrons per angular momentum; their sum is the valence charge q (GTH-PBE-q4: 4).
``#`` starts a comment in both files.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

from ase.data import atomic_numbers, chemical_symbols

from ..basis import Basis
from ..errors import InputError

__all__ = ["BasisEntry", "PotentialEntry", "read_basis_entries", "read_potential_entries",
           "basis_shells", "basis_for", "potential_for", "default_data_dir"]

_Q = re.compile(r"-q(\d+)$", re.IGNORECASE)


def default_data_dir() -> str:
    """Where CP2K's data files are: ``$CP2K_DATA_DIR``, else Debian's /usr/share/cp2k."""
    return os.environ.get("CP2K_DATA_DIR") or "/usr/share/cp2k"


@dataclass(frozen=True)
class BasisEntry:
    """One element's basis set: its names, valence ``q`` (from a ``-qN`` name; None if none)
    and shells (angular momenta in CP2K's orbital order)."""

    element: str
    names: tuple[str, ...]
    q: int | None
    shells: tuple[int, ...]


@dataclass(frozen=True)
class PotentialEntry:
    """One element's pseudopotential: its names and valence charge ``q``."""

    element: str
    names: tuple[str, ...]
    q: int


def _lines(path):
    """Non-empty lines with comments removed, as token lists, with 1-based line numbers."""
    try:
        with open(path, errors="replace") as f:
            text = f.readlines()
    except OSError as e:
        raise InputError(path, f"cannot read CP2K data file ({e.strerror})",
                         "install CP2K's data (Debian: apt-get install cp2k-data) or set "
                         "CP2K_DATA_DIR to the directory holding BASIS_MOLOPT and GTH_POTENTIALS"
                         ) from None
    out = []
    for number, line in enumerate(text, 1):
        tokens = line.split("#", 1)[0].split()
        if tokens:
            out.append((number, tokens))
    return out


def _is_header(tokens) -> bool:
    return tokens[0] in atomic_numbers and tokens[0] != "X" and len(tokens) >= 2


def _q_of(names) -> int | None:
    for name in names:
        m = _Q.search(name)
        if m:
            return int(m.group(1))
    return None


@functools.lru_cache(maxsize=16)
def _basis_entries_cached(path: str, mtime: float) -> tuple[BasisEntry, ...]:
    lines = _lines(path)
    entries, k = [], 0
    while k < len(lines):
        number, tokens = lines[k]
        if not _is_header(tokens):  # stray line between entries: skip it
            k += 1
            continue
        try:
            nset = int(lines[k + 1][1][0])
            k += 2
            shells = []
            for _ in range(nset):
                head = lines[k][1]  # some files append shell labels (6s 7s ...): ignored
                lmin, lmax, nexp = int(head[1]), int(head[2]), int(head[3])
                counts = [int(t) for t in head[4:4 + lmax - lmin + 1]]
                if len(counts) != lmax - lmin + 1:
                    raise ValueError("shell counts missing")
                for l, count in zip(range(lmin, lmax + 1), counts):
                    shells.extend([l] * count)
                k += 1 + nexp
        except (IndexError, ValueError):
            raise InputError(path, f"line {number}: basis entry '{' '.join(tokens)}' is "
                             "malformed", "use an unmodified CP2K basis file") from None
        names = tuple(tokens[1:])
        entries.append(BasisEntry(tokens[0], names, _q_of(names), tuple(shells)))
    return tuple(entries)


def read_basis_entries(path) -> tuple[BasisEntry, ...]:
    """Every entry of a CP2K basis file (parsed once per file version)."""
    path = os.fspath(path)
    return _basis_entries_cached(path, os.path.getmtime(path) if os.path.exists(path) else 0.0)


@functools.lru_cache(maxsize=16)
def _potential_entries_cached(path: str, mtime: float) -> tuple[PotentialEntry, ...]:
    lines = _lines(path)
    entries = []
    for k, (number, tokens) in enumerate(lines):
        if not _is_header(tokens) or k + 1 >= len(lines):
            continue
        try:
            q = sum(int(t) for t in lines[k + 1][1])
        except ValueError:
            continue  # a header-like data line; real headers are followed by integers
        entries.append(PotentialEntry(tokens[0], tuple(tokens[1:]), q))
    return tuple(entries)


def read_potential_entries(path) -> tuple[PotentialEntry, ...]:
    """Every entry of a CP2K potential file."""
    path = os.fspath(path)
    return _potential_entries_cached(path, os.path.getmtime(path) if os.path.exists(path) else 0.0)


def basis_for(element: str, name: str, path) -> BasisEntry:
    """The entry named ``name`` (or aliased so) of ``element``; InputError naming both."""
    for entry in read_basis_entries(path):
        if entry.element == element and name in entry.names:
            return entry
    have = sorted({n for e in read_basis_entries(path) if e.element == element
                   for n in e.names[:1]})
    raise InputError(os.fspath(path), f"no basis set '{name}' for {element}"
                     + (f" (it has {', '.join(have[:8])}{' ...' if len(have) > 8 else ''})"
                        if have else " (no basis set at all for this element)"),
                     "choose a basis set this file has for every element (--basis), or give "
                     "another basis file (CP2K_DATA_DIR)")


def potential_for(element: str, q: int | None, path, functional: str = "PBE") -> PotentialEntry:
    """The GTH potential of ``element`` for ``functional`` with valence ``q``.

    ``q`` None (a basis without ``-qN`` in its name): the entry CP2K aliases as plain
    ``GTH-<functional>``. InputError naming the element and the file if there is none.
    """
    prefix = f"GTH-{functional.upper()}"
    candidates = [e for e in read_potential_entries(path) if e.element == element
                  and any(n.upper().startswith(prefix + "-Q") or n.upper() == prefix
                          for n in e.names)]
    if q is not None:
        found = [e for e in candidates if e.q == q]
    else:
        found = [e for e in candidates if any(n.upper() == prefix for n in e.names)]
    if found:
        return found[0]
    have = ", ".join(e.names[0] for e in candidates) or "none"
    want = f"{prefix}-q{q}" if q is not None else prefix
    raise InputError(os.fspath(path), f"no pseudopotential {want} for {element} (it has: {have})",
                     "choose a basis set whose valence matches an available potential, or give "
                     "another potential file (CP2K_DATA_DIR)")


def basis_shells(name: str, elements, path) -> Basis:
    """A :class:`~hampart.basis.Basis` named ``name`` with the shells CP2K's file gives each
    of ``elements`` (symbols or atomic numbers)."""
    shells = {}
    for el in elements:
        symbol = chemical_symbols[el] if isinstance(el, int) or str(el).isdigit() else str(el)
        shells[atomic_numbers[symbol]] = basis_for(symbol, name, path).shells
    return Basis(shells, name=name)
