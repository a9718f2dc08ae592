"""CSV and JSON-lines sinks: what the Monitor recorded, read back exactly."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.integrations import CSVSink, JSONLinesSink
from tests.conftest import tiny_mlp


def _run(sinks, steps: int = 4):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    model = tiny_mlp()
    mon = lg.Monitor(
        lg.Problem(model, X, Y),
        every=2,
        measure=("hessian_max", "aiming_angle", "hessian_density"),
        sinks=sinks,
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(steps + 1):
        mon.step(step)
        opt.zero_grad()
        (0.5 * ((model(X) - Y) ** 2).sum()).backward()
        opt.step()
    mon.close()
    return mon


def test_csv_and_jsonl_hold_every_record(tmp_path) -> None:
    mon = _run([CSVSink(tmp_path / "m.csv"), JSONLinesSink(tmp_path / "m.jsonl")])
    with (tmp_path / "m.csv").open() as f:
        rows = list(csv.DictReader(f))
    got = {(int(r["step"]), r["name"]): float(r["value"]) for r in rows}
    for j, t in enumerate(mon.records["steps"]):
        for name in ("loss", "grad_norm", "pl_ratio", "hessian_max"):
            assert got[(t, name)] == mon.records[name][j]  # repr(float): exact
    for t, angle in mon.aiming_hindsight.items():
        assert got[(t, "aiming_angle")] == angle
    lines = [json.loads(s) for s in (tmp_path / "m.jsonl").read_text().splitlines()]
    recs = [d for d in lines if "scalars" in d and "loss" in d["scalars"]]
    assert [d["step"] for d in recs] == mon.records["steps"]
    assert [d["scalars"]["loss"] for d in recs] == mon.records["loss"]
    hists = [d for d in lines if "histogram" in d]
    assert [d["step"] for d in hists] == mon.records["steps"]
    for d, (_, h) in zip(hists, mon.histograms["hessian_density"], strict=True):
        np.testing.assert_array_equal(d["counts"], h.counts)
        np.testing.assert_array_equal(d["edges"], h.edges)


def test_jsonl_writes_non_finite_numbers_as_strings(tmp_path) -> None:
    sink = JSONLinesSink(tmp_path / "x.jsonl")
    sink.write_scalars(3, {"pl_ratio": float("inf"), "a": float("nan")})
    sink.close()
    d = json.loads((tmp_path / "x.jsonl").read_text())
    assert d == {"step": 3, "scalars": {"pl_ratio": "inf", "a": "nan"}}
    with pytest.raises(AttributeError):
        import lossgeometry.integrations as integ

        integ.NoSuchSink  # noqa: B018


def test_sinks_off_rank_zero_open_no_file(monkeypatch, tmp_path) -> None:
    """Under torch.distributed (faked here: rank 1) a sink writes nothing unless asked to."""
    import lossgeometry.integrations.files as files

    monkeypatch.setattr(files, "process_rank", lambda: 1)
    sinks = [CSVSink(tmp_path / "a.csv"), JSONLinesSink(tmp_path / "a.jsonl")]
    for sink in sinks:
        assert not sink.active
        sink.write_scalars(0, {"loss": 1.0})
        sink.close()
    assert list(tmp_path.iterdir()) == []
    sink = CSVSink(tmp_path / "b.csv", rank_zero_only=False)
    sink.write_scalars(3, {"loss": 0.5})
    sink.close()
    assert sink.active and (tmp_path / "b.csv").read_text().splitlines()[1] == "3,loss,0.5"
