"""CPU memory allocation: keep freed blocks for reuse instead of handing them back to the kernel.

glibc's malloc serves every block larger than its mmap threshold (32 MB at most) with fresh
pages from the kernel and unmaps them when the block is freed. One training step or prediction
chunk allocates and frees edge tensors of tens to hundreds of MB op after op, so on CPU every
op pays a page fault and the zeroing of each 4 KiB page of its output again: this, not the
copying itself, is most of the time the profiler charges to ``cat`` and ``index_select``.
Served from the heap, which is never trimmed, the same pages are reused. Measured on 2 CPU
cores (docs/model.md, "Allocation"): a default-network training step 1.9x faster (41k edges:
4.2 -> 2.2 s; 172k edges: 23.6 -> 12.4 s) for 26-38 % more peak resident memory (freed blocks
that do not fit the next request stay reserved).

``hampart train`` calls :func:`keep_freed_memory` before it starts, unless a memory budget is
given (``--max-gib`` or ``max_gib`` in its config file): the heap's reserve is outside the
memory law that budget is planned with.
``HAMPART_MALLOC=system`` in the environment keeps the system's behaviour everywhere (for the
tightest memory, or to compare). Prediction needs neither: it runs in edge chunks small enough
for malloc to reuse (:func:`hampart.model.memory.cpu_edge_chunk`), which costs no memory.
Elsewhere than glibc (macOS, musl) it does nothing. CUDA memory is PyTorch's caching
allocator's and not affected.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["ENV", "keep_freed_memory", "mode"]

ENV = "HAMPART_MALLOC"  # "heap" (default) or "system"
# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_applied = False


def mode() -> str:
    """What this process's allocator does: "heap" once :func:`keep_freed_memory` took effect,
    else "system"."""
    return "heap" if _applied else "system"


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve large blocks from its heap (no mmap) and never trim freed
    memory at the heap's top below 2 GiB. Process-wide and for the process's life; returns
    whether it took effect (False with ``HAMPART_MALLOC=system`` or without glibc)."""
    global _applied
    choice = os.environ.get(ENV, "heap").strip().lower()
    if choice not in ("heap", "system"):
        from .errors import InputError

        raise InputError(ENV, f"is '{os.environ[ENV]}'", "set it to heap or system, or unset it")
    if _applied or choice == "system" or not sys.platform.startswith("linux"):
        return _applied
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; the trim threshold is an int: 2 GiB - 1 is its largest
    _applied = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return _applied
