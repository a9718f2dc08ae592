"""The :class:`~lossgeometry.Problem`'s data-parallel API: local chunks, sums over ranks, rows.

Part of :mod:`lossgeometry.problem` (split by job). A Problem is *data-parallel* when
:func:`lossgeometry.distributed.data_parallel` has spread its samples over the ranks of a
``torch.distributed`` process group: each rank holds one contiguous shard
(:class:`~lossgeometry._collectives.ShardInfo`), ``n`` counts the samples of all ranks, and
every reduction over samples is summed over the ranks. On one process the same API is the
identity, so every measurement has one code path:

* :meth:`DataParallelAPI.local_chunks` — ``(rows, x, y)`` chunks of this rank's samples
  (all samples on one process); ``rows`` are the chunk's rows in the output (global sample
  indices, or positions in the requested ``indices``);
* :meth:`DataParallelAPI.all_sum` — ``Σ_r t_r`` on every rank;
* :meth:`DataParallelAPI.gather_rows` — per-sample rows from every rank, in order.

A measurement that has not been written for data-parallel Problems reaches
:meth:`~lossgeometry.Problem.iter_chunks` or :meth:`~lossgeometry.Problem.batch` for samples
of another rank and gets a clear error, never a number computed from one shard.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from lossgeometry._collectives import ShardInfo, all_sum
from lossgeometry._problem_data import _LoaderSource, _TensorSource
from lossgeometry._problem_inputs import Inputs

__all__ = ["DataParallelAPI", "ShardedSource", "not_data_parallel"]

Chunk = tuple[torch.Tensor, Inputs, torch.Tensor]


def not_data_parallel(what: str, world_size: int) -> ValueError:
    """The error for a measurement that does not run on a data-parallel Problem."""
    return ValueError(
        f"{what} does not run on a data-parallel Problem (world_size={world_size}) yet: "
        "measure on one process, e.g. on lossgeometry.distributed.gather(problem), the same "
        "Problem with every rank's samples"
    )


class ShardedSource:
    """The samples of one rank (a tensor or loader source) inside the data set of all ranks.

    ``len`` is the samples of all ranks; :meth:`local` yields this rank's chunks with global
    sample indices; :meth:`get` serves this rank's own samples only.
    """

    def __init__(self, local: _TensorSource | _LoaderSource, info: ShardInfo) -> None:
        self.local_source, self.info = local, info

    def __len__(self) -> int:
        return self.info.n

    def local(self, chunk_size: int) -> Iterator[Chunk]:
        for idx, x, y in self.local_source.chunks(chunk_size):
            yield idx + self.info.start, x, y

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        raise not_data_parallel("a pass over every sample on this rank", self.info.world_size)

    def get(self, idx: torch.Tensor) -> tuple[Inputs, torch.Tensor]:
        i = idx.cpu()
        inside = (i >= self.info.start) & (i < self.info.stop)
        if not bool(inside.all()):
            j = int(i[~inside][0])
            raise ValueError(
                f"sample {j} is held by rank {self.info.owner(j)}, not by this rank "
                f"({self.info.rank}, samples [{self.info.start}, {self.info.stop})): a "
                "data-parallel Problem reads only its own shard"
            )
        return self.local_source.get((idx - self.info.start).to(idx.device))

    def to(self, device: torch.device | None, dtype: torch.dtype | None) -> ShardedSource:
        return ShardedSource(self.local_source.to(device, dtype), self.info)


class DataParallelAPI:
    """The data-parallel API of :class:`~lossgeometry.Problem` (a mixin of it)."""

    _source: Any
    n: int
    chunk_size: int
    device: torch.device

    @property
    def shard(self) -> ShardInfo | None:
        """Where this rank's samples sit (``None`` for a Problem on one process)."""
        src = self._source
        return src.info if isinstance(src, ShardedSource) else None

    @property
    def world_size(self) -> int:
        """Ranks the samples are spread over (1 on one process)."""
        info = self.shard
        return 1 if info is None else info.world_size

    @property
    def rank(self) -> int:
        """The rank of this process (0 on one process)."""
        info = self.shard
        return 0 if info is None else info.rank

    @property
    def is_data_parallel(self) -> bool:
        """Whether the samples are spread over more than one rank."""
        return self.world_size > 1

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """``Σ_r t_r`` over the ranks, on every rank (``t`` itself on one process)."""
        return all_sum(t, self.shard)

    def require_single_process(self, what: str) -> None:
        """Raise a clear error if this Problem is data-parallel (``what`` names the caller)."""
        if self.shard is not None:
            raise not_data_parallel(what, self.world_size)

    def local_chunks(
        self, indices: torch.Tensor | Sequence[int] | None = None, chunk_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, Inputs, torch.Tensor]]:
        """``(rows, x, y)`` chunks of this rank's samples (of ``indices`` if given).

        ``rows`` are the chunk's rows in the output of a per-sample measurement: the global
        sample indices for ``indices=None``, else the positions in ``indices``. On one
        process the chunks cover every (selected) sample, in order. A rank may hold none of
        the selected samples (then nothing is yielded, and its part of a sum is zero).
        """
        cs = chunk_size or self.chunk_size
        src = self._source
        if indices is None:
            yield from (src.local(cs) if isinstance(src, ShardedSource) else src.chunks(cs))
            return
        idx = self.check_indices(indices)  # type: ignore[attr-defined]
        pos = torch.arange(idx.numel())
        if isinstance(src, ShardedSource):
            i = idx.cpu()
            mine = (i >= src.info.start) & (i < src.info.stop)
            idx, pos = idx[mine.to(idx.device)], pos[mine]
        for s in range(0, idx.numel(), cs):
            sub = idx[s : s + cs]
            x, y = src.get(sub)
            yield pos[s : s + cs], x, y

    def gather_rows(
        self,
        parts: list[tuple[torch.Tensor, torch.Tensor]],
        m: int,
        tail: tuple[int, ...],
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """The ``(m, *tail)`` tensor whose rows ``rows`` are ``t``, for ``(rows, t)`` in ``parts``.

        On one process the parts cover the rows in order and are concatenated. On a
        data-parallel Problem each rank writes its rows into zeros and the ranks' tensors are
        summed (exact: every row comes from one rank, the others add zero).
        """
        if self.shard is None:
            if not parts:
                return torch.zeros((m, *tail), device=self.device, dtype=dtype)
            return torch.cat([t for _, t in parts])
        out = torch.zeros((m, *tail), device=self.device, dtype=dtype)
        for rows, t in parts:
            out[rows.to(self.device)] = t.to(dtype)
        return self.all_sum(out)
