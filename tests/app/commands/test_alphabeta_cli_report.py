"""`lossgeometry alphabeta` and the report section on tiny configs."""

import json

import numpy as np
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app

runner = CliRunner()

TINY = """
seed = 0
[data]
name = "digits"
n = 24
one_hot = true
[model]
name = "mlp"
width = 16
depth = 1
[train]
steps = 12
record_every = 4
[report]
sections = ["training", "alphabeta"]
"""


def test_cli_records_a_run_and_checks_an_example(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "ab"
    res = runner.invoke(
        app,
        [
            "alphabeta",
            "-c",
            str(cfg),
            "--optimizer",
            "sgd",
            "--lr",
            "0.01",
            "--batch-size",
            "6",
            "--steps",
            "10",
            "--seeds",
            "0,1",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "smallest pair" in res.output
    summary = json.loads((out / "alphabeta.json").read_text())
    trace = lg.load_result(out / "trace.json")
    assert summary["runs"] == 2 and trace.seeds == [0, 1]
    pair = trace.smallest_pair(0.1)
    assert summary["smallest_pair"] == (
        None if pair is None else {"alpha": pair[0], "beta": pair[1]}
    )
    assert (out / "alphabeta.png").stat().st_size > 1000
    res = runner.invoke(
        app, ["alphabeta", "--example", "example_1", "--grid", "11", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "0 fail" in res.output
    bad = runner.invoke(app, ["alphabeta", "--example", "nope", "--out", str(out)])
    assert bad.exit_code == 2 and "unknown example" in bad.output
    bad = runner.invoke(app, ["alphabeta", "-c", str(cfg), "--seeds", "a,b", "--out", str(out)])
    assert bad.exit_code == 2 and "--seeds" in bad.output


def test_report_section_replays_the_config_run(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "rep"
    res = runner.invoke(app, ["analyze", "--config", str(cfg), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    sec = results["sections"]["alphabeta"]
    assert sec["skipped"] is None and sec["error"] is None, sec
    r = sec["results"]
    assert r["summary"]["max_replay_error"] == 0.0
    assert r["summary"]["steps"] == 12
    # the replay's x^K is the training run's end point: f(x^K) matches the training record
    tr_loss = results["sections"]["training"]["results"]["loss_final"]
    n = 24  # MSE reduction "sum": the trace stores means
    assert np.isclose(r["summary"]["final_loss"][0], tr_loss / n, rtol=1e-6)
    assert "figures/alphabeta.png" in (out / "index.html").read_text()
    # a separate SGD run set by [report.alphabeta]
    cfg.write_text(TINY + "\n[report.alphabeta]\nbatch_size = 6\nsteps = 8\nseeds = [0, 1]\n")
    out2 = tmp_path / "rep2"
    res = runner.invoke(app, ["analyze", "--config", str(cfg), "--out", str(out2), "--no-progress"])
    assert res.exit_code == 0, res.output
    r2 = json.loads((out2 / "results.json").read_text())["sections"]["alphabeta"]["results"]
    assert r2["summary"]["runs"] == 2 and r2["summary"]["batch_size"] == 6
