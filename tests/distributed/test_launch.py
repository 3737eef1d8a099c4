"""run_on_main: rank 0 alone does the work, every rank gets its result or learns that it failed."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from hampart.distributed.launch import Context, finish, init, run_on_main
from hampart.errors import InputError


def test_one_process_runs_the_function_and_raises_its_error():
    ctx = Context(rank=0, size=1, local_rank=0, device=torch.device("cpu"), backend=None)
    assert run_on_main(ctx, divmod, 7, 2) == (3, 1)

    def refuse():
        raise InputError("data", "no such file", "check the path")

    with pytest.raises(InputError, match="no such file"):
        run_on_main(ctx, refuse)


def test_finish_ends_only_a_process_group_init_created(tmp_path, monkeypatch):
    """A caller's process group (a script that joined before calling train) outlives the
    init/finish pair inside; a group init made itself is ended by finish."""
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        monkeypatch.setenv("RANK", "0")  # as a launcher leaves them for a multi-rank job
        monkeypatch.setenv("WORLD_SIZE", "2")
        ctx = init("cpu")
        assert ctx.backend == "gloo" and not ctx.owns_group
        finish(ctx)
        assert dist.is_initialized()  # left to the caller who made it
        finish(Context(rank=0, size=2, local_rank=0, device=torch.device("cpu"),
                       backend="gloo", owns_group=True))
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


SCRIPT = textwrap.dedent("""
    import sys
    from hampart.distributed.launch import finish, init, run_on_main
    from hampart.errors import InputError

    ctx = init("cpu")
    # one file per rank: the ranks' stdout lines interleave under mpirun
    out = open(f"{sys.argv[1]}/rank-{ctx.rank}.txt", "w")
    calls = []

    def prepare(name):
        calls.append(name)
        return {"made": name}

    def refuse():
        raise InputError("parts", "cannot slice", "fix it")

    print("result", ctx.rank, run_on_main(ctx, prepare, "parts"), len(calls), file=out)
    try:
        run_on_main(ctx, refuse)
    except Exception as e:
        print("failed", ctx.rank, type(e).__name__, e, file=out)
    print("after", ctx.rank, run_on_main(ctx, prepare, "again"), file=out)  # still in step
    out.close()
    finish(ctx)
""")


def test_two_ranks_share_rank_0s_result_and_its_failure(tmp_path):
    mpirun = shutil.which("mpirun") or os.path.join(os.path.dirname(sys.executable), "mpirun")
    assert os.path.exists(mpirun), "mpirun not found: install the mpi extra (pip install mpich)"
    run = subprocess.run([mpirun, "-n", "2", sys.executable, "-c", SCRIPT, str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr + run.stdout
    lines = set()
    for rank in (0, 1):
        lines |= set((tmp_path / f"rank-{rank}.txt").read_text().splitlines())
    assert "result 0 {'made': 'parts'} 1" in lines  # rank 0 did the work ...
    assert "result 1 {'made': 'parts'} 0" in lines  # ... and rank 1 only received it
    assert "failed 0 InputError parts: cannot slice. Fix: fix it" in lines
    assert ("failed 1 RuntimeError rank 0 failed in refuse: InputError: parts: cannot slice. "
            "Fix: fix it") in lines
    assert {"after 0 {'made': 'again'}", "after 1 {'made': 'again'}"} <= lines
