"""Run a grid of configurations: expand the grid, run each point once, resume the rest.

Layout of a sweep directory ``out``::

    sweep.json            the SweepResult: one row per run (rewritten after every run)
    width=64,seed=0/      one directory per grid point, named from its parameter values
        config.json       the merged config this run ran
        ...               the job's outputs (the report of `analyze`, or an experiment's)
        done.json         written last, atomically: config hash, wall time, headline numbers
        error.json        instead of done.json when the run failed: the error and traceback
        log.txt           the job's log lines

A run whose ``done.json`` holds the hash of the same merged config is skipped on the next
call (``resume=True``); a failed or interrupted run is retried and, for ``job="analyze"``,
reuses the report sections it had finished.

The metrics of a run are its headline numbers: for ``job="analyze"`` the ``summary`` of each
report section (``results.json`` → ``sections.NAME.summary``, as ``NAME.KEY``), for
``job="run"`` the summary the experiment returns. The grid itself (base config, key checks,
names) is :mod:`lossgeometry.app.sweep.grid`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import math
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from lossgeometry._progress import progress_bar
from lossgeometry.app.sweep.grid import (
    GridPoint,
    check_grid,
    config_hash,
    expand_grid,
    load_base_config,
    run_name,
)
from lossgeometry.app.sweep.result import SweepResult, SweepRun
from lossgeometry.results import atomic_write_json, to_jsonable

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

Job = Literal["analyze", "run"]
Backend = Literal["local", "ray"]
JOBS = ("analyze", "run")
BACKENDS = ("local", "ray")


# --- one run ----------------------------------------------------------------------------------
def _scalars(d: Mapping[str, Any], prefix: str, depth: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = v
        elif isinstance(v, str) and v in ("nan", "inf", "-inf"):
            out[f"{prefix}{k}"] = float(v)
        elif isinstance(v, Mapping) and depth > 1:
            out.update(_scalars(v, f"{prefix}{k}.", depth - 1))
    return out


def analyze_metrics(results_json: Path) -> dict[str, float]:
    """The headline numbers of a report: each section's ``summary`` in ``results.json``.

    ``SECTION.KEY`` for every number of ``sections.NAME.summary`` (the study's
    ``Result.summary()``); a nested table adds its key: ``SECTION.TABLE.KEY``.

    Only the summaries are read, never a section's ``results``: those are the section's own
    business and may change shape.
    """
    data = json.loads(Path(results_json).read_text(encoding="utf-8"))
    out: dict[str, float] = {}
    for sec, rec in data.get("sections", {}).items():
        out.update(_scalars(rec.get("summary") or {}, f"{sec}.", 2))
    return out


def _job_analyze(
    cfg: dict[str, Any], run_dir: Path, resume: bool, log: Callable[[str], Any]
) -> dict[str, float]:
    from lossgeometry.app.report import build

    build.build_report(cfg, run_dir, resume=resume, progress=False, log=log)
    return analyze_metrics(run_dir / "results.json")


def _job_run(
    cfg: dict[str, Any], run_dir: Path, resume: bool, log: Callable[[str], Any]
) -> dict[str, float]:
    from lossgeometry.app.experiments.registry import available_experiments

    fn = available_experiments()[cfg["experiment"]]
    log(f"experiment {cfg['experiment']} → {run_dir}")
    summary = fn(copy.deepcopy(cfg), run_dir, False, False)
    atomic_write_json(run_dir / "summary.json", summary)
    return _scalars(to_jsonable(summary), "", 2)


JOB_FUNCTIONS: dict[str, Callable[[dict[str, Any], Path, bool, Callable[[str], Any]], dict]] = {
    "analyze": _job_analyze,
    "run": _job_run,
}
"""What a run does, by job: ``fn(config, run_dir, resume, log) -> metrics``."""


def _partial_metrics(job: str, run_dir: Path) -> dict[str, float]:
    """Headline numbers a failed run still produced (a report with a failed section)."""
    try:
        if job == "analyze" and (run_dir / "results.json").exists():
            return analyze_metrics(run_dir / "results.json")
    except (OSError, ValueError):
        pass
    return {}


@dataclasses.dataclass(frozen=True)
class _Task:
    """Everything one run needs; pickled to a worker process (or a Ray task)."""

    name: str
    params: dict[str, Any]
    config: dict[str, Any]
    job: str
    directory: str
    config_hash: str
    resume: bool
    threads: int | None = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _finished(run_dir: Path, h: str) -> dict[str, Any] | None:
    """The ``done.json`` of a run with config hash ``h``, or None."""
    done = _read_json(run_dir / "done.json")
    return done if isinstance(done, dict) and done.get("config_hash") == h else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _record_failure(task: _Task, error: str, tb: str, seconds: float) -> SweepRun:
    run_dir = Path(task.directory)
    atomic_write_json(
        run_dir / "error.json",
        {
            "error": error,
            "traceback": tb,
            "config_hash": task.config_hash,
            "params": task.params,
            "seconds": seconds,
            "finished": _now(),
        },
    )
    return SweepRun(
        task.name,
        task.params,
        "failed",
        seconds,
        task.directory,
        metrics=_partial_metrics(task.job, run_dir),
        error=error,
    )


def _execute(task: _Task) -> SweepRun:
    """Run one grid point in this process; never raises for a failing job."""
    if task.threads:
        import torch

        torch.set_num_threads(task.threads)
    run_dir = Path(task.directory)
    old = _read_json(run_dir / "config.json")
    same = old is not None and config_hash(task.job, old) == task.config_hash
    if old is not None and not (task.resume and same):
        shutil.rmtree(run_dir)  # a run of another config (or --fresh): start clean
    run_dir.mkdir(parents=True, exist_ok=True)
    for f in ("done.json", "error.json"):
        (run_dir / f).unlink(missing_ok=True)
    atomic_write_json(run_dir / "config.json", task.config)
    log_path = run_dir / "log.txt"

    def log(msg: Any) -> None:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{msg}\n")

    t0 = time.perf_counter()
    try:
        metrics = JOB_FUNCTIONS[task.job](task.config, run_dir, task.resume and same, log)
    except Exception as e:  # a failing run must not stop the sweep
        err = f"{type(e).__name__}: {e}"
        log(f"failed: {err}")
        return _record_failure(task, err, traceback.format_exc(), time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    atomic_write_json(
        run_dir / "done.json",
        {
            "config_hash": task.config_hash,
            "job": task.job,
            "params": task.params,
            "seconds": seconds,
            "metrics": metrics,
            "finished": _now(),
        },
    )
    return SweepRun(task.name, task.params, "done", seconds, task.directory, metrics=metrics)


def _crashed(task: _Task, e: BaseException) -> SweepRun:
    """A run whose worker died (or whose setup failed) before it could record anything."""
    err = f"{type(e).__name__}: {e}"
    try:
        return _record_failure(task, err, "".join(traceback.format_exception(e)), float("nan"))
    except OSError:
        return SweepRun(task.name, task.params, "failed", float("nan"), task.directory, error=err)


# --- backends: each yields finished runs as they complete ----------------------------------------
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` parallel runs: ``max(1, cores // workers)``."""
    return max(1, (cores or _cores()) // workers)


def _run_local(tasks: list[_Task], workers: int) -> Iterator[SweepRun]:
    if not tasks:
        return
    if workers == 1:  # in this process, torch threads as the user set them
        for t in tasks:
            try:
                run = _execute(t)
            except Exception as e:
                run = _crashed(t, e)
            yield run
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = threads_per_worker(workers)
    ex = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn")
    )
    try:
        futures = {ex.submit(_execute, dataclasses.replace(t, threads=threads)): t for t in tasks}
        for fut in as_completed(futures):
            try:
                run = fut.result()
            except Exception as e:  # the worker died (BrokenProcessPool) or could not start
                run = _crashed(futures[fut], e)
            yield run
    except BaseException:
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "backend='ray' needs Ray, which is not installed: pip install ray "
            "(or pip install 'lossgeometry[ray]'); or use backend='local'"
        ) from e
    return ray


def _run_ray(ray: Any, tasks: list[_Task], workers: int) -> Iterator[SweepRun]:
    """The same runs as Ray tasks, at most ``workers`` at a time (``out`` must be shared)."""
    if not tasks:
        return
    if not ray.is_initialized():
        ray.init()
    cpus = int(ray.cluster_resources().get("CPU", _cores()))
    threads = threads_per_worker(workers, cpus)
    remote = ray.remote(num_cpus=threads)(_execute)
    pending = [dataclasses.replace(t, threads=threads) for t in tasks]
    in_flight: dict[Any, _Task] = {}
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
                run = _crashed(t, e)
            yield run


# --- the sweep ----------------------------------------------------------------------------------
def sweep(
    config: str | os.PathLike | Mapping[str, Any] | None,
    grid: Mapping[str, list[Any]],
    out: str | os.PathLike,
    *,
    job: Job = "analyze",
    workers: int = 1,
    backend: Backend = "local",
    resume: bool = True,
    progress: bool | None = None,
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
            at a time; needs ``pip install ray`` and an ``out`` every node can write).
        resume: skip runs that finished earlier with the same merged config (their
            ``done.json``); ``False`` reruns everything from scratch.
        progress: a progress bar over the runs (default: on a terminal).

    Returns:
        A :class:`SweepResult`, also saved as ``out/sweep.json``. Failed runs are in it with
        their error (and in ``out/<name>/error.json``); the sweep itself does not raise for
        them: check ``result.failed``.

    Raises:
        ValueError: bad job/backend/workers, a grid key that does not exist in the config
            (the message lists the valid ones), an empty or duplicated value list.
        FileNotFoundError: the config file does not exist.
        ImportError: ``backend="ray"`` without Ray installed.

    Note:
        With ``workers > 1`` runs execute in fresh interpreter processes: in a script, call
        ``sweep`` under ``if __name__ == "__main__":``.
    """
    if job not in JOBS:
        raise ValueError(f"job must be one of {list(JOBS)}, got {job!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    ray = _import_ray() if backend == "ray" else None
    base = load_base_config(config, job)
    grid_lists = check_grid(base, grid, job)
    points = expand_grid(base, grid_lists, job)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    runs: dict[str, SweepRun] = {}
    tasks: list[_Task] = []
    for p in points:
        run_dir = out / p.name
        h = config_hash(job, p.config)
        done = _finished(run_dir, h) if resume else None
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
            tasks.append(_Task(p.name, p.params, p.config, job, str(run_dir), h, resume))

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
    finished = _run_local(tasks, workers) if ray is None else _run_ray(ray, tasks, workers)
    bar = progress_bar(
        finished,
        progress,
        total=len(points),
        initial=len(points) - len(tasks),
        desc=f"sweep {out.name}",
        unit="run",
    )
    for run in bar:
        runs[run.name] = run
        snapshot().save(out / "sweep.json")
    result = snapshot()
    result.save(out / "sweep.json")
    return result
