"""Real labels from density-functional theory: CP2K inputs, runs and their matrices.

``label_cp2k(structure, out, CP2KSettings(...), cores)`` runs CP2K and writes a dataset
directory (H.npz, S.npz, basis.yaml, structure.xyz, meta.json, cp2k/); ``make_input`` writes the
input alone; :mod:`hampart.dft.library` reads CP2K's basis and potential files.
"""

from .cp2k import Cp2kRun, find_cp2k, label_cp2k, parse_log, read_cp2k_run, run_cp2k
from .cp2k_input import CP2KSettings, Cp2kInput, cp2k_basis_name, make_input
from .library import basis_for, basis_shells, potential_for

__all__ = ["CP2KSettings", "Cp2kInput", "Cp2kRun", "make_input", "cp2k_basis_name",
           "label_cp2k", "run_cp2k", "read_cp2k_run", "parse_log", "find_cp2k",
           "basis_for", "basis_shells", "potential_for"]
