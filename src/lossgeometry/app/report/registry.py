"""The report's list of sections: every registered section, and those a config switches on.

Sections register themselves with :func:`lossgeometry.app.report.section.section` when their
module under ``sections/`` is imported; this module imports them and answers which exist.
"""

from __future__ import annotations

from typing import Any

import lossgeometry.app.report.sections  # noqa: F401  (registers the built-in sections)
from lossgeometry.app.report.section import SECTIONS, SectionSpec


def available_sections() -> list[SectionSpec]:
    """All registered sections, in report order."""
    return sorted(SECTIONS.values(), key=lambda s: s.order)


def enabled_sections(report_cfg: dict[str, Any]) -> list[SectionSpec]:
    """Sections switched on by a ``[report]`` config table.

    ``sections = [...]`` lists exactly the sections to run; otherwise each section runs if it
    is on by default, and ``[report.NAME] enabled = false/true`` overrides that.
    """
    specs = available_sections()
    names = {s.name for s in specs}
    listed = report_cfg.get("sections")
    for key, val in report_cfg.items():
        if isinstance(val, dict) and key not in names:
            raise ValueError(f"unknown report section [report.{key}]; known: {sorted(names)}")
    if listed is not None:
        unknown = [n for n in listed if n not in names]
        if unknown:
            raise ValueError(f"unknown report sections {unknown}; known: {sorted(names)}")
        return [s for s in specs if s.name in listed]
    out = []
    for s in specs:
        table = report_cfg.get(s.name, {})
        if table.get("enabled", s.default):
            out.append(s)
    return out
