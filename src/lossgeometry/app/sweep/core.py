"""Run a grid of configurations: expand the grid, run each point once, resume the rest.

Layout of a sweep directory ``out``::

    sweep.json            the SweepResult: one row per run (rewritten after every run)
    width=64,seed=0/      one directory per grid point, named from its parameter values
        config.json       the merged config this run ran
        ...               the job's outputs (the report of `analyze`, or an experiment's)
        done.json         written last, atomically: config hash, wall time, headline numbers
        error.json        instead of done.json when the run failed: the error and traceback
        log.txt           the job's log lines

A run whose ``done.json`` holds the hash of the same merged config (and of what it names:
a model factory's source, local data files, the versions) is skipped on the next call
(``resume=True``); a failed or interrupted run is retried and, for ``job="analyze"``, reuses
the report sections it had finished. The sweep holds ``out`` while it runs
(:func:`lossgeometry.app.outdir.claim`): a second sweep into it is refused at once, so two
sweeps never run the same points.

The metrics of a run are its headline numbers: for ``job="analyze"`` the ``summary`` of each
report section (``results.json`` → ``sections.NAME.summary``, as ``NAME.KEY``), for
``job="run"`` the summary the experiment returns. The grid itself (base config, key checks,
names) is :mod:`lossgeometry.app.sweep.grid`; what one run does,
:mod:`lossgeometry.app.sweep.jobs`; one run in a process, :mod:`lossgeometry.app.sweep.execute`;
where runs execute, :mod:`lossgeometry.app.sweep.backends` and (Ray, retries, multi-rank
points) :mod:`lossgeometry.app.sweep.ray_backend`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lossgeometry._progress import progress_bar
from lossgeometry.app.outdir import claim
from lossgeometry.app.sweep.backends import BACKENDS, Backend, run_local, threads_per_worker
from lossgeometry.app.sweep.execute import Task, done_record
from lossgeometry.app.sweep.grid import (
    GridPoint,
    check_grid,
    config_hash,
    expand_grid,
    load_base_config,
    run_name,
)
from lossgeometry.app.sweep.jobs import JOB_FUNCTIONS, JOBS, Job, analyze_metrics
from lossgeometry.app.sweep.ray_backend import connect, import_ray, run_ray
from lossgeometry.app.sweep.result import SweepResult, SweepRun

__all__ = [
    "BACKENDS",
    "JOBS",
    "JOB_FUNCTIONS",
    "GridPoint",
    "analyze_metrics",
    "check_grid",
    "config_hash",
    "expand_grid",
    "load_base_config",
    "run_name",
    "sweep",
    "threads_per_worker",
]


def sweep(
    config: str | os.PathLike | Mapping[str, Any] | None,
    grid: Mapping[str, list[Any]],
    out: str | os.PathLike,
    *,
    job: Job = "analyze",
    workers: int = 1,
    backend: Backend | None = None,
    resume: bool = True,
    progress: bool | None = None,
    ray_address: str | None = None,
    ranks_per_point: int = 1,
) -> SweepResult:
    """Run ``job`` once for every point of ``grid`` (cartesian product) applied to ``config``.

    Args:
        config: the base config. ``job="analyze"``: a TOML path, a dict with the TOML's
            keys, or ``None`` for the built-in default (missing keys take the defaults, as in
            ``lossgeometry analyze -c``). ``job="run"``: a TOML path, a bundled experiment
            name (``lossgeometry run --list``) or a dict with an ``experiment`` key.
        grid: dotted config keys to lists of values, e.g.
            ``{"model.width": [64, 128, 256], "seed": [0, 1, 2]}``. Every key must exist in
            the base config (with ``model.factory`` the widths etc. live in
            ``model.kwargs.*``).
        out: the sweep directory; each run writes ``out/<name>/`` with ``<name>`` built from
            its values (``width=64,seed=0``), and ``out/sweep.json`` holds the table.
        job: ``"analyze"``: the report of ``lossgeometry analyze`` in each run directory;
            ``"run"``: the experiment (``lossgeometry run``), its outputs and
            ``summary.json``.
        workers: runs at the same time. ``1`` runs them one after another in this process
            (torch threads untouched); more uses a process pool (spawn) with
            ``max(1, cores // workers)`` torch threads per worker.
        backend: ``"local"`` (this machine) or ``"ray"`` (Ray tasks, at most ``workers``
            at a time; needs ``pip install 'lossgeometry[ray]'`` and an ``out`` every node
            can write). Default: ``"ray"`` when ``ray_address`` or ``ranks_per_point > 1``
            is given, else ``"local"``.
        resume: skip runs that finished earlier with the same merged config (their
            ``done.json``); ``False`` reruns everything from scratch.
        progress: a progress bar over the runs (default: on a terminal).
        ray_address: the Ray cluster to join, as ``ray.init(address=...)``: ``"auto"``
            (the one ``ray start --head`` started on this machine) or ``"HOST:PORT"`` of
            its head. ``None`` starts a local Ray instance (or joins ``$RAY_ADDRESS``); a
            process already connected to Ray keeps its connection.
        ranks_per_point: run each point as this many torch.distributed ranks (Ray Train's
            ``TorchTrainer``, a ``gloo`` process group, ``max(1, cpus // (workers * N))``
            CPUs each); rank 0 writes the run's records. See
            :mod:`lossgeometry.app.sweep.ranks` for what each rank computes.

    Returns:
        A :class:`SweepResult`, also saved as ``out/sweep.json``. Failed runs are in it with
        their error (and in ``out/<name>/error.json``); the sweep itself does not raise for
        them: check ``result.failed``.

    Raises:
        ValueError: bad job/backend/workers, a grid key that does not exist in the config
            (the message lists the valid ones), an empty or duplicated value list;
            :class:`~lossgeometry.app.outdir.OutputDirError` for an ``out`` that is a file
            or cannot be written.
        lossgeometry.app.outdir.OutputDirBusy: another sweep (or run) holds ``out``.
        FileNotFoundError: the config file does not exist.
        ImportError: ``backend="ray"`` without Ray installed (``ranks_per_point > 1``:
            without Ray Train).
        ConnectionError: no Ray cluster answers at ``ray_address``.

    Note:
        With ``workers > 1`` runs execute in fresh interpreter processes: in a script, call
        ``sweep`` under ``if __name__ == "__main__":``. On Ray, a Python exception in a
        job fails the point (retried by the next call), a worker that dies is rerun by Ray
        (:mod:`lossgeometry.app.sweep.ray_backend`).
    """
    if job not in JOBS:
        raise ValueError(f"job must be one of {list(JOBS)}, got {job!r}")
    _positive("workers", workers)
    _positive("ranks_per_point", ranks_per_point)
    if backend is None:
        backend = "ray" if ray_address is not None or ranks_per_point > 1 else "local"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend != "ray" and (ray_address is not None or ranks_per_point > 1):
        raise ValueError("ray_address and ranks_per_point > 1 run on Ray: use backend='ray'")
    ray = import_ray() if backend == "ray" else None
    if ranks_per_point > 1:
        _import_ray_train()
    base = load_base_config(config, job)
    grid_lists = check_grid(base, grid, job)
    points = expand_grid(base, grid_lists, job)
    if ray is not None:
        connect(ray, ray_address)
    with claim(out, "sweep") as out_dir:
        return _run(
            points, grid_lists, base, out_dir, job, workers, ray, ranks_per_point, resume, progress
        )


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _import_ray_train() -> None:
    try:
        import ray.train.torch  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"ranks_per_point > 1 runs each point with Ray Train, which does not import ({e}): "
            "pip install 'lossgeometry[ray]' (or pip install 'ray[train]')"
        ) from e


def _run(
    points: list[GridPoint],
    grid_lists: dict[str, list[Any]],
    base: dict[str, Any],
    out: Path,
    job: Job,
    workers: int,
    ray: Any,
    ranks: int,
    resume: bool,
    progress: bool | None,
) -> SweepResult:
    """The runs of a sweep whose directory ``out`` this process holds."""
    t0 = time.perf_counter()

    runs: dict[str, SweepRun] = {}
    tasks: list[Task] = []
    for p in points:
        run_dir = out / p.name
        h = config_hash(job, p.config)
        done = done_record(run_dir, h) if resume else None
        if done is not None:
            runs[p.name] = SweepRun(
                p.name,
                p.params,
                "skipped",
                float(done.get("seconds", math.nan)),
                str(run_dir),
                metrics=dict(done.get("metrics") or {}),
            )
        else:
            runs[p.name] = SweepRun(p.name, p.params, "pending", math.nan, str(run_dir))
            tasks.append(Task(p.name, p.params, p.config, job, str(run_dir), h, resume))

    def snapshot() -> SweepResult:
        return SweepResult(
            out=str(out),
            job=job,
            grid=grid_lists,
            runs=[runs[p.name] for p in points],
            config=base,
            seconds=time.perf_counter() - t0,
        )

    snapshot().save(out / "sweep.json")
    finished = run_local(tasks, workers) if ray is None else run_ray(ray, tasks, workers, ranks)
    bar = progress_bar(
        finished,
        progress,
        total=len(points),
        initial=len(points) - len(tasks),
        desc=f"sweep {out.name}",
        unit="run",
    )
    try:
        for run in bar:
            runs[run.name] = run
            snapshot().save(out / "sweep.json")
    finally:  # on Ctrl-C: the backend stops its workers (Ray: cancels its tasks) now
        finished.close()
    result = snapshot()
    result.save(out / "sweep.json")
    return result
