"""hampart.allocator: large blocks served from the heap (not mmap) once asked, opt-out by env.

Each check runs in a fresh interpreter: the setting is process-wide and cannot be undone."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# bytes glibc holds in mmapped blocks (mallinfo2().hblkhd) while a 64 MB block is allocated
PROBE = """
import ctypes, json
from hampart import allocator
libc = ctypes.CDLL(None)
if not hasattr(libc, "mallinfo2"):
    print(json.dumps({"skip": "no mallinfo2"})); raise SystemExit
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
took = allocator.keep_freed_memory()
before = libc.mallinfo2().hblkhd
block = libc.malloc(64 << 20)
mmapped = libc.mallinfo2().hblkhd - before
libc.free(block)
print(json.dumps({"took": took, "mode": allocator.mode(), "mmapped": mmapped}))
"""


def probe(value=None):
    env = {k: v for k, v in os.environ.items() if k != "HAMPART_MALLOC"}
    if value is not None:
        env["HAMPART_MALLOC"] = value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    return out


def test_heap_by_default_and_system_on_request():
    import json

    heap = probe()
    assert heap.returncode == 0, heap.stderr
    heap = json.loads(heap.stdout)
    if "skip" in heap:
        pytest.skip(heap["skip"])
    assert heap == {"took": True, "mode": "heap", "mmapped": 0}
    system = json.loads(probe("system").stdout)
    assert system["took"] is False and system["mode"] == "system"
    assert system["mmapped"] >= 64 << 20  # the system's malloc maps a block this large


def test_bad_value_names_the_variable():
    out = probe("jemalloc")
    assert out.returncode != 0
    assert "HAMPART_MALLOC" in out.stderr and "heap or system" in out.stderr


def test_train_keeps_freed_memory_unless_a_budget_is_given():
    from argparse import Namespace

    from hampart.cli import _keeps_freed_memory

    assert _keeps_freed_memory(Namespace(command="train", max_gib=None))
    assert not _keeps_freed_memory(Namespace(command="train", max_gib=4.0))  # a bound to keep
    assert not _keeps_freed_memory(Namespace(command="predict", max_gib=8.0))
