"""Sweeps on Ray: join a cluster (or start a local one), run each point as a Ray task.

``backend="ray"`` runs the same :func:`~lossgeometry.app.sweep.execute.execute` as the local
backends, wrapped in ``ray.remote`` with ``num_cpus`` equal to its torch thread count, at most
``workers`` tasks in flight. With ``ranks_per_point=N`` a point is N torch.distributed ranks
instead: a Ray task (no CPUs of its own) prepares the run directory and runs Ray Train's
``TorchTrainer`` with N workers, each calling
:func:`~lossgeometry.app.sweep.execute.execute_rank`; Ray Train sets up the process group
(``gloo``; CPU ranks).

What a retry is:

- **A Python exception in a job** is the job's outcome, not a fault of Ray: ``execute``
  records it (``error.json``, status ``"failed"``) and returns normally, so Ray never sees
  it and never retries it (Ray's ``retry_exceptions`` stays off: a deterministic error
  would only repeat). The next ``lg.sweep`` call on the same directory retries the point
  (``resume``).
- **A worker process that dies** (killed for memory, a segfault, its node lost) is Ray's to
  retry: the task runs again, up to :data:`RAY_MAX_RETRIES` times (Ray's ``max_retries``);
  for a multi-rank point Ray Train restarts the whole group as often
  (``FailureConfig.max_failures``). When the last try dies too, the point is recorded as
  failed (``error.json`` holds Ray's error) and the sweep goes on.
- **The driver** stopping (Ctrl-C) cancels its tasks in flight; a driver that is killed
  takes its tasks with it (Ray ends a job's tasks when its driver dies). Finished points
  keep their ``done.json``, so the next call resumes.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lossgeometry.app.outdir import OutputDirBusy
from lossgeometry.app.sweep.backends import _cores, threads_per_worker
from lossgeometry.app.sweep.execute import Task, crashed, execute, execute_rank, outcome, prepare
from lossgeometry.app.sweep.result import SweepRun

__all__ = [
    "RAY_MAX_RETRIES",
    "TRAIN_ENV",
    "TRAIN_STORAGE",
    "connect",
    "import_ray",
    "run_ranks",
    "run_ray",
]

RAY_MAX_RETRIES = 1
"""How often Ray reruns a point whose worker process died (not one whose job raised)."""

TRAIN_ENV = {"RAY_TRAIN_V2_ENABLED": "1"}
"""The environment of the task that launches a multi-rank point: Ray Train V2, whose
``TorchTrainer`` runs from inside a Ray task with a controller that takes no CPU (the
default from Ray 2.51 on; asked for explicitly so a cluster's own setting cannot change it)."""

TRAIN_STORAGE = ".ray_train"
"""Ray Train's storage directory, under the sweep directory (shared by the nodes): one folder
per multi-rank point, removed after it; Ray Train writes only a marker there (the sweep
reports no checkpoints)."""


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "backend='ray' needs Ray, which is not installed: pip install 'lossgeometry[ray]' "
            "(or pip install 'ray[train]'); or use backend='local'"
        ) from e
    return ray


def connect(ray: Any, address: str | None) -> None:
    """Connect this process to Ray: ``ray.init(address=address)``, unless it already is.

    ``address=None`` starts a local Ray instance on this machine (or joins the cluster that
    the ``RAY_ADDRESS`` environment variable names, as ``ray.init`` does); ``"auto"`` joins
    the cluster started on this machine with ``ray start --head``; ``"HOST:PORT"`` that
    head's address. A process already connected (an earlier sweep, or your own
    ``ray.init``) keeps its connection.

    Raises:
        ValueError: this process is connected to another cluster than ``address``.
        ConnectionError: no Ray cluster answers at ``address``.
    """
    if not ray.is_initialized():
        ray.init(address=address)
        return
    current = ray.get_runtime_context().gcs_address
    if address not in (None, "auto", current):
        raise ValueError(
            f"this process is already connected to the Ray cluster at {current}, not "
            f"{address}: give ray_address={current!r} (or none), or call ray.shutdown() first"
        )


def run_ray(ray: Any, tasks: list[Task], workers: int, ranks: int = 1) -> Iterator[SweepRun]:
    """The runs as Ray tasks, at most ``workers`` at a time (``out`` must be shared).

    ``ranks > 1``: each point as ``ranks`` torch.distributed ranks (:func:`run_ranks`).
    Connect first (:func:`connect`). A run whose task died after its retries, or that Ray
    could not run, is yielded as failed; Ctrl-C cancels the tasks in flight.
    """
    if not tasks:
        return
    cpus = int(ray.cluster_resources().get("CPU", _cores()))
    threads = threads_per_worker(workers * ranks, cpus)
    if ranks == 1:
        remote = ray.remote(num_cpus=threads, max_retries=RAY_MAX_RETRIES)(execute)
    else:  # the launcher only waits on the ranks, which hold the CPUs
        remote = ray.remote(
            num_cpus=0, max_retries=RAY_MAX_RETRIES, runtime_env={"env_vars": TRAIN_ENV}
        )(run_ranks)
    pending = [dataclasses.replace(t, threads=threads, ranks=ranks) for t in tasks]
    in_flight: dict[Any, Task] = {}
    try:
        while pending or in_flight:
            while pending and len(in_flight) < workers:
                t = pending.pop(0)
                in_flight[remote.remote(t)] = t
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                t = in_flight.pop(ref)
                try:
                    run = ray.get(ref)
                except Exception as e:  # the task or its worker died (after its retries)
                    run = crashed(t, e)
                yield run
    except BaseException:  # Ctrl-C, or the caller stopped: no task outlives the sweep
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise


def run_ranks(task: Task) -> SweepRun:
    """One point as ``task.ranks`` ranks with Ray Train's ``TorchTrainer``.

    Prepares the run directory once (:func:`~lossgeometry.app.sweep.execute.prepare`),
    starts the ranks (``task.threads`` CPUs each, a ``gloo`` process group), each running
    :func:`~lossgeometry.app.sweep.execute.execute_rank`, and reads the outcome rank 0
    recorded. Ranks that die are restarted together up to :data:`RAY_MAX_RETRIES` times;
    after that the point is recorded as crashed.
    """
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    try:
        same = prepare(task)
    except OutputDirBusy as e:  # its directory is another run's now: touch nothing there
        return SweepRun(task.name, task.params, "failed", 0.0, task.directory, error=str(e))
    storage = Path(task.directory).parent / TRAIN_STORAGE
    trainer = TorchTrainer(
        execute_rank,
        train_loop_config={"task": task, "same": same},
        scaling_config=ScalingConfig(
            num_workers=task.ranks, use_gpu=False, resources_per_worker={"CPU": task.threads or 1}
        ),
        run_config=RunConfig(
            name=task.name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=RAY_MAX_RETRIES),
        ),
    )
    try:
        trainer.fit()
    except Exception as e:  # the ranks died (after the restarts) or could not start
        return crashed(task, e)
    finally:
        shutil.rmtree(storage / task.name, ignore_errors=True)
    return outcome(task)
