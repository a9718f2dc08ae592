"""One study per feature: the CLI, the report and the experiment give the same numbers.

On one tiny config, ``lossgeometry kernel --at both``, the report's kernel section and the
``kernel_change`` experiment's measurement report the same relative kernel change and the same
``λ_min`` at both points; ``lossgeometry hessian --point both`` and the report's curvature
section report the same curvature profile (all with their default options).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lossgeometry.app.cli import app

TINY = """
seed = 0
dtype = "float64"
[data]
name = "synthetic-regression"
n = 6
d = 3
k = 1
[model]
name = "mlp"
width = 8
depth = 1
activation = "tanh"
parameterization = "ntk"
[train]
optimizer = "gd"
lr = 1.0
lr_scale = "auto"
steps = 5
record_every = 1
[report]
sections = ["problem", "training", "kernel", "curvature"]
"""

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("same")
    cfg = d / "tiny.toml"
    cfg.write_text(TINY)
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(d / "rep"), "--no-progress"])
    assert res.exit_code == 0, res.output
    sections = json.loads((d / "rep" / "results.json").read_text())["sections"]
    return cfg, d, sections


def test_kernel_change_is_the_same_in_cli_report_and_experiment(tiny):
    from lossgeometry.app.config import load_config, setup
    from lossgeometry.app.experiments.kernel_change import (
        KernelChangeConfig,
        measure_kernel_change,
    )

    cfg, d, sections = tiny
    out = d / "kernel.json"
    res = runner.invoke(app, ["kernel", "-c", str(cfg), "--at", "both", "-o", str(out)])
    assert res.exit_code == 0, res.output
    cli = json.loads(out.read_text())
    report = sections["kernel"]["results"]
    # the experiment's measurement on the config's data, model and training (GD, 5 steps at
    # lr = 1/λ_max(∇²L(w0)); the target is never reached, so all 5 steps run)
    pb = setup(load_config(cfg), do_train=False).problem
    X, Y = pb.batch()[0], pb.batch()[1]
    exp_cfg = KernelChangeConfig(
        widths=(8, 16), depth=1, activation="tanh", target=1e-30, max_steps=5, record_every=1
    )
    exp = measure_kernel_change(exp_cfg, "linear", 8, 0, X, Y)
    assert exp["steps"] == 5
    change = cli["relative_change"]
    assert change > 0
    assert report["relative_change"] == pytest.approx(change, rel=1e-12, abs=0)
    assert exp["rel_change_fro"] == pytest.approx(change, rel=1e-12, abs=0)
    for name, key in (("init", "lambda_min_w0"), ("trained", "lambda_min_wT")):
        lam = cli["points"][name]["lambda_min"]
        assert report[name]["lambda_min"] == pytest.approx(lam, rel=1e-12, abs=0)
        assert exp[key] == pytest.approx(lam, rel=1e-12, abs=0)
    assert cli["pl_star_mu"]["init"] == pytest.approx(report["pl_star_mu_init"], rel=1e-12)
    assert cli["summary"]["relative_change"] == change


def test_curvature_profile_is_the_same_in_cli_and_report(tiny):
    cfg, d, sections = tiny
    out = d / "hessian"
    res = runner.invoke(app, ["hessian", "-c", str(cfg), "--point", "both", "-o", str(out)])
    assert res.exit_code == 0, res.output
    cli = json.loads((out / "hessian.json").read_text())
    report = sections["curvature"]["results"]
    assert {k: v for k, v in cli["options"].items() if k != "seed"} == {
        k: v for k, v in report["options"].items() if k != "seed"
    }
    for name in ("init", "trained"):
        a, b = cli["points"][name], report["points"][name]
        assert len(a["spectrum"]["top"]) == 3 and len(a["spectrum"]["bottom"]) == 3
        for end in ("top", "bottom"):
            assert b["spectrum"][end] == pytest.approx(a["spectrum"][end], rel=1e-12, abs=1e-15)
        assert b["density"]["density"] == pytest.approx(a["density"]["density"], rel=1e-12)
        for key in ("lambda_max", "lf_squared", "beta", "bound"):
            assert b["bound"][key] == pytest.approx(a["bound"][key], rel=1e-12)
    # the report measures the trace at the trained point only
    tr_cli, tr_rep = cli["points"]["trained"]["trace"], report["points"]["trained"]["trace"]
    for key in ("estimate", "ci_low", "ci_high"):
        assert tr_rep[key] == pytest.approx(tr_cli[key], rel=1e-12)
    assert "trace" not in report["points"]["init"]
