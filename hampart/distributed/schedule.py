"""Learning-rate schedules of ``hampart train``.

One epoch is one optimiser step (the gradients of every partition summed), so a schedule is a
function of the epoch alone: ``plateau`` watches the objective, ``cosine`` and ``hold-cosine``
are fixed by the number of epochs, which a checkpoint must therefore match (``schedule_key``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["SCHEDULES", "make_scheduler", "schedule_key", "hold_cosine_factor", "watches_loss"]

SCHEDULES = ("plateau", "cosine", "hold-cosine")


def hold_cosine_factor(epochs: int, lr: float, min_lr: float, decay_fraction: float):
    """Factor on ``lr`` at epoch e: 1 for the first epochs, then half a cosine that ends at
    ``min_lr`` on the last epoch, over ``decay_fraction`` of them (at least one)."""
    decay = max(1, round(decay_fraction * epochs))
    hold = epochs - decay
    floor = min_lr / lr

    def factor(epoch: int) -> float:
        if epoch < hold:
            return 1.0
        phase = min((epoch - hold + 1) / decay, 1.0)
        return floor + (1 - floor) * (1 + math.cos(math.pi * phase)) / 2

    return factor


def make_scheduler(config, optimizer):
    """``plateau``: multiply the lr by ``factor`` after ``patience`` epochs without a better
    objective; ``cosine``: lr from ``lr`` to ``min_lr`` along half a cosine over ``epochs``, so
    the last steps are small whatever the budget; ``hold-cosine``: ``lr`` held, then that half
    cosine over the last ``decay_fraction`` of the epochs only. ``config``: a TrainConfig."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(config.epochs - 1, 1), eta_min=config.min_lr)
    if config.schedule == "hold-cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, hold_cosine_factor(
            config.epochs, config.lr, config.min_lr, config.decay_fraction))
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.factor, patience=config.patience)


def watches_loss(scheduler) -> bool:
    """Whether ``scheduler.step`` takes the epoch's objective."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def schedule_key(config) -> dict:
    """What a checkpoint must match to be resumed: the schedule and what its rates depend on."""
    if config.schedule == "cosine":
        return {"schedule": "cosine", "epochs": config.epochs, "min_lr": config.min_lr}
    if config.schedule == "hold-cosine":
        return {"schedule": "hold-cosine", "epochs": config.epochs, "min_lr": config.min_lr,
                "decay_fraction": config.decay_fraction}
    return {"schedule": "plateau"}
