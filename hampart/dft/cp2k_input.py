"""CP2K input for a Gamma-point Kohn-Sham H and overlap S of one structure.

What the input asks for: Quickstep GPW, PBE, GTH-PBE pseudopotentials whose valence matches
the basis (the ``-qN`` of a MOLOPT name: Si q4, O q6, Hf q12, Pt q18), a MOLOPT basis by name,
``CUTOFF`` / ``REL_CUTOFF`` (Ry), no spin polarisation, the Gamma point only, and
``KS_CSR_WRITE`` / ``S_CSR_WRITE`` of the full real matrices with threshold 0 (every element).
SCF: ``diag`` (default; standard diagonalisation, Broyden mixing, Fermi-Dirac smearing: robust
for amorphous and metallic cells) or ``ot`` (orbital transformation, no smearing: insulators).

Geometry: positions and cell rows in Angstrom, atoms in the structure's order (CP2K numbers
the orbitals atom by atom in this order). A structure periodic in all three directions gets
``PERIODIC XYZ``; a non-periodic one (a molecule in a box) ``PERIODIC NONE`` with the
wavelet Poisson solver (free boundaries; the box must hold the density, about 5 A of vacuum
around the atoms). Non-periodic runs have no periodic images at all, so H and S are those of
the isolated molecule.

Ghost atoms: atomic number ``-Z`` is a vacancy that keeps the orbitals of element Z (a kind
``<El>_ghost`` with ``GHOST``: basis functions, no potential, no electrons); 0 (an orbital-less
ghost) has no CP2K counterpart and is refused.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
from ase.data import chemical_symbols

from ..basis import Basis
from ..errors import InputError
from .library import basis_for, default_data_dir, potential_for

__all__ = ["CP2KSettings", "Cp2kInput", "make_input", "cp2k_basis_name", "BASIS_ALIASES",
           "PROJECT"]

PROJECT = "hampart"  # CP2K's project name: output files are hampart-KS_SPIN_1-1_0.csr etc.
BASIS_ALIASES = {"SZV": "SZV-MOLOPT-SR-GTH", "DZVP": "DZVP-MOLOPT-SR-GTH"}


def cp2k_basis_name(name: str) -> str:
    """CP2K's basis name for hampart's short names (SZV, DZVP); other names unchanged."""
    return BASIS_ALIASES.get(str(name).upper(), str(name))


@dataclass(frozen=True)
class CP2KSettings:
    """Electronic-structure settings. cutoff, rel_cutoff in Ry; smearing_kelvin for ``diag``."""

    basis: str = "SZV-MOLOPT-SR-GTH"
    cutoff: float = 300.0
    rel_cutoff: float = 50.0
    scf: str = "diag"
    eps_scf: float = 1e-7
    eps_default: float = 1e-12
    max_scf: int = 200
    smearing_kelvin: float = 300.0
    data_dir: str | None = None  # None: $CP2K_DATA_DIR or /usr/share/cp2k

    @property
    def basis_file(self) -> str:
        return os.path.join(self.data_dir or default_data_dir(), "BASIS_MOLOPT")

    @property
    def potential_file(self) -> str:
        return os.path.join(self.data_dir or default_data_dir(), "GTH_POTENTIALS")

    def check(self) -> "CP2KSettings":
        if self.scf not in ("diag", "ot"):
            raise InputError(f"scf '{self.scf}'", "unknown SCF method", "use diag or ot")
        if not self.cutoff > 0 or not self.rel_cutoff > 0:
            raise InputError(f"cutoff {self.cutoff} / rel_cutoff {self.rel_cutoff}",
                             "cutoffs must be positive (Ry)", "e.g. --cutoff 300 --rel-cutoff 50")
        if not 0 < self.eps_scf < 1 or self.max_scf < 1 or self.smearing_kelvin < 0:
            raise InputError("SCF settings", f"eps_scf {self.eps_scf}, max_scf {self.max_scf}, "
                             f"smearing {self.smearing_kelvin} K out of range",
                             "give 0 < eps_scf < 1, max_scf >= 1, smearing >= 0 K")
        return self


@dataclass(frozen=True)
class Cp2kInput:
    """The input text, its sha256, the hampart basis of the atoms (CP2K's shells per element),
    the valence electrons CP2K will have, and which potential each element got."""

    text: str
    sha256: str
    basis: Basis
    electrons: int
    potentials: dict
    n_orbitals: int


def _vector(v) -> str:
    return " ".join(f"{x:.17g}" for x in v)  # full float64: same geometry as structure.xyz


def make_input(numbers, positions, cell, pbc, settings: CP2KSettings = CP2KSettings(),
               source: str = "structure") -> Cp2kInput:
    """The CP2K input of atoms ``numbers`` ``(n,)`` (negative: ghost keeping that element's
    orbitals), ``positions`` ``(n, 3)`` Angstrom, ``cell`` ``(3, 3)`` rows in Angstrom, ``pbc``
    ``(3,)``. InputError (naming ``source``) for orbital-less ghosts, mixed periodicity, a
    missing cell, or an element without the basis or a matching potential."""
    settings = settings.check()
    numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if numbers.size == 0:
        raise InputError(source, "contains no atoms", "give a structure with atoms")
    if (numbers == 0).any():
        k = int(np.argmax(numbers == 0))
        raise InputError(source, f"atom {k} is a ghost without orbitals (atomic number 0, 'X'); "
                         "CP2K has no such atom", "remove it, or make it a ghost that keeps an "
                         "element's orbitals (atomic number -Z)")
    if np.abs(numbers).max() > 118:
        raise InputError(source, "atomic numbers beyond 118", "fix the element symbols")
    if pbc.any() and not pbc.all():
        raise InputError(source, f"periodic along {pbc.tolist()} only",
                         "make it periodic in all three directions, or none (a molecule in a box)")
    if abs(np.linalg.det(cell)) < 1e-6:
        raise InputError(source, "has no cell (CP2K needs one, also for a molecule)",
                         "give the cell (extxyz Lattice=...) or put the molecule in a box")
    basis_name = cp2k_basis_name(settings.basis)
    shells, potentials, valence = {}, {}, {}
    for z in sorted({abs(int(z)) for z in numbers}):
        symbol = chemical_symbols[z]
        entry = basis_for(symbol, basis_name, settings.basis_file)
        shells[z] = entry.shells
        if (numbers == z).any():  # ghosts need no potential
            pot = potential_for(symbol, entry.q, settings.potential_file)
            potentials[symbol] = pot.names[0]
            valence[z] = pot.q
    basis = Basis(shells, name=basis_name)
    electrons = int(sum(valence[int(z)] for z in numbers if z > 0))
    n_orbitals = int(sum(basis.n_orbitals(abs(int(z))) for z in numbers))
    if settings.scf == "ot" and electrons % 2:
        raise InputError(source, f"{electrons} valence electrons (odd): a closed-shell OT run "
                         "is impossible", "use --scf diag (smearing), or add or remove an atom")

    kinds = []
    for z in sorted({int(z) for z in numbers}, key=lambda z: (abs(z), z < 0)):
        symbol = chemical_symbols[abs(z)]
        if z > 0:
            kinds.append(f"    &KIND {symbol}\n      ELEMENT {symbol}\n"
                         f"      BASIS_SET {basis_name}\n      POTENTIAL {potentials[symbol]}\n"
                         "    &END KIND")
        else:
            kinds.append(f"    &KIND {symbol}_ghost\n      ELEMENT {symbol}\n"
                         f"      BASIS_SET {basis_name}\n      GHOST\n    &END KIND")
    coords = "\n".join(
        f"      {chemical_symbols[abs(int(z))]}{'' if z > 0 else '_ghost'} {_vector(x)}"
        for z, x in zip(numbers.tolist(), positions))
    periodic = "XYZ" if pbc.all() else "NONE"
    poisson = ("" if pbc.all() else
               "    &POISSON\n      PERIODIC NONE\n      POISSON_SOLVER WAVELET\n    &END POISSON\n")
    if settings.scf == "diag":
        n_occupied = (electrons + 1) // 2
        # smearing needs empty states above the Fermi level; 20 % more, capped by the basis
        added = max(0, min(n_orbitals - n_occupied, max(10, n_occupied // 5)))
        scf = (f"      ADDED_MOS {added}\n"
               "      &DIAGONALIZATION\n        ALGORITHM STANDARD\n      &END DIAGONALIZATION\n"
               "      &MIXING\n        METHOD BROYDEN_MIXING\n        ALPHA 0.4\n"
               "        NBROYDEN 8\n      &END MIXING\n"
               "      &SMEAR ON\n        METHOD FERMI_DIRAC\n"
               f"        ELECTRONIC_TEMPERATURE [K] {settings.smearing_kelvin:g}\n"
               "      &END SMEAR\n")
    else:
        scf = ("      &OT ON\n        MINIMIZER DIIS\n        PRECONDITIONER FULL_SINGLE_INVERSE\n"
               "      &END OT\n")
    text = f"""! written by hampart (hampart.dft.cp2k_input): Gamma point, PBE, {basis_name}
&GLOBAL
  PROJECT {PROJECT}
  RUN_TYPE ENERGY
  PRINT_LEVEL MEDIUM
&END GLOBAL
&FORCE_EVAL
  METHOD QUICKSTEP
  &DFT
    BASIS_SET_FILE_NAME {settings.basis_file}
    POTENTIAL_FILE_NAME {settings.potential_file}
    CHARGE 0
    UKS F
{poisson}    &MGRID
      CUTOFF {settings.cutoff:g}
      REL_CUTOFF {settings.rel_cutoff:g}
    &END MGRID
    &QS
      METHOD GPW
      EPS_DEFAULT {settings.eps_default:g}
    &END QS
    &SCF
      SCF_GUESS ATOMIC
      EPS_SCF {settings.eps_scf:g}
      MAX_SCF {settings.max_scf}
{scf}    &END SCF
    &XC
      &XC_FUNCTIONAL PBE
      &END XC_FUNCTIONAL
    &END XC
    &PRINT
      &KS_CSR_WRITE
        REAL_SPACE F
        UPPER_TRIANGULAR F
        THRESHOLD 0.0
      &END KS_CSR_WRITE
      &S_CSR_WRITE
        REAL_SPACE F
        UPPER_TRIANGULAR F
        THRESHOLD 0.0
      &END S_CSR_WRITE
    &END PRINT
  &END DFT
  &SUBSYS
    &CELL
      A {_vector(cell[0])}
      B {_vector(cell[1])}
      C {_vector(cell[2])}
      PERIODIC {periodic}
    &END CELL
    &COORD
{coords}
    &END COORD
{chr(10).join(kinds)}
  &END SUBSYS
&END FORCE_EVAL
"""
    return Cp2kInput(text, hashlib.sha256(text.encode()).hexdigest(), basis, electrons,
                     potentials, n_orbitals)
