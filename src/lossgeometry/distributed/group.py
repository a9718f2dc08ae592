"""The process group: started from the torchrun environment, with a timeout, on one backend.

``torchrun --nproc-per-node N script.py`` (or ``python -m torch.distributed.run``) starts
``N`` processes and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in each. :func:`init` reads them and starts the default process group:
``nccl`` when the measurements run on CUDA (each process on GPU ``LOCAL_RANK``), ``gloo`` on
CPU. Without those variables it does nothing and everything runs on one process, so the same
script works with and without torchrun.

Timeouts. Every rank must join within ``timeout`` seconds and every collective must complete
within it: a rank that raised, died or never joined gives the others a
:class:`~lossgeometry.distributed.DistributedError` that says so (within the timeout; a rank
that died is usually noticed at once), never a hang.
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any, Literal

import torch

from lossgeometry._collectives import DistributedError, collective, timeout_seconds

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_VARS",
    "barrier",
    "default_backend",
    "group_timeout",
    "in_torchrun",
    "init",
    "is_initialized",
    "is_main",
    "rank",
    "shutdown",
    "world_size",
]

DEFAULT_TIMEOUT_S = 300.0
"""Seconds a rank waits for the others (to join, or in a collective) before it stops."""

ENV_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
"""The variables torchrun sets that :func:`init` needs."""

_TIMEOUT: dict[Any, float] = {}


def in_torchrun() -> bool:
    """Whether this process was started by torchrun (its variables are set, ``WORLD_SIZE > 1``)."""
    return all(v in os.environ for v in ENV_VARS) and int(os.environ["WORLD_SIZE"]) > 1


def default_backend(device: torch.device | str | None = None) -> Literal["nccl", "gloo"]:
    """``"nccl"`` for a CUDA device (or CUDA available and no device given), else ``"gloo"``."""
    if device is None:
        return "nccl" if torch.cuda.is_available() else "gloo"
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def is_initialized() -> bool:
    """Whether a default process group is running."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init(
    backend: str | None = None,
    *,
    timeout: float | _dt.timedelta = DEFAULT_TIMEOUT_S,
    device: torch.device | str | None = None,
) -> bool:
    """Start the default process group from the torchrun environment.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; default: from ``device`` (:func:`default_backend`).
        timeout: seconds every rank waits for the others to join and in each collective.
        device: the device the measurements run on; on CUDA, this process takes GPU
            ``LOCAL_RANK`` (``torch.cuda.set_device``) unless a device index is given.

    Returns:
        ``True`` if a process group runs now (started here or before), ``False`` on one
        process (no torchrun variables, or ``WORLD_SIZE=1``).

    Raises:
        DistributedError: not every rank joined within ``timeout``.
        ValueError: an unknown backend, or ``nccl`` without CUDA.
    """
    import torch.distributed as dist

    if backend is not None and backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    seconds = timeout_seconds(timeout)
    if seconds is None or seconds <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if is_initialized():
        return True
    if not in_torchrun():
        return False
    if backend is None:
        backend = default_backend(device)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ValueError("backend='nccl' needs CUDA; use backend='gloo' on CPU")
        dev = torch.device(device) if device is not None else None
        if dev is None or dev.index is None:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        dist.init_process_group(backend, timeout=_dt.timedelta(seconds=seconds))
    except (RuntimeError, ValueError, ConnectionError) as e:
        raise DistributedError(
            f"rank {os.environ['RANK']}: the {os.environ['WORLD_SIZE']} ranks did not all join "
            f"the process group at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
            f"within {seconds:g} s (a rank failed to start, or they disagree on the address). "
            f"torch.distributed said: {e}"
        ) from e
    _TIMEOUT[None] = seconds
    return True


def group_timeout(group: Any = None) -> float | None:
    """The timeout :func:`init` gave ``group`` (seconds), if it started it."""
    return _TIMEOUT.get(group)


def world_size() -> int:
    """Ranks in the default group (1 without one)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """The rank of this process in the default group (0 without one)."""
    import torch.distributed as dist

    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes results: rank 0, or the only process."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (nothing on one process); a failed rank gives DistributedError."""
    import torch.distributed as dist

    if is_initialized():
        collective(dist.barrier, timeout_s=group_timeout())


def shutdown(*, wait: bool = True) -> None:
    """Stop the default process group (nothing without one).

    With ``wait`` (after success) the ranks first meet at a barrier, so no rank tears its
    connections down while another still uses them (gloo may otherwise abort a process at
    exit); a barrier that fails (a rank already gone) does not stop the shutdown. After an
    error pass ``wait=False``: the other ranks may be inside another collective.
    """
    import time

    import torch.distributed as dist

    if not is_initialized():
        return
    me, size = dist.get_rank(), dist.get_world_size()
    store = None
    try:
        if wait:
            store = dist.distributed_c10d._get_default_store()
            dist.barrier()
    except (RuntimeError, ValueError, ConnectionError, AttributeError):
        store = None
    dist.destroy_process_group()
    _TIMEOUT.clear()
    if store is None or size == 1:
        return
    # Rank 0 hosts the rendezvous store: it leaves only after the others have torn their
    # groups down (a client whose server vanished mid-teardown may abort its process).
    try:
        if me != 0:
            store.add("lossgeometry/shutdown", 1)
        else:
            deadline = time.monotonic() + 30
            while store.add("lossgeometry/shutdown", 0) < size - 1:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
    except (RuntimeError, ValueError, ConnectionError):
        pass
