"""Atomic writes: a file or a directory appears whole, or not at all.

Both write into a temporary name beside the target (same filesystem) and rename it into place
on success; on any error the temporary is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError

__all__ = ["atomic_file", "atomic_directory", "check_output_directory"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path, suffix: str = ".tmp"):
    """Yield a temporary path; ``os.replace`` it onto ``path`` when the block succeeds.

    ``suffix`` ends the temporary's name: give the target's extension (``".png"``, ``".TSHS"``)
    to writers that choose the format by it (matplotlib, sisl)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a directory", "give a file name for the output")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_output_directory(out, replace: bool = False) -> Path:
    """Refuse ``out`` if it is a file, or a non-empty directory unless ``replace``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is a file", "give a directory path for the output")
    if out.is_dir() and any(out.iterdir()) and not replace:
        raise InputError(out, "exists and is not empty",
                         "choose another output directory or pass --force to replace it")
    return out


@contextlib.contextmanager
def atomic_directory(out, replace: bool = False):
    """Yield a temporary directory beside ``out``, renamed to ``out`` when the block succeeds.

    An existing non-empty ``out`` is refused unless ``replace``; then the old directory is moved
    aside, the new one renamed in, and the old one deleted.
    """
    out = check_output_directory(out, replace)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; give it a normal mode
    try:
        yield tmp
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.rmdir(old)
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
