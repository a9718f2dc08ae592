"""Report texts that misled: each section says what it measured, on which data.

The PL* section says why its bound is a flat line; the manifold section says it studies a
subset (p − mk beside the Problem section's p − nk); the Problem section names a factory's own
data as such; ``--help`` shows no ``<bool>`` for flags; ``run --list`` describes each
experiment.
"""

from __future__ import annotations

import html

import torch
from torch import nn
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app
from lossgeometry.app.experiments import bundled_configs
from lossgeometry.app.sections.base import Context


def _tiny_regression() -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 3, generator=g, dtype=torch.float64)
    model = lg.models.mlp(3, 64, 1, 1, parameterization="ntk", seed=0).double()
    with torch.no_grad():
        Y = model(X) + 0.05 * torch.randn(4, 1, generator=g, dtype=torch.float64)
    return lg.Problem(model, X, Y)


def test_plstar_section_explains_a_flat_bound(tmp_path) -> None:
    from lossgeometry.app.sections.plstar import plstar_section

    problem = _tiny_regression()
    run = lg.train(problem, "gd", steps=20, lr=1e-4)  # η c µ ≈ 1.5e-5: the bound barely moves
    ctx = Context(
        problem=problem,
        config={},
        w0=problem.params(),
        trajectory=run,
        outdir=tmp_path,
        options={"samples": 2, "certified_gd_steps": 0},
    )
    out = plstar_section(ctx)
    text = html.unescape(out.html)
    check = lg.CertificateCheck.from_dict(out.results["training_run"])
    eta_c_mu = 1 - check.rate
    assert 1e-6 < eta_c_mu < 1e-4
    assert f"η c µ = {eta_c_mu:.2g}" in text  # in the text and in the caption
    assert "drawn as a flat line at L(w0)" in text
    assert f"(the bound is flat: η c µ = {eta_c_mu:.2g} per step)" in text


def test_manifold_section_says_it_studies_a_subset(tmp_path) -> None:
    from lossgeometry.app.sections.manifold import manifold_section

    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 4, generator=g, dtype=torch.float64)
    Y = torch.randn(12, 2, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    problem = lg.Problem(
        nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2)).double(), X, Y
    )
    run = lg.train(problem, "gd", steps=5, lr=0.01)
    ctx = Context(problem, {}, run.w0, run, tmp_path, 0, False, {"max_equations": 16})
    out = manifold_section(ctx)
    text, p = html.unescape(out.html), problem.p
    assert out.results["summary"]["nk"] == 16
    assert "p − mk (m = 8)" in text and ">p − nk<" not in text
    assert f"p − mk = {p - 16:,}" in text
    assert f"The Problem section's p − nk = {p - 24:,} is the dimension for all 12 samples" in text
    assert "The measured dimension equals p − mk" in text


def test_problem_section_names_a_factorys_own_data(tmp_path) -> None:
    from lossgeometry.app.sections.problem import problem_section

    problem = _tiny_regression()
    run = lg.train(problem, "gd", steps=1, lr=0.01)
    cfg = {"data": {"name": "digits"}, "model": {"factory": "mine.py:make"}}
    ctx = Context(problem, cfg, run.w0, run, tmp_path, 0, False, {})
    ctx.data_name = "mine.py:make (own data)"
    out = problem_section(ctx)
    assert "mine.py:make (own data)" in out.html and "digits" not in out.html
    plain = Context(problem, {"data": {"name": "digits"}}, run.w0, run, tmp_path, 0, False, {})
    assert "digits" in problem_section(plain).html


def test_help_shows_no_bool_type_for_flags() -> None:
    runner = CliRunner()
    for args in (
        ["--help"],
        ["analyze", "--help"],
        ["run", "--help"],
        ["hessian", "--help"],
        ["kernel", "--help"],
        ["sweep", "--help"],
    ):
        res = runner.invoke(app, args, terminal_width=120)
        assert res.exit_code == 0, res.output
        assert "<bool>" not in res.output, args
        assert "--help" in res.output
    out = runner.invoke(app, ["analyze", "--help"], terminal_width=120).output
    assert "<path>" in out and "--fresh" in out  # value types stay; flags are still listed


def test_run_list_describes_each_experiment() -> None:
    res = CliRunner().invoke(app, ["run", "--list"])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    names = list(bundled_configs())
    rows = {ln.split()[0]: ln for ln in lines if ln.split() and ln.split()[0] in names}
    assert sorted(rows) == sorted(names)
    assert (
        "Relative change of the tangent kernel during training, versus width"
        in rows["kernel_change"]
    )
    for row in rows.values():
        assert len(row.split(None, 1)) == 2 and len(row.split(None, 1)[1]) > 20
    assert lines[-1].startswith("(configs: ")
