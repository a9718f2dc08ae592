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
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from lossgeometry._progress import progress_bar
from lossgeometry.app.sweep.result import SweepResult, SweepRun, short_labels
from lossgeometry.options import closest
from lossgeometry.results import atomic_write_json, to_jsonable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Job = Literal["analyze", "run"]
Backend = Literal["local", "ray"]
JOBS = ("analyze", "run")
BACKENDS = ("local", "ray")

_NAME_MAX = 120
_SAFE = re.compile(r"[^A-Za-z0-9._+\-=,]")


# --- configs and grids ------------------------------------------------------------------------
def load_base_config(config: str | os.PathLike | Mapping[str, Any] | None, job: str) -> dict:
    """The config every run of a sweep starts from, as a plain dict (what ``config.json`` holds).

    Args:
        config: for ``job="analyze"``: a TOML path, a dict (same keys as the TOML) or
            ``None`` (the built-in default); missing keys take the defaults, as in
            ``lossgeometry analyze -c``. For ``job="run"``: a TOML path, a bundled experiment
            name (``lossgeometry run --list``) or a dict with an ``experiment`` key.
        job: ``"analyze"`` or ``"run"``.

    Raises:
        FileNotFoundError: no such file (or bundled experiment).
        ValueError: bad TOML, an unknown key or bad value (analyze: the message names the
            table, the key and the closest valid one), unknown experiment.
    """
    if job == "analyze":
        from lossgeometry.app.config import load_config
        from lossgeometry.app.experiments.registry import bundled_configs

        if isinstance(config, Mapping):
            return load_config(None, config).to_dict()
        if config is not None and not Path(config).is_file() and str(config) in bundled_configs():
            raise ValueError(
                f"{str(config)!r} is a bundled experiment, not an analyze config: use job='run' "
                "(--job run)"
            )
        return load_config(config).to_dict()
    if config is None:
        from lossgeometry.app.experiments.registry import bundled_configs

        raise ValueError(
            "job='run' needs an experiment: a TOML path or a bundled name "
            f"({', '.join(bundled_configs())})"
        )
    if isinstance(config, Mapping):
        cfg = copy.deepcopy(dict(config))
        where = "the config dict"
    else:
        path = _experiment_path(config)
        try:
            cfg = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path} is not valid TOML: {e}") from None
        where = str(path)
    from lossgeometry.app.experiments.registry import available_experiments

    exps = available_experiments()
    if cfg.get("experiment") not in exps:
        raise ValueError(
            f"{where}: 'experiment = {cfg.get('experiment')!r}' is not a known experiment; "
            f"known: {sorted(exps)}"
        )
    return cfg


def _experiment_path(config: str | os.PathLike) -> Path:
    from lossgeometry.app.experiments.registry import bundled_configs

    path = Path(config)
    if path.is_file():
        return path
    bundled = bundled_configs()
    if str(config) in bundled:
        return bundled[str(config)]
    raise FileNotFoundError(
        f"no config file {str(config)!r}; bundled experiments: {sorted(bundled)}"
    )


def _leaves(node: Mapping[str, Any], prefix: str) -> list[str]:
    return sorted(prefix + k for k in node)


def _no_key(key: str, part: str, here: str, valid: list[str], free: bool) -> ValueError:
    """``grid key 'train.stpes': no key 'stpes' in [train]; did you mean 'train.steps'? ...``"""
    where = f"[{here}]" if here else "the top level of the config"
    prefix = here + "." if here else ""
    hint = closest(prefix + part, valid)
    did = f"; did you mean {hint!r}?" if hint else "."
    add = ". To sweep a key the config does not set, add it to the config first." if free else ""
    return ValueError(
        f"grid key {key!r}: no key {part!r} in {where}{did} Valid keys there: "
        f"{', '.join(valid) or '(none)'}{add}"
    )


def _check_key(base: Mapping[str, Any], key: str, job: str) -> Any:
    """Check one dotted grid key; return the base config's value there (or None if unset).

    ``job="analyze"``: each table's keys are those of the typed config (the schema, e.g.
    ``train.steps``, the data set's loader options, the built-in model's builder options),
    whether or not the base config sets them; tables of free keys (``model.kwargs``,
    ``train.kwargs``, ``report.NAME``) and experiment configs (``job="run"``) accept the keys
    the base config has.
    """
    table: Any = None
    if job == "analyze":
        from lossgeometry.app.config import as_config

        table = as_config(base)
    node: Any = base
    parts = key.split(".")
    for i, part in enumerate(parts):
        here = ".".join(parts[:i])
        prefix = here + "." if here else ""
        last = i == len(parts) - 1
        if table is not None:  # a typed table: its schema says what the key is
            kinds = table.schema_keys()
            if part not in kinds:
                raise _no_key(key, part, here, _leaves(kinds, prefix), free=False)
            kind = kinds[part]
            value = node.get(part) if isinstance(node, Mapping) else None
            if kind == "value":
                if not last:
                    raise ValueError(
                        f"grid key {key!r}: {prefix + part!r} is a value ({value!r}), not a "
                        "table with keys"
                    )
                return value
            child = table[part] if kind == "table" else (value or {})
            if last:
                keys = child.schema_keys() if kind == "table" else child
                raise ValueError(
                    f"grid key {key!r} is a table; sweep one of its keys: "
                    f"{', '.join(_leaves(keys, key + '.')) or '(none set)'}"
                )
            table = child if kind == "table" else None
            node = value if isinstance(value, Mapping) else {}
            continue
        if not isinstance(node, Mapping):
            raise ValueError(
                f"grid key {key!r}: {here!r} is a value ({node!r}), not a table with keys"
            )
        if part not in node:
            raise _no_key(key, part, here, _leaves(node, prefix), free=True)
        node = node[part]
        if last and isinstance(node, Mapping):
            raise ValueError(
                f"grid key {key!r} is a table; sweep one of its keys: "
                f"{', '.join(_leaves(node, key + '.'))}"
            )
    return node


def check_grid(
    base: Mapping[str, Any], grid: Mapping[str, Any], job: str | None = None
) -> dict[str, list[Any]]:
    """Validate a grid against the config it will modify; return it with lists as values.

    Every key must name an option the config has (a typo must not silently run the
    unchanged config): for ``job="analyze"`` any key of the typed config schema (see
    :func:`lossgeometry.app.config.load_config`), for an experiment a key its TOML sets.
    Every value list must be non-empty and free of duplicates. The values themselves are
    checked by each run (a bad value fails that run, with the message, not the sweep).

    Args:
        base: the base config (:func:`load_base_config`).
        grid: dotted keys to lists of values.
        job: ``"analyze"`` or ``"run"``; default: ``"run"`` if ``base`` has an
            ``experiment`` key, else ``"analyze"``.

    Raises:
        ValueError: naming the bad key, the closest valid one and the valid keys at that
            level.
    """
    if job is None:
        job = "run" if "experiment" in base else "analyze"
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            "the grid is empty: give a mapping of dotted config keys to lists of values, e.g. "
            "{'model.width': [64, 128], 'seed': [0, 1]}"
        )
    out: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ValueError(f"grid key {key!r}: expected a dotted config key like 'model.width'")
        node = _check_key(base, key, job)
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
            raise ValueError(
                f"grid key {key!r}: give a list of values (e.g. [{node!r}]), got {values!r}"
            )
        if not values:
            raise ValueError(f"grid key {key!r}: the list of values is empty")
        for v in values:
            if not _is_value(v):
                raise ValueError(
                    f"grid key {key!r}: value {v!r} is not a number, bool, string or list of "
                    "them (sweep nested keys with dotted names)"
                )
        seen = Counter(json.dumps(v, sort_keys=True) for v in values)
        dupes = [v for v, c in seen.items() if c > 1]
        if dupes:
            raise ValueError(f"grid key {key!r}: duplicate values {dupes}")
        out[key] = list(values)
    return out


def _is_value(v: Any) -> bool:
    if isinstance(v, (bool, int, float, str)):
        return True
    return isinstance(v, (list, tuple)) and all(_is_value(x) for x in v)


def _set(cfg: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    node = cfg
    for part in path:  # a schema key the base does not set: its tables are created
        node = node.setdefault(part, {})
    node[last] = copy.deepcopy(list(value) if isinstance(value, tuple) else value)


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "-".join(_fmt_value(x) for x in v)
    return str(v)


def _short_hash(obj: Any) -> str:
    blob = json.dumps(to_jsonable(obj), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def run_name(params: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """The directory name of a run: ``width=64,seed=0`` (filesystem-safe, stable).

    Characters other than letters, digits and ``. _ + - = ,`` become ``_``; a name longer
    than 120 characters is cut and ends with a hash of the parameters.
    """
    labels = labels or short_labels(list(params))
    name = ",".join(f"{labels[k]}={_fmt_value(v)}" for k, v in params.items())
    name = _SAFE.sub("_", name)
    if len(name) > _NAME_MAX:
        name = name[: _NAME_MAX - 9] + "-" + _short_hash(params)
    return name


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """One point of an expanded grid."""

    name: str
    """Directory name (:func:`run_name`)."""
    params: dict[str, Any]
    """The swept values, by dotted key."""
    config: dict[str, Any]
    """The base config with the swept values set."""


def expand_grid(
    base: Mapping[str, Any], grid: Mapping[str, Any], job: str | None = None
) -> list[GridPoint]:
    """The cartesian product of ``grid`` applied to ``base`` (first key varies slowest).

    Names are unique: if two points sanitize to the same name, a hash of the parameters is
    appended to each of them. ``job`` as in :func:`check_grid`.
    """
    grid = check_grid(base, grid, job)
    keys = list(grid)
    labels = short_labels(keys)
    points = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, combo, strict=True))
        cfg = copy.deepcopy(dict(base))
        for k, v in params.items():
            _set(cfg, k, v)
        points.append(GridPoint(run_name(params, labels), params, cfg))
    counts = Counter(p.name for p in points)
    return [
        dataclasses.replace(p, name=f"{p.name}-{_short_hash(p.params)}")
        if counts[p.name] > 1
        else p
        for p in points
    ]


def config_hash(job: str, cfg: Mapping[str, Any]) -> str:
    """A stable hash of the job and the whole merged config (report options included)."""
    blob = json.dumps({"job": job, "config": to_jsonable(cfg)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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
