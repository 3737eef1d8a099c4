"""Process group set-up for ``mpirun -n N`` (mpi4py), torchrun and SLURM, or a single process.

Rank and size come from, in order: torchrun's RANK/WORLD_SIZE, MPI (mpi4py, when the process was
started by mpirun/mpiexec), SLURM's SLURM_PROCID/SLURM_NTASKS. Under MPI, rank 0 picks a free
TCP port and broadcasts it, so no MASTER_PORT has to be set by hand. The backend is NCCL on GPUs
and gloo on CPUs. Only gradients and scalar losses cross ranks.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Context", "resolve_device", "init", "finish", "all_reduce_sum", "broadcast_object",
           "run_on_main"]

_MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")


@dataclass(frozen=True)
class Context:
    rank: int
    size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: single process, no process group
    owns_group: bool = False  # init created the process group, so finish ends it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _from_mpi():
    if not any(k in os.environ for k in _MPI_ENV):
        return None
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return None
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank == 0:
        addr = os.environ.get("MASTER_ADDR") or socket.gethostbyname(socket.gethostname())
        # A lone host: loopback always works and avoids firewalled interfaces.
        if comm.allreduce(socket.gethostname(), op=MPI.MAX) == comm.allreduce(
                socket.gethostname(), op=MPI.MIN):
            addr = "127.0.0.1"
        endpoint = (addr, int(os.environ.get("MASTER_PORT") or _free_port()))
    else:
        comm.allreduce(socket.gethostname(), op=MPI.MAX)
        comm.allreduce(socket.gethostname(), op=MPI.MIN)
        endpoint = None
    addr, port = comm.bcast(endpoint, root=0)
    local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    return rank, size, local, addr, port


def resolve_device(device: str | None, local_rank: int = 0) -> torch.device:
    """``auto``/None: this rank's GPU (local rank modulo the GPUs seen) when there is one, else
    the CPU; ``cuda`` alone also means this rank's GPU; ``cuda:N`` and ``cpu`` as given. A GPU
    asked for but not there, or an unknown device, is an :class:`InputError`."""
    from ..errors import InputError

    name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError("--device", f"unknown device {device!r}", "use auto, cpu, cuda or "
                         "cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise InputError("--device", f"{device!r} is not supported",
                         "use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise InputError("--device", f"{device!r} asked for, but torch {torch.__version__} sees no "
                         "GPU", "use --device auto or cpu, or install a CUDA build of torch")
    count = torch.cuda.device_count()
    index = local_rank % count if dev.index is None else dev.index
    if index >= count:
        raise InputError("--device", f"{device!r} asked for, but there are {count} GPU(s) "
                         f"(cuda:0..cuda:{count - 1})", "use one of those, or auto")
    return torch.device("cuda", index)


def init(device: str | None = None) -> Context:
    """Join (or skip, for one process) the process group; returns this rank's :class:`Context`.
    A process group that already exists is used as it is (and :func:`finish` leaves it)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", 0))
        addr = port = None  # torchrun set MASTER_ADDR/PORT
    elif (mpi := _from_mpi()) is not None:
        rank, size, local, addr, port = mpi
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "MASTER_ADDR" in os.environ:
        rank, size = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
        local, addr, port = int(os.environ.get("SLURM_LOCALID", 0)), None, None
    else:
        rank, size, local, addr, port = 0, 1, 0, None, None

    dev = resolve_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend, owns = None, False
    if size > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if addr is not None:
            os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = str(addr), str(port)
        if not dist.is_initialized():
            dist.init_process_group(backend, rank=rank, world_size=size)
            owns = True
    return Context(rank=rank, size=size, local_rank=local, device=dev, backend=backend,
                   owns_group=owns)


def finish(ctx: Context) -> None:
    """End the process group when ``ctx``'s :func:`init` created it (after a barrier); a
    group that existed before is left to whoever made it."""
    if ctx.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(ctx: Context, tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (no-op on one process); returns the tensor."""
    if ctx.backend is not None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(ctx: Context, obj):
    """Rank 0's ``obj`` on every rank (no-op on one process)."""
    if ctx.backend is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_on_main(ctx: Context, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on rank 0 only, while the other ranks wait; returns rank 0's result
    (picklable) on every rank. Use it for work done once per job, such as writing partitions
    before training. When ``fn`` fails, rank 0 raises its error and every other rank a
    RuntimeError naming it, so that no rank is left waiting."""
    failure = result = None
    if ctx.is_main:
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            failure = e
    # our InputError does not unpickle, so the other ranks are sent its text
    text = None if failure is None else f"{type(failure).__name__}: {failure}"
    result, text = broadcast_object(ctx, (result, text))
    if failure is not None:
        raise failure
    if text is not None:
        raise RuntimeError(f"rank 0 failed in {getattr(fn, '__name__', fn)}: {text}")
    return result
