"""Where the runs of a sweep execute: this process, a local process pool, or Ray tasks.

Each backend yields finished :class:`~lossgeometry.app.sweep.result.SweepRun` rows as they
complete; a worker that dies yields a failed row instead of stopping the sweep.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any, Literal

from lossgeometry.app.sweep.execute import Task, crashed, execute
from lossgeometry.app.sweep.result import SweepRun

__all__ = ["BACKENDS", "Backend", "import_ray", "run_local", "run_ray", "threads_per_worker"]

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


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "backend='ray' needs Ray, which is not installed: pip install ray "
            "(or pip install 'lossgeometry[ray]'); or use backend='local'"
        ) from e
    return ray


def run_ray(ray: Any, tasks: list[Task], workers: int) -> Iterator[SweepRun]:
    """The same runs as Ray tasks, at most ``workers`` at a time (``out`` must be shared)."""
    if not tasks:
        return
    if not ray.is_initialized():
        ray.init()
    cpus = int(ray.cluster_resources().get("CPU", _cores()))
    threads = threads_per_worker(workers, cpus)
    remote = ray.remote(num_cpus=threads)(execute)
    pending = [dataclasses.replace(t, threads=threads) for t in tasks]
    in_flight: dict[Any, Task] = {}
    while pending or in_flight:
        while pending and len(in_flight) < workers:
            t = pending.pop(0)
            in_flight[remote.remote(t)] = t
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            t = in_flight.pop(ref)
            try:
                run = ray.get(ref)
            except Exception as e:  # the task or its worker died
                run = crashed(t, e)
            yield run
