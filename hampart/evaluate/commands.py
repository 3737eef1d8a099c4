"""``hampart predict`` and ``hampart evaluate``."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

from ..command import Command
from ..errors import InputError

__all__ = ["PREDICT", "EVALUATE", "PredictConfig", "EvaluateConfig", "run_predict", "run_evaluate"]


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
    overlap: str | None = None
    eigs: int | None = None
    sigma: float | None = None
    plot: str | None = None
    json: bool = False


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("prediction", help="predicted matrix (.npz or .csr)")
    p.add_argument("--reference", required=True,
                   help="reference matrix, or a directory made by hampart generate/label")
    p.add_argument("--structure", help="structure file (not needed with a dataset directory)")
    p.add_argument("--basis", help="basis name or YAML (not needed with a dataset directory)")
    p.add_argument("--rcut", type=float, default=8.0, help="pairs closer than this were predicted")
    p.add_argument("--images", choices=["refuse", "minimum"], default="refuse")
    p.add_argument("--overlap", help="overlap matrix S for H c = E S c")
    p.add_argument("--eigs", type=int, help="only this many eigenvalues nearest --sigma (sparse)")
    p.add_argument("--sigma", type=float, help="energy (Hartree) for --eigs")
    p.add_argument("--plot", help="PNG with element and eigenvalue parity plots")
    p.add_argument("--json", action="store_true")


def evaluate(config: EvaluateConfig) -> dict:
    from ..graph import radius_graph
    from ..io.csr import read_matrix
    from ..io.dataset import check_matrix, load_dataset
    from .metrics import block_errors, eigenvalue_errors, eigenvalues
    from .predict import check_predicted_for

    if os.path.isdir(config.reference):
        ds = load_dataset(config.reference)
        structure, basis, ref = ds.structure, ds.basis, ds.hamiltonian
    else:
        if not config.structure or not config.basis:
            raise InputError(config.reference, "a bare matrix needs its structure and basis",
                             "pass --structure FILE --basis NAME|YAML, or a dataset directory")
        ds = load_dataset(config.structure, hamiltonian=config.reference, basis=config.basis)
        structure, basis, ref = ds.structure, ds.basis, ds.hamiltonian
    pred = read_matrix(config.prediction)
    check_matrix(pred, structure, basis, config.prediction)
    check_predicted_for(config.prediction, structure)
    graph = radius_graph(structure.positions, structure.cell, structure.pbc, config.rcut,
                         images=config.images, source=structure.source)
    report = {"prediction": config.prediction, "reference": config.reference, "rcut": config.rcut}
    report.update(block_errors(pred, ref, structure.numbers, basis, graph))
    S = read_matrix(config.overlap) if config.overlap else None
    if config.eigs is None and pred.shape[0] > 8000:
        report["eigenvalues"] = "skipped: more than 8000 orbitals; pass --eigs K [--sigma E]"
    else:
        ev_p = eigenvalues(pred, S, config.eigs, config.sigma)
        ev_r = eigenvalues(ref, S, config.eigs, config.sigma)
        report.update(eigenvalue_errors(ev_p, ev_r))
        if config.plot:
            _plot(config.plot, pred, ref, graph, structure, basis, ev_p, ev_r)
    return report


def _plot(path, pred, ref, graph, structure, basis, ev_p, ev_r) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .metrics import HARTREE_EV, sample_edge_elements

    x, y = sample_edge_elements(ref, pred, structure.numbers, basis, graph)
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    ax[0].plot(1e3 * x, 1e3 * y, ",", alpha=0.5)
    ax[0].set(xlabel="reference H_ij (mEh)", ylabel="predicted H_ij (mEh)", title="edge blocks")
    ax[1].plot(HARTREE_EV * ev_r, HARTREE_EV * ev_p, ".", ms=2)
    ax[1].set(xlabel="reference eigenvalue (eV)", ylabel="predicted eigenvalue (eV)",
              title="eigenvalues")
    for a in ax:
        lo, hi = a.get_xlim()
        a.plot([lo, hi], [lo, hi], "k-", lw=0.5)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def run_evaluate(config: EvaluateConfig) -> int:
    report = evaluate(config)
    if config.json:
        print(json.dumps(report, indent=1))
    else:
        for k, v in report.items():
            print(f"{k:>36}: {v:.4f}" if isinstance(v, float) else f"{k:>36}: {v}")
    return 0


EVALUATE = Command(
    "evaluate", "compare a predicted Hamiltonian with a reference: MAE and eigenvalues",
    _add_evaluate,
    lambda a: EvaluateConfig(a.prediction, a.reference, a.structure, a.basis, a.rcut, a.images,
                             a.overlap, a.eigs, a.sigma, a.plot, a.json),
    run_evaluate)
