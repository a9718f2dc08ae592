"""`lossgeometry certify` and the PL* report section on a tiny problem."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app

TINY = """
seed = 0
dtype = "float64"
[data]
name = "synthetic-regression"
n = 4
d = 3
k = 1
[model]
name = "mlp"
width = 64
depth = 1
activation = "tanh"
parameterization = "ntk"
[train]
optimizer = "gd"
lr = 0.5
steps = 10
record_every = 2
"""


def test_certify_command_writes_json(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY, encoding="utf-8")
    out = tmp_path / "cert.json"
    res = CliRunner().invoke(
        app,
        [
            "certify",
            "-c",
            str(cfg),
            "--samples",
            "2",
            "--rounds",
            "1",
            "--train",
            "--gd-steps",
            "5",
            "--sgd-batch",
            "2",
            "-o",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    cert = lg.PLStarCertificate.from_dict(d["certificate"])
    assert cert.p == 321 and cert.n == 4
    assert "certified_gd" in d and "training_run" in d
    assert ("sgd_step" in d) == (cert.mu > 0)
    assert "PL* certificate" in res.output


def test_certify_command_clean_error_for_cross_entropy(tmp_path):
    ce = TINY.replace("k = 1\n", 'num_classes = 2\n[loss]\nname = "cross_entropy"\n').replace(
        'name = "synthetic-regression"', 'name = "synthetic-classification"'
    )
    cfg = tmp_path / "ce.toml"
    cfg.write_text(ce, encoding="utf-8")
    res = CliRunner().invoke(app, ["certify", "-c", str(cfg), "-o", str(tmp_path / "x.json")])
    assert res.exit_code == 2
    assert "square loss" in res.output


def test_report_section(tmp_path):
    from lossgeometry.app.sections.base import Context
    from lossgeometry.app.sections.plstar import plstar_section
    from lossgeometry.app.sections.registry import available_sections

    assert "plstar" in {s.name for s in available_sections()}
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 3, generator=g, dtype=torch.float64)
    model = lg.models.mlp(3, 64, 1, 1, parameterization="ntk", seed=0).double()
    with torch.no_grad():
        Y = model(X) + 0.05 * torch.randn(4, 1, generator=g, dtype=torch.float64)
    problem = lg.Problem(model, X, Y)
    run = lg.train(problem, "gd", steps=20, lr=0.05)
    ctx = Context(
        problem=problem,
        config={},
        w0=problem.params(),
        trajectory=run,
        outdir=tmp_path,
        options={"samples": 2, "certified_gd_steps": 10},
    )
    out = plstar_section(ctx)
    assert out.skipped is None
    assert "certificate" in out.results and "training_run" in out.results
    assert (tmp_path / "figures" / "plstar_training.png").is_file()
    json.dumps(lg.results.to_jsonable(out.results))
    for row in out.results["pl_ratio_vs_kernel"]:
        assert row["pl_ratio"] >= row["two_c_lambda_min"] * (1 - 1e-9)
    if out.results["certificate"]["certified"]:
        assert out.results["certified_gd"]["loss_holds"]
