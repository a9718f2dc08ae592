"""Where the runs of a sweep execute: this process, a local process pool, or Ray tasks.

Each backend yields finished :class:`~lossgeometry.app.sweep.result.SweepRun` rows as they
complete; a worker that dies yields a failed row instead of stopping the sweep. The local
ones are here; Ray's is :mod:`lossgeometry.app.sweep.ray_backend`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Literal

from lossgeometry.app.sweep.execute import Task, crashed, execute
from lossgeometry.app.sweep.result import SweepRun

__all__ = ["BACKENDS", "Backend", "run_local", "threads_per_worker"]

Backend = Literal["local", "ray"]
BACKENDS = ("local", "ray")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` parallel runs: ``max(1, cores // workers)``."""
    return max(1, (cores or _cores()) // workers)


def run_local(tasks: list[Task], workers: int) -> Iterator[SweepRun]:
    """The runs in this process (``workers == 1``) or in a spawn process pool, as they finish."""
    if not tasks:
        return
    if workers == 1:  # in this process, torch threads as the user set them
        for t in tasks:
            try:
                run = execute(t)
            except Exception as e:
                run = crashed(t, e)
            yield run
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = threads_per_worker(workers)
    ex = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn")
    )
    try:
        futures = {ex.submit(execute, dataclasses.replace(t, threads=threads)): t for t in tasks}
        for fut in as_completed(futures):
            try:
                run = fut.result()
            except Exception as e:  # the worker died (BrokenProcessPool) or could not start
                run = crashed(futures[fut], e)
            yield run
    except BaseException:
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
