r"""What the ranks of a data-parallel Problem exchange to build the tangent kernel.

The kernel's rows of rank ``r``'s samples against the samples of rank ``q`` need both ranks'
per-layer factors (:mod:`~lossgeometry.kernel.rules.base`). They travel one chunk at a time:
:func:`broadcast_factors` sends the factors of one chunk of rank ``q``'s samples to every rank
(the shapes and dtypes first, as a small pickled list, then each tensor), so a rank never
holds more than its own factors and one chunk of another rank's. :func:`pair_schedule` says
which rank computes which block of the whole kernel (each unordered pair of ranks once,
balanced), :func:`sum_in_place` adds the ranks' partial kernels (each entry is written by one
rank, the others add zero: exact), and :func:`all_gather_object` lets the ranks agree on a
structured plan. Every function is a collective: all ranks call it, in the same order.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from lossgeometry._collectives import ShardInfo, collective
from lossgeometry.kernel.rules.base import Bilinear, Factors, Materialized
from lossgeometry.problem import Problem

_KINDS: dict[str, type] = {"Materialized": Materialized, "Bilinear": Bilinear}


def _info(problem: Problem) -> ShardInfo:
    info = problem.shard
    assert info is not None, "a kernel exchange needs a data-parallel Problem"
    return info


def _global_rank(info: ShardInfo, rank: int) -> int:
    """The global rank of ``rank`` in the Problem's group (what ``src=`` takes)."""
    if info.group is None:
        return rank
    import torch.distributed as dist

    return int(dist.get_global_rank(info.group, rank))


def _object_device(problem: Problem) -> torch.device | None:
    """Where ``*_object`` collectives stage their bytes: the GPU for NCCL, else the CPU."""
    return problem.device if problem.device.type == "cuda" else None


def all_gather_object(obj: Any, problem: Problem) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, …]`` on every rank (a picklable ``obj``)."""
    import torch.distributed as dist

    info = _info(problem)
    out: list[Any] = [None] * info.world_size
    collective(dist.all_gather_object, out, obj, group=info.group, timeout_s=info.timeout_s)
    return out


def broadcast_factors(factors: list[Factors] | None, src: int, problem: Problem) -> list[Factors]:
    """Rank ``src``'s ``factors`` (one chunk of its samples) on every rank.

    Rank ``src`` passes its factors, the others ``None``. First the layout (kind of each
    factor, shape and dtype of each of its tensors) goes out as one pickled list, then every
    tensor by ``broadcast``; the receivers allocate them from the layout.
    """
    import torch.distributed as dist

    info = _info(problem)
    gsrc = _global_rank(info, src)
    mine = info.rank == src
    tensors: list[torch.Tensor] = []
    layout: list[Any] = [None]
    if mine:
        assert factors is not None
        entries = []
        for f in factors:
            fields = {}
            for fl in dataclasses.fields(f):
                t = getattr(f, fl.name)
                if t is None:
                    fields[fl.name] = None
                    continue
                t = t.contiguous()
                tensors.append(t)
                fields[fl.name] = (tuple(t.shape), t.dtype)
            entries.append((type(f).__name__, fields))
        layout = [entries]
    collective(
        dist.broadcast_object_list,
        layout,
        src=gsrc,
        group=info.group,
        device=_object_device(problem),
        timeout_s=info.timeout_s,
    )
    out: list[Factors] = []
    at = 0
    for kind, fields in layout[0]:
        kwargs: dict[str, torch.Tensor | None] = {}
        for name, spec in fields.items():
            if spec is None:
                kwargs[name] = None
                continue
            if mine:
                t = tensors[at]
                at += 1
            else:
                t = torch.empty(spec[0], dtype=spec[1], device=problem.device)
            collective(dist.broadcast, t, src=gsrc, group=info.group, timeout_s=info.timeout_s)
            kwargs[name] = t
        out.append(_KINDS[kind](**kwargs))
    return out


def sum_in_place(t: torch.Tensor, problem: Problem) -> torch.Tensor:
    """``t ← Σ_r t_r`` over the ranks, in place (no second copy of a large kernel)."""
    import torch.distributed as dist

    info = _info(problem)
    op = dist.ReduceOp.SUM
    collective(dist.all_reduce, t, op=op, group=info.group, timeout_s=info.timeout_s)
    return t


def pair_schedule(world_size: int) -> set[tuple[int, int]]:
    """The blocks ``(r, q)`` of the whole kernel that rank ``r`` computes (and mirrors).

    Rank ``r`` takes the ranks ``q = (r + d) mod W`` for ``d = 0, …, ⌊W/2⌋`` — for even ``W``
    the pair at ``d = W/2`` only from the lower half of the ranks — so every unordered pair
    ``{r, q}`` is computed exactly once and every rank computes ``⌈(W + 1)/2⌉`` or fewer.

    >>> sorted(pair_schedule(2))
    [(0, 0), (0, 1), (1, 1)]
    >>> sorted(pair_schedule(3))
    [(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 2)]
    """
    W = world_size
    out = set()
    for r in range(W):
        for d in range(W // 2 + 1):
            if W % 2 == 0 and d == W // 2 and d > 0 and r >= W // 2:
                continue
            out.add((r, (r + d) % W))
    return out
