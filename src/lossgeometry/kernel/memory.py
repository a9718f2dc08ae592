"""Memory guard: estimate what a dense request needs and refuse it *before* allocating.

The limit for one kernel computation is, in this order:

1. the ``max_memory`` argument of the call (bytes as an ``int``, or a string such as
   ``"8GiB"``, ``"500MB"``);
2. the module-level setting :data:`MAX_MEMORY` (same forms; ``None`` by default), set with
   :func:`set_max_memory`;
3. :data:`MEMORY_FRACTION` (default 0.5) of the memory available right now: ``MemAvailable``
   from ``/proc/meminfo`` on Linux (``os.sysconf`` pages otherwise) for CPU tensors, the free
   memory reported by ``torch.cuda.mem_get_info`` for CUDA tensors.

:func:`check_memory` raises a ``ValueError`` naming the size and what to do instead
(``method="ntvp"`` for matrix-free products, a smaller ``chunk_size``, a subset of samples or
outputs).

On a data-parallel Problem every rank must take the same decisions (a dense kernel or a
matrix-free one, the chunk size), so :func:`agreed_limit` takes the smallest limit over the
ranks.
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch

MEMORY_FRACTION: float = 0.5
"""Fraction of the currently available memory one computation may use by default."""

MAX_MEMORY: int | None = None
"""A fixed limit in bytes for every computation (overrides :data:`MEMORY_FRACTION`)."""

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_bytes(value: int | float | str) -> int:
    """Parse a memory size: an int/float of bytes, or ``"8GiB"``, ``"1.5 GB"``, ``"500MB"``.

    Raises:
        ValueError: an unparsable string, a unit not in (B, KB, MB, GB, TB, KiB, MiB, GiB,
            TiB), or a size that is not positive.
    """
    if isinstance(value, bool):
        raise ValueError(f"memory size must be bytes or a string like '8GiB', got {value!r}")
    if isinstance(value, (int, float)):
        nbytes = int(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", value)
        if m is None or m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"cannot parse memory size {value!r}: use bytes or a number with a unit, "
                "e.g. '8GiB', '500MB'"
            )
        nbytes = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    else:
        raise ValueError(f"memory size must be bytes or a string like '8GiB', got {value!r}")
    if nbytes <= 0:
        raise ValueError(f"memory size must be positive, got {value!r}")
    return nbytes


def set_max_memory(value: int | str | None) -> None:
    """Set (or with ``None`` clear) the module-wide limit :data:`MAX_MEMORY`."""
    global MAX_MEMORY
    MAX_MEMORY = None if value is None else parse_bytes(value)


def format_bytes(nbytes: float) -> str:
    """Human-readable size in binary units, e.g. ``"1.53 GiB"``."""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} TiB"  # pragma: no cover


def available_memory(device: torch.device | str | None = None) -> int:
    """Bytes available now on ``device`` (CPU: ``MemAvailable``; CUDA: free device memory)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover (non-POSIX)
        return 8 * 1024**3


def memory_limit(
    max_memory: int | str | None = None, device: torch.device | str | None = None
) -> int:
    """The byte limit for one computation (see the module docstring for the precedence)."""
    if max_memory is not None:
        return parse_bytes(max_memory)
    if MAX_MEMORY is not None:
        return int(MAX_MEMORY)
    return int(MEMORY_FRACTION * available_memory(device))


def agreed_limit(problem: Any, max_memory: int | str | None = None) -> int:
    """The memory limit of a data-parallel Problem: the smallest :func:`memory_limit` of its ranks.

    Each rank's limit (from ``max_memory``, :data:`MAX_MEMORY` or its own available memory)
    is reduced with ``MIN`` over the Problem's process group, so every rank refuses or admits
    the same requests. On one process it is :func:`memory_limit`.
    """
    limit = memory_limit(max_memory, problem.device)
    info = problem.shard
    if info is None or info.world_size == 1:
        return limit
    import torch.distributed as dist

    from lossgeometry._collectives import collective

    t = torch.tensor([limit], dtype=torch.int64, device=problem.device)
    op = dist.ReduceOp.MIN
    collective(dist.all_reduce, t, op=op, group=info.group, timeout_s=info.timeout_s)
    return int(t.item())


def check_memory(
    nbytes: float,
    what: str,
    max_memory: int | str | None = None,
    device: torch.device | str | None = None,
    hint: str = "",
) -> int:
    """Raise ``ValueError`` if ``nbytes`` exceeds the limit; return the limit otherwise.

    Args:
        nbytes: the estimated size of the allocation.
        what: what would be allocated (for the message), e.g. ``"the 12800 × 12800 kernel"``.
        max_memory: explicit limit (see :func:`memory_limit`).
        device: where the allocation would live.
        hint: what the caller can do instead (appended to the message).
    """
    limit = memory_limit(max_memory, device)
    if nbytes > limit:
        raise ValueError(
            f"{what} needs about {format_bytes(nbytes)}, more than the memory limit of "
            f"{format_bytes(limit)} (pass max_memory=... or set "
            "lossgeometry.kernel.memory.set_max_memory(...) to change it)"
            + (f"; {hint}" if hint else "")
        )
    return limit
