"""Partitioning experiments on real data: slice, train, judge on an unseen structure, record.

Shared by ``examples/ablation_halo.py`` (halo 0 / L / L+1), ``examples/slice_sweep.py`` (how
many parts) and ``benchmarks/bench_scaling.py`` (time and memory against parts), and by
``benchmarks/accuracy_real.py`` (:func:`judge`). Everything goes through the public API:
:func:`hampart.partition.slice_dataset`, :func:`hampart.distributed.train`,
:func:`hampart.evaluate.predict_hamiltonian` and the metrics of :mod:`hampart.evaluate.metrics`.

Layout of an experiment directory ``OUT``::

    OUT/parts/<method><parts>-halo<k>/   partitions of the training structure (reused by key)
    OUT/runs/<method><parts>-halo<k>-seed<s>/  model.pt, log.jsonl (every epoch), summary.json,
                                         settings.json (what it was trained with)
    OUT/results.jsonl                    one JSON record per (cell, seed)
    OUT/<experiment>.md, .json, .png     written by the scripts from results.jsonl

A run whose ``settings.json`` equals the requested settings and that finished is judged again
without retraining, so an interrupted experiment continues where it stopped, and experiments
that share ``OUT`` share runs (the halo ablation's augmented cell is the slice sweep's METIS
2-part halo-L cell).

Units: errors in milli-Hartree (mE_h) for node and edge MAE, percent for the eigenvalue L1
error ||e - e_ref||_1 / ||e_ref||_1 of H c = E S c (S of the test structure), eV for gaps,
seconds of wall time, GiB of memory.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .allocator import keep_freed_memory, mode as allocator_mode
from .errors import InputError

__all__ = ["Cell", "Settings", "judge", "environment", "training_sets", "slice_cell",
           "trained_outputs",
           "run_cell", "latest_records", "read_log", "epoch_seconds", "mean_spread", "write_json",
           "write_text", "check_dataset"]


@dataclass(frozen=True)
class Cell:
    """One way of slicing the training structure (a row of a table)."""

    name: str          # e.g. "raw", "augmented", "exact", "metis4-halo2"
    method: str        # "metis" or "slab"
    parts: int
    halo: int          # 0 raw, L augmented (the paper's), L + 1 exact

    @property
    def parts_name(self) -> str:
        return f"{self.method}{self.parts}-halo{self.halo}"


@dataclass(frozen=True)
class Settings:
    """What every cell of one experiment shares (the "same budget")."""

    train: str | tuple[str, ...]        # dataset directory (structure.xyz, H.npz, basis.yaml),
                                        # or several that train one model together
    test: str | None                    # unseen dataset directory with S.npz, or None
    rcut: float = 8.0                   # Angstrom
    epochs: int = 300
    lr: float = 3e-3
    patience: int = 500
    model: Mapping[str, Any] = field(default_factory=dict)  # HamiltonianModel arguments
    device: str = "cpu"
    images: str = "refuse"              # "minimum": cells under 2 r_cut (hampart.graph)


def check_dataset(path, need_overlap: bool = False) -> str:
    """``path`` as a string, or an :class:`InputError` naming what is missing. ``need_overlap``:
    S.npz must be there unless meta.json declares the basis orthogonal (synthetic data)."""
    from .io.dataset import declared_orthogonal

    p = Path(path)
    if not p.is_dir():
        raise InputError(path, "is not a dataset directory",
                         "give a directory written by hampart label (structure.xyz, H.npz, "
                         "basis.yaml)")
    meta = json.loads((p / "meta.json").read_text()) if (p / "meta.json").is_file() else {}
    if need_overlap and not (p / "S.npz").is_file() and not declared_orthogonal(meta):
        raise InputError(path, "has no S.npz (overlap): eigenvalues of H c = E S c need it",
                         "label the test structure with hampart label --dft cp2k")
    return str(p)


def judge(model, test_dir, images: str = "refuse") -> dict:
    """Errors of ``model``'s prediction for the dataset ``test_dir`` (S.npz, or a basis its
    meta.json declares orthogonal): node and edge MAE (mE_h) over the blocks within the
    model's r_cut, the node MAE per species (``node_mae_by_species_mEh``), eigenvalue L1 (%)
    and MAE (meV) of H c = E S c (also their common shift and the errors without it, as
    ``hampart evaluate`` reports them), and the band gap (eV) when meta.json gives the
    electron count. ``images="minimum"`` for cells under 2 r_cut, as they were sliced."""
    from .evaluate.metrics import (HARTREE_EV, block_errors, eigenvalue_errors, eigenvalues,
                                   node_errors_by_species)
    from .evaluate.predict import predict_hamiltonian
    from .graph import radius_graph
    from .io.csr import read_matrix
    from .io.dataset import load_dataset

    data = load_dataset(test_dir)
    s = data.structure
    with torch.no_grad():
        H, _ = predict_hamiltonian(model, model.basis, s, n_layers=model.layers_n, rcut=model.rcut,
                                   images=images)
    graph = radius_graph(s.positions, s.cell, s.pbc, rcut=model.rcut, images=images)
    overlap = os.path.join(test_dir, "S.npz")
    S = read_matrix(overlap) if os.path.isfile(overlap) else None  # None: declared orthogonal
    out = block_errors(H, data.hamiltonian, s.numbers, model.basis, graph, overlap=S)
    out["node_mae_by_species_mEh"] = node_errors_by_species(H, data.hamiltonian, s.numbers,
                                                            model.basis)
    e, e_ref = eigenvalues(H, S), eigenvalues(data.hamiltonian, S)
    spectrum = eigenvalue_errors(e, e_ref)
    out["eig_l1_pct"] = spectrum.pop("eig_l1_percent")
    out.update({k: v for k, v in spectrum.items() if k != "n_eigenvalues"})
    electrons = data.meta.get("electrons") if hasattr(data, "meta") else None
    if electrons:
        homo = int(electrons) // 2 - 1  # closed shell, two electrons per state
        out["gap_eV"] = HARTREE_EV * float(e[homo + 1] - e[homo])
        out["gap_ref_eV"] = HARTREE_EV * float(e_ref[homo + 1] - e_ref[homo])
    return out


def run_script(main, script: str) -> None:
    """Run an experiment script's ``main()`` as ``hampart train`` runs (freed memory kept for
    reuse, :mod:`hampart.allocator`): a user's mistake (InputError) exits with one line naming
    the script, the file and the fix, not a traceback."""
    try:
        keep_freed_memory()
        main()
    except InputError as error:
        sys.exit(f"{Path(script).name}: error: {error}")


def environment() -> dict:
    """Machine and versions, for the JSON every experiment writes."""
    import e3nn
    import scipy

    from . import __version__

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], text=True,
                                capture_output=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    env = {"hampart": __version__, "git_commit": commit, "python": platform.python_version(),
           "torch": torch.__version__, "e3nn": e3nn.__version__, "numpy": np.__version__,
           "scipy": scipy.__version__, "platform": platform.platform(),
           "processor": platform.processor() or platform.machine(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "malloc": allocator_mode(),
           "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "argv": sys.argv, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return env


def training_sets(settings: Settings) -> list[str]:
    """The training dataset directories of ``settings`` (one or several)."""
    return [settings.train] if isinstance(settings.train, str) else list(settings.train)


def _train_value(settings: Settings):
    """``settings.train`` as JSON records keep it: a string, or a list for several."""
    return settings.train if isinstance(settings.train, str) else list(settings.train)


def slice_cell(settings: Settings, cell: Cell, out, dataset=None,
               name: str | None = None) -> tuple[Path, dict]:
    """Partitions of the training structure (``dataset``, default ``settings.train``) for
    ``cell`` in OUT/parts/``name`` (default the cell's; reused when already there) and their
    manifest statistics (edge cut, replication, imbalance)."""
    from .partition import load_manifest, slice_dataset

    directory, _ = slice_dataset(settings.train if dataset is None else dataset,
                                 rcut=settings.rcut, method=cell.method,
                                 parts=cell.parts, halo=cell.halo, images=settings.images,
                                 out=Path(out) / "parts" / (name or cell.parts_name))
    manifest = load_manifest(directory)
    stats = dict(manifest["stats"])
    stats.update(n_atoms=manifest["source"]["n_atoms"], n_edges=manifest["source"]["n_edges"],
                 stored_edges=sum(p["n_edges"] for p in manifest["parts"]),
                 largest_part_edges=max(p["n_edges"] for p in manifest["parts"]))
    return directory, stats


def trained_outputs(directory, n_layers: int) -> dict:
    """How many atoms and edges of the training structure one step trains on: the outputs
    the loss counts (exact ones; at halo 0 the owned atoms and edges with both ends owned)."""
    from .partition import load_manifest, load_partition
    from .partition.loader import exact_masks

    manifest = load_manifest(directory)
    halo = int(manifest["params"]["halo"])
    atoms = edges = 0
    for k in range(len(manifest["parts"])):
        a = load_partition(directory, k, manifest=manifest)
        node_exact, edge_exact = exact_masks(a["node_hop"], a["edge_index"], a["edge_owned"],
                                             halo, n_layers, str(directory))
        atoms, edges = atoms + int(node_exact.sum()), edges + int(edge_exact.sum())
    return {"trained_atoms": atoms, "trained_edges": edges,
            "trained_edge_fraction": edges / max(int(manifest["source"]["n_edges"]), 1)}


def read_log(run_dir) -> list[dict]:
    """The records of ``run_dir/log.jsonl`` (one per logged epoch)."""
    path = Path(run_dir) / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epoch_seconds(log: Sequence[dict]) -> list[float]:
    """Wall seconds of each epoch after the first (the first includes start-up), from a log
    written every epoch."""
    t = [r["seconds"] for r in log]
    epochs = [r["epoch"] for r in log]
    return [(t[i] - t[i - 1]) / (epochs[i] - epochs[i - 1]) for i in range(1, len(t))]


def _settings_record(settings: Settings, cell: Cell, seed: int) -> dict:
    s = asdict(settings)
    s.pop("test")
    s.pop("device")  # same numbers wherever it ran; the run's record says where
    if s["images"] == "refuse":
        s.pop("images")  # runs recorded before the field existed stay reusable
    s["model"] = dict(settings.model)
    s["train"] = _train_value(settings)
    # the slicing, not the cell's name, defines a run: experiments sharing OUT share runs
    return {**s, "cell": {k: v for k, v in asdict(cell).items() if k != "name"},
            "seed": int(seed)}


def run_cell(settings: Settings, cell: Cell, seed: int, out, log=print) -> dict:
    """Slice, train (unless an identical finished run is there), judge on the test structure;
    returns one record (also appended to ``OUT/results.jsonl``)."""
    from .distributed.trainer import TrainConfig, load_model, train

    out = Path(out)
    sets = training_sets(settings)
    if len(sets) == 1:
        directory, stats = slice_cell(settings, cell, out)
        parts = str(directory)
    else:  # each dataset sliced alike; one model trains on all their parts
        sliced = [slice_cell(settings, cell, out, d, f"{cell.parts_name}-{k}")
                  for k, d in enumerate(sets)]
        parts = [str(d) for d, _ in sliced]
        stats = {key: sum(st[key] for _, st in sliced)
                 for key in ("n_atoms", "n_edges", "stored_edges")}
        stats["largest_part_edges"] = max(st["largest_part_edges"] for _, st in sliced)
        stats["per_dataset"] = [st for _, st in sliced]
        directory = parts
    run = out / "runs" / f"{cell.parts_name}-seed{seed}"
    wanted = _settings_record(settings, cell, seed)
    done = run / "settings.json"
    reused = (done.is_file() and json.loads(done.read_text()) == wanted
              and (run / "model.pt").is_file() and (run / "summary.json").is_file()
              and json.loads((run / "summary.json").read_text())["epochs_run"] == settings.epochs)
    if reused:
        log(f"{cell.name} seed {seed}: reusing the finished run in {run}")
    else:
        if done.exists():
            done.unlink()  # a changed or unfinished run starts over
        log(f"{cell.name} seed {seed}: training {settings.epochs} epochs on {directory}")
        train(TrainConfig(parts=parts, out=str(run), model=dict(settings.model),
                          epochs=settings.epochs, lr=settings.lr, patience=settings.patience,
                          seed=seed, resume=False, log_every=1, checkpoint_every=0,
                          device=settings.device), progress=print)
        write_json(done, wanted)
    model, _ = load_model(run / "model.pt")
    if isinstance(parts, str):
        outputs = trained_outputs(parts, model.layers_n)
    else:
        each = [trained_outputs(d, model.layers_n) for d in parts]
        outputs = {"trained_atoms": sum(o["trained_atoms"] for o in each),
                   "trained_edges": sum(o["trained_edges"] for o in each)}
        outputs["trained_edge_fraction"] = outputs["trained_edges"] / max(stats["n_edges"], 1)
    history = read_log(run)
    per_epoch = epoch_seconds(history)
    record = {"cell": cell.name, "method": cell.method, "parts": cell.parts, "halo": cell.halo,
              "seed": int(seed), "epochs": settings.epochs, "lr": settings.lr,
              "rcut": settings.rcut, "images": settings.images,
              "model": dict(settings.model), "train": _train_value(settings),
              "test": settings.test, "reused": reused, **stats, **outputs,
              "epoch_seconds_median": statistics.median(per_epoch) if per_epoch else None,
              "train_mae_mEh": [r["mae_mEh"] for r in history],
              "train_mse_final": history[-1]["mse"] if history else None}
    if settings.test is not None:
        record.update(judge(model, settings.test, images=settings.images))
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def latest_records(out, settings: Settings, seeds: Sequence[int]) -> list[dict]:
    """The last record in ``OUT/results.jsonl`` of each slicing and seed made with
    ``settings`` (same data, r_cut, epochs, lr and model) for one of ``seeds``."""
    path = Path(out) / "results.jsonl"
    latest: dict = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        r = json.loads(line)
        same = (r["epochs"] == settings.epochs and r["lr"] == settings.lr
                and r["rcut"] == settings.rcut and r.get("model", {}) == dict(settings.model)
                and r.get("train", _train_value(settings)) == _train_value(settings)
                and r.get("test", settings.test) == settings.test
                and r.get("images", "refuse") == settings.images)
        if same and r["seed"] in seeds:
            latest[(r["method"], r["parts"], r["halo"], r["seed"])] = r
    return list(latest.values())


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not values:
        return math.nan, math.nan
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def write_text(path, text: str) -> None:
    """Atomic text file."""
    from .io.atomic import atomic_file

    with atomic_file(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1) + "\n")
