"""Assemble the ``analyze`` report: run sections, save each atomically, write HTML and JSON.

Layout of a report directory::

    index.html          the page (open it in a browser; figures are relative links)
    results.json        every section's numbers, the config, versions and timings;
                        ``sections.NAME.summary`` holds the section's headline scalars
                        (what sweeps read)
    figures/*.png       the figures
    sections/NAME.json  one finished section each, with its cache key
    trajectory.json     the training run (+ trajectory.json.pt with the parameters)
    state.json          the cache keys of the training run and the sections
    .staging/           while a run goes on (or after it was interrupted): the run's own
                        files, and its partial index.html (see staging.py)
    .lossgeometry.lock  the lock that keeps a second run out while one runs

With ``resume=True`` a rerun reuses the training run and every finished section whose cache
key is unchanged: a section's key covers its ``[report.NAME]`` options, the whole problem
config (everything but ``[report]``), the source of a model factory, local data files and
the lossgeometry and torch versions (:mod:`lossgeometry.app.outdir.keys`); the training
run's key all but the section options.

Under torchrun (:mod:`lossgeometry.app.launch`) every rank runs the same training and
sections; rank 0 alone claims ``OUT``, reads the cache, writes and logs, and tells the other
ranks what it reused. The number of ranks is not in the cache keys: a data-parallel section
equals the one-process one up to the order of floating-point sums (1e-12 relative in
float64), so a section computed on 1 rank serves a run on 2 and the other way round; each
record keeps the ``world_size`` that computed it and whether it ran ``data_parallel``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import platform
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from lossgeometry._version import __version__
from lossgeometry.app.config import AnalyzeConfig, as_config, build_problem, run_training
from lossgeometry.app.launch import TRAINING_DATA_PARALLEL, Ranks
from lossgeometry.app.outdir import claim, digest, inputs
from lossgeometry.app.report.page import render_html
from lossgeometry.app.report.staging import ReportKeys, Staging
from lossgeometry.app.sections.base import Context, SectionOutput, SectionSpec
from lossgeometry.app.sections.registry import enabled_sections
from lossgeometry.results import atomic_write_json, atomic_write_text, to_jsonable

__all__ = ["build_report", "config_hash", "report_keys", "render_html"]

_STORED = ("results", "summary", "skipped", "error", "seconds", "world_size", "data_parallel")
"""What ``results.json`` keeps of each section (the HTML stays in ``sections/NAME.json``)."""


def config_hash(cfg: AnalyzeConfig | Mapping[str, Any]) -> str:
    """A stable hash of the problem config (everything but the ``report`` table).

    The first 16 hex digits of the SHA-256 of the config's ``to_dict()`` without ``report``,
    as JSON with sorted keys (options left unset do not enter it). The cache keys of
    :func:`report_keys` add what the config only names and each section's options.
    """
    relevant = {k: v for k, v in as_config(cfg).to_dict().items() if k != "report"}
    blob = json.dumps(to_jsonable(relevant), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def report_keys(
    cfg: AnalyzeConfig, specs: list[SectionSpec], named: Mapping[str, Any] | None = None
) -> ReportKeys:
    """The cache keys of a run: its training run and each section in ``specs``.

    Training: :func:`~lossgeometry.app.outdir.digest` of the problem config and
    ``named`` (:func:`~lossgeometry.app.outdir.inputs` of the config: versions, the model
    factory's source, local data files). Section ``NAME``: of that key, the name and the
    ``[report.NAME]`` options (without ``enabled``).
    """
    named = inputs(cfg) if named is None else named
    problem = {k: v for k, v in cfg.to_dict().items() if k != "report"}
    trajectory = digest({"config": problem, "inputs": named})
    sections = {
        s.name: digest(
            {"problem": trajectory, "section": s.name, "options": cfg.report.options(s.name)}
        )
        for s in specs
    }
    return ReportKeys(trajectory, sections)


def _run_section(spec: SectionSpec, ctx: Context, ranks: Ranks) -> dict[str, Any]:
    """Run one section; its record (a failure is recorded, on one process; see below).

    On more than one rank a failing section stops the run: a rank that raised cannot know
    where the others are in their collectives, so it leaves (the others then stop with a
    :class:`~lossgeometry.distributed.DistributedError`) and the staging directory keeps the
    finished sections for a rerun.
    """
    t0 = time.perf_counter()
    try:
        out: SectionOutput = spec.fn(ctx)
        rec = {
            "results": out.results,
            "summary": dict(out.summary),
            "html": out.html,
            "skipped": out.skipped,
            "error": None,
        }
    except Exception as e:  # a failing section must not lose the others
        if ranks.distributed:
            raise
        rec = {
            "results": {},
            "summary": {},
            "html": "",
            "skipped": None,
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
        }
    rec["seconds"] = time.perf_counter() - t0
    rec["title"] = spec.title
    rec["world_size"] = ranks.world_size
    rec["data_parallel"] = spec.data_parallel and ranks.distributed
    return rec


def _meta(h: str, named: Mapping[str, Any], t_start: float, world_size: int) -> dict[str, Any]:
    return {
        "lossgeometry": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config_hash": h,
        "inputs": dict(named),
        "total_seconds": time.perf_counter() - t_start,
        "world_size": world_size,
    }


def build_report(
    cfg: AnalyzeConfig | Mapping[str, Any],
    out: str | Path,
    *,
    resume: bool = True,
    progress: bool | None = None,
    log: Callable[[str], Any] = print,
    ranks: Ranks | None = None,
) -> Path:
    """Build the problem of ``cfg``, train it, run the enabled sections, write the report.

    The run owns ``out`` while it goes (a second run into ``out`` is refused), works in
    ``out/.staging/`` (its partial ``index.html`` there is rewritten after every section)
    and swaps the finished report into ``out`` at the end (``staging.py``).

    Args:
        cfg: an :class:`AnalyzeConfig` or a mapping with its keys (missing ones take the
            defaults; checked like a TOML file).
        out: the report directory.
        resume: reuse the training run and the finished sections (of an interrupted run, or
            of the report in ``out``) whose cache keys are unchanged (see :func:`report_keys`);
            ``False`` recomputes everything.
        progress: progress bars (default: on a terminal).
        log: where the progress lines go.
        ranks: the ranks of a torchrun launch (:func:`lossgeometry.app.launch.start`); every
            rank calls this, rank 0 alone writes (``None``: one process).

    Returns:
        The path of ``index.html``.

    Raises:
        RuntimeError: one or more sections failed (the report is still written, with the
            error shown in place of each failed section).
        ValueError: a bad config key or value (nothing is written);
            :class:`~lossgeometry.app.outdir.OutputDirError` for an output path that is a
            file or cannot be written; :class:`~lossgeometry.app.outdir.CorruptCacheError`
            for an unreadable file of an earlier run (names it; ``resume=False`` fixes it).
        lossgeometry.app.outdir.OutputDirBusy: another run is writing into ``out``.
    """
    cfg = as_config(cfg)
    specs = enabled_sections(cfg.report)
    ranks = ranks or Ranks()
    if not ranks.is_main:  # writes nothing; learns from rank 0 what to run
        ranks.on_main(lambda: None)  # rank 0 claimed `out` (or failed to)
        _build(cfg, specs, None, resume=resume, progress=progress, log=ranks.log(log), ranks=ranks)
        return Path(out) / "index.html"  # what rank 0 wrote
    with contextlib.ExitStack() as stack:
        out_dir = ranks.on_main(lambda: stack.enter_context(claim(out, "analyze")))
        return _build(cfg, specs, out_dir, resume=resume, progress=progress, log=log, ranks=ranks)


def _build(
    cfg: AnalyzeConfig,
    specs: list[SectionSpec],
    out: Path | None,
    *,
    resume: bool,
    progress: bool | None,
    log: Callable[[str], Any],
    ranks: Ranks,
) -> Path:
    """The run of :func:`build_report` in ``out`` (``None``: a rank that writes nothing).

    Rank 0 alone computes the cache keys (they hash local data files), opens the staging
    directory and looks up what it can reuse; the other ranks receive the answer.
    """
    t_start = time.perf_counter()
    h, named = (config_hash(cfg), inputs(cfg)) if out is not None else ("", {})
    keys = report_keys(cfg, specs, named) if out is not None else None
    stage: Staging | None = None

    def open_stage() -> set[str]:  # rank 0: the staging directory; what the cache holds
        nonlocal stage
        assert out is not None and keys is not None
        stage = Staging(out, keys, resume=resume)
        return {s.name for s in specs if stage.section(s.name) is not None}

    reused = ranks.on_main(open_stage)
    seed = cfg.seed
    torch.manual_seed(seed)

    problem, data_name = build_problem(cfg)
    w0 = problem.params()
    traj = ranks.on_main(lambda: stage.trajectory() if stage is not None else None)
    if traj is not None:
        log("training: reused")
    else:
        log(f"training: {problem}")
        trainee = ranks.problem_for(problem, TRAINING_DATA_PARALLEL)
        traj = ranks.same(run_training(trainee, cfg, progress=progress))  # bitwise on all
        if stage is not None:
            stage.save_trajectory(traj)

    records: dict[str, dict[str, Any]] = {}
    if stage is not None:
        log(f"partial report (updated after each section): {stage.index}")
    for i, spec in enumerate(specs):
        rec = stage.section(spec.name) if stage is not None and spec.name in reused else None
        if spec.name in reused:
            log(f"section {spec.name}: reused")
        else:
            log(f"section {spec.name}: running")
            ctx = Context(
                ranks.problem_for(problem, spec.data_parallel),
                cfg,
                w0,
                traj,
                stage.dir if stage is not None else Path(),
                seed,
                progress,
                cfg.report.options(spec.name),
                data_name=data_name,
                write=stage is not None,
            )
            rec = _run_section(spec, ctx, ranks)
            if stage is not None:
                rec = stage.save_section(spec.name, rec)
            status = "failed: " + rec["error"] if rec["error"] else f"{rec['seconds']:.1f} s"
            log(f"section {spec.name}: {status}")
        if stage is None:
            continue
        assert rec is not None
        records[spec.name] = rec
        pending = [s.name for s in specs[i + 1 :]]
        meta = _meta(h, named, t_start, ranks.world_size)
        atomic_write_text(stage.index, render_html(cfg, data_name, records, meta, pending=pending))
    if stage is None:  # rank > 0: nothing to write
        return Path()
    assert keys is not None
    meta = _meta(h, named, t_start, ranks.world_size)
    results = {
        "meta": meta,
        "config": cfg.to_dict(),
        "sections": {
            k: {kk: v.get(kk, {} if kk == "summary" else None) for kk in _STORED}
            for k, v in records.items()
        },
    }
    atomic_write_json(stage.dir / "results.json", results)
    stage.write_state(keys.trajectory, "complete", config_hash=h, version=__version__)
    atomic_write_text(stage.index, render_html(cfg, data_name, records, meta))
    index = stage.publish(records)
    failed = [k for k, v in records.items() if v.get("error")]
    if failed:
        raise RuntimeError(
            f"report written to {index}, but sections {failed} failed: "
            + "; ".join(records[k]["error"] for k in failed)
        )
    return index
