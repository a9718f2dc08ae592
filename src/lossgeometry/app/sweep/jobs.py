"""What one run of a sweep does, by job, and the headline numbers it yields.

``job="analyze"`` builds the report of ``lossgeometry analyze`` in the run directory; its
metrics are the ``summary`` of each report section (``results.json`` →
``sections.NAME.summary``, as ``NAME.KEY``). ``job="run"`` runs a bundled experiment; its
metrics are the summary the experiment returns (also written to ``summary.json``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from lossgeometry.results import atomic_write_json, to_jsonable

__all__ = ["JOBS", "JOB_FUNCTIONS", "Job", "analyze_metrics", "partial_metrics", "scalars"]

Job = Literal["analyze", "run"]
JOBS = ("analyze", "run")


def scalars(d: Mapping[str, Any], prefix: str, depth: int) -> dict[str, float]:
    """The numbers of ``d`` by dotted key (``prefix`` first), down to ``depth`` levels; no bools."""
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = v
        elif isinstance(v, str) and v in ("nan", "inf", "-inf"):
            out[f"{prefix}{k}"] = float(v)
        elif isinstance(v, Mapping) and depth > 1:
            out.update(scalars(v, f"{prefix}{k}.", depth - 1))
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
        out.update(scalars(rec.get("summary") or {}, f"{sec}.", 2))
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
    from lossgeometry.app.outdir import claim

    fn = available_experiments()[cfg["experiment"]]
    log(f"experiment {cfg['experiment']} → {run_dir}")
    with claim(run_dir, f"run {cfg['experiment']}"):
        summary = fn(copy.deepcopy(cfg), run_dir, False, False)
        atomic_write_json(run_dir / "summary.json", summary)
    return scalars(to_jsonable(summary), "", 2)


JOB_FUNCTIONS: dict[str, Callable[[dict[str, Any], Path, bool, Callable[[str], Any]], dict]] = {
    "analyze": _job_analyze,
    "run": _job_run,
}
"""What a run does, by job: ``fn(config, run_dir, resume, log) -> metrics``."""


def partial_metrics(job: str, run_dir: Path) -> dict[str, float]:
    """Headline numbers a failed run still produced (a report with a failed section)."""
    try:
        if job == "analyze" and (run_dir / "results.json").exists():
            return analyze_metrics(run_dir / "results.json")
    except (OSError, ValueError):
        pass
    return {}
