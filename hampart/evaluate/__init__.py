"""Prediction of H for structures of any size, and its comparison with a reference."""

from .metrics import HARTREE_EV, block_errors, eigenvalue_errors, eigenvalues
from .predict import predict_file, predict_hamiltonian
from .report import evaluate

__all__ = ["HARTREE_EV", "block_errors", "eigenvalue_errors", "eigenvalues", "evaluate",
           "predict_file", "predict_hamiltonian"]
