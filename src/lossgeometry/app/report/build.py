"""Assemble the ``analyze`` report: run sections, save each atomically, write HTML and JSON.

Layout of a report directory::

    index.html          the page (open it in a browser; figures are relative links)
    results.json        every section's numbers, the config, versions and timings;
                        ``sections.NAME.summary`` holds the section's headline scalars
                        (what sweeps read)
    figures/*.png       the figures
    sections/NAME.json  one finished section each (used to resume an interrupted run)
    trajectory.json     the training run (+ trajectory.json.pt with the parameters)
    state.json          the config hash the run belongs to

With ``resume=True`` a second run with the same config reuses the trajectory and every
finished section; a changed config starts afresh.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from lossgeometry._version import __version__
from lossgeometry.app.config import AnalyzeConfig, as_config, build_problem, run_training
from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, SectionSpec
from lossgeometry.app.sections.registry import enabled_sections
from lossgeometry.results import atomic_write_json, atomic_write_text, to_jsonable
from lossgeometry.train import Trajectory

_CSS = (Path(__file__).parent / "style.css").read_text(encoding="utf-8")
_STORED = ("results", "summary", "skipped", "error", "seconds")
"""What ``results.json`` keeps of each section (the HTML stays in ``sections/NAME.json``)."""


def config_hash(cfg: AnalyzeConfig | Mapping[str, Any]) -> str:
    """A stable hash of everything that determines the results (report switches excluded).

    The first 16 hex digits of the SHA-256 of the config's ``to_dict()`` without ``report``,
    as JSON with sorted keys (options left unset do not enter it).
    """
    relevant = {k: v for k, v in as_config(cfg).to_dict().items() if k != "report"}
    blob = json.dumps(to_jsonable(relevant), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _run_section(spec: SectionSpec, ctx: Context) -> dict[str, Any]:
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
    return rec


def build_report(
    cfg: AnalyzeConfig | Mapping[str, Any],
    out: str | Path,
    *,
    resume: bool = True,
    progress: bool | None = None,
    log: Callable[[str], Any] = print,
) -> Path:
    """Build the problem of ``cfg``, train it, run the enabled sections, write the report.

    Args:
        cfg: an :class:`AnalyzeConfig` or a mapping with its keys (missing ones take the
            defaults; checked like a TOML file).
        out: the report directory.
        resume: reuse the training run and the finished sections of an earlier run with the
            same config hash.
        progress: progress bars (default: on a terminal).
        log: where the progress lines go.

    Returns:
        The path of ``index.html``.

    Raises:
        RuntimeError: one or more sections failed (the report is still written, with the
            error shown in place of each failed section).
        ValueError: a bad config key or value (nothing is written).
    """
    cfg = as_config(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    h = config_hash(cfg)
    state_path = out / "state.json"
    if state_path.exists():
        old = json.loads(state_path.read_text())
        if not resume or old.get("config_hash") != h:
            for sub in ("sections", "figures"):
                shutil.rmtree(out / sub, ignore_errors=True)
            for f in ("trajectory.json", "trajectory.json.pt"):
                (out / f).unlink(missing_ok=True)
    atomic_write_json(state_path, {"config_hash": h, "version": __version__})
    specs = enabled_sections(cfg.report)
    seed = cfg.seed
    torch.manual_seed(seed)

    t_start = time.perf_counter()
    problem, data_name = build_problem(cfg)
    w0 = problem.params()
    traj_path = out / "trajectory.json"
    if resume and traj_path.exists():
        traj = Trajectory.load(traj_path)
        log(f"reusing the training run in {traj_path}")
    else:
        log(f"training: {problem}")
        traj = run_training(problem, cfg, progress=progress)
        traj.save(traj_path)

    records: dict[str, dict[str, Any]] = {}
    (out / "sections").mkdir(exist_ok=True)
    for spec in specs:
        path = out / "sections" / f"{spec.name}.json"
        if resume and path.exists():
            rec = json.loads(path.read_text())
            if rec.get("error") is None:
                records[spec.name] = rec
                log(f"section {spec.name}: reused")
                continue
        log(f"section {spec.name}: running")
        ctx = Context(problem, cfg, w0, traj, out, seed, progress, cfg.report.options(spec.name))
        ctx.data_name = data_name
        rec = _run_section(spec, ctx)
        atomic_write_json(path, rec)
        records[spec.name] = rec
        status = "failed: " + rec["error"] if rec["error"] else f"{rec['seconds']:.1f} s"
        log(f"section {spec.name}: {status}")

    meta = {
        "lossgeometry": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config_hash": h,
        "total_seconds": time.perf_counter() - t_start,
    }
    results = {
        "meta": meta,
        "config": cfg.to_dict(),
        "sections": {
            k: {kk: v.get(kk, {} if kk == "summary" else None) for kk in _STORED}
            for k, v in records.items()
        },
    }
    atomic_write_json(out / "results.json", results)
    index = atomic_write_text(out / "index.html", render_html(cfg, data_name, records, meta))
    failed = [k for k, v in records.items() if v.get("error")]
    if failed:
        raise RuntimeError(
            f"report written to {index}, but sections {failed} failed: "
            + "; ".join(records[k]["error"] for k in failed)
        )
    return index


def render_html(
    cfg: Mapping[str, Any], data_name: str, records: dict[str, dict[str, Any]], meta: dict[str, Any]
) -> str:
    """The report page: a navigation bar and one card per section."""
    nav = "".join(
        f'<a href="#{html.esc(k)}">{html.esc(v["title"])}</a>' for k, v in records.items()
    )
    cards = []
    for name, rec in records.items():
        if rec.get("error"):
            body = html.note(f"This section failed: {rec['error']}", "warn")
        elif rec.get("skipped"):
            body = html.note(f"Skipped: {rec['skipped']}", "info")
        else:
            body = rec["html"]
        cards.append(
            f'<section class="card" id="{html.esc(name)}"><h2>{html.esc(rec["title"])}</h2>'
            f'{body}<div class="timing">{rec["seconds"]:.1f} s</div></section>'
        )
    model = cfg.get("model", {})
    subtitle = f"{model.get('factory') or model.get('name', 'model')} on {data_name}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lossgeometry report — {html.esc(subtitle)}</title>
<style>{_CSS}</style></head>
<body>
<header><h1>Loss-landscape report</h1><p class="sub">{html.esc(subtitle)}</p>
<nav>{nav}</nav></header>
<main>{"".join(cards)}</main>
<footer>lossgeometry {html.esc(meta["lossgeometry"])} · torch {html.esc(meta["torch"])} ·
Python {html.esc(meta["python"])} · {html.esc(meta["created"])} ·
total {meta["total_seconds"]:.1f} s · numbers in <code>results.json</code></footer>
</body></html>
"""
