"""The key of a partition directory: what identifies one slicing of one input.

A sha256 over the input files' sha256 (structure, Hamiltonian, basis: hashed as bytes, never
parsed; .npz by member contents, without zip time stamps; of a dataset directory only those
three files, not meta.json) and every parameter, so a repeated ``hampart slice`` recognises
its own output without building the graph. The key is stored in manifest.json
(:mod:`hampart.partition.store`).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["sha256_file", "input_hashes", "partition_key"]


def sha256_file(path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_arrays(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _sha256_input(path) -> str:
    """sha256 of an input file's content; of an .npz (zip) archive its member names and
    uncompressed bytes, not the zip's time stamps, so identical data rewritten keep their key."""
    if not zipfile.is_zipfile(path):
        return sha256_file(path)
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                h.update(name.encode() + b"\0")
                with archive.open(name) as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(path, f"damaged archive ({e})", "rewrite or regenerate the file") from None
    return h.hexdigest()


def _sha256_path(path) -> str:
    """sha256 of a file, or of a dataset directory's data files (structure, H, basis; not
    meta.json, which records timings, nor anything else a user keeps there)."""
    from ..io.dataset import BASIS_FILE, HAMILTONIAN_FILE, STRUCTURE_FILE

    path = Path(path)
    if path.is_file():
        return _sha256_input(path)
    h = hashlib.sha256()
    for name in (STRUCTURE_FILE, HAMILTONIAN_FILE, BASIS_FILE):
        if (path / name).is_file():
            h.update(name.encode() + b"\0" + _sha256_input(path / name).encode())
    return h.hexdigest()


def _sha256_matrix(H) -> str:
    H = H.tocsr()
    return _sha256_arrays(H.data, H.indices, H.indptr, np.array(H.shape))


def input_hashes(data, hamiltonian=None, basis=None, owner=None) -> dict:
    """sha256 of every input (``structure``, and ``hamiltonian``, ``basis``, ``owner`` where
    given), from file bytes when given paths (fast: nothing is parsed)."""
    from ..basis import Basis

    hashes = {}
    if isinstance(data, (str, os.PathLike)):
        if not Path(data).exists():
            raise InputError(data, "no such file or directory",
                             "give a dataset directory (hampart generate) or a structure file")
        hashes["structure"] = _sha256_path(data)
    else:
        s = data.structure
        hashes["structure"] = _sha256_arrays(s.numbers, s.positions, s.cell, s.pbc)
        if data.hamiltonian is not None:
            hashes["hamiltonian"] = _sha256_matrix(data.hamiltonian)
        if data.basis is not None:
            hashes["basis"] = hashlib.sha256(
                json.dumps(data.basis.to_dict(), sort_keys=True).encode()).hexdigest()
    if hamiltonian is not None:
        if isinstance(hamiltonian, (str, os.PathLike)):
            if not Path(hamiltonian).is_file():
                raise InputError(hamiltonian, "no such file",
                                 "give the Hamiltonian file (.csr or .npz)")
            hashes["hamiltonian"] = _sha256_input(hamiltonian)
        else:
            hashes["hamiltonian"] = _sha256_matrix(hamiltonian)
    if basis is not None:
        if isinstance(basis, Basis):
            spec = json.dumps(basis.to_dict(), sort_keys=True)
        elif Path(str(basis)).is_file():
            spec = sha256_file(basis)
        else:
            spec = str(basis)  # a built-in basis name
        hashes["basis"] = hashlib.sha256(spec.encode()).hexdigest()
    if owner is not None:
        hashes["owner"] = _sha256_arrays(np.asarray(owner, dtype=np.int64))
    return hashes


def partition_key(hashes: dict, params: dict, format: str, version: int) -> str:
    """sha256 of the inputs' hashes, the parameters (manifest form) and the format."""
    text = json.dumps({"format": format, "version": version, "inputs": hashes, "params": params},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
