"""Progress off a terminal (lines with done/total and ETA) and the cost announced before work."""

from __future__ import annotations

import io
import itertools
import sys

import numpy as np
import pytest
import torch
from tqdm.auto import tqdm

import lossgeometry as lg
from lossgeometry import _progress
from lossgeometry._progress import (
    CostEstimate,
    LogProgress,
    announce_cost,
    format_seconds,
    progress_bar,
    time_call,
)


@pytest.fixture
def clock(monkeypatch):
    """A fake clock advancing 7 s per reading."""
    ticks = itertools.count(0.0, 7.0)
    monkeypatch.setattr(_progress, "_clock", lambda: next(ticks))


def test_lines_at_a_steady_interval_with_done_total_and_eta(clock) -> None:
    out = io.StringIO()
    bar = LogProgress(range(10), desc="kernel", unit="block", interval=20.0, stream=out)
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(loss=f"{1.0 / (i + 1):.2e}")
    lines = out.getvalue().splitlines()
    assert seen == list(range(10))
    # readings at 0 (start), 7, 14, ...: a line when ≥ 20 s passed since the last one
    assert lines[0] == "kernel: 3/10 blocks (30%), 0:00:21 elapsed, ETA 0:00:49, loss=3.33e-01"
    assert len(lines) == 3 and bar.lines == 3
    assert lines[1].startswith("kernel: 6/10 blocks (60%), 0:00:42 elapsed, ETA 0:00:28")
    assert lines[-1].startswith("kernel: 9/10 blocks (90%), 0:01:03 elapsed, ETA 0:00:07")


def test_unknown_total_gives_no_eta_and_a_resumed_count(clock) -> None:
    out = io.StringIO()
    bar = LogProgress(iter(range(4)), desc="lanczos", unit="cycle", interval=10.0, stream=out)
    assert list(bar) == [0, 1, 2, 3]
    assert out.getvalue().splitlines()[0] == "lanczos: 2 cycles, 0:00:14 elapsed"
    out = io.StringIO()
    resumed = LogProgress(range(3), total=5, initial=2, desc="sweep", unit="run", stream=out)
    resumed.interval = 10.0
    list(resumed)
    # 2 done before; 2 of the 3 here took 14 s: ETA for the last one 7 s
    assert out.getvalue().splitlines()[0] == "sweep: 4/5 runs (80%), 0:00:14 elapsed, ETA 0:00:07"


def test_a_short_loop_prints_nothing() -> None:
    out = io.StringIO()
    assert list(LogProgress(range(100), desc="x", stream=out)) == list(range(100))
    assert out.getvalue() == ""


def test_it_is_an_iterator_like_a_generator(clock) -> None:
    bar = LogProgress(range(3), stream=io.StringIO())
    assert next(bar) == 0 and next(bar) == 1 and next(bar, None) == 2 and next(bar, None) is None


def test_progress_bar_modes(monkeypatch) -> None:
    monkeypatch.setattr(_progress.sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(progress_bar(range(3), None, desc="d"), LogProgress)  # off a terminal
    assert not hasattr(progress_bar(range(3), False), "set_postfix")  # off: plain iterator
    bar = progress_bar(range(3), True, desc="d")  # asked for: a tqdm bar anywhere
    assert isinstance(bar, tqdm)
    bar.close()
    monkeypatch.setattr(_progress.sys.stderr, "isatty", lambda: True, raising=False)
    bar = progress_bar(range(3), None)
    assert isinstance(bar, tqdm)
    bar.close()


def test_format_seconds() -> None:
    assert format_seconds(3725.4) == "1:02:05"
    assert format_seconds(float("inf")) == "?"


def test_hutchpp_with_a_progress_bar_runs() -> None:
    """``next()`` on the stage bar: a tqdm bar is not an iterator (it raised TypeError)."""
    A = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
    est = lg.linalg.hutchpp(A, 9, progress=True)
    assert est.estimate == pytest.approx(55.0, rel=0.5)


def test_training_postfix_shows_the_current_loss(monkeypatch) -> None:
    """The α-β runs record once (``record_every = steps + 1``): the postfix must still move."""
    bars: list[LogProgress] = []
    values: list[str] = []

    class Recording(LogProgress):
        def set_postfix(self, refresh: bool = True, **kwargs) -> None:
            values.append(next(iter(kwargs.values())))
            super().set_postfix(refresh, **kwargs)

    def fake_bar(it, progress=None, **kw):
        bars.append(Recording(it, stream=io.StringIO()))
        return bars[-1]

    monkeypatch.setattr(sys.modules["lossgeometry.train"], "progress_bar", fake_bar)
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(16, 3, generator=g), torch.randn(16, 2, generator=g)
    problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0), X, Y)
    lg.train(problem, "sgd", 6, lr=0.05, batch_size=4, record_every=7)
    assert len(values) == 6 and len(set(values)) == 6
    assert list(bars[0].postfix) == ["batch_loss"]
    lg.train(problem, "gd", 3, lr=0.01, record_every=4)
    assert list(bars[1].postfix) == ["loss"]
    assert float(values[-1]) < float(values[-3])  # gradient descent: the loss decreases


def test_announce_cost_counts_times_and_prints_when_long() -> None:
    calls = []
    out = io.StringIO()
    est = announce_cost(
        "curvature profile",
        [("Hessian-vector products", 400, lambda: calls.append(1)), ("dense Jacobians", 3, 2.0)],
        None,
        min_seconds=0.0,
        stream=out,
        note="one basis",
    )
    assert isinstance(est, CostEstimate)
    assert len(calls) == 2  # timed: the faster of two calls
    assert est.parts[1] == ("dense Jacobians", 3, 2.0)
    assert est.seconds == pytest.approx(400 * est.parts[0][2] + 6.0)
    line = out.getvalue()
    assert line.startswith("curvature profile: about 6")
    assert "400 Hessian-vector products × " in line and "3 dense Jacobians × 2 s" in line
    assert line.rstrip().endswith("; one basis")
    quiet = io.StringIO()
    assert announce_cost("x", [("p", 1, 1.0)], None, min_seconds=5.0, stream=quiet).seconds == 1
    assert quiet.getvalue() == ""  # short: not printed
    assert announce_cost("x", [("p", 5, lambda: calls.append(1))], False) is None
    assert len(calls) == 2  # progress=False measures nothing


def test_time_call_takes_the_fastest() -> None:
    assert time_call(lambda: None, repeats=3) < 0.1


def _problem() -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(12, 2, generator=g, dtype=torch.float64)
    return lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)


def test_study_functions_announce_their_cost_and_keep_their_numbers(monkeypatch, capsys) -> None:
    monkeypatch.setattr(_progress, "COST_NOTICE_SECONDS", 0.0)
    problem = _problem()
    o = lg.CurvatureOptions(probes=2, steps=8, trace_samples=9)
    loud = lg.curvature_profile(problem, options=o)
    err = capsys.readouterr().err
    # dense spectrum: p = 50 products; density 2·8; trace 9; bound 2·20 + 4·2
    assert "curvature profile: about" in err and f"{50 + 16 + 9 + 48} Hessian-vector" in err
    quiet = lg.curvature_profile(problem, options=o, progress=False)
    assert capsys.readouterr().err == ""
    assert np.array_equal(loud.spectrum.top, quiet.spectrum.top)
    assert loud.trace.estimate == quiet.trace.estimate
    assert np.array_equal(loud.density.nodes, quiet.density.nodes)

    ks = lg.kernel_spectrum(problem, solver="lanczos", num_eigenvalues=2)
    err = capsys.readouterr().err
    assert "kernel spectrum: about" in err and "NTK-vector products" in err
    same = lg.kernel_spectrum(problem, solver="lanczos", num_eigenvalues=2, progress=False)
    assert ks.matvecs == same.matvecs  # the timing product is not counted
    assert np.array_equal(ks.eigenvalues, same.eigenvalues)

    K = lg.tangent_kernel(problem, chunk_size=4)
    err = capsys.readouterr().err
    assert "tangent kernel: about" in err and "5 kernel blocks" in err  # 6 pairs, 1 done
    assert torch.equal(K, lg.tangent_kernel(problem, chunk_size=4, progress=False))

    lg.analyze_manifold(problem, max_equations=8, walk_steps=1)
    err = capsys.readouterr().err
    assert "manifold analysis: about" in err and "3 dense Jacobians" in err
    lg.analyze_manifold(problem, max_equations=8, walk_steps=1, progress=False)
    assert capsys.readouterr().err == ""
