"""Reading and writing structures, matrices and dataset directories."""

from .atomic import atomic_directory, atomic_file
from .csr import read_csr, read_matrix, write_csr, write_matrix
from .dataset import Dataset, check_matrix, load_dataset, save_dataset
from .structure import Structure, read_structure, write_structure

__all__ = ["atomic_directory", "atomic_file", "read_csr", "read_matrix", "write_csr",
           "write_matrix", "Dataset", "check_matrix", "load_dataset", "save_dataset", "Structure",
           "read_structure", "write_structure"]
