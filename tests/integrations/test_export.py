"""Records into sinks from Python (``train(sinks=...)``) and from the CLI (``analyze``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app
from lossgeometry.integrations import JSONLinesSink
from tests.conftest import tiny_mlp, tiny_toml


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_streams_every_record_to_its_sinks(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 3, generator=g, dtype=torch.float64)
    problem = lg.Problem(tiny_mlp(), X, torch.randn(10, 2, generator=g, dtype=torch.float64))
    sink = JSONLinesSink(tmp_path / "r.jsonl")
    run = lg.train(problem, "gd", steps=7, lr=0.05, record_every=3, sinks=[sink])
    sink.close()
    lines = _lines(tmp_path / "r.jsonl")
    assert [d["step"] for d in lines] == [int(s) for s in run.steps]
    for key in ("loss", "grad_norm", "distance", "pl_ratio"):
        np.testing.assert_array_equal([d["scalars"][key] for d in lines], getattr(run, key))


def test_analyze_writes_records_and_summaries_to_jsonl_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_toml(["problem", "training", "kernel"]))
    out, tb, jl = tmp_path / "rep", tmp_path / "tb", tmp_path / "r.jsonl"
    res = CliRunner().invoke(
        app,
        [
            "analyze",
            "-c",
            str(cfg),
            "-o",
            str(out),
            "--no-progress",
            "--tensorboard",
            str(tb),
            "--jsonl",
            str(jl),
        ],
    )
    assert res.exit_code == 0, res.output
    traj = lg.Trajectory.load(out / "trajectory.json")
    summary = json.loads((out / "results.json").read_text())["sections"]["kernel"]["summary"]
    lines = _lines(jl)
    records, last = lines[:-1], lines[-1]
    assert [d["step"] for d in records] == [int(s) for s in traj.steps]
    np.testing.assert_array_equal([d["scalars"]["loss"] for d in records], traj.loss)
    assert last["step"] == int(traj.steps[-1])
    assert last["scalars"]["kernel/lambda_min_w0"] == summary["lambda_min_w0"]
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    loss = [e.value for e in acc.Scalars("lossgeometry/loss")]
    np.testing.assert_allclose(loss, traj.loss, rtol=1e-6)  # TensorBoard stores float32
    (lam,) = acc.Scalars("lossgeometry/kernel/lambda_min_w0")
    assert lam.value == pytest.approx(summary["lambda_min_w0"], rel=1e-6)
