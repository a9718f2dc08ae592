"""Sweeps: one sweep per directory (issue #16 defect 4), and a finished run is skipped only if
nothing it depends on changed, the model factory's source and the versions included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app
from lossgeometry.app.outdir import OutputDirBusy, claim, keys
from tests.conftest import tiny_toml

TINY = tiny_toml(["problem"])
runner = CliRunner()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def test_a_second_sweep_into_a_held_directory_runs_nothing(tiny, tmp_path, count_reports):
    out = tmp_path / "sw"
    with claim(out, "sweep"):
        with pytest.raises(OutputDirBusy, match=r"in use by another lossgeometry run \(sweep"):
            lg.sweep(tiny, {"seed": [0, 1]}, out, progress=False)
        res = runner.invoke(app, ["sweep", "-c", str(tiny), "-g", "seed=0", "-o", str(out)])
        assert res.exit_code == 2 and "in use" in res.output and "Traceback" not in res.output
    assert count_reports == [] and not (out / "sweep.json").exists()
    res = lg.sweep(tiny, {"seed": [0, 1]}, out, progress=False)
    assert [r.status for r in res.runs] == ["done", "done"]


def test_an_analyze_run_into_a_sweep_run_directory_is_refused(tiny, tmp_path):
    out = tmp_path / "sw"
    lg.sweep(tiny, {"seed": [0]}, out, progress=False)
    with claim(out / "seed=0", "analyze"):  # someone analyzes into a run directory
        res = lg.sweep(tiny, {"seed": [0]}, out, resume=False, progress=False)
    (run,) = res.runs
    assert run.status == "failed" and "in use by another lossgeometry run" in run.error


FACTORY = """from torch import nn


def make(d_in, d_out):
    return nn.Sequential(nn.Linear(d_in, {w}), nn.Tanh(), nn.Linear({w}, d_out))
"""


def test_an_edited_model_factory_reruns_the_finished_runs(tmp_path, count_reports):
    fm = tmp_path / "fm.py"
    fm.write_text(FACTORY.format(w=8))
    cfg = tmp_path / "f.toml"
    cfg.write_text(TINY.replace('[model]\nname = "mlp"\nwidth = 12\ndepth = 1\n', ""))
    base = {**json.loads(json.dumps(lg.app.config.load_config(cfg).to_dict()))}
    base["model"] = {"factory": f"{fm}:make"}
    out = tmp_path / "sw"
    first = lg.sweep(base, {"seed": [0]}, out, progress=False)
    assert first.runs[0].metrics["problem.p"] == 64 * 8 + 8 + 8 * 10 + 10
    again = lg.sweep(base, {"seed": [0]}, out, progress=False)
    assert [r.status for r in again.runs] == ["skipped"] and count_reports == ["seed=0"]
    fm.write_text(FACTORY.format(w=32))  # was skipped with the old p
    changed = lg.sweep(base, {"seed": [0]}, out, progress=False)
    assert [r.status for r in changed.runs] == ["done"]
    assert changed.runs[0].metrics["problem.p"] == 64 * 32 + 32 + 32 * 10 + 10


def test_a_new_torch_version_reruns_the_finished_runs(tiny, tmp_path, count_reports, monkeypatch):
    out = tmp_path / "sw"
    lg.sweep(tiny, {"seed": [0]}, out, progress=False)
    assert [r.status for r in lg.sweep(tiny, {"seed": [0]}, out, progress=False).runs] == [
        "skipped"
    ]
    real = keys.versions()
    monkeypatch.setattr(keys, "versions", lambda: {**real, "torch": "99.0"})
    res = lg.sweep(tiny, {"seed": [0]}, out, progress=False)
    assert [r.status for r in res.runs] == ["done"] and count_reports == ["seed=0", "seed=0"]
