"""A Hamiltonian (and its overlap) as a ``sisl.Hamiltonian``, and as a TSHS file that sisl,
SIESTA's utilities and TBtrans read.

Units: sisl works in eV and Angstrom, so H (Hartree) is multiplied by
:data:`hampart.evaluate.metrics.HARTREE_EV`; S has no unit.

Orbitals: each atom carries its basis shells in the internal (CP2K) order, every shell as
m = -l..l (p: p_y, p_z, p_x), which is also the order of sisl's ``AtomicOrbital`` labels and of
SIESTA. Both use real solid harmonics with z polar, but SIESTA's (and sisl's, which follow it)
carry the Condon-Shortley phase: sisl's function of order m is (-1)^m times ours (checked on
random points for l = 0..3 in tests/evaluate/test_export.py). So orbitals of odd m change sign:
H_sisl = D H D and S_sisl = D S D with D = diag((-1)^m), the "siesta" order of
:mod:`hampart.conventions`. Eigenvalues do not depend on it; the
signs matter for anything sisl computes from orbital shapes (wavefunctions on a grid). Repeated
shells of one l are numbered by ``zeta`` 1, 2, ...; the principal quantum number is sisl's
default (a label only). Radii are unknown (-1): sisl needs them only to build matrices, not to
use given ones. A TSHS file keeps positions, cell and the orbital count of every atom, not the
species or the l, m labels (sisl reads it back with placeholder atoms): those live on the
object :func:`to_sisl` returns, or come from SIESTA's input files.

Supercell: hampart's H and S are Gamma-point matrices (CP2K's KS_CSR_WRITE at the Gamma point):
H_Gamma = sum over images of the couplings, one n x n matrix. The honest sisl form is a
Gamma-only Hamiltonian, ``nsc = [1, 1, 1]``: its eigenvalues at k = 0 are the Gamma-point ones,
while other k points, band structures and TBtrans electrodes need the couplings per image,
which a Gamma-point matrix does not hold. Atoms without orbitals (the synthetic generator's
ghosts, Z = 0) are left out, since a sisl atom has at least one orbital. A ghost keeping element
Z's orbitals (atomic number -Z, CP2K's GHOST) becomes a ``sisl.AtomGhost`` of Z with Z's
orbitals, tagged ``<El>_ghost``.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from ..basis import species_name
from ..errors import InputError
from ..io.atomic import atomic_file

__all__ = ["SISL_SUFFIXES", "to_sisl", "write_sisl"]

SISL_SUFFIXES = (".TSHS",)  # written by sisl's bundled Fortran extension, no extra package


def _atoms(numbers, basis):
    import sisl

    species = {}
    for z in np.unique(numbers):
        orbitals, zeta = [], {}
        for l in basis.shells_of(int(z)):
            zeta[l] = zeta.get(l, 0) + 1
            orbitals += [sisl.AtomicOrbital(l=l, m=m, zeta=zeta[l]) for m in range(-l, l + 1)]
        species[int(z)] = (sisl.Atom(int(z), orbitals) if z > 0 else
                           sisl.AtomGhost(-int(z), orbitals, tag=species_name(int(z))))
    return [species[int(z)] for z in numbers]


def to_sisl(H, S, structure, basis):
    """``sisl.Hamiltonian`` (eV, Gamma-only: nsc = [1, 1, 1]) of ``H`` (Hartree, internal
    order) and ``S`` (None: orthogonal) for ``structure`` in ``basis``."""
    import sisl

    from ..conventions import reorder_matrix
    from .metrics import HARTREE_EV

    numbers = np.asarray(structure.numbers, dtype=np.int64)
    counts = basis.orbital_counts(numbers)
    size = int(counts.sum())
    for name, M in (("H", H), ("S", S)):
        if M is not None and tuple(M.shape) != (size, size):
            raise InputError(name, f"matrix is {tuple(M.shape)} but the structure has {size} "
                             f"orbitals in basis '{basis.name}'", "give the matrices of this "
                             "structure, computed in this basis")
    keep = counts > 0
    cell = np.asarray(structure.cell, dtype=np.float64)
    if abs(np.linalg.det(cell)) < 1e-9:  # a molecule: a box around it, 10 A of vacuum
        span = np.ptp(structure.positions, axis=0) + 10.0
        cell = np.diag(span)
    lattice = sisl.Lattice(cell, nsc=[1, 1, 1])
    geometry = sisl.Geometry(np.asarray(structure.positions)[keep], _atoms(numbers[keep], basis),
                             lattice=lattice)
    H_eV = reorder_matrix(sp.csr_matrix(H), numbers, basis, "internal", "siesta") * HARTREE_EV
    if S is None:
        return sisl.Hamiltonian.fromsp(geometry, H_eV)
    return sisl.Hamiltonian.fromsp(geometry, H_eV, reorder_matrix(sp.csr_matrix(S), numbers, basis,
                                                                  "internal", "siesta"))


def write_sisl(path, H, S, structure, basis) -> str:
    """Write ``to_sisl(...)`` to ``path`` (a .TSHS file), atomically; returns the path."""
    path = os.fspath(path)
    suffix = next((s for s in SISL_SUFFIXES if path.endswith(s)), None)
    if suffix is None:
        raise InputError(path, "sisl export writes TSHS files (SIESTA/TBtrans Hamiltonian)",
                         "name the output NAME.TSHS")
    hamiltonian = to_sisl(H, S, structure, basis)
    with atomic_file(path, suffix=suffix) as tmp:  # sisl picks the format by the suffix
        hamiltonian.write(str(tmp))
    return path
