"""Training on partitions over MPI ranks: process group set-up, part assignment, trainer."""

from .assign import assign_parts
from .launch import Context, finish, init, run_on_main
from .trainer import TrainConfig, load_model, save_model, train

__all__ = ["assign_parts", "Context", "init", "finish", "run_on_main", "TrainConfig", "load_model",
           "save_model", "train"]
