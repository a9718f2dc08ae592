"""The collectives a data-parallel :class:`~lossgeometry.Problem` reduces with.

A data-parallel Problem holds one contiguous shard of the samples on each rank of a
``torch.distributed`` process group (:class:`ShardInfo`). Its measurements compute each
rank's part and combine the parts with two exact operations:

* :func:`all_sum` — ``Σ_r t_r`` on every rank (``all_reduce(SUM)``): losses, gradients,
  Hessian/GGN and VJP products, anything summed over samples;
* rows gathered by :meth:`~lossgeometry.Problem.gather_rows` — each rank writes its samples'
  rows into a zero tensor of the full height and the tensors are summed, which is exact
  (``x + 0 = x``): outputs ``F``, residuals, per-sample losses, JVPs.

Every rank then holds the same tensor, so the solvers (Lanczos, Hutchinson/Hutch++, SLQ,
LOBPCG, ARPACK) run the same arithmetic on every rank from the same seeds and reach the same
answer. A collective that fails — another rank raised, died or never joined within the
group's timeout — raises :class:`DistributedError`, which says so, instead of a hang or a
traceback from inside torch.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any

import torch

__all__ = ["DistributedError", "ShardInfo", "all_sum", "collective", "shard_bounds"]


class DistributedError(RuntimeError):
    """A collective over the ranks failed: another rank stopped, died or never joined."""


def shard_bounds(n: int, world_size: int, rank: int) -> tuple[int, int]:
    """The samples ``[start, stop)`` rank ``rank`` holds in the documented split of ``n``.

    Contiguous blocks in rank order, as ``numpy.array_split``: the first ``n % W`` ranks hold
    ``⌈n/W⌉`` samples, the others ``⌊n/W⌋``. Rank ``r`` starts at
    ``r·⌊n/W⌋ + min(r, n mod W)``.

    >>> [shard_bounds(10, 3, r) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, {world_size}), got {rank}")
    if n < world_size:
        raise ValueError(
            f"{n} samples cannot be split over {world_size} ranks (each rank needs at least "
            f"one sample): use at most {n} ranks"
        )
    q, r = divmod(n, world_size)
    start = rank * q + min(rank, r)
    return start, start + q + (1 if rank < r else 0)


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """Where this rank's samples sit in the data-parallel data set.

    Attributes:
        group: the ``torch.distributed`` process group (``None``: the default group).
        rank: this rank's index in the group; ``world_size``: the number of ranks.
        counts: samples held by each rank, in rank order (``n = Σ counts``).
        offsets: global index of each rank's first sample (``offsets[r] = Σ_{q<r} counts[q]``).
        timeout_s: the group's collective timeout in seconds (for error messages).
    """

    group: Any
    rank: int
    world_size: int
    counts: tuple[int, ...]
    offsets: tuple[int, ...]
    timeout_s: float | None = None

    @property
    def start(self) -> int:
        """Global index of this rank's first sample."""
        return self.offsets[self.rank]

    @property
    def stop(self) -> int:
        """One past the global index of this rank's last sample."""
        return self.offsets[self.rank] + self.counts[self.rank]

    @property
    def n(self) -> int:
        """Samples over all ranks."""
        return sum(self.counts)

    def owner(self, i: int) -> int:
        """The rank holding global sample ``i``."""
        for r in range(self.world_size):
            if self.offsets[r] <= i < self.offsets[r] + self.counts[r]:
                return r
        raise ValueError(f"sample {i} is outside [0, {self.n})")


def _describe(timeout_s: float | None) -> str:
    t = f"{timeout_s:g} s" if timeout_s is not None else "the group's timeout"
    return (
        "a collective over the ranks failed: another rank raised, died or did not reach the "
        f"same measurement within {t} (every rank must run the same measurements in the same "
        "order; see that rank's own error)"
    )


def collective(fn: Any, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
    """Run a ``torch.distributed`` collective; a failure becomes :class:`DistributedError`."""
    try:
        return fn(*args, **kwargs)
    except DistributedError:
        raise
    except (RuntimeError, ValueError, ConnectionError) as e:  # gloo/nccl errors, timeouts
        raise DistributedError(f"{_describe(timeout_s)}. torch.distributed said: {e}") from e


def all_sum(t: torch.Tensor, info: ShardInfo | None) -> torch.Tensor:
    """``Σ_r t_r`` over the ranks of ``info`` (``t`` itself on one process), a new tensor."""
    if info is None or info.world_size == 1:
        return t
    import torch.distributed as dist

    out = t.detach().clone().contiguous()
    collective(
        dist.all_reduce, out, op=dist.ReduceOp.SUM, group=info.group, timeout_s=info.timeout_s
    )
    return out


def timeout_seconds(timeout: float | _dt.timedelta | None) -> float | None:
    """A timeout as seconds (``None`` stays ``None``)."""
    if timeout is None:
        return None
    if isinstance(timeout, _dt.timedelta):
        return timeout.total_seconds()
    return float(timeout)
