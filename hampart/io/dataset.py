"""Dataset directories: one structure, its Hamiltonian and its basis.

Layout (written by ``hampart generate`` and ``hampart label``, read by ``slice``/``evaluate``)::

    DIR/structure.xyz   extended xyz: cell, pbc, positions (Angstrom); ghosts without orbitals
                        as X, ghosts keeping an element's orbitals with the column ghost = T
    DIR/H.npz           scipy sparse H (Hartree), internal = CP2K orbital order
    DIR/S.npz           overlap S, same orbitals and order (optional: DFT data carry it,
                        the synthetic generator's orthogonal H has none)
    DIR/basis.yaml      shells per element (hampart.basis.Basis); on loading, the ghosts of the
                        structure become species of the basis (Basis.with_ghosts)
    DIR/meta.json       how it was made (generator, seed, interaction radius, ...)

A user's own data enter as a structure file plus ``hamiltonian`` (.csr or .npz) and ``basis``.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from ..basis import BUILTIN_BASES, Basis, builtin_basis, load_basis, species_name
from ..errors import InputError, InputWarning
from .atomic import atomic_directory
from .csr import read_matrix, write_matrix
from .structure import Structure, read_structure, write_structure

__all__ = ["Dataset", "load_dataset", "save_dataset", "check_matrix", "find_overlap",
           "read_overlap", "declared_orthogonal", "STRUCTURE_FILE", "HAMILTONIAN_FILE",
           "BASIS_FILE", "META_FILE", "OVERLAP_FILE"]

STRUCTURE_FILE, HAMILTONIAN_FILE, BASIS_FILE, META_FILE = ("structure.xyz", "H.npz", "basis.yaml",
                                                            "meta.json")
OVERLAP_FILE = "S.npz"


@dataclass(frozen=True)
class Dataset:
    """A structure, its H (csr, Hartree, internal orbital order; None if absent), its basis,
    where it came from (directory or structure file) and ``meta`` (meta.json, else {})."""

    structure: Structure
    hamiltonian: sp.csr_matrix | None
    basis: Basis
    path: str
    meta: dict = field(default_factory=dict)


def _matching_bases(numbers, n: int) -> list[str]:
    """Built-in bases that cover these atoms and give exactly ``n`` orbitals."""
    found = []
    for name in BUILTIN_BASES:
        candidate = builtin_basis(name)
        if set(np.unique(np.abs(numbers[numbers != 0])).tolist()) <= set(candidate.shells):
            if int(candidate.orbital_counts(numbers).sum()) == n:
                found.append(name)
    return found


def check_matrix(H, structure: Structure, basis: Basis, source="hamiltonian",
                 overlap: bool = False) -> None:
    """Square, finite, and as large as the basis says for these atoms; else InputError.

    The size message gives both numbers, the orbitals per element, and the built-in bases
    that would fit. A Hamiltonian (``overlap=False``) whose diagonal is all ones draws a
    warning that it looks like S.
    """
    basis.check(structure.numbers, source=structure.source or str(source))
    expected = int(basis.orbital_offsets(structure.numbers)[-1])
    if H.shape[0] != H.shape[1]:
        raise InputError(source, f"matrix is {H.shape[0]} x {H.shape[1]}, not square",
                         "give the full square matrix")
    if H.shape[0] != expected:
        numbers = structure.numbers
        zs, counts = np.unique(numbers[numbers != 0], return_counts=True)
        per = ", ".join(f"{counts[k]} {species_name(z)} x {basis.n_orbitals(z)}"
                        for k, z in enumerate(zs))
        fits = _matching_bases(numbers, H.shape[0])
        hint = (f"the built-in basis {' or '.join(fits)} gives {H.shape[0]}: pass --basis "
                f"{fits[0]}" if fits else "pass the basis the matrix was computed with (--basis "
                "SZV, DZVP or a YAML file listing each element's shells)")
        raise InputError(source, f"matrix has {H.shape[0]} orbitals but basis '{basis.name}' "
                         f"gives {expected} for the structure ({per})",
                         f"{hint}; and check the structure is the one of that calculation")
    data = H.data if sp.issparse(H) else np.asarray(H)
    if not np.isfinite(data).all():
        raise InputError(source, "contains NaN or infinite values", "regenerate the matrix")
    diagonal = H.diagonal()
    if not overlap and diagonal.size and np.abs(diagonal - 1.0).max() < 1e-6:
        warnings.warn(InputWarning(source, "every diagonal element is 1, as in an overlap matrix "
                                   "S (S_CSR_WRITE), not the Kohn-Sham H (KS_CSR_WRITE)",
                                   "pass the KS matrix, unless you mean to learn S"), stacklevel=2)


def load_dataset(path, hamiltonian=None, basis=None) -> Dataset:
    """A dataset directory, or a structure file with ``hamiltonian`` and ``basis``."""
    path = os.fspath(path)
    meta = {}
    if os.path.isdir(path):
        structure_file = os.path.join(path, STRUCTURE_FILE)
        if not os.path.isfile(structure_file):
            raise InputError(path, f"directory without {STRUCTURE_FILE}",
                             "give a directory made by hampart generate/label, or a structure file")
        if hamiltonian is None and os.path.isfile(os.path.join(path, HAMILTONIAN_FILE)):
            hamiltonian = os.path.join(path, HAMILTONIAN_FILE)
        if basis is None and os.path.isfile(os.path.join(path, BASIS_FILE)):
            basis = os.path.join(path, BASIS_FILE)
        meta_file = os.path.join(path, META_FILE)
        if os.path.isfile(meta_file):
            try:
                with open(meta_file) as f:
                    meta = json.load(f)
            except (OSError, ValueError) as e:
                raise InputError(meta_file, f"unreadable ({e})", "regenerate the dataset") from None
            if not isinstance(meta, dict):
                raise InputError(meta_file, "is not a JSON object", "regenerate the dataset")
    else:
        structure_file = path
    structure = read_structure(structure_file)
    if basis is None:
        raise InputError(path, "no basis given", "pass --basis SZV, DZVP or a YAML file")
    basis = load_basis(basis).with_ghosts(structure.numbers, source=structure_file)
    H = None
    if hamiltonian is not None:
        H = read_matrix(hamiltonian)
        check_matrix(H, structure, basis, source=os.fspath(hamiltonian))
    return Dataset(structure, H, basis, path, meta)


def save_dataset(out, structure: Structure, H, basis: Basis, meta=None, replace=False) -> str:
    """Write a dataset directory atomically; returns its path."""
    if H is not None:
        check_matrix(H, structure, basis, source="hamiltonian")
    meta_text = json.dumps(meta or {}, indent=1)  # fails before anything is written
    with atomic_directory(out, replace=replace) as tmp:
        write_structure(os.path.join(tmp, STRUCTURE_FILE), structure)
        if H is not None:
            write_matrix(os.path.join(tmp, HAMILTONIAN_FILE), H)
        basis.to_yaml(os.path.join(tmp, BASIS_FILE))
        with open(os.path.join(tmp, META_FILE), "w") as f:  # last: its presence marks a whole set
            f.write(meta_text + "\n")
    return os.fspath(out)


def find_overlap(path) -> str | None:
    """``path/S.npz`` when ``path`` is a dataset directory that has one, else None."""
    candidate = os.path.join(os.fspath(path), OVERLAP_FILE)
    return candidate if os.path.isdir(os.fspath(path)) and os.path.isfile(candidate) else None


def read_overlap(path, size: int, hamiltonian_source="hamiltonian") -> sp.csr_matrix:
    """The overlap S in ``path`` (.npz or .csr), checked against an H of ``size`` orbitals read
    from ``hamiltonian_source``: square, the same size, finite, positive diagonal; else
    InputError naming both files and sizes."""
    S = read_matrix(path)
    if S.shape[0] != S.shape[1]:
        raise InputError(path, f"overlap matrix is {S.shape[0]} x {S.shape[1]}, not square",
                         "give the full square S")
    if S.shape[0] != size:
        raise InputError(path, f"overlap S has {S.shape[0]} orbitals but H "
                         f"({hamiltonian_source}) has {size}",
                         "give the S of the same calculation as the reference H")
    if not np.isfinite(S.data).all():
        raise InputError(path, "overlap S contains NaN or infinite values", "regenerate S")
    if size and S.diagonal().min() <= 0:
        raise InputError(path, "overlap S has a diagonal element <= 0, which no overlap of "
                         "orbitals has", "give S (S_CSR_WRITE), not another matrix")
    return S


def declared_orthogonal(meta: dict) -> bool:
    """Whether a dataset's meta.json says its basis is orthogonal (S = I): ``"orthogonal":
    true``, or made by the synthetic generator, whose H has no S. DFT data (CP2K) are not."""
    return bool(meta.get("orthogonal")) or str(meta.get("generator", "")).startswith(
        "hampart synthetic")
