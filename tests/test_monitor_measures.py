"""Monitor's named measurements, probe subset, sinks protocol, budget and Aiming angles.

Each named measurement is compared with a dense float64 oracle at the recorded point
(eigenvalues of the Hessian and of ``J Jᵀ`` from ``torch.autograd.functional``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd.functional import hessian, jacobian

import lossgeometry as lg
from lossgeometry.monitor_measures import Histogram, aiming_angle
from tests.conftest import tiny_mlp


class _ListSink:
    def __init__(self) -> None:
        self.scalars: list[tuple[int, dict[str, float]]] = []
        self.hists: list[tuple[int, str, Histogram]] = []
        self.closed = False

    def write_scalars(self, step, scalars):
        self.scalars.append((step, dict(scalars)))

    def write_histogram(self, step, name, hist):
        self.hists.append((step, name, hist))

    def close(self):
        self.closed = True


def _problem(n: int = 10):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_mlp(), X, Y), X, Y


def _gd(model, X, Y, mon, steps, lr=0.05, idx=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    iterates = {}
    for step in range(steps + 1):
        if mon.step(step) is not None:
            iterates[step] = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        opt.zero_grad()
        (0.5 * ((model(X) - Y) ** 2).sum()).backward()
        if step < steps:
            opt.step()
    return iterates


def test_named_measurements_match_dense_oracles_on_the_probe() -> None:
    pb, X, Y = _problem()
    probe = [1, 4, 7, 8]
    sink = _ListSink()
    mon = lg.Monitor(
        pb,
        every=2,
        measure=("hessian_max", "kernel_min", "kernel_cond", "hessian_density"),
        probe=probe,
        sinks=[sink],
    )
    iterates = _gd(pb.model, X, Y, mon, steps=4)
    sub = lg.Problem(pb.model, X[probe], Y[probe])
    assert mon.records["steps"] == [0, 2, 4]
    for j, (step, w) in enumerate(iterates.items()):
        H = hessian(lambda w_: _loss(sub, w_), w)
        J = jacobian(lambda w_: sub.forward(w_, X[probe]).reshape(-1), w)
        evH, evK = torch.linalg.eigvalsh(H), torch.linalg.eigvalsh(J @ J.T)
        assert mon.records["loss"][j] == pytest.approx(float(_loss(sub, w)), rel=1e-10)
        assert mon.records["hessian_max"][j] == pytest.approx(float(evH[-1]), rel=1e-6)
        assert mon.records["kernel_min"][j] == pytest.approx(float(evK[0]), rel=1e-5)
        assert mon.records["kernel_cond"][j] == pytest.approx(float(evK[-1] / evK[0]), rel=1e-5)
        step_h, hist = mon.histograms["hessian_density"][j]
        assert step_h == step and hist.counts.sum() == pytest.approx(pb.p, rel=1e-9)
        # Ritz values lie inside the spectrum: the histogram's range is within [λ_min, λ_max]
        span = float(evH[-1] - evH[0])
        assert hist.edges[0] >= float(evH[0]) - 1e-8 * span
        assert hist.edges[-1] <= float(evH[-1]) + 1e-8 * span
    assert [s for s, _ in sink.scalars] == [0, 2, 4]
    assert set(sink.scalars[0][1]) >= {"loss", "pl_ratio", "hessian_max", "kernel_min"}
    assert [(s, n) for s, n, _ in sink.hists] == [(s, "hessian_density") for s in (0, 2, 4)]
    mon.close()
    assert sink.closed


def _loss(problem, w):
    X, Y = problem.batch()
    return 0.5 * ((problem.forward(w, X) - Y) ** 2).sum()


def test_aiming_angles_online_and_in_hindsight() -> None:
    pb, X, Y = _problem()
    w_ref = pb.params() + 0.3
    online = lg.Monitor(pb, every=3, measure=("aiming_angle",), aiming_reference=w_ref)
    model2 = tiny_mlp()
    pb2 = lg.Problem(model2, X, Y)
    sink = _ListSink()
    later = lg.Monitor(pb2, every=3, measure=("aiming_angle",), sinks=[sink])
    it1 = _gd(pb.model, X, Y, online, steps=9)
    it2 = _gd(model2, X, Y, later, steps=9)
    for j, w in enumerate(it1.values()):
        g = torch.func.grad(lambda w_: _loss(pb, w_))(w)
        cos = float(g @ (w - w_ref) / (g.norm() * (w - w_ref).norm()))
        assert online.records["aiming_angle"][j] == pytest.approx(math.degrees(math.acos(cos)))
    angles = later.close()
    w_end = it2[9]
    assert sorted(angles) == [0, 3, 6]
    for t in (0, 3, 6):
        g = torch.func.grad(lambda w_: _loss(pb2, w_))(it2[t])
        assert angles[t] == pytest.approx(aiming_angle(g, it2[t], w_end), rel=1e-10)
        assert 0 < angles[t] < 90  # GD on this problem aims at its end point
    assert [(s, v) for s, v in sink.scalars if "aiming_angle" in v and len(v) == 1] == [
        (t, {"aiming_angle": angles[t]}) for t in (0, 3, 6)
    ]


def test_budget_skips_records_and_reports_the_overhead() -> None:
    pb, _, _ = _problem()
    clock = iter(np.arange(0.0, 1000.0, 1.0))  # a fake clock: every reading is 1 s later

    class Fake:
        @staticmethod
        def perf_counter():
            return float(next(clock))

    import lossgeometry.monitor as monitor_mod

    saved = monitor_mod.time
    monitor_mod.time = Fake  # type: ignore[assignment]
    try:
        mon = lg.Monitor(pb, every=1, budget=0.5)
        for step in range(8):
            mon.step(step)
    finally:
        monitor_mod.time = saved
    # each record costs 1 s (two readings), each loop gap 1 s: measure ≤ 0.5 · train allows
    # a record only once the loop has run twice as long as all records so far
    over = mon.overhead()
    assert over["measure_seconds"] <= 0.5 * over["train_seconds"] + 1.0
    assert over["skipped"] > 0 and over["records"] + over["skipped"] == 8
    assert over["fraction"] == pytest.approx(
        over["measure_seconds"] / (over["measure_seconds"] + over["train_seconds"])
    )


def test_probe_count_is_a_seeded_subset_and_errors() -> None:
    pb, _, _ = _problem()
    a = lg.Monitor(pb, probe=4, seed=1).problem
    b = lg.Monitor(pb, probe=4, seed=1).problem
    assert a.n == 4 and torch.equal(a.batch()[0], b.batch()[0])
    with pytest.raises(ValueError, match="unknown measurements"):
        lg.Monitor(pb, measure=("hessian_maxx",))
    with pytest.raises(ValueError, match="probe"):
        lg.Monitor(pb, probe=0)
    with pytest.raises(ValueError, match="budget"):
        lg.Monitor(pb, budget=0)


def test_subset_problem_is_the_problem_on_those_samples() -> None:
    pb, X, Y = _problem()
    idx = [2, 5, 9]
    sub, ref = pb.subset(idx), lg.Problem(pb.model, X[idx], Y[idx])
    w = pb.params()
    assert sub.n == 3
    torch.testing.assert_close(sub.loss(w), ref.loss(w))
    torch.testing.assert_close(sub.grad(w), ref.grad(w))
