"""One run of a sweep in this process: its directory, ``done.json`` or ``error.json``.

:func:`execute` never raises for a failing job: the error and traceback go to
``error.json`` and the run comes back as ``"failed"`` (with the numbers a partly written
report still gives). A run whose ``config.json`` belongs to another config starts clean; a
run directory another process holds (:func:`lossgeometry.app.outdir.claim`) is left alone
and the run fails with the holder named.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from lossgeometry.app.outdir import OutputDirBusy, claim
from lossgeometry.app.outdir.guard import HOLDER_FILE, LOCK_FILE
from lossgeometry.app.sweep.grid import config_hash
from lossgeometry.app.sweep.jobs import JOB_FUNCTIONS, partial_metrics
from lossgeometry.app.sweep.result import SweepRun
from lossgeometry.results import atomic_write_json

__all__ = ["Task", "crashed", "execute", "done_record", "read_json"]


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


def _prepare(task: Task, run_dir: Path) -> bool:
    """Clean or keep the run directory; write its config. Whether its earlier files count.

    Holds the directory's lock while it does (another process writing into it, e.g. an
    ``analyze`` run, makes this raise OutputDirBusy instead of deleting its files).
    """
    with claim(run_dir, f"sweep run {task.name}"):
        old = read_json(run_dir / "config.json")
        same = old is not None and config_hash(task.job, old) == task.config_hash
        if old is not None and not (task.resume and same):
            _empty(run_dir)  # a run of another config (or --fresh): start clean
        for f in ("done.json", "error.json"):
            (run_dir / f).unlink(missing_ok=True)
        atomic_write_json(run_dir / "config.json", task.config)
    return same


def execute(task: Task) -> SweepRun:
    """Run one grid point in this process; never raises for a failing job."""
    if task.threads:
        import torch

        torch.set_num_threads(task.threads)
    run_dir = Path(task.directory)
    try:
        same = _prepare(task, run_dir)
    except OutputDirBusy as e:  # its directory is another run's now: touch nothing there
        return SweepRun(task.name, task.params, "failed", 0.0, task.directory, error=str(e))
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
        return record_failure(task, err, traceback.format_exc(), time.perf_counter() - t0)
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


def crashed(task: Task, e: BaseException) -> SweepRun:
    """A run whose worker died (or whose setup failed) before it could record anything."""
    err = f"{type(e).__name__}: {e}"
    try:
        return record_failure(task, err, "".join(traceback.format_exception(e)), float("nan"))
    except OSError:
        return SweepRun(task.name, task.params, "failed", float("nan"), task.directory, error=err)
