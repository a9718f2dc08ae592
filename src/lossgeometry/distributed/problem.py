"""Data-parallel Problems: each rank holds one shard of the samples.

The split (:func:`shard_bounds`) is contiguous and in rank order: with ``n`` samples over
``W`` ranks, rank ``r`` holds samples ``[r·⌊n/W⌋ + min(r, n mod W), …)``, the first
``n mod W`` ranks one sample more (``numpy.array_split``'s rule). Global sample ``i`` is the
same sample on every rank count, so mini-batches drawn by global index replay exactly.

Two ways in:

* :func:`data_parallel` — each rank built a Problem on *its own* shard (it loaded only those
  samples, e.g. ``lg.data.load(...)`` then the rows :func:`shard_bounds` names); the ranks'
  shard sizes are exchanged and global sample ``i`` is sample ``i − offset_r`` of rank ``r``.
* :func:`shard` — every rank built the same Problem on all samples; each keeps its shard.

Either way every measurement that supports it (see docs/distributed.md) gives every rank the
same answer, equal to the one-process answer up to the order of floating-point sums.
"""

from __future__ import annotations

from typing import Any

import torch

from lossgeometry._collectives import ShardInfo, collective, shard_bounds
from lossgeometry.distributed.group import group_timeout, is_initialized
from lossgeometry.problem import Problem, concat_inputs, map_inputs

__all__ = ["data_parallel", "gather", "shard", "shard_bounds"]


def _description(problem: Problem) -> dict[str, Any]:
    """What every rank's Problem must agree on (plus its own sample count)."""
    tail, ydtype = problem.target_spec()
    return {
        "n": problem.n,
        "p": problem.p,
        "k": problem.k,
        "output_shape": tuple(problem.output_shape),
        "targets": (tuple(tail), str(ydtype)),
        "loss": problem.loss_name,
        "custom_loss": problem.custom_loss is not None,
        "reduction": problem.reduction,
        "dtype": str(problem.dtype),
        "device_type": problem.device.type,
        "params": tuple(problem.param_names),
    }


def _all_gather_object(obj: Any, group: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size(group)
    collective(dist.all_gather_object, out, obj, group=group, timeout_s=group_timeout(group))
    return out


def data_parallel(problem: Problem, *, group: Any = None, sync_model: bool = True) -> Problem:
    """The Problem of this rank, on its own shard of the samples, as one data-parallel Problem.

    Every rank calls it, in the same order, with a Problem built on its shard: rank ``r``'s
    samples become global samples ``offset_r, …, offset_r + n_r − 1`` (``offset_r`` the sum
    of the lower ranks' sizes), ``n`` becomes the total, and every loss, gradient and product
    sums over all ranks (``"mean"`` divides by the total ``n``). Without a process group (one
    process) ``problem`` comes back unchanged.

    Args:
        problem: this rank's Problem (at least one sample).
        group: the process group (default: the one :func:`lossgeometry.distributed.init`
            started).
        sync_model: copy rank 0's parameters and buffers to every rank, as
            ``DistributedDataParallel`` does at construction (``False``: they must already
            be equal).

    Raises:
        ValueError: the ranks disagree on the model (``p``, outputs), the loss, the
            reduction, the dtype, the device type or the counted parameters; or ``problem``
            is already data-parallel.
        DistributedError: another rank failed or did not call within the timeout.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a lossgeometry.Problem, got {type(problem).__name__}")
    if problem.shard is not None:
        raise ValueError("this Problem is already data-parallel")
    if not is_initialized():
        return problem
    import torch.distributed as dist

    descs = _all_gather_object(_description(problem), group)
    ref = {k: v for k, v in descs[0].items() if k != "n"}
    for r, d in enumerate(descs):
        diff = [k for k in ref if d[k] != ref[k]]
        if diff:
            key = diff[0]
            raise ValueError(
                f"the ranks' Problems differ: rank {r} has {key}={d[key]!r}, rank 0 has "
                f"{ref[key]!r}; every rank must build the same model, loss and reduction "
                "on its own samples"
            )
    if sync_model:
        with torch.no_grad():
            for t in [*problem.model.parameters(), *problem.model.buffers()]:
                collective(
                    dist.broadcast, t.data, src=0, group=group, timeout_s=group_timeout(group)
                )
    counts = tuple(int(d["n"]) for d in descs)
    offsets = tuple(sum(counts[:r]) for r in range(len(counts)))
    info = ShardInfo(
        group=group,
        rank=dist.get_rank(group),
        world_size=dist.get_world_size(group),
        counts=counts,
        offsets=offsets,
        timeout_s=group_timeout(group),
    )
    return problem.with_shard(info)


def shard(problem: Problem, *, group: Any = None, sync_model: bool = True) -> Problem:
    """The same Problem, each rank keeping its :func:`shard_bounds` part of the samples.

    Every rank passes the Problem on all ``n`` samples (the same data in the same order);
    rank ``r`` keeps samples ``shard_bounds(n, W, r)``. Without a process group ``problem``
    comes back unchanged. See :func:`data_parallel` for the rest.
    """
    if not is_initialized():
        return problem
    import torch.distributed as dist

    start, stop = shard_bounds(problem.n, dist.get_world_size(group), dist.get_rank(group))
    local = problem.subset(torch.arange(start, stop))
    return data_parallel(local, group=group, sync_model=sync_model)


def gather(problem: Problem) -> Problem:
    """A data-parallel Problem's samples from every rank, as one Problem on each rank.

    For measurements that do not run data-parallel; the data of all ranks are sent to every
    rank (memory ``n`` samples per rank). A Problem that is not data-parallel comes back
    unchanged.
    """
    info = problem.shard
    if info is None:
        return problem
    xs, ys = [], []
    for _, x, y in problem.local_chunks():
        xs.append(x)
        ys.append(y)
    cpu = (concat_inputs(xs) if len(xs) > 1 else xs[0], torch.cat(ys))
    cpu = (map_inputs(lambda t: t.cpu(), cpu[0]), cpu[1].cpu())
    parts = _all_gather_object(cpu, info.group)
    X = concat_inputs([map_inputs(lambda t: t.to(problem.device), x) for x, _ in parts])
    Y = torch.cat([y.to(problem.device) for _, y in parts])
    return problem.with_samples(X, Y)
