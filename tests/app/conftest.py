"""Fixtures shared by the application's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossgeometry.app.report import build


@pytest.fixture
def count_reports(monkeypatch):
    """Count calls of the analyze job's build_report (runs executed in this process)."""
    calls: list[str] = []
    real = build.build_report

    def counting(cfg, out, **kw):
        calls.append(Path(out).name)
        return real(cfg, out, **kw)

    monkeypatch.setattr(build, "build_report", counting)
    return calls
