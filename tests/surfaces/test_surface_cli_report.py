"""`lossgeometry surface` and the report's surface section, end to end (tiny config)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app
from tests.conftest import tiny_toml

runner = CliRunner()


def _cfg(tmp_path, sections=("problem", "training", "surface"), extra="") -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_toml(list(sections), extra=extra))
    return str(path)


def test_surface_command_writes_a_reloadable_result_and_pngs(tmp_path):
    cfg, out = _cfg(tmp_path), tmp_path / "s"
    args = ["surface", "-c", cfg, "--points", "5", "-o", str(out), "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    s = lg.load_result(out / "surface.json")
    assert isinstance(s, lg.LossSurface) and s.loss.shape == (5, 5) and s.directions == "random"
    assert s.loss[2, 2] == pytest.approx(s.center_loss, rel=1e-6)
    for name in ("surface_contour.png", "surface_surface3d.png"):
        assert (out / name).stat().st_size > 1000
    rows = json.loads((out / "surface_rows.json").read_text())["rows"]
    assert len(rows) == 5
    again = runner.invoke(app, args)  # every row is reused
    assert again.exit_code == 0, again.output
    assert lg.load_result(out / "surface.json").evaluated_points == 0
    pca = runner.invoke(app, [*args[:-3], "--directions", "pca", "-o", str(tmp_path / "p")])
    assert pca.exit_code == 0, pca.output
    sp = lg.load_result(tmp_path / "p" / "surface.json")
    assert sp.directions == "pca" and sp.trajectory.shape == (4, 2)  # 6 steps, every 2
    line = runner.invoke(
        app,
        [
            "surface",
            "-c",
            cfg,
            "--kind",
            "interpolation",
            "--points",
            "6",
            "--xrange",
            "0,1",
            "-o",
            str(tmp_path / "i"),
            "--no-progress",
        ],
    )
    assert line.exit_code == 0, line.output
    p = lg.load_result(tmp_path / "i" / "path.json")
    assert p.direction == "interpolation" and p.loss[0] == pytest.approx(p.loss_start)
    assert p.loss[-1] == pytest.approx(p.loss_end)
    bad = runner.invoke(app, ["surface", "-c", cfg, "--xrange", "1", "-o", str(out)])
    assert bad.exit_code != 0 and "LO,HI" in bad.output


def test_surface_section_in_the_report(tmp_path):
    cfg = _cfg(tmp_path, extra="[report.surface]\npoints = 5\n")
    out = tmp_path / "r"
    res = runner.invoke(app, ["analyze", "-c", cfg, "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    sec = json.loads((out / "results.json").read_text())["sections"]["surface"]
    surf = lg.LossSurface.from_dict(sec["results"]["surface"])
    assert np.asarray(surf.loss).shape == (5, 5)
    assert sec["summary"]["center_loss"] == pytest.approx(surf.center_loss)
    assert sec["summary"]["path_loss_end"] == pytest.approx(surf.center_loss, rel=1e-6)
    assert (out / "figures" / "surface.png").stat().st_size > 1000
    assert "filter-normalized" in (out / "index.html").read_text()
    bad = _cfg(tmp_path, extra="[report.surface]\npionts = 5\n")
    res = runner.invoke(app, ["analyze", "-c", bad, "-o", str(tmp_path / "b"), "--no-progress"])
    assert res.exit_code != 0 and "did you mean 'points'" in res.output
