"""Never a mixed page: a report is built in OUT/.staging and swapped in whole; a partial page of
the run is readable there after every section; an interrupted run resumes (issue #16 defect 5,
issue #17 item 8)."""

from __future__ import annotations

import json
import re
import sys

import matplotlib
import pytest

from lossgeometry.app.report import staging
from lossgeometry.app.report.build import build_report
from lossgeometry.app.sections.base import SECTIONS, SectionOutput, SectionSpec
from tests.conftest import tiny_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

matplotlib.use("Agg")

BASE = tomllib.loads(tiny_toml(["problem", "training", "probe"], width=8))


@pytest.fixture
def probe(monkeypatch):
    """A section after ``training`` that draws a figure; ``probe.interrupt = True`` makes it
    raise KeyboardInterrupt (a run killed between sections). It records the partial page it
    finds in the staging directory when it starts."""
    state = type("Probe", (), {"interrupt": False, "pages": [], "calls": 0})()

    def fn(ctx):
        import matplotlib.pyplot as plt

        state.calls += 1
        page = ctx.outdir / "index.html"
        state.pages.append(page.read_text() if page.exists() else "")
        if state.interrupt:
            raise KeyboardInterrupt
        fig, ax = plt.subplots()
        ax.plot([0, ctx.config["train"]["steps"]])
        return SectionOutput(
            results={"steps": ctx.config["train"]["steps"]},
            html=ctx.figure(fig, "probe.png", "probe"),
        )

    monkeypatch.setitem(SECTIONS, "probe", SectionSpec("probe", "Probe", 99, fn, False, ""))
    return state


def _cfg(steps: int) -> dict:
    return {**BASE, "train": {**BASE["train"], "steps": steps}}


def _snapshot(out):
    """Every published file of the report with its bytes (figures, JSON, page)."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and not rel.startswith(".staging") and not rel.startswith(".lossgeometry"):
            files[rel] = p.read_bytes()
    return files


def test_interrupted_rerun_leaves_the_old_report_whole_and_resumes(tmp_path, probe):
    out = tmp_path / "rep"
    build_report(_cfg(6), out, progress=False, log=lambda s: None)
    before = _snapshot(out)
    assert {"index.html", "results.json", "figures/training.png", "figures/probe.png"} <= set(
        before
    )
    assert not (out / ".staging").exists()  # swapped in, nothing left behind

    # a rerun with a changed config, killed after its training section finished
    probe.interrupt = True
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        build_report(_cfg(4), out, progress=False, log=lines.append)
    # the defect: index.html and results.json of the old config, its figures deleted and the
    # new run's training.png beside them. Now the old report is untouched, byte for byte.
    assert _snapshot(out) == before
    assert json.loads((out / "results.json").read_text())["config"]["train"]["steps"] == 6
    # the new run's partial page is in the staging directory, marked, with only its sections
    stage = out / ".staging"
    assert any(str(stage / "index.html") in ln for ln in lines)
    page = (stage / "index.html").read_text()
    assert "In progress" in page and "still to run: probe" in page
    assert 'id="training"' in page and 'id="probe"' not in page
    assert (stage / "figures" / "training.png").read_bytes() != before["figures/training.png"]
    # the probe saw the partial page of its own run while it ran
    assert 'id="training"' in probe.pages[-1] and "In progress" in probe.pages[-1]

    # the next run of the same config resumes the finished sections and publishes it whole
    probe.interrupt = False
    lines = []
    build_report(_cfg(4), out, progress=False, log=lines.append)
    assert "training: reused" in lines
    assert "section problem: reused" in lines and "section training: reused" in lines
    assert "section probe: running" in lines
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["train"]["steps"] == 4 and res["sections"]["probe"]["results"] == {
        "steps": 4
    }
    after = _snapshot(out)
    assert after["figures/training.png"] != before["figures/training.png"]
    assert after["figures/probe.png"] != before["figures/probe.png"]
    page = after["index.html"].decode()
    assert "In progress" not in page
    assert set(re.findall(r'src="(figures/[^"]+)"', page)) == {
        k for k in after if k.startswith("figures/")
    }
    assert not stage.exists()


def test_the_swap_takes_the_old_page_down_first_and_puts_the_new_one_last(
    tmp_path, probe, monkeypatch
):
    out = tmp_path / "rep"
    build_report(_cfg(6), out, progress=False, log=lambda s: None)
    old_page = (out / "index.html").read_bytes()
    seen = []
    real = staging.os.replace

    def watching(src, dst):
        page = out / "index.html"
        seen.append((str(dst), page.exists() and page.read_bytes() == old_page))
        return real(src, dst)

    monkeypatch.setattr(staging.os, "replace", watching)
    build_report(_cfg(4), out, progress=False, log=lambda s: None)
    report = {"index.html", "results.json", "state.json", "sections", "figures"}
    report |= {"trajectory.json", "trajectory.json.pt"}
    moved = [d for d, _ in seen if d in {str(out / f) for f in report}]
    assert len(moved) == len(report)
    assert moved[-1] == str(out / "index.html")  # the page comes last
    # while the old run's files are replaced, its page is already gone
    assert not any(old for d, old in seen if d in moved)
    assert (out / "index.html").read_bytes() != old_page


def test_a_dropped_section_leaves_no_files_in_the_published_report(tmp_path, probe):
    out = tmp_path / "rep"
    build_report(_cfg(6), out, progress=False, log=lambda s: None)
    cfg = _cfg(6)
    cfg["report"] = {"sections": ["problem"]}
    lines: list[str] = []
    build_report(cfg, out, progress=False, log=lines.append)
    assert "section problem: reused" in lines
    assert sorted(p.name for p in (out / "sections").iterdir()) == ["problem.json"]
    assert not (out / "figures").exists() or not any((out / "figures").iterdir())
    assert list(json.loads((out / "results.json").read_text())["sections"]) == ["problem"]


def test_a_failed_section_is_published_with_its_error_and_retried(tmp_path, probe, monkeypatch):
    out = tmp_path / "rep"
    real = SECTIONS["probe"]

    def broken(ctx):
        raise ValueError("probe broke")

    monkeypatch.setitem(SECTIONS, "probe", SectionSpec("probe", "Probe", 99, broken, False, ""))
    with pytest.raises(RuntimeError, match="probe broke"):
        build_report(_cfg(6), out, progress=False, log=lambda s: None)
    res = json.loads((out / "results.json").read_text())
    assert res["sections"]["probe"]["error"] == "ValueError: probe broke"
    assert "This section failed" in (out / "index.html").read_text()
    monkeypatch.setitem(SECTIONS, "probe", real)
    lines: list[str] = []
    build_report(_cfg(6), out, progress=False, log=lines.append)
    assert "section training: reused" in lines and "section probe: running" in lines
