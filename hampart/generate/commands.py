"""``hampart generate`` and ``hampart label``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..command import Command

__all__ = ["GENERATE", "LABEL", "GenerateConfig", "LabelConfig"]


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


def _add_common(p):
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--basis", default="SZV", help="SZV, DZVP or a basis YAML file")
    p.add_argument("--interaction-radius", type=float, dest="interaction_radius",
                   help="Angstrom beyond which H blocks vanish (default 6)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")


def _add_generate(p: argparse.ArgumentParser) -> None:
    from .structures import MATERIALS

    p.add_argument("material", help=f"one of {', '.join(MATERIALS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vacancies", type=float, default=0.0,
                   help="fraction of anion sites made ghost atoms (Z = 0), e.g. 0.1: HfO_1.8")
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
                   atoms=c.atoms)
    ds = load_dataset(out)
    s = ds.structure
    print(f"{out}: {c.material}, {s.n_atoms} atoms ({int((s.numbers == 0).sum())} ghosts), "
          f"{ds.hamiltonian.shape[0]} orbitals, {ds.hamiltonian.nnz} nonzeros, "
          f"interaction radius {ds.meta['interaction_radius']} A")
    return 0


GENERATE = Command(
    "generate", "make a disordered structure and its synthetic Hamiltonian", _add_generate,
    lambda a: GenerateConfig(a.material, a.out, a.seed, a.vacancies, a.size, a.basis,
                             a.interaction_radius, a.force, a.atoms),
    run_generate)


@dataclass(frozen=True)
class LabelConfig:
    structure: str
    out: str
    basis: str = "SZV"
    interaction_radius: float | None = None
    force: bool = False


def _add_label(p: argparse.ArgumentParser) -> None:
    p.add_argument("structure", help="structure file (extxyz, xyz with cell, CIF, POSCAR)")
    _add_common(p)


def run_label(c: LabelConfig) -> int:
    from . import label

    out = label(c.structure, c.out, basis=c.basis, interaction_radius=c.interaction_radius,
                replace=c.force)
    print(f"{out}: labelled {c.structure}")
    return 0


LABEL = Command("label", "give a structure the synthetic Hamiltonian (same layout as generate)",
                _add_label,
                lambda a: LabelConfig(a.structure, a.out, a.basis, a.interaction_radius, a.force),
                run_label)
