"""``hampart predict``, ``hampart evaluate`` and ``hampart export``."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass

from ..command import Command
from ..errors import InputError

__all__ = ["PREDICT", "EVALUATE", "EXPORT", "PredictConfig", "EvaluateConfig", "ExportConfig",
           "run_predict", "run_evaluate", "run_export"]


@dataclass(frozen=True)
class PredictConfig:
    model: str
    structure: str
    out: str
    images: str = "refuse"
    max_atoms: int | None = None
    device: str = "auto"
    dtype: str = "float32"
    max_gib: float = 8.0


def _add_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model.pt written by hampart train")
    p.add_argument("structure", help="structure file, or a directory made by hampart generate")
    p.add_argument("--out", required=True, help="output matrix (.npz or .csr)")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse")
    p.add_argument("--max-atoms", type=int, default=None, dest="max_atoms",
                   help="at most this many owned atoms per streamed slab (default: the fewest "
                        "slabs that fit --max-gib)")
    p.add_argument("--max-gib", type=float, default=8.0, dest="max_gib",
                   help="the model's working memory per slab on the device, GiB (edges are "
                        "processed in chunks to stay within it; default 8)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")


class _SlabProgress:
    """Prints a slab's progress when there are several: the first, the last, and then at
    most every 10 s (a long prediction shows that it moves without flooding the log)."""

    def __init__(self):
        self.last = None

    def __call__(self, k, parts, atoms, edges, seconds) -> None:
        if parts > 1 and (k in (1, parts) or self.last is None or seconds - self.last >= 10):
            self.last = seconds
            print(f"slab {k}/{parts}: {atoms} atoms, {edges} edges with the halo, "
                  f"{seconds:.0f} s", flush=True)


def run_predict(config: PredictConfig) -> int:
    from .predict import predict_file

    _, info = predict_file(config.model, config.structure, out=config.out, images=config.images,
                           max_atoms=config.max_atoms, device=config.device, dtype=config.dtype,
                           max_gib=config.max_gib, progress=_SlabProgress())
    chunks = [c for c in info["edge_chunks"] if c is not None]
    how = f", edges in chunks of up to {max(chunks)}" if chunks else ""
    print(f"predicted H of {info['n_atoms']} atoms ({info['n_orbitals']} orbitals, "
          f"{info['nnz']} nonzeros, {info['matrix_gib']:.2f} GiB) in {info['parts']} slab(s)"
          f"{how}, {info['seconds']:.1f} s -> {config.out}")
    return 0


PREDICT = Command("predict", "predict the Hamiltonian of a structure of any size",
                  _add_predict, lambda a: PredictConfig(a.model, a.structure, a.out, a.images,
                                                        a.max_atoms, a.device, a.dtype,
                                                        a.max_gib), run_predict)


@dataclass(frozen=True)
class EvaluateConfig:
    prediction: str
    reference: str
    structure: str | None = None
    basis: str | None = None
    rcut: float = 8.0
    images: str = "refuse"
    overlap: str | None = None  # S file, "identity" (orthogonal basis), None: DIR/S.npz if any
    eigs: int | None = None
    sigma: float | None = None  # Hartree
    plot: str | None = None
    json: bool | str | None = None  # True or "-": print JSON instead of text; a path: write it
    electrons: int | None = None  # None: the reference dataset's meta.json "electrons"
    solver: str = "auto"
    dos_width_eV: float = 0.1


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    from .spectrum import DENSE_MAX_ORBITALS, SPARSE_WINDOW

    p.add_argument("prediction", help="predicted matrix (.npz or .csr)")
    p.add_argument("--reference", required=True,
                   help="reference matrix, or a dataset directory (its S.npz is used as S)")
    p.add_argument("--structure", help="structure file (not needed with a dataset directory)")
    p.add_argument("--basis", help="basis name or YAML (not needed with a dataset directory)")
    p.add_argument("--rcut", type=float, default=8.0, help="pairs closer than this were predicted")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse")
    p.add_argument("--overlap", help="overlap matrix S for H c = E S c (default: S.npz of the "
                   "reference directory); 'identity' for an orthogonal basis")
    p.add_argument("--electrons", type=int, help="valence electrons, closed shell, for the gap "
                   "(default: the reference's meta.json 'electrons')")
    p.add_argument("--solver", choices=["auto", "dense", "sparse"], default="auto",
                   help=f"eigenvalues: dense (all) up to {DENSE_MAX_ORBITALS} orbitals, beyond "
                        "that sparse shift-invert around the gap (default auto)")
    p.add_argument("--eigs", type=int, help="sparse: this many eigenvalues nearest --sigma or the "
                   f"gap (default {SPARSE_WINDOW}; implies --solver sparse under auto)")
    p.add_argument("--sigma", type=float, help="sparse: energy (Hartree) to look around "
                   "(default: inside the gap, found from the electron count)")
    p.add_argument("--plot", help="PNG: node and edge parity, eigenvalue parity, DOS")
    p.add_argument("--dos-width", type=float, default=0.1, dest="dos_width",
                   help="Gaussian broadening of the plotted DOS, eV (default 0.1)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="the report as JSON: printed instead of the text, or written to FILE")


def _finite(value):
    """JSON has no NaN: unknown numbers become null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _stage_bar():
    """``(progress callback, close)`` showing the evaluation's stages on a tqdm bar when stderr
    is a terminal; callbacks that do nothing otherwise (logs stay clean)."""
    import sys

    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=None, desc="evaluate", leave=False, bar_format="{desc} ({elapsed})")
    started = []

    def progress(name):
        if started:
            bar.update(1)
        started.append(name)
        bar.set_description_str(f"evaluate: {name}")

    return progress, bar.close


def run_evaluate(config: EvaluateConfig) -> int:
    from ..io.atomic import atomic_file
    from .report import evaluate

    progress, close = _stage_bar()
    try:
        report = evaluate(config.prediction, config.reference, structure=config.structure,
                          basis=config.basis, rcut=config.rcut, images=config.images,
                          overlap=config.overlap, electrons=config.electrons,
                          solver=config.solver, eigs=config.eigs, sigma=config.sigma,
                          plot=config.plot, dos_width_eV=config.dos_width_eV, progress=progress)
    finally:
        close()
    to_file = isinstance(config.json, str) and config.json != "-"
    if to_file:
        text = json.dumps({k: _finite(v) for k, v in report.items()}, indent=1)
        with atomic_file(config.json) as tmp:
            tmp.write_text(text + "\n")
    if config.json and not to_file:
        print(json.dumps({k: _finite(v) for k, v in report.items()}, indent=1))
    else:
        for k, v in report.items():
            if isinstance(v, dict):  # e.g. per species: "Hf 2.1234, O 4.5678"
                v = ", ".join(f"{name} {x:.4f}" for name, x in v.items())
            print(f"{k:>36}: {v:.4f}" if isinstance(v, float) else f"{k:>36}: {v}")
    return 0


EVALUATE = Command(
    "evaluate", "compare a predicted Hamiltonian with a reference: MAE, eigenvalues, gap, DOS",
    _add_evaluate,
    lambda a: EvaluateConfig(a.prediction, a.reference, a.structure, a.basis, a.rcut, a.images,
                             a.overlap, a.eigs, a.sigma, a.plot, a.json, a.electrons, a.solver,
                             a.dos_width),
    run_evaluate)


@dataclass(frozen=True)
class ExportConfig:
    hamiltonian: str
    reference: str
    out: str
    to: str = "sisl"
    overlap: str | None = None  # S file, "identity", None: the reference directory's S.npz
    basis: str | None = None


def _add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("hamiltonian", help="H to export (.npz or .csr), e.g. hampart predict's output")
    p.add_argument("--reference", required=True, help="dataset directory giving the structure, "
                   "basis and overlap S (S.npz); or a structure file with --basis")
    p.add_argument("--to", choices=["sisl"], default="sisl", help="target (default sisl)")
    p.add_argument("--out", required=True, help="output file, NAME.TSHS (sisl, SIESTA, TBtrans)")
    p.add_argument("--overlap", help="overlap S (default: the reference directory's S.npz); "
                   "'identity' for an orthogonal basis")
    p.add_argument("--basis", help="basis name or YAML, when --reference is a structure file")


def run_export(config: ExportConfig) -> int:
    import warnings

    from ..errors import InputWarning
    from ..io.csr import read_matrix
    from ..io.dataset import (check_matrix, declared_orthogonal, find_overlap, load_dataset,
                              read_overlap)
    from .export import write_sisl
    from .predict import check_predicted_for

    if config.to != "sisl":
        raise InputError("--to", f"unknown target '{config.to}'", "use --to sisl")
    ds = load_dataset(config.reference, basis=config.basis)
    H = read_matrix(config.hamiltonian)
    check_matrix(H, ds.structure, ds.basis, config.hamiltonian)
    check_predicted_for(config.hamiltonian, ds.structure)
    S = None
    if config.overlap is None or config.overlap.lower() != "identity":
        path = config.overlap or find_overlap(config.reference)
        if path is not None:
            S = read_overlap(path, H.shape[0], config.hamiltonian)
        elif not declared_orthogonal(ds.meta):
            warnings.warn(InputWarning(config.reference, "no overlap matrix S: the export will "
                                       "be an orthogonal Hamiltonian (S = I)",
                                       "pass --overlap S.npz for a non-orthogonal basis such as "
                                       "CP2K's, or --overlap identity"), stacklevel=2)
    write_sisl(config.out, H, S, ds.structure, ds.basis)
    print(f"{config.hamiltonian} -> {config.out}: sisl Hamiltonian, {H.shape[0]} orbitals, "
          f"{'orthogonal' if S is None else 'with S'}, Gamma point only (nsc = 1 1 1), eV")
    return 0


EXPORT = Command("export", "write a Hamiltonian with its structure, basis and S for sisl/TBtrans",
                 _add_export,
                 lambda a: ExportConfig(a.hamiltonian, a.reference, a.out, a.to, a.overlap,
                                        a.basis),
                 run_export)
