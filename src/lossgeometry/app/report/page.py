"""The report page: a navigation bar and one card per section (HTML, no JavaScript)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lossgeometry.app.sections import html

__all__ = ["render_html"]

_CSS = (Path(__file__).parent / "style.css").read_text(encoding="utf-8")


def _world(world_size: int) -> str:
    """The footer's note of the number of ranks (``world_size``)."""
    if world_size == 1:
        return "world_size 1 (one process)"
    return f"world_size {world_size} (torchrun ranks)"


def _ranks_note(rec: Mapping[str, Any]) -> str:
    """How a section ran, when more than one rank computed it (nothing on one process).

    ``data_parallel``: over the ranks' shards of the samples, all-reduced; otherwise on
    every sample on every rank (a measurement not yet data-parallel), the same numbers.
    """
    ws = rec.get("world_size") or 1
    if ws == 1:
        return ""
    if rec.get("data_parallel"):
        return f" · data-parallel over {ws} ranks"
    return f" · on all samples on each of {ws} ranks (not data-parallel)"


def render_html(
    cfg: Mapping[str, Any],
    data_name: str,
    records: dict[str, dict[str, Any]],
    meta: dict[str, Any],
    *,
    pending: list[str] | None = None,
) -> str:
    """The report page: a navigation bar and one card per section.

    ``pending``: the sections still to run. When given (even empty), the page is a partial
    report of a run in progress: a banner says so and lists them, and the footer has no
    total time.
    """
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
            f'{body}<div class="timing">{rec["seconds"]:.1f} s{_ranks_note(rec)}</div></section>'
        )
    banner = ""
    if pending is not None:
        todo = ", ".join(pending) if pending else "none (the page is being assembled)"
        banner = html.note(
            f"In progress: a partial report of a run that is still going ({len(records)} "
            f"sections finished; still to run: {todo}). Reload to see more; the finished "
            "report replaces this page in the output directory.",
            "warn",
        )
    model = cfg.get("model", {})
    subtitle = f"{model.get('factory') or model.get('name', 'model')} on {data_name}"
    total = "in progress" if pending is not None else f"total {meta['total_seconds']:.1f} s"
    title = "lossgeometry report" + (" (in progress)" if pending is not None else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — {html.esc(subtitle)}</title>
<style>{_CSS}</style></head>
<body>
<header><h1>Loss-landscape report</h1><p class="sub">{html.esc(subtitle)}</p>
<nav>{nav}</nav></header>
<main>{banner}{"".join(cards)}</main>
<footer>lossgeometry {html.esc(meta["lossgeometry"])} · torch {html.esc(meta["torch"])} ·
Python {html.esc(meta["python"])} · {html.esc(meta["created"])} ·
{_world(meta.get("world_size", 1))} · {total} · numbers in <code>results.json</code></footer>
</body></html>
"""
