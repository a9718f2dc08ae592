"""Small HTML builders for report sections (escaped, dependency-free)."""

from __future__ import annotations

import html as _html
import math
from collections.abc import Iterable, Mapping
from typing import Any


def fmt(x: Any, digits: int = 4) -> str:
    """Format a number compactly (scientific for very large/small magnitudes)."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "—"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    return _html.escape(str(x))


def esc(s: Any) -> str:
    """Escape text for HTML."""
    return _html.escape(str(s))


def metrics(items: Mapping[str, Any], hints: Mapping[str, str] | None = None) -> str:
    """A row of metric cards: label above, value below (with an optional hover hint)."""
    hints = hints or {}
    cards = "".join(
        f'<div class="metric" title="{esc(hints.get(k, ""))}"><div class="label">{esc(k)}</div>'
        f'<div class="value">{fmt(v)}</div></div>'
        for k, v in items.items()
    )
    return f'<div class="metrics">{cards}</div>'


def table(rows: Iterable[Iterable[Any]], header: Iterable[str] | None = None) -> str:
    """A simple table."""
    head = ""
    if header is not None:
        head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def kv_table(items: Mapping[str, Any]) -> str:
    """A two-column key/value table."""
    return table(items.items())


def figure(src: str, caption: str = "") -> str:
    """An image with an optional caption (``src`` relative to index.html)."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{esc(src)}" alt="{esc(caption or src)}">{cap}</figure>'


def note(text: str, kind: str = "info") -> str:
    """A highlighted note (``kind``: info, ok, warn)."""
    return f'<p class="note {esc(kind)}">{esc(text)}</p>'


def para(text: str) -> str:
    """A paragraph of escaped text."""
    return f"<p>{esc(text)}</p>"


def row(*fragments: str) -> str:
    """Lay fragments (usually figures) side by side."""
    return '<div class="row">' + "".join(fragments) + "</div>"
