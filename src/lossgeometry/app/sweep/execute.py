"""One run of a sweep in this process: its directory, ``done.json`` or ``error.json``.

:func:`execute` never raises for a failing job: the error and traceback go to
``error.json`` and the run comes back as ``"failed"`` (with the numbers a partly written
report still gives). A run whose ``config.json`` belongs to another config starts clean; a
run directory another process holds (:func:`lossgeometry.app.outdir.claim`) is left alone
and the run fails with the holder named.

A point of several torch.distributed ranks (``Task.ranks > 1``) is prepared once
(:func:`prepare`, by the Ray task that launches it) and then runs :func:`execute_rank` on
every rank: rank 0 alone writes ``log.txt``, ``done.json`` or ``error.json`` (the other
ranks only ``log.rank<r>.txt``); what each rank computes is
:func:`lossgeometry.app.sweep.ranks.rank_job`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lossgeometry.app.outdir import OutputDirBusy, claim
from lossgeometry.app.outdir.guard import HOLDER_FILE, LOCK_FILE
from lossgeometry.app.sweep.grid import config_hash
from lossgeometry.app.sweep.jobs import JOB_FUNCTIONS, partial_metrics
from lossgeometry.app.sweep.ranks import gather_ranks, process_group, rank_job
from lossgeometry.app.sweep.result import SweepRun
from lossgeometry.results import atomic_write_json

__all__ = [
    "Task",
    "crashed",
    "done_record",
    "execute",
    "execute_rank",
    "outcome",
    "prepare",
    "read_json",
]


@dataclasses.dataclass(frozen=True)
class Task:
    """Everything one run needs; pickled to a worker process (or a Ray task)."""

    name: str
    params: dict[str, Any]
    config: dict[str, Any]
    job: str
    directory: str
    config_hash: str
    resume: bool
    threads: int | None = None
    """Torch threads of the process (of each rank); ``None`` leaves them alone."""
    ranks: int = 1
    """torch.distributed ranks of this point (``lg.sweep(..., ranks_per_point=N)``)."""


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def done_record(run_dir: Path, h: str) -> dict[str, Any] | None:
    """The ``done.json`` of a run with config hash ``h``, or None."""
    done = read_json(run_dir / "done.json")
    return done if isinstance(done, dict) and done.get("config_hash") == h else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def record_failure(task: Task, error: str, tb: str, seconds: float) -> SweepRun:
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
        metrics=partial_metrics(task.job, run_dir),
        error=error,
    )


def _empty(run_dir: Path) -> None:
    """Remove what a run directory holds, but not its lock (another run may wait on it)."""
    for p in run_dir.iterdir():
        if p.name in (LOCK_FILE, HOLDER_FILE):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def prepare(task: Task) -> bool:
    """Clean or keep the run directory; write its config. Whether its earlier files count.

    Holds the directory's lock while it does (another process writing into it, e.g. an
    ``analyze`` run, makes this raise OutputDirBusy instead of deleting its files).
    """
    run_dir = Path(task.directory)
    with claim(run_dir, f"sweep run {task.name}"):
        old = read_json(run_dir / "config.json")
        same = old is not None and config_hash(task.job, old) == task.config_hash
        if old is not None and not (task.resume and same):
            _empty(run_dir)  # a run of another config (or --fresh): start clean
        for f in ("done.json", "error.json"):
            (run_dir / f).unlink(missing_ok=True)
        atomic_write_json(run_dir / "config.json", task.config)
    return same


def _set_threads(task: Task) -> None:
    if task.threads:
        import torch

        torch.set_num_threads(task.threads)


def execute(task: Task) -> SweepRun:
    """Run one grid point in this process; never raises for a failing job."""
    _set_threads(task)
    try:
        same = prepare(task)
    except OutputDirBusy as e:  # its directory is another run's now: touch nothing there
        return SweepRun(task.name, task.params, "failed", 0.0, task.directory, error=str(e))
    return _run(task, same, JOB_FUNCTIONS[task.job])


def execute_rank(config: dict[str, Any]) -> SweepRun:
    """One rank of a multi-rank point, in a process whose torch.distributed group is set up.

    ``config`` is ``{"task": Task, "same": bool}`` (``same``: what :func:`prepare` returned
    for this point, which ran once before the ranks started). Every rank runs
    :func:`~lossgeometry.app.sweep.ranks.rank_job`; every rank's ``rank``, ``world_size``,
    ``backend``, ``host`` and ``pid`` go into the point's ``done.json`` as ``"ranks"``.
    This is the function Ray Train's ``TorchTrainer`` runs on each worker
    (:func:`lossgeometry.app.sweep.ray_backend.run_ranks`).

    Raises:
        RuntimeError: no process group, or one whose size is not ``task.ranks``.
    """
    task: Task = config["task"]
    _set_threads(task)
    rank, world_size = process_group(task.ranks)
    ranks = gather_ranks()

    def job(cfg: dict, run_dir: Path, resume: bool, log: Callable[[str], Any]) -> dict:
        return rank_job(task.job, cfg, run_dir, resume, log, rank=rank, world_size=world_size)

    return _run(task, bool(config["same"]), job, rank=rank, extra={"ranks": ranks})


def _run(
    task: Task,
    same: bool,
    job: Callable[[dict, Path, bool, Callable[[str], Any]], dict],
    *,
    rank: int = 0,
    extra: dict[str, Any] | None = None,
) -> SweepRun:
    """Run ``job`` in the prepared run directory; rank 0 writes ``done.json``/``error.json``."""
    run_dir = Path(task.directory)
    log_path = run_dir / ("log.txt" if rank == 0 else f"log.rank{rank}.txt")

    def log(msg: Any) -> None:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{msg}\n")

    t0 = time.perf_counter()
    try:
        metrics = job(task.config, run_dir, task.resume and same, log)
    except Exception as e:  # a failing run must not stop the sweep
        err = f"{type(e).__name__}: {e}"
        log(f"failed: {err}")
        seconds = time.perf_counter() - t0
        if rank == 0:
            return record_failure(task, err, traceback.format_exc(), seconds)
        return SweepRun(task.name, task.params, "failed", seconds, task.directory, error=err)
    seconds = time.perf_counter() - t0
    if rank == 0:
        atomic_write_json(
            run_dir / "done.json",
            {
                "config_hash": task.config_hash,
                "job": task.job,
                "params": task.params,
                "seconds": seconds,
                "metrics": metrics,
                "finished": _now(),
                **(extra or {}),
            },
        )
    return SweepRun(task.name, task.params, "done", seconds, task.directory, metrics=metrics)


def outcome(task: Task) -> SweepRun:
    """The run as its directory records it: ``done.json``, else ``error.json``, of this config.

    For a multi-rank point, whose rank 0 wrote the record in another process. A directory
    with neither (rank 0 ended without writing) is recorded as crashed.
    """
    run_dir = Path(task.directory)
    done = done_record(run_dir, task.config_hash)
    if done is not None:
        seconds = float(done.get("seconds", math.nan))
        metrics = dict(done.get("metrics") or {})
        return SweepRun(task.name, task.params, "done", seconds, task.directory, metrics=metrics)
    err = read_json(run_dir / "error.json")
    if isinstance(err, dict) and err.get("config_hash") == task.config_hash:
        return SweepRun(
            task.name,
            task.params,
            "failed",
            float(err.get("seconds", math.nan)),
            task.directory,
            metrics=partial_metrics(task.job, run_dir),
            error=str(err.get("error")),
        )
    return crashed(task, RuntimeError("rank 0 ended without writing done.json or error.json"))


def crashed(task: Task, e: BaseException) -> SweepRun:
    """A run whose worker died (or whose setup failed) before it could record anything."""
    err = f"{type(e).__name__}: {e}"
    try:
        return record_failure(task, err, "".join(traceback.format_exception(e)), float("nan"))
    except OSError:
        return SweepRun(task.name, task.params, "failed", float("nan"), task.directory, error=err)
