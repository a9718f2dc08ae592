"""analyze_manifold, the report section, the CLI command and the experiment, end to end."""

from __future__ import annotations

import json

import pytest
import torch
from manifold_fixtures import exponential_problem, mlp_problem
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.sections.base import Context


def test_analyze_manifold_on_a_subset(tmp_path) -> None:
    pr = mlp_problem(n=30, d=4, width=16, k=2)  # p = 114 > nk = 60
    res = lg.analyze_manifold(pr, max_equations=20, walk_steps=2, radii=(1e-2, 1e-3, 1e-4))
    assert res.success and len(res.samples) == 10 and res.nk == 20 and res.n_total == 30
    assert any("studied 10 of 30 samples" in n for n in res.notes)
    s = res.summary()
    assert s["rank"] == 20 and s["dimension"] == s["expected_dimension"] == pr.p - 20
    assert s["hessian_nullity"] == s["dimension"] and s["agrees"]
    assert s["normal_exponent"] == pytest.approx(2, abs=0.05)
    assert s["tangent_exponent"] == pytest.approx(4, abs=0.2)
    assert s["midpoint_loss"] > 0 and s["negative_curvature_found"]
    assert s["walk_max_loss"] < 1e-20
    back = lg.ManifoldAnalysis.load(res.save(tmp_path / "a.json"))
    assert isinstance(back.report, lg.ManifoldReport) and isinstance(back.walk, lg.ManifoldWalk)
    assert back.summary()["dimension"] == s["dimension"]
    assert res.plot() is not None


def test_analyze_manifold_says_why_it_could_not() -> None:
    res = lg.analyze_manifold(exponential_problem(n=20))
    assert not res.success and "under-parameterized" in res.reason
    assert res.report is None and res.summary()["success"] is False


def _context(pr, tmp_path, options=None) -> Context:
    run = lg.train(pr, "gd", steps=5, lr=0.01)
    return Context(pr, {}, run.w0, run, tmp_path, 0, False, options or {})


def test_report_section(tmp_path) -> None:
    from lossgeometry.app.sections.manifold import manifold_section

    pr = mlp_problem(n=12, d=4, width=16, k=2)
    out = manifold_section(_context(pr, tmp_path, {"max_equations": 16, "walk_steps": 1}))
    assert out.skipped is None
    assert out.results["summary"]["agrees"] and out.results["summary"]["nk"] == 16
    assert (tmp_path / "figures" / "manifold.png").exists() and "rank J" in out.html
    json.dumps(out.results)  # JSON-able
    with pytest.raises(
        ValueError, match="max_equation: unknown option; did you mean 'max_equations'"
    ):
        manifold_section(_context(pr, tmp_path, {"max_equation": 16}))
    under = manifold_section(_context(exponential_problem(), tmp_path))
    assert under.skipped is not None and "under-parameterized" in under.skipped
    ce = lg.Problem(
        torch.nn.Linear(3, 2).double(),
        torch.randn(6, 3, dtype=torch.float64),
        torch.tensor([0, 1, 0, 1, 1, 0]),
        loss="cross_entropy",
    )
    assert "squared loss" in manifold_section(_context(ce, tmp_path)).skipped


def test_cli_manifold_command(tmp_path) -> None:
    from lossgeometry.app.cli import app

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'seed = 0\ndtype = "float64"\n'
        '[data]\nname = "synthetic-regression"\nn = 12\nd = 4\nk = 1\n'
        '[model]\nname = "mlp"\nwidth = 8\ndepth = 1\nparameterization = "standard"\n'
        "[train]\nsteps = 5\nlr = 0.5\n"
    )
    out = tmp_path / "m.json"
    fig = tmp_path / "m.png"
    r = CliRunner().invoke(
        app,
        [
            "manifold",
            "-c",
            str(cfg),
            "-o",
            str(out),
            "--walk-steps",
            "1",
            "--figure",
            str(fig),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert d["summary"]["agrees"] and d["summary"]["nk"] == 12 and fig.exists()
    bad = CliRunner().invoke(app, ["manifold", "-c", str(cfg), "-o", str(out), "--samples", "0"])
    assert bad.exit_code == 2 and "--samples" in bad.output


def test_experiment_tiny_grid_and_resume(tmp_path) -> None:
    from lossgeometry.app.experiments import run_experiment

    cfg = tmp_path / "e.toml"
    cfg.write_text(
        'experiment = "manifold_dimension"\ndatasets = ["synthetic-regression"]\n'
        "pca_max_dim = 20\n"
        "[widths]\nsynthetic-regression = [3]\n[samples]\nsynthetic-regression = [4, 40]\n"
        "[synthetic]\nd = 3\nk = 1\n"
        "[degenerate]\nn = 6\ndepths = [1, 2]\nwidths = [3]\n"
    )
    out = tmp_path / "run"
    summary = run_experiment(cfg, out, progress=False)["summary"]
    assert summary["points"] == 2 and summary["interpolated"] == 1
    assert summary["under_parameterized"] == 1  # p = 16 < nk = 40
    assert summary["dimension_equals_p_minus_nk"] == 1 and summary["pca_agrees"] == 1
    assert summary["degenerate_points"] == summary["degenerate_agree"] == 4
    assert (out / "dimension.png").exists() and (out / "degenerate.png").exists()
    res = json.loads((out / "results.json").read_text())
    row = next(r for r in res["grid"] if r["interpolated"])
    assert row["dimension"] == row["p"] - row["nk"] == row["hessian_nullity"]
    # resume: finished points are read back, not recomputed
    point = out / "points" / "synthetic-regression_w3_n4.json"
    d = json.loads(point.read_text())
    d["point"]["seconds"] = -1.0  # the file holds {key, inputs, point}
    point.write_text(json.dumps(d))
    run_experiment(cfg, out, progress=False)
    again = json.loads((out / "results.json").read_text())
    assert any(r["seconds"] == -1.0 for r in again["grid"])
