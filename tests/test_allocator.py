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


def test_train_keeps_freed_memory_unless_a_budget_is_given(tmp_path):
    from types import SimpleNamespace

    from hampart.cli import _keeps_freed_memory
    from hampart.distributed.commands import _config

    def train_config(*flags):
        from hampart.cli import build_parser

        return _config(build_parser(["train"]).parse_args(["train", *flags]))

    assert _keeps_freed_memory("train", train_config("--parts", "p"))
    assert not _keeps_freed_memory("train", train_config("--parts", "p", "--max-gib", "4"))
    yaml = tmp_path / "train.yaml"  # a budget from the config file counts as one from a flag
    yaml.write_text("parts: [p]\nmax_gib: 4\n")
    assert not _keeps_freed_memory("train", train_config(str(yaml)))
    assert not _keeps_freed_memory("predict", SimpleNamespace(max_gib=8.0))
