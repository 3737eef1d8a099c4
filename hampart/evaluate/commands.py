"""``hampart predict``, ``hampart evaluate`` and ``hampart export``."""

from __future__ import annotations

import argparse
import json
import math
import os
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
    how = (f", edges in chunks of up to {max(chunks)} (--max-gib {config.max_gib:g})"
           if chunks else "")
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


def _overlap(config: "EvaluateConfig", meta: dict, size: int, reference_file: str):
    """(S or None, how it was found) for the reference; warns when eigenvalues of a
    non-orthogonal basis would be taken without S."""
    import warnings

    from ..errors import InputWarning
    from ..io.dataset import declared_orthogonal, find_overlap, read_overlap

    if config.overlap is not None and config.overlap.lower() == "identity":
        return None, "identity (orthogonal basis, --overlap identity)"
    path = config.overlap or find_overlap(config.reference)
    if path is not None:
        return read_overlap(path, size, reference_file), path
    if declared_orthogonal(meta):
        return None, "identity (orthogonal synthetic data)"
    warnings.warn(InputWarning(config.reference, "no overlap matrix S: eigenvalues of H alone are "
                               "not the band energies of a non-orthogonal basis such as CP2K's",
                               "put S.npz beside H in the dataset directory or pass --overlap "
                               "S.npz (--overlap identity if the basis is orthogonal)"),
                  stacklevel=3)
    return None, "none (H c = E c; not energies if the basis is non-orthogonal)"


def evaluate(config: EvaluateConfig, progress=None) -> dict:
    """The report of :func:`run_evaluate` as a dict; ``progress(stage)`` is called as each long
    stage starts (element errors, each eigenvalue solve, the plot)."""
    from ..graph import radius_graph
    from ..io.csr import read_matrix
    from ..io.dataset import HAMILTONIAN_FILE, check_matrix, load_dataset
    from .metrics import block_errors
    from .predict import check_predicted_for

    stage = progress or (lambda name: None)
    if os.path.isdir(config.reference):
        ds = load_dataset(config.reference)
        reference_file = os.path.join(config.reference, HAMILTONIAN_FILE)
        if ds.hamiltonian is None:
            raise InputError(config.reference, f"dataset directory without {HAMILTONIAN_FILE}",
                             "give a dataset that has the reference H")
    else:
        if not config.structure or not config.basis:
            raise InputError(config.reference, "a bare matrix needs its structure and basis",
                             "pass --structure FILE --basis NAME|YAML, or a dataset directory")
        ds = load_dataset(config.structure, hamiltonian=config.reference, basis=config.basis)
        reference_file = config.reference
    structure, basis, ref = ds.structure, ds.basis, ds.hamiltonian
    pred = read_matrix(config.prediction)
    check_matrix(pred, structure, basis, config.prediction)
    check_predicted_for(config.prediction, structure)
    S, overlap_note = _overlap(config, ds.meta, ref.shape[0], reference_file)
    graph = radius_graph(structure.positions, structure.cell, structure.pbc, config.rcut,
                         images=config.images, source=structure.source)
    report = {"prediction": config.prediction, "reference": config.reference, "rcut": config.rcut}
    stage("element errors")
    report.update(block_errors(pred, ref, structure.numbers, basis, graph))
    report["overlap"] = overlap_note
    spectra = _spectra(config, ds.meta, pred, ref, S, report, stage)
    if config.plot:
        stage("plot")
        _plot(config.plot, pred, ref, graph, structure, basis, spectra, config.dos_width_eV)
    return report


def _spectra(config, meta, pred, ref, S, report, stage):
    """Eigenvalue and gap errors into ``report``; returns (predicted, reference) spectra and
    their (HOMO, LUMO) pairs, or None when they were skipped."""
    from .metrics import HARTREE_EV, eigenvalue_errors
    from .spectrum import DENSE_MAX_ORBITALS, band_edges, occupied_states, solve

    size = ref.shape[0]
    electrons, source = config.electrons, "--electrons"
    if electrons is None and "electrons" in meta:
        electrons, source = meta["electrons"], os.path.join(config.reference, "meta.json")
    n_occ = occupied_states(electrons, size, source)
    method = config.solver
    if method == "auto":
        method = "dense" if size <= DENSE_MAX_ORBITALS and config.eigs is None else "sparse"
    if method == "sparse" and config.sigma is None and n_occ is None:
        report["eigenvalues"] = (f"skipped: {size} orbitals need the sparse solver, which looks "
                                 "around the gap (needs the electron count) or an energy: pass "
                                 "--electrons N or --sigma E, or --solver dense")
        return None
    eV = HARTREE_EV
    stage("eigenvalues of the reference")
    spec_r = solve(ref, S, method, config.eigs, config.sigma, n_occ)
    stage("eigenvalues of the prediction")
    # the prediction's window is placed around its own gap, then matched state by state
    try:
        spec_p = solve(pred, S, method, config.eigs, config.sigma, n_occ)
    except InputError:
        if method != "sparse" or config.sigma is not None:
            raise
        # no gap to place the predicted window in (degenerate HOMO/LUMO): the reference's
        spec_p = solve(pred, S, method, config.eigs, spec_r.sigma, n_occ)
    if method == "sparse":
        report["eigenvalue_solver"] = (
            f"sparse shift-invert, {len(spec_r.values)} eigenvalues nearest "
            f"{eV * spec_r.sigma:.4f} eV (reference) and {eV * spec_p.sigma:.4f} eV (prediction)")
    else:
        report["eigenvalue_solver"] = "dense, all eigenvalues"
    report["eigenvalue_problem"] = "H c = E c" if S is None else "H c = E S c"
    report.update(eigenvalue_errors(spec_p, spec_r))
    report["electrons"] = None if electrons is None else int(electrons)
    edges_r, edges_p = band_edges(spec_r, n_occ), band_edges(spec_p, n_occ)
    if n_occ is None:
        report["gap"] = ("skipped: electron count unknown (pass --electrons N)" if electrons is None
                         else f"skipped: {electrons} electrons, odd: no closed-shell gap")
    elif edges_r is None or edges_p is None:
        report["gap"] = "skipped: HOMO or LUMO outside the solved window (raise --eigs)"
    else:
        for name, (homo, lumo) in (("reference", edges_r), ("predicted", edges_p)):
            report[f"{name}_homo_eV"] = eV * homo
            report[f"{name}_lumo_eV"] = eV * lumo
            report[f"{name}_gap_eV"] = eV * (lumo - homo)
        report["gap_error_meV"] = 1e3 * (report["predicted_gap_eV"] - report["reference_gap_eV"])
    return spec_p, spec_r, edges_p, edges_r


def _plot(path, pred, ref, graph, structure, basis, spectra, dos_width_eV) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .metrics import HARTREE_EV, _aligned, sample_edge_elements, sample_node_elements
    from .spectrum import density_of_states

    fig, ax = plt.subplots(2, 2, figsize=(10, 8.5))
    for a, (x, y), title in (
            (ax[0, 0], sample_node_elements(ref, pred, structure.numbers, basis), "node blocks"),
            (ax[0, 1], sample_edge_elements(ref, pred, structure.numbers, basis, graph),
             "edge blocks")):
        mae = 1e3 * float(np.abs(y - x).mean()) if len(x) else float("nan")
        a.plot(1e3 * x, 1e3 * y, ".", ms=1.5, alpha=0.4, rasterized=True)
        a.set(xlabel="reference (mE$_h$)", ylabel="predicted (mE$_h$)",
              title=f"{title}: MAE {mae:.3g} mE$_h$ ({len(x):,} elements)")
        _diagonal(a)
    if spectra is None:
        for a in ax[1]:
            a.text(0.5, 0.5, "eigenvalues skipped", ha="center", va="center",
                   transform=a.transAxes)
            a.set_axis_off()
    else:
        spec_p, spec_r, edges_p, edges_r = spectra
        y, x = _aligned(spec_p, spec_r)
        x, y = HARTREE_EV * x, HARTREE_EV * y
        a = ax[1, 0]
        a.plot(x, y, ".", ms=2)
        a.set(xlabel="reference eigenvalue (eV)", ylabel="predicted eigenvalue (eV)",
              title=f"eigenvalues: MAE {1e3 * np.abs(y - x).mean():.3g} meV ({len(x):,})")
        _diagonal(a)
        a = ax[1, 1]
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        grid = np.linspace(lo - 5 * dos_width_eV, hi + 5 * dos_width_eV, 2000)
        a.plot(grid, density_of_states(x, grid, dos_width_eV), "k-", lw=1, label="reference")
        a.plot(grid, density_of_states(y, grid, dos_width_eV), "C3--", lw=1, label="predicted")
        for edges, style, who in ((edges_r, "k:", "reference"), (edges_p, "C3:", "predicted")):
            if edges is not None:
                mid = 0.5 * HARTREE_EV * (edges[0] + edges[1])
                gap = HARTREE_EV * (edges[1] - edges[0])
                a.axvline(mid, color=style[:-1], ls=":", lw=1,
                          label=f"{who} mid-gap {mid:.2f} eV (gap {gap:.3f} eV)")
        window = "" if spec_r.complete else " (solved window)"
        a.set(xlabel="energy (eV)", ylabel="states per eV",
              title=f"density of states{window}, Gaussian {dos_width_eV:g} eV")
        a.legend(fontsize=8, loc="upper left")
    for a in ax.flat:
        a.title.set_fontsize(10)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _diagonal(a) -> None:
    lo, hi = a.get_xlim()
    a.plot([lo, hi], [lo, hi], "k-", lw=0.5)
    a.set_xlim(lo, hi)


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
    progress, close = _stage_bar()
    try:
        report = evaluate(config, progress)
    finally:
        close()
    to_file = isinstance(config.json, str) and config.json != "-"
    if to_file:
        text = json.dumps({k: _finite(v) for k, v in report.items()}, indent=1)
        tmp = f"{config.json}.tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, config.json)
    if config.json and not to_file:
        print(json.dumps({k: _finite(v) for k, v in report.items()}, indent=1))
    else:
        for k, v in report.items():
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
