"""The report's list of sections: every registered section, and those a config switches on.

Sections register themselves with :func:`lossgeometry.app.sections.base.section` when their
module under ``sections/`` is imported; this module imports them, answers which exist, and
checks the section names of a ``[report]`` table (:func:`check_report`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lossgeometry.app.sections import (  # noqa: F401  (each registers itself, one line each)
    alphabeta,
    curvature,
    kernel,
    manifold,
    plstar,
    problem,
    surface,
    training,
)
from lossgeometry.app.sections.base import SECTIONS, SectionSpec
from lossgeometry.options import OptionsError, closest, located, unknown_key_message


def available_sections() -> list[SectionSpec]:
    """All registered sections, in report order."""
    return sorted(SECTIONS.values(), key=lambda s: s.order)


def check_report(
    sections: Sequence[str] | None, tables: Mapping[str, Any], where: str = "report"
) -> None:
    """Check the section names of a ``[report]`` table and each table's ``enabled`` switch.

    Names are those of ``sections = [...]`` and of the ``[report.NAME]`` tables.

    The other keys of a ``[report.NAME]`` table are the section's own options; the section
    checks them when it runs.

    Raises:
        OptionsError: (a ``ValueError``) ``[where] kernl: unknown report section; did you
            mean 'kernel'?`` (no location with ``where=""``).
    """
    names = [s.name for s in available_sections()]
    msg = None
    for key, table in tables.items():
        if key not in names:
            msg = unknown_key_message(key, ["sections", *names], what="report section")
        elif not isinstance(table, Mapping):
            msg = f"{key} = {table!r}: expected a table [report.{key}] of the section's options"
        elif not isinstance(table.get("enabled", True), bool):
            msg = f"[{key}] enabled = {table['enabled']!r}: expected true or false"
        if msg:
            raise OptionsError(located(msg, where))
    if sections is not None:
        unknown = [n for n in sections if n not in names]
        if unknown:
            hints = [h for h in (closest(n, names) for n in unknown) if h]
            did = f"; did you mean {', '.join(map(repr, hints))}?" if hints else "."
            msg = f"sections: unknown report sections {unknown}{did} Known: {', '.join(names)}"
            raise OptionsError(located(msg, where))


def enabled_sections(report_cfg: Mapping[str, Any]) -> list[SectionSpec]:
    """Sections switched on by a ``[report]`` config table.

    ``sections = [...]`` lists exactly the sections to run; otherwise each section runs if it
    is on by default, and ``[report.NAME] enabled = false/true`` overrides that.

    Raises:
        OptionsError: an unknown section name (see :func:`check_report`).
    """
    listed = report_cfg.get("sections")
    tables = {k: v for k, v in report_cfg.items() if k != "sections"}
    check_report(listed, tables)
    specs = available_sections()
    if listed is not None:
        return [s for s in specs if s.name in listed]
    return [s for s in specs if tables.get(s.name, {}).get("enabled", s.default)]
