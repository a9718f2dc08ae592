"""One default reduction per loss, the same in Python and in configs (issue #17, item 7).

The CLI's cross-entropy used to inherit ``reduction = "sum"`` from the built-in MSE table
while ``lg.Problem`` used ``"mean"``: the same config meant a loss n times larger on the
command line. Now an unset ``[loss] reduction`` is the loss's own default everywhere.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app
from lossgeometry.app.config import DEFAULT_CONFIG, as_config, build_problem, load_config, merge
from lossgeometry.problem import DEFAULT_REDUCTION, default_reduction
from tests.conftest import tiny_toml

runner = CliRunner()


def test_the_one_table_of_defaults():
    assert dict(DEFAULT_REDUCTION) == {
        "mse": "sum",
        "cross_entropy": "mean",
        "bce": "mean",
        "nll": "mean",
    }
    assert default_reduction("my_custom_loss") == "mean"
    with pytest.raises(TypeError):
        DEFAULT_REDUCTION["mse"] = "mean"  # type: ignore[index]  # read-only


@pytest.mark.parametrize("loss", sorted(DEFAULT_REDUCTION))
def test_python_and_config_use_the_same_default(loss):
    """A config that names only the loss gets the Problem's default for that loss."""
    cfg = load_config(overrides={"loss": {"name": loss}, "data": {"n": 8}, "model": {"width": 4}})
    assert "reduction" not in cfg.loss  # unset: not carried over from another loss
    pb, _ = build_problem(cfg)
    torch.manual_seed(0)
    X = torch.randn(4, 3)
    Y = torch.randn(4, 2) if loss == "mse" else torch.tensor([0, 1, 0, 1])
    if loss == "bce":
        Y = torch.rand(4, 2)
    python = lg.Problem(torch.nn.Linear(3, 2), X, Y, loss=loss)
    assert pb.reduction == python.reduction == DEFAULT_REDUCTION[loss]
    assert cfg.loss.effective_reduction == DEFAULT_REDUCTION[loss]


def test_cross_entropy_from_a_toml_is_mean_and_an_explicit_reduction_wins(tmp_path):
    path = tmp_path / "ce.toml"
    path.write_text('[data]\nn = 8\n[model]\nwidth = 4\n[loss]\nname = "cross_entropy"\n')
    pb, _ = build_problem(load_config(path))
    assert pb.reduction == "mean"  # was "sum", inherited from the default MSE table
    pb, _ = build_problem(load_config(path, {"loss": {"reduction": "sum"}}))
    assert pb.reduction == "sum"
    # a sweep sets keys on the base dict: the same rule holds there
    swept = as_config(merge(DEFAULT_CONFIG, {"loss": {"name": "cross_entropy"}}))
    assert swept.loss.effective_reduction == "mean"


def test_default_config_numbers_are_unchanged():
    """The built-in config is MSE with reduction "sum", as before (only unset now)."""
    default, _ = build_problem(load_config())
    explicit, _ = build_problem(load_config(overrides={"loss": {"reduction": "sum"}}))
    assert default.reduction == "sum" and default.loss_scale == 1.0
    w = default.params()
    assert torch.equal(w, explicit.params())
    assert float(default.loss(w)) == float(explicit.loss(w))
    assert torch.equal(default.grad(w), explicit.grad(w))


def test_analyze_help_states_the_defaults():
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "200"})
    text = " ".join(res.output.split())
    for loss, reduction in DEFAULT_REDUCTION.items():
        assert f'"{reduction}" for {loss}' in text
    assert "loss.reduction" in text and "--trust-config" in text


def test_problem_section_shows_the_reduction_and_whether_it_is_the_default(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_toml(["problem"]))
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "a" / "index.html").read_text()
    assert "reduction" in page and "sum (the loss&#x27;s default)" in page.replace("'", "&#x27;")
    cfg.write_text(tiny_toml(["problem"], extra='[loss]\nreduction = "mean"\n'))
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "b" / "index.html").read_text()
    assert "mean" in page and "default)" not in page
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["sections"]["problem"]["summary"]["reduction"] == "mean"
