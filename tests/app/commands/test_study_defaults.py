"""Commands take their defaults from the study's options dataclass; experiment TOMLs are typed."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from lossgeometry.app.cli import app
from lossgeometry.app.commands._defaults import default_of, study_options, with_default
from lossgeometry.app.experiments import bundled_configs, run_experiment
from lossgeometry.app.experiments.experiment import EXPERIMENT_OPTIONS
from lossgeometry.app.experiments.options import experiment_options
from lossgeometry.curvature.profile import CurvatureOptions
from lossgeometry.kernel.change import KernelChangeOptions
from lossgeometry.options import OptionsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

runner = CliRunner()


def test_defaults_helpers():
    assert default_of(CurvatureOptions, "top") == CurvatureOptions().top
    assert (
        with_default("Tol.", CurvatureOptions, "tol") == f"Tol. (default: {CurvatureOptions().tol})"
    )
    assert with_default("B.", CurvatureOptions, "bound").endswith("(default: true)")
    with pytest.raises(KeyError, match="no option 'tpo'"):
        default_of(CurvatureOptions, "tpo")
    opts = study_options(CurvatureOptions, top=None, bottom=1, seed=4)
    assert opts == CurvatureOptions(bottom=1, seed=4)
    with pytest.raises(OptionsError, match=r"\[hessian\] tpo: unknown option"):
        study_options(CurvatureOptions, "hessian", tpo=1)


@pytest.mark.parametrize(
    ("command", "cls", "fields"),
    [
        ("hessian", CurvatureOptions, ("top", "bottom", "probes", "steps", "trace_samples")),
        ("kernel", KernelChangeOptions, ("tol", "max_size")),
    ],
)
def test_help_quotes_the_dataclass_defaults(command, cls, fields):
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"})
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for f in fields:
        assert f"(default: {default_of(cls, f)})" in text, f


def test_bad_option_values_are_clean_cli_errors(tmp_path):
    res = runner.invoke(app, ["hessian", "--top", "-1", "-o", str(tmp_path)])
    assert res.exit_code == 2 and "top = -1: must be non-negative" in res.output
    res = runner.invoke(app, ["kernel", "--solver", "power", "-o", str(tmp_path / "k.json")])
    assert res.exit_code == 2 and "choose one of" in res.output


@pytest.mark.parametrize("command", ["hessian", "kernel"])
def test_former_method_flag_names_the_solver_flag(command, tmp_path):
    res = runner.invoke(app, [command, "--method", "dense", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "--method is now called --solver: pass --solver dense" in " ".join(res.output.split())


@pytest.mark.parametrize("name", sorted(bundled_configs()))
@pytest.mark.parametrize("full", [False, True])
def test_bundled_experiment_configs_are_typed(name, full):
    cfg = tomllib.loads(bundled_configs()[name].read_text(encoding="utf-8"))
    opts = experiment_options(EXPERIMENT_OPTIONS[name], cfg, full)
    for key, value in cfg.items():
        if key in ("experiment", "full") or isinstance(value, dict):
            continue
        got = getattr(opts, key)
        want = cfg["full"][key] if full and key in cfg.get("full", {}) else value
        assert _plain(got) == want, key


def _plain(x):
    return [_plain(v) for v in x] if isinstance(x, (tuple, list)) else x


def test_unknown_experiment_key_names_the_closest(tmp_path):
    cfg = tmp_path / "ws.toml"
    cfg.write_text('experiment = "width_sweep"\nwidths = [8, 16]\nbotleneck = 4\n')
    with pytest.raises(
        OptionsError, match=r"\[width_sweep\] botleneck: .*did you mean 'bottleneck'"
    ):
        run_experiment(cfg, tmp_path / "out", progress=False)
    cfg.write_text('experiment = "width_sweep"\n[data]\nn = "many"\n')
    with pytest.raises(OptionsError, match=r"n = 'many': expected an integer"):
        run_experiment(cfg, tmp_path / "out", progress=False)
