"""A grid point as N torch.distributed ranks: the process group and what each rank computes.

``lg.sweep(..., ranks_per_point=N)`` runs each point on N processes that Ray Train's
``TorchTrainer`` starts with a torch.distributed process group already set up (``gloo`` on
CPU); each of them calls :func:`lossgeometry.app.sweep.execute.execute_rank`, which calls
:func:`rank_job` here. Rank 0 owns the run directory's records (``done.json``,
``error.json``, ``log.txt``).

What each rank computes is :func:`rank_job`. An ``analyze`` point runs data-parallel, as
under torchrun: every rank calls :func:`~lossgeometry.app.report.build.build_report` with
the ranks of the running group (:meth:`lossgeometry.app.launch.Ranks.current`), the data
are split over the ranks, every sum over samples is all-reduced, and rank 0 alone writes the
report. A ``run`` point (an experiment of the papers, which builds its own Problems) runs on
rank 0 as one process would, the other ranks only taking part in the process group.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lossgeometry.app.sweep.jobs import JOB_FUNCTIONS

__all__ = ["gather_ranks", "process_group", "rank_job"]


def process_group(ranks: int) -> tuple[int, int]:
    """``(rank, world_size)`` of this process in a point of ``ranks`` ranks.

    Raises:
        RuntimeError: no torch.distributed process group is initialised here, or its size is
            not ``ranks``.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            f"a point of {ranks} ranks runs in a torch.distributed process group, and none is "
            "initialised in this process (lg.sweep(..., ranks_per_point=N) starts the ranks "
            "with Ray Train)"
        )
    world_size = dist.get_world_size()
    if world_size != ranks:
        raise RuntimeError(f"the point has {ranks} ranks but the process group {world_size}")
    return dist.get_rank(), world_size


def gather_ranks() -> list[dict[str, Any]]:
    """Every rank's ``rank``, ``world_size``, ``backend``, ``host`` and ``pid``, by rank.

    A collective (``all_gather_object``): every rank of the group must call it, and each one
    gets the whole list. It is what rank 0 records in ``done.json`` as ``"ranks"``.
    """
    import torch.distributed as dist

    me = {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": str(dist.get_backend()),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, me)
    return out


def rank_job(
    job: str,
    cfg: dict[str, Any],
    run_dir: Path,
    resume: bool,
    log: Callable[[str], Any],
    *,
    rank: int,
    world_size: int,
) -> dict[str, float]:
    """What rank ``rank`` of ``world_size`` computes for a point; rank 0's metrics count.

    ``analyze``: the data-parallel report on every rank (see the module docstring); rank 0
    returns the metrics of the ``results.json`` it wrote, the others none. ``run``: rank 0
    runs the one-process job (:data:`~lossgeometry.app.sweep.jobs.JOB_FUNCTIONS`), the others
    return at once. A rank that fails makes the others' collectives fail, so rank 0's outcome
    (the point's) is a failure too.
    """
    if job == "analyze":
        from lossgeometry.app.launch import Ranks
        from lossgeometry.app.report import build
        from lossgeometry.app.sweep.jobs import analyze_metrics

        ranks = Ranks.current()
        if ranks.world_size != world_size:
            raise RuntimeError(
                f"the point has {world_size} ranks but the process group {ranks.world_size}"
            )
        build.build_report(cfg, run_dir, resume=resume, progress=False, log=log, ranks=ranks)
        return analyze_metrics(run_dir / "results.json") if rank == 0 else {}
    if rank == 0:
        return JOB_FUNCTIONS[job](cfg, run_dir, resume, log)
    log(f"rank {rank} of {world_size}: the one-process job runs on rank 0")
    return {}
