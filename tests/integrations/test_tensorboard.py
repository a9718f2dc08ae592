"""TensorBoard sink: scalars and the Hessian density histogram, read back from the event file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossgeometry as lg

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from lossgeometry.integrations import TensorBoardSink
from tests.conftest import tiny_mlp


def test_event_file_holds_the_records(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    model = tiny_mlp()
    names = ("hessian_max", "kernel_min", "kernel_cond", "aiming_angle", "hessian_density")
    mon = lg.Monitor(
        lg.Problem(model, X, Y), every=2, measure=names, sinks=[TensorBoardSink(tmp_path)]
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(7):
        mon.step(step)
        opt.zero_grad()
        (0.5 * ((model(X) - Y) ** 2).sum()).backward()
        opt.step()
    mon.close()

    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    for name in ("loss", "pl_ratio", "hessian_max", "kernel_min", "kernel_cond"):
        events = acc.Scalars(f"lossgeometry/{name}")
        assert [e.step for e in events] == [0, 2, 4, 6]
        # event files store float32
        np.testing.assert_allclose([e.value for e in events], mon.records[name], rtol=1e-6)
    aim = acc.Scalars("lossgeometry/aiming_angle")
    assert {e.step: e.value for e in aim} == pytest.approx(mon.aiming_hindsight, rel=1e-6)
    assert "lossgeometry/hessian_density" in tags["histograms"]
    hists = acc.Histograms("lossgeometry/hessian_density")
    assert [h.step for h in hists] == [0, 2, 4, 6]
    for h, (_, ours) in zip(hists, mon.histograms["hessian_density"], strict=True):
        v = h.histogram_value
        np.testing.assert_allclose(v.bucket, ours.counts, rtol=1e-6)
        np.testing.assert_allclose(v.bucket_limit, ours.edges[1:], rtol=1e-6)
        assert v.num == pytest.approx(float(ours.counts.sum()))  # = p
        assert v.num == pytest.approx(mon.problem.p)


def test_off_rank_zero_no_writer_is_made(monkeypatch, tmp_path) -> None:
    """Under torch.distributed (faked here: rank 1) the sink makes no event file."""
    import lossgeometry.integrations.tensorboard as tb

    monkeypatch.setattr(tb, "process_rank", lambda: 1)
    sink = TensorBoardSink(tmp_path / "tb")
    assert not sink.active and sink.writer is None
    sink.write_scalars(0, {"loss": 1.0})
    sink.close()
    assert not (tmp_path / "tb").exists()
