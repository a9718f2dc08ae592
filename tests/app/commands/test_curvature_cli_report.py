"""The `lossgeometry hessian` command and the curvature report section, end to end."""

import json

from typer.testing import CliRunner

from lossgeometry.app.cli import app
from tests.conftest import tiny_toml

TINY = tiny_toml(
    ["problem", "training", "curvature"],
    extra="[report.curvature]\nprobes = 2\nsteps = 12\ntrace_samples = 12\n",
)

runner = CliRunner()


def test_hessian_command(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "h"
    res = runner.invoke(
        app,
        [
            "hessian",
            "-c",
            str(cfg),
            "--point",
            "init",
            "--top",
            "2",
            "--bottom",
            "2",
            "--model-hessian",
            "--probes",
            "2",
            "--steps",
            "10",
            "--trace-samples",
            "12",
            "-o",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "hessian.json").read_text())
    for name in ("init",):
        pt = data["points"][name]
        assert (
            len(pt["spectrum"]["top"]) == 2
            and pt["spectrum"]["bottom"][0] <= pt["spectrum"]["top"][0]
        )
        assert pt["trace"]["ci_low"] <= pt["trace"]["estimate"] <= pt["trace"]["ci_high"]
        assert pt["bound"]["holds"] is True and pt["model_hessian_norm"]["norm"] > 0
    assert (out / "density_init.png").stat().st_size > 1000
    spec = data["points"]["init"]["spectrum"]
    # a tiny model goes dense (exact), which reports residuals
    assert spec["method"] == "dense" and spec["criterion"] == "residual"
    bad = runner.invoke(app, ["hessian", "-c", str(cfg), "--point", "nowhere", "-o", str(out)])
    assert bad.exit_code == 2 and "--point" in bad.output
    bad = runner.invoke(app, ["hessian", "-c", str(cfg), "--criterion", "ritz", "-o", str(out)])
    assert bad.exit_code == 2 and "--criterion" in bad.output
    res = runner.invoke(
        app,
        [
            *("hessian", "-c", str(cfg), "--criterion", "residual", "--top", "1"),
            *("--bottom", "1", "--no-trace", "--no-density", "-o", str(out), "--no-progress"),
        ],
    )
    assert res.exit_code == 0, res.output
    spec = json.loads((out / "hessian.json").read_text())["points"]["init"]["spectrum"]
    assert len(spec["top"]) == 1 and len(spec["error_bounds"]) == 2


def test_curvature_report_section(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "rep"
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    sec = json.loads((out / "results.json").read_text())["sections"]["curvature"]["results"]
    for name in ("init", "trained"):
        spec = sec["points"][name]["spectrum"]
        assert len(spec["top"]) == 3 and len(spec["bottom"]) == 3
        assert sec["points"][name]["bound"]["holds"] is True
    assert "trace" in sec["points"]["trained"]
    assert (out / "figures" / "curvature_density.png").stat().st_size > 1000
    assert "λ_max(∇²L)" in (out / "index.html").read_text()
