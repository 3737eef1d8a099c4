"""Train one shared model on partitions spread over ranks (``mpirun -n N``).

One optimiser step per epoch: every rank runs forward/backward on each of its partitions (one at
a time, so only one partition's activations live at once), the parameter gradients are summed
over ranks, and every rank takes the same Adam step. The loss of a step is the sum of squared
errors over every exact output of every partition divided by their global count, so with halo
k = L + 1 it equals the full-graph mean squared error, gradients included (DESIGN.md §3). Raw
partitions (halo 0, for comparison only) count owned atoms and edges with both ends owned, none
of them exact; training them warns once.
Features never cross ranks; only gradients and scalar losses do.

Units: losses are in Hartree^2 (MSE); logs also give RMSE and MAE in milli-Hartree.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..basis import Basis, merge_bases
from ..errors import InputError, InputWarning
from ..io.atomic import atomic_file
# model files live in hampart.model.io; save_model / load_model stay importable from here
from ..model.io import (BEFORE_OPTIONS, MODEL_FORMAT, default_option, load_model, load_state,
                        save_model)
from ..model.loss import LOSS_WEIGHTINGS, PartitionLoss  # PartitionLoss importable from here as before

from . import launch
from .assign import assign_parts
from .schedule import SCHEDULES, make_scheduler, schedule_key, watches_loss

__all__ = ["TrainConfig", "check_config", "train", "load_model", "save_model", "MODEL_FORMAT",
           "PartitionLoss"]


@dataclass(frozen=True)
class TrainConfig:
    """What ``hampart train`` needs; YAML keys are the field names."""

    parts: str | Sequence[str]             # partition directories made by `hampart slice`
    out: str = "runs/model"                # model.pt, checkpoint.pt, log.jsonl go here
    validation: str | Sequence[str] | None = None  # partitions of separate structures
    model: Mapping[str, Any] = field(default_factory=dict)  # HamiltonianModel arguments
    lr: float = 1e-4
    epochs: int = 1000
    schedule: str = "plateau"              # or "cosine", "hold-cosine" (distributed.schedule)
    decay_fraction: float = 0.25           # hold-cosine: the share of the epochs spent decaying
    patience: int = 500                    # ReduceLROnPlateau patience (epochs)
    factor: float = 0.5
    min_lr: float = 1e-5                   # plateau: stop below this; else: the last lr
    dtype: str = "float32"
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 50
    log_every: int = 10
    resume: bool = True
    max_gib: float | None = None           # memory budget per rank: edge chunks chosen to fit
    node_weight: float = 1.0               # loss weight of on-site elements against hopping ones
    loss_weighting: str = "elements"       # or "per-l": irreducible components weighted 1/(2L+1)


def check_config(config: TrainConfig, source: str = "training settings") -> None:
    """Refuse settings that would fail deep inside torch or train nothing, naming the fix."""
    import inspect

    from ..model import HamiltonianModel

    def bad(what, value, fix):
        raise InputError(source, f"{what} = {value!r}", fix)

    dirs = _directories(config.parts)
    if not dirs or len(set(dirs)) != len(dirs):
        bad("parts", config.parts, "give one or more distinct partition directories")
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        bad("lr", config.lr, "give a positive learning rate, e.g. --lr 1e-3")
    if not isinstance(config.epochs, int) or config.epochs < 0:
        bad("epochs", config.epochs, "give 0 or more epochs")
    if not isinstance(config.patience, int) or config.patience < 0:
        bad("patience", config.patience, "give 0 or more epochs")
    if not 0 < config.factor < 1:
        bad("factor", config.factor, "give a learning-rate factor between 0 and 1")
    if not config.min_lr >= 0:
        bad("min_lr", config.min_lr, "give 0 or a positive learning rate")
    if config.schedule not in SCHEDULES:
        bad("schedule", config.schedule, "use " + " or ".join(SCHEDULES))
    if config.schedule in ("cosine", "hold-cosine") and not config.min_lr < config.lr:
        bad("min_lr", config.min_lr, f"give a final learning rate below lr = {config.lr:g}")
    if not (isinstance(config.decay_fraction, (int, float)) and 0 < config.decay_fraction <= 1):
        bad("decay_fraction", config.decay_fraction,
            "give the fraction of the epochs over which hold-cosine decays, in (0, 1]")
    if config.log_every < 1 or config.checkpoint_every < 0:
        bad("log_every/checkpoint_every", (config.log_every, config.checkpoint_every),
            "log every 1 or more epochs; checkpoint every 0 (never) or more")
    if not (isinstance(config.node_weight, (int, float)) and math.isfinite(config.node_weight)
            and config.node_weight > 0):
        bad("node_weight", config.node_weight, "give a positive weight, e.g. --node-weight 10")
    if config.loss_weighting not in LOSS_WEIGHTINGS:
        bad("loss_weighting", config.loss_weighting, "use " + " or ".join(LOSS_WEIGHTINGS))
    if not isinstance(config.model, Mapping):
        bad("model", config.model, 'give model hyperparameters as a mapping, e.g. {"lmax": 4}')
    known = [k for k in inspect.signature(HamiltonianModel.__init__).parameters
             if k not in ("self", "basis")]
    unknown = sorted(set(config.model) - set(known))
    if unknown:
        raise InputError(source, f"unknown model hyperparameter(s) {', '.join(unknown)}",
                         f"use only {', '.join(known)}")


def _dtype(name: str) -> torch.dtype:
    if name not in ("float32", "float64"):
        raise InputError("dtype", f"'{name}' is not supported", "use float32 or float64")
    return getattr(torch, name)


def _flat_all_reduce(ctx, params) -> None:
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    launch.all_reduce_sum(ctx, flat)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p)
        offset += n


def _directories(value) -> list[str]:
    """``parts`` / ``validation``: one directory or a list of them (several structures)."""
    if value is None:
        return []
    return [str(value)] if isinstance(value, (str, os.PathLike)) else [str(v) for v in value]


def _one_basis(directories, manifests):
    """The merged basis of partition directories (:func:`~hampart.basis.merge_bases`); refuses
    one whose blocks are padded for other elements (sliced before partitions stored only the
    structure's elements)."""
    merged = merge_bases([(d, m["params"]["basis"]) for d, m in zip(directories, manifests)])
    widths = [Basis.from_dict(m["params"]["basis"], source=d).n_union
              for d, m in zip(directories, manifests)]
    for d, width in zip(directories, widths):
        if width != widths[0]:
            raise InputError(d, f"stores blocks padded to {width} orbitals, {directories[0]} to "
                             f"{widths[0]} (one was sliced from a whole basis table)",
                             "slice both again: hampart slice now stores the structure's "
                             "elements only")
    return merged


def _load_parts(directories, ctx, n_layers, dtype):
    """Manifests of ``directories`` (one per structure; same basis and r_cut) and this rank's
    partitions of all of them, assigned to ranks together by their edge counts."""
    from ..partition import exact_edges_first, load_batch, load_manifest

    manifests = [load_manifest(d) for d in directories]
    first, where = manifests[0]["params"], directories[0]
    _one_basis(directories, manifests)
    for d, m in zip(directories[1:], manifests[1:]):
        if abs(float(m["params"]["rcut"]) - float(first["rcut"])) > 1e-9:
            raise InputError(d, f"was sliced at r_cut {m['params']['rcut']}, {where} at "
                             f"{first['rcut']}", "slice every structure with the same --rcut")
    index = [(d, k) for d, m in zip(directories, manifests) for k in range(len(m["parts"]))]
    costs = [p["n_edges"] for m in manifests for p in m["parts"]]
    mine = [index[i] for i in assign_parts(costs, ctx.size)[ctx.rank]]
    # exact owned edges first: only their blocks are computed (halo = L leaves some inexact)
    batches = [exact_edges_first(load_batch(d, k, n_layers=n_layers, device=ctx.device,
                                            dtype=dtype)) for d, k in mine]
    return manifests, mine, batches


def _warn_raw(directories, manifests, n_layers: int) -> None:
    """One line when raw partitions (halo 0) are trained: they are for comparison only."""
    raw = [d for d, m in zip(directories, manifests) if int(m["params"]["halo"]) == 0]
    if raw and n_layers > 0:
        warnings.warn(InputWarning(
            ", ".join(raw), "halo 0 (raw parts): each part trains alone, atoms near a cut miss "
            "their neighbours in other parts and edges across cuts are never trained, so the "
            "outputs are not exact; the loss counts owned atoms and edges with both ends owned",
            f"for comparison only (the halo ablation); slice with --halo {n_layers} or more to "
            "train a model"))


@dataclass
class _Run:
    """What every epoch needs, made once by :func:`_setup` on each rank."""

    ctx: launch.Context
    out: Path
    where: str                  # the training directories, for messages
    has_validation: bool
    basis: Any
    model: Any
    model_kwargs: dict
    params: list
    optimizer: Any
    scheduler: Any
    loss_fn: "PartitionLoss"
    mine: list                  # (directory, part) of this rank's training partitions
    batches: list
    masks: list
    chunks: list                # edge chunk per partition (None: the model's own)
    val_batches: list
    val_masks: list
    val_chunks: list
    counts: list                # [node, edge] exact labelled elements over all ranks
    val_counts: list
    label_stats: dict
    ckpt_path: Path
    schedule: dict              # what a checkpoint must match to be resumed
    start_epoch: int = 0
    best: float = math.inf

    @property
    def count(self) -> float:
        return sum(self.counts)

    def weighted(self, node_weight: float) -> float:
        """The objective's normaliser: its value at equal errors does not depend on
        ``node_weight``."""
        return node_weight * self.counts[0] + self.counts[1]


def _print_progress(line: str) -> None:
    print(line, flush=True)


def train(config: TrainConfig, progress=None) -> dict:
    """Train; returns a summary (rank 0's view, identical on all ranks).

    ``progress(line)`` receives rank 0's progress lines (the plan, statistics, one line per
    logged epoch); by default they go to the ``hampart.distributed.trainer`` logger at INFO
    (``hampart train`` prints them). A process group that exists before the call is used and
    left in place; one that ``train`` creates it also ends."""
    say = progress or logging.getLogger(__name__).info
    check_config(config)
    dtype = _dtype(config.dtype)
    ctx = launch.init(config.device)
    try:
        run = _setup(config, ctx, dtype, say)
        return _fit(config, run, say)
    finally:
        launch.finish(ctx)


def _setup(config: TrainConfig, ctx, dtype, say) -> _Run:
    """Load this rank's partitions, build the model (statistics, on-site fit), optimiser,
    loss, memory plan, and resume from a checkpoint in ``out`` when there is one."""
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file", "give a directory for --out")

    n_layers = int(dict(config.model).get("layers", 1))
    train_dirs, val_dirs = _directories(config.parts), _directories(config.validation)
    where = ", ".join(train_dirs)
    manifests, mine, batches = _load_parts(train_dirs, ctx, n_layers, dtype)
    if ctx.is_main:
        _warn_raw(train_dirs, manifests, n_layers)
    n_parts = sum(len(m["parts"]) for m in manifests)
    if ctx.is_main and n_parts < ctx.size:
        warnings.warn(InputWarning(where, f"{n_parts} partition(s) for {ctx.size} ranks: "
                                   f"{ctx.size - n_parts} rank(s) will idle",
                                   f"slice into {ctx.size} or more parts, or run fewer ranks"))
    model_kwargs = _model_settings(config, manifests[0]["params"], batches, ctx, where, say)
    val_batches, val_manifests = [], []
    if val_dirs:
        val_manifests, _, val_batches = _load_parts(val_dirs, ctx, n_layers, dtype)
        if ctx.is_main:
            _warn_raw(val_dirs, val_manifests, n_layers)

    # one basis for all: the union of the data sets' elements, and every ghost species of
    # the training and validation data gets its own heads
    basis = _one_basis(train_dirs + val_dirs, manifests + val_manifests)
    # heads for the species the training data has (an untrained head would predict noise)
    model_kwargs["elements"] = _data_elements(batches, ctx, model_kwargs["elements"], where)
    for b in val_batches:
        _refuse_unknown(b.numbers, model_kwargs["elements"], ", ".join(val_dirs),
                        "validation data")
    model, label_stats = _start_model(basis, model_kwargs, batches, ctx, dtype, say)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    scheduler = make_scheduler(config, optimizer)
    loss_fn = PartitionLoss(basis, config.node_weight, config.loss_weighting)
    masks = [loss_fn.masks(b) for b in batches]
    val_masks = [loss_fn.masks(b) for b in val_batches]

    chunks = [model.edge_chunk] * len(batches)
    val_chunks = [model.edge_chunk] * len(val_batches)
    if config.max_gib is not None:
        chunks, val_chunks = _memory_plan(config, model, batches, val_batches, ctx, say)

    run = _Run(ctx=ctx, out=out, where=where, has_validation=bool(val_dirs), basis=basis,
               model=model, model_kwargs=model_kwargs, params=params, optimizer=optimizer,
               scheduler=scheduler, loss_fn=loss_fn, mine=mine, batches=batches, masks=masks,
               chunks=chunks, val_batches=val_batches, val_masks=val_masks,
               val_chunks=val_chunks, counts=_global_counts(ctx, masks),
               val_counts=_global_counts(ctx, val_masks) if val_dirs else [0.0, 0.0],
               label_stats=label_stats, ckpt_path=out / "checkpoint.pt",
               schedule=schedule_key(config))
    if run.count == 0:
        raise InputError(where, "no exact labelled output in the partitions",
                         f"slice with --halo {n_layers} or more and check the Hamiltonian")

    if ctx.is_main:  # only now: a refused input leaves no output directory behind
        out.mkdir(parents=True, exist_ok=True)
    if config.resume and run.ckpt_path.exists():
        _resume(run, say)
    return run


def _model_settings(config: TrainConfig, sliced: dict, batches, ctx, where, say) -> dict:
    """The model's keyword arguments: the config's, options whose default changed named
    (``BEFORE_OPTIONS``), r_cut from the slicing (refused when larger), and an ``auto``
    attention degree measured on the training atoms."""
    model_kwargs = dict(config.model)
    for key in BEFORE_OPTIONS:  # named in the saved model, so later defaults cannot change it
        model_kwargs.setdefault(key, default_option(key))
    model_kwargs.setdefault("rcut", float(sliced["rcut"]))
    if float(model_kwargs["rcut"]) > float(sliced["rcut"]) + 1e-9:
        raise InputError(where, f"model rcut {model_kwargs['rcut']} exceeds the "
                         f"partitions' rcut {sliced['rcut']}",
                         "slice with a larger --rcut or lower the model's rcut")
    if model_kwargs.get("attention_degree") == "auto":
        model_kwargs["attention_degree"] = _mean_degree(
            _neighbour_count_range(batches, model_kwargs["rcut"], ctx))
        if ctx.is_main:
            say(f"attention_degree: auto -> {model_kwargs['attention_degree']:.4g} (mean "
                "envelope-weighted in-degree of the training atoms)")
    return model_kwargs


def _start_model(basis, model_kwargs: dict, batches, ctx, dtype, say) -> tuple[Any, dict]:
    """The model as every rank starts it: the same initial weights (rank 0's), the mean
    degree, the neighbour sums' statistics, the label scales and the least-squares on-site
    start, all from the training data of every rank. Returns ``(model, label statistics)``."""
    from ..model import HamiltonianModel

    model = HamiltonianModel(basis=basis, **model_kwargs).to(device=ctx.device, dtype=dtype)
    if ctx.backend is not None:  # identical start on every rank
        for p in model.parameters():
            torch.distributed.broadcast(p.data, src=0)
    counts = _neighbour_count_range(batches, model_kwargs["rcut"], ctx)
    if model.needs_mean_degree:
        model.set_mean_degree(_mean_degree(counts))
    if model.onsite is not None:
        _neighbour_sum_statistics(model, batches, ctx)
    label_stats = _label_statistics(model, basis, batches, ctx, say)
    # what prediction compares a structure's atoms with (hampart predict warns outside it)
    label_stats["neighbour_count"] = {k: round(v, 4) for k, v in counts.items()}
    if model.onsite is not None:
        label_stats["onsite_ridge"] = _onsite_fit(model, batches, ctx)
        if ctx.is_main:
            say("on-site start: ridge per species and L (cross-validated) "
                + "; ".join(f"{k} " + " ".join(f"{a:.0e}" for a in v)
                            for k, v in label_stats["onsite_ridge"].items()))
    return model, label_stats


def _global_counts(ctx, mask_list) -> list[float]:
    """(node elements, edge elements) summed over all ranks' partitions."""
    c = torch.tensor([[float(n.sum()), float(e.sum())] for n, e in mask_list] or
                     [[0.0, 0.0]], dtype=torch.float64, device=ctx.device).sum(0)
    return [float(x) for x in launch.all_reduce_sum(ctx, c)]


def _resume(run: _Run, say) -> None:
    """Model, optimiser, scheduler, epoch and best monitor from ``run.ckpt_path``."""
    state = _load_checkpoint(run.ckpt_path, run.model_kwargs, run.ctx.device)
    _check_schedule(run, state.get("schedule", {"schedule": "plateau"}))
    load_state(run.model, state["state_dict"], run.ckpt_path)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.start_epoch, run.best = int(state["epoch"]) + 1, float(state["best"])
    if run.ctx.is_main:
        say(f"resuming {run.ckpt_path} after epoch {run.start_epoch - 1} (learning rate "
            f"{run.optimizer.param_groups[0]['lr']:.3g} from the checkpoint; --no-resume "
            "starts over)")


def _check_schedule(run: _Run, saved: dict) -> None:
    """A checkpoint continues only the schedule it was written with (a cosine or hold-cosine
    one over the same epochs: its learning rates depend on them)."""
    if dict(saved) != run.schedule:
        raise InputError(run.ckpt_path, f"was written with schedule {saved}, this run asks "
                         f"for {run.schedule}", "resume with the same --schedule (and, for "
                         "cosine or hold-cosine, --epochs), or pass --no-resume (or another --out)")


def _train_epoch(config: TrainConfig, run: _Run, epoch: int) -> tuple[dict, float]:
    """One optimiser step over every rank's partitions: ``(record, monitor)``, the epoch's
    log record and the weighted training objective the plateau scheduler watches."""
    ctx, weighted = run.ctx, run.weighted(config.node_weight)
    run.optimizer.zero_grad(set_to_none=True)
    sums = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    for batch, mask, chunk in zip(run.batches, run.masks, run.chunks):
        # the chunk from the memory plan; results do not depend on it
        objective, part_sums = run.loss_fn(run.model, batch, mask, edge_chunk=chunk)
        (objective / weighted).backward()
        sums += part_sums
    _flat_all_reduce(ctx, run.params)
    launch.all_reduce_sum(ctx, sums)
    mse = float(sums[0] + sums[1]) / run.count
    if not math.isfinite(mse):
        raise InputError(run.where, f"training diverged: loss is {mse} at epoch {epoch}",
                         "lower lr, check the labels for NaN, or use dtype float64")
    run.optimizer.step()
    record = {"epoch": epoch, "mse": mse, "rmse_mEh": 1e3 * math.sqrt(mse),
              "mae_mEh": 1e3 * float(sums[2] + sums[3]) / run.count,
              **_split_mae(sums, run.counts), "lr": run.optimizer.param_groups[0]["lr"]}
    # the plateau scheduler watches the element objective, node-weighted as the gradient is
    return record, float(config.node_weight * sums[0] + sums[1]) / weighted


def _validate(config: TrainConfig, run: _Run) -> tuple[dict, float]:
    """Errors on the validation partitions (no gradients): ``(record fields, monitor)``."""
    ctx, counts = run.ctx, run.val_counts
    vs = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    with torch.no_grad():
        for batch, mask, chunk in zip(run.val_batches, run.val_masks, run.val_chunks):
            vs += run.loss_fn(run.model, batch, mask, edge_chunk=chunk)[1]
    launch.all_reduce_sum(ctx, vs)
    val_count = max(sum(counts), 1.0)
    val_weighted = max(config.node_weight * counts[0] + counts[1], 1.0)
    fields = {"val_mse": float(vs[0] + vs[1]) / val_count,
              "val_mae_mEh": 1e3 * float(vs[2] + vs[3]) / val_count,
              **_split_mae(vs, counts, "val_")}
    return fields, float(config.node_weight * vs[0] + vs[1]) / val_weighted


def _fit(config: TrainConfig, run: _Run, say) -> dict:
    """The epochs from ``run.start_epoch``: train, validate, schedule, log, checkpoint; then
    the model, checkpoint and summary.json (rank 0). Returns the summary."""
    ctx = run.ctx
    # a fresh start replaces an earlier run's log; a resumed run continues it
    log = open(run.out / "log.jsonl", "a" if run.start_epoch else "w") if ctx.is_main else None
    try:
        t0 = time.perf_counter()
        history = []
        epoch = run.start_epoch - 1
        stop_reason = "epochs"
        for epoch in range(run.start_epoch, config.epochs):
            record, monitor = _train_epoch(config, run, epoch)
            if run.has_validation:
                fields, monitor = _validate(config, run)
                record.update(fields)
            if watches_loss(run.scheduler):
                run.scheduler.step(monitor)
            else:
                run.scheduler.step()
            run.best = min(run.best, monitor)
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            if log is not None and (epoch % config.log_every == 0
                                    or epoch == config.epochs - 1):
                log.write(json.dumps(record) + "\n")
                log.flush()
                say(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in record.items()))
            if ctx.is_main and config.checkpoint_every and epoch % config.checkpoint_every == 0:
                _save_checkpoint(run, epoch)
            if (config.schedule == "plateau"
                    and run.optimizer.param_groups[0]["lr"] < config.min_lr * (1 - 1e-9)):
                stop_reason = "min_lr"
                break
        summary = {"epochs_run": len(history), "last_epoch": epoch, "stop": stop_reason,
                   "first": history[0] if history else None,
                   "last": history[-1] if history else None,
                   "ranks": ctx.size, "rank": ctx.rank, "parts_per_rank": len(run.mine),
                   "edge_chunks": run.chunks, "label_statistics": run.label_stats,
                   "seconds": time.perf_counter() - t0}
        if ctx.is_main:
            _save_checkpoint(run, max(epoch, 0))
            save_model(run.out / "model.pt", run.model, run.model_kwargs, run.basis,
                       extra={"parts": run.where, "summary": json.dumps(summary),
                              "dtype": config.dtype})
            with atomic_file(run.out / "summary.json") as tmp:
                tmp.write_text(json.dumps(summary, indent=1))
        return summary
    finally:
        if log is not None:
            log.close()


def _save_checkpoint(run: _Run, epoch: int) -> None:
    _checkpoint(run.ckpt_path, run.model, run.model_kwargs, run.optimizer, run.scheduler,
                epoch, run.best, run.schedule)


def _split_mae(sums, counts, prefix: str = "") -> dict:
    """Node and edge MAE in milli-Hartree from the ``(4,)`` sums and ``[node, edge]`` counts."""
    return {f"{prefix}node_mae_mEh": 1e3 * float(sums[2]) / max(counts[0], 1.0),
            f"{prefix}edge_mae_mEh": 1e3 * float(sums[3]) / max(counts[1], 1.0)}


def _data_elements(batches, ctx, given, where) -> list[int]:
    """Species in all ranks' training partitions (atomic numbers; -Z a ghost keeping Z's
    orbitals; orbital-less ghosts excepted); with ``given`` (``--model '{"elements": [...]}'``)
    those, which must include the data's."""
    count = torch.zeros(2 * 118 + 1, dtype=torch.float64, device=ctx.device)
    for b in batches:  # index z + 118: ghosts' negative numbers count too
        count += torch.bincount(b.numbers.long() + 118, minlength=2 * 118 + 1).to(count)
    count = launch.all_reduce_sum(ctx, count)
    present = sorted((z for z in range(-118, 119) if z and float(count[z + 118]) > 0),
                     key=lambda z: (z < 0, abs(z)))
    if given is None:
        return present
    _refuse_unknown(torch.tensor(present, dtype=torch.long), given, where, "training data")
    return sorted({int(z) for z in given}, key=lambda z: (z < 0, abs(z)))


def _refuse_unknown(numbers, elements, where, what) -> None:
    from ..basis import species_name

    extra = sorted({int(z) for z in numbers.unique().tolist() if z} - set(map(int, elements)),
                   key=abs)
    if extra:
        have = ", ".join(species_name(int(z)) for z in elements)
        raise InputError(where, f"the {what} has {', '.join(species_name(z) for z in extra)}"
                         f", the model is built for {have} only",
                         "train on data containing every species to predict, or add them to "
                         "the model's elements")


def _mean_degree(counts: dict) -> float:
    """The mean of :func:`_neighbour_count_range`: the typical neighbour count that
    ``attention_degree`` and the degree embedding normalise by."""
    if not counts.get("mean", 0.0) > 0:
        raise InputError("attention_degree", "auto: the training atoms have no neighbours "
                         "within the model's rcut", "give a number, or check rcut")
    return round(counts["mean"], 6)


def _neighbour_count_range(batches, rcut: float, ctx) -> dict:
    """Smallest, mean and largest sum_j envelope(r_ij) of the training atoms of all ranks
    (owned atoms have all their incoming edges); empty when no rank has an atom."""
    from ..graph import edge_vectors
    from ..model.radial import smooth_degree

    counts = [torch.zeros(0, dtype=torch.float64, device=ctx.device)]
    for b in batches:
        m, n = b.n_owned_edges, b.n_owned
        vec = edge_vectors(b.positions, b.cell, b.edge_index[:, :m], b.edge_shift[:m])
        counts.append(smooth_degree(vec.double().norm(dim=-1), b.edge_index[1, :m], n, rcut))
    counts = torch.cat(counts)
    # one slot per rank: the sum over ranks gathers every rank's extremes
    slots = torch.zeros(ctx.size, 4, dtype=torch.float64, device=ctx.device)
    if counts.numel():
        slots[ctx.rank] = torch.stack([-counts.min(), counts.max(), counts.sum(),
                                       torch.tensor(float(counts.numel()), dtype=torch.float64,
                                                    device=ctx.device)])
    launch.all_reduce_sum(ctx, slots)
    present = slots[:, 3] > 0
    if not present.any():
        return {}
    return {"min": float(-slots[present, 0].max()),
            "mean": float(slots[:, 2].sum() / slots[:, 3].sum()),
            "max": float(slots[present, 1].max())}


def _neighbour_sum_statistics(model, batches, ctx) -> None:
    """Standardise the on-site neighbour sums over all ranks' owned atoms (each atom of the
    training structures once, with all its incoming edges)."""
    flat = None
    for b in batches:
        part = model.neighbour_sum_statistics(b.numbers, b.positions, b.cell, b.edge_index,
                                              b.edge_shift, n_atoms=b.n_owned)
        flat = part if flat is None else flat + part
    if flat is None:  # a rank without partitions still takes part in the sum
        flat = torch.zeros(model.neighbour_sum_statistics_size, dtype=torch.float64,
                           device=ctx.device)
    model.set_neighbour_sum_statistics(launch.all_reduce_sum(ctx, flat.to(ctx.device)))


def _onsite_fit(model, batches, ctx) -> dict:
    """Start the node heads from the least-squares linear on-site model in the neighbour sums,
    fitted to all ranks' owned labels (after the label statistics set the heads' scales);
    returns the ridges chosen."""
    flat = None
    for b in batches:
        if b.node_blocks is None:
            continue
        part = model.onsite_normal_equations(b.numbers, b.positions, b.cell, b.edge_index,
                                             b.edge_shift, b.node_blocks, atoms=b.node_exact,
                                             atom_ids=b.node_ids[:b.n_owned])
        flat = part if flat is None else flat + part
    if flat is None:  # a rank without partitions still takes part in the sum
        flat = torch.zeros(model.onsite_fit_size, dtype=torch.float64, device=ctx.device)
    return model.set_onsite_fit(launch.all_reduce_sum(ctx, flat.to(ctx.device)))


def _label_statistics(model, basis, batches, ctx, say=_print_progress) -> dict:
    """Set the heads' scales and node biases from the labels of all ranks' owned outputs (each
    atom and edge of the training structure once, so independent of the slicing); returns the
    summary that is printed and kept in summary.json."""
    from ..model.statistics import LabelSums, label_sums

    sums = LabelSums.zeros(basis, ctx.device)
    for b in batches:
        if b.node_blocks is not None:
            sums = sums + label_sums(basis, b.numbers, b.edge_index, b.node_blocks, b.edge_blocks)
    sums = sums.with_flat(launch.all_reduce_sum(ctx, sums.flat()))
    model.set_label_statistics(sums)
    summary = sums.summary(basis)
    if ctx.is_main:
        node = ", ".join(f"{k} {v:.3g}" for k, v in summary["node_spread_mEh"].items())
        edge = ", ".join(f"{k} {v:.3g}" for k, v in summary["edge_rms_mEh"].items())
        say(f"label statistics (mEh): on-site spread {node} -> node scale "
            f"{summary['node_scale_mEh']:.3g}; hopping RMS {edge} -> edge scale "
            f"{summary['edge_scale_mEh']:.3g}")
    return summary


def _memory_plan(config, model, batches, val_batches, ctx, say=_print_progress):
    """Edge chunks for this rank's partitions so that a step fits in ``config.max_gib``; an
    ``edge_chunk`` given with the model is an upper bound. Stops naming the fix if a partition
    cannot fit (DESIGN.md §8)."""
    from ..model.memory import GIB, measure_memory_law, plan_chunks

    if not config.max_gib > 0:
        raise InputError("max_gib", f"{config.max_gib} GiB", "give a positive memory budget")
    law = measure_memory_law(model)
    everything = batches + val_batches
    resident = sum(t.element_size() * t.numel() for b in everything for t in vars(b).values()
                   if isinstance(t, torch.Tensor))
    graphs = [(b.numbers.shape[0], b.edge_index.shape[1],
               int(torch.bincount(b.edge_index[1]).max()) if b.edge_index.shape[1] else 1,
               int(b.edge_exact.sum())) for b in everything]
    source = f"{', '.join(_directories(config.parts))} (rank {ctx.rank})"
    planned = plan_chunks(law, graphs, config.max_gib, resident, source=source)
    cap = model.edge_chunk
    planned = [c if cap is None else min(c or cap, cap) for c in planned]
    if ctx.is_main:
        worst = max(law.step_bytes(g[0], g[1], c, g[3]) for g, c in zip(graphs, planned))
        ways = sorted({"whole" if c is None else f"chunks of {c} edges" for c in planned})
        say(f"memory plan (rank 0, budget {config.max_gib:g} GiB): {len(everything)} part(s) "
            f"as {', '.join(ways)}; largest step about "
            f"{(worst + resident + law.fixed_bytes()) / GIB:.2f} GiB")
    return planned[:len(batches)], planned[len(batches):]


def _checkpoint(path, model, model_kwargs, optimizer, scheduler, epoch, best,
                schedule) -> None:
    with atomic_file(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "best": best,
                    "model": dict(model_kwargs), "schedule": dict(schedule)}, tmp)


def _load_checkpoint(path, model_kwargs, device) -> dict:
    """The checkpoint of an earlier run in the same ``out``, refused (naming the ways out) when
    unreadable or written for other model hyperparameters."""
    fix = "resume with the same --model, or pass --no-resume (or another --out) to start over"
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # truncated, or not ours
        raise InputError(path, f"unreadable checkpoint ({type(e).__name__})", fix) from None
    saved = state.get("model") if isinstance(state, dict) else None
    if saved is not None:
        saved = {**BEFORE_OPTIONS, **saved}
    if saved is not None and dict(saved) != dict(model_kwargs):
        changed = sorted(k for k in set(saved) | set(model_kwargs)
                         if saved.get(k) != model_kwargs.get(k))
        raise InputError(path, "was written for other model hyperparameters ("
                         + ", ".join(f"{k}: {saved.get(k)} then, {model_kwargs.get(k)} now"
                                     for k in changed) + ")", fix)
    return state


def config_from_yaml(path) -> TrainConfig:
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise InputError(path, f"cannot read config ({e.strerror})", "give an existing YAML file")
    except yaml.YAMLError as e:
        raise InputError(path, f"is not valid YAML ({str(e).splitlines()[0]})",
                         "fix the file: one 'key: value' per line") from None
    if not isinstance(data, dict):
        raise InputError(path, "is not a mapping of keys to values", "write 'parts: DIR' etc.")
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(path, f"unknown key(s) {', '.join(unknown)}",
                         f"use only {', '.join(sorted(known))}")
    if "parts" not in data:
        raise InputError(path, "no 'parts' key", "give parts: <directory made by hampart slice>")
    for key in ("lr", "min_lr", "factor", "max_gib"):  # YAML 1.1 reads 1e-4 (no dot) as text
        if isinstance(data.get(key), str):
            try:
                data[key] = float(data[key])
            except ValueError:
                raise InputError(path, f"{key}: {data[key]!r} is not a number",
                                 f"write e.g. {key}: 1.0e-4") from None
    config = TrainConfig(**data)
    check_config(config, source=str(path))
    return config


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)
