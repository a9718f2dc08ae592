import json

import pytest
from typer.testing import CliRunner

from lossgeometry import __version__
from lossgeometry.app.cli import app
from tests.conftest import tiny_toml

TINY = tiny_toml(["problem", "training"], width=24)

runner = CliRunner()


def test_analyze_end_to_end_and_resume(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "rep"
    res = runner.invoke(app, ["analyze", "--config", str(cfg), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    index = (out / "index.html").read_text()
    assert "figures/training.png" in index and "Problem" in index
    assert (out / "figures" / "training.png").stat().st_size > 1000
    results = json.loads((out / "results.json").read_text())
    summary = results["sections"]["problem"]["results"]
    assert summary["n"] == 16 and summary["k"] == 10
    assert summary["overparameterization"] == pytest.approx(summary["p"] / 160)
    tr = results["sections"]["training"]["results"]
    assert tr["steps"] == 6 and tr["loss_final"] < tr["loss_initial"]
    # resume reuses the finished sections and the run
    res2 = runner.invoke(app, ["analyze", "--config", str(cfg), "--out", str(out), "--no-progress"])
    assert res2.exit_code == 0 and "reused" in res2.output
    assert (
        json.loads((out / "results.json").read_text())["sections"]["training"]
        == results["sections"]["training"]
    )
    # a changed config starts afresh
    cfg.write_text(TINY.replace("steps = 6", "steps = 4"))
    res3 = runner.invoke(app, ["analyze", "--config", str(cfg), "--out", str(out), "--no-progress"])
    assert res3.exit_code == 0 and "reused" not in res3.output
    assert (
        json.loads((out / "results.json").read_text())["sections"]["training"]["results"]["steps"]
        == 4
    )


def test_sections_switch(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "rep"
    res = runner.invoke(
        app, ["analyze", "-c", str(cfg), "-o", str(out), "--sections", "problem", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert list(json.loads((out / "results.json").read_text())["sections"]) == ["problem"]
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(out), "--sections", "nope"])
    assert res.exit_code == 2 and "unknown report sections" in res.output


def test_user_model_factory(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    res = runner.invoke(
        app,
        [
            "analyze",
            "-c",
            str(cfg),
            "-o",
            str(tmp_path / "r"),
            "--model",
            "examples/my_model.py:make",
            "--sections",
            "problem",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["analyze", "-c", str(cfg), "-o", str(tmp_path / "r"), "--model", "nope_pkg.mod:f"]
    )
    assert res.exit_code == 2 and "could not import" in res.output


def test_cli_basics():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0 and "analyze" in res.output
    res = runner.invoke(app, ["sections"])
    assert "training" in res.output
    res = runner.invoke(app, ["analyze", "--config", "/nonexistent.toml"])
    assert res.exit_code == 2 and "not found" in res.output


def test_bad_data_in_config(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TINY.replace('name = "digits"', 'name = "mnist:/no/such/dir"'))
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "/no/such/dir" in res.output
    cfg.write_text(TINY.replace('name = "digits"', 'name = "imagenet"'))
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "imagenet" in res.output


def test_bad_keys_are_clean_errors_naming_the_key_and_the_fix(tmp_path):
    cfg = tmp_path / "bad.toml"
    for text, says in [
        (
            TINY.replace("steps = 6", "stpes = 6"),
            "[train] stpes: unknown option; did you mean 'steps'",
        ),
        (TINY.replace("n = 16", "nn = 16"), "[data] nn: unknown option of data set 'digits'"),
        (TINY + "[report.kernel]\ntpo = 1\n[report.kernl]\ntop = 1\n", "did you mean 'kernel'"),
        (TINY.replace("seed = 0", "seed = 1.5"), "seed = 1.5: expected an integer"),
    ]:
        cfg.write_text(text)
        res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", str(tmp_path / "r")])
        assert res.exit_code == 2 and says in " ".join(res.output.split()), res.output
        assert not (tmp_path / "r").exists()  # nothing ran
    cfg.write_text(TINY)
    res = runner.invoke(app, ["analyze", "-c", str(cfg), "-o", "x", "--sections", "problme"])
    assert res.exit_code == 2 and "did you mean 'problem'" in res.output
