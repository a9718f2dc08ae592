"""The one recorder: train, Monitor and certified_sgd give the same records and the same error."""

import re

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.conditions import certified_sgd, certify_plstar, sgd_step_size
from lossgeometry.recording import BatchSampler, Recorder
from tests.conftest import tiny_mlp

FIELDS = ("steps", "loss", "grad_norm", "distance", "pl_ratio")


def _same_records(a, b):
    for k in FIELDS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)


def _mlp_problem(n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_mlp(), X, Y)


def _linear(n=8, d=14, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    return lg.Problem(nn.Linear(d, k, bias=False).double(), X, Y)


def _monitored_loop(pb, steps, every, update, batches):
    """A user's loop on the model: step, write the parameters back, monitor."""
    w0 = pb.params()
    mon = lg.Monitor(pb, every=every)
    w = w0.clone()
    try:
        for t in range(steps):
            pb.set_params(w)
            mon.step(t)
            _, g = pb.loss_and_grad(w, batches.next())
            w = update(w, g)
        pb.set_params(w)
        mon.step(steps, force=True)
        return mon.trajectory(), w
    finally:
        pb.set_params(w0)


def test_train_and_monitor_give_identical_minibatch_records():
    pb = _mlp_problem()
    ref = lg.train(pb, "sgd", 13, lr=0.05, batch_size=3, seed=5, record_every=4)
    w = pb.params().requires_grad_(True)
    opt = torch.optim.SGD([w], lr=0.05)

    def update(_w, g):
        w.grad = g.clone()
        opt.step()
        return w.detach().clone()

    traj, w_end = _monitored_loop(pb, 13, 4, update, BatchSampler(pb.n, 3, 5))
    _same_records(traj, ref)
    assert list(traj.steps) == [0, 4, 8, 12, 13]
    torch.testing.assert_close(w_end, ref.w_final, rtol=0, atol=0)


def test_certified_sgd_and_monitor_give_identical_records():
    pb = _linear()
    step = sgd_step_size(pb, certify_plstar(pb, samples=2), batch_size=3)
    ref = certified_sgd(pb, step, 11, seed=2, record_every=3)

    def update(w, g):
        return w - step.step_size * g

    sampler = BatchSampler(pb.n, 3, 2, sampling="independent")
    traj, w_end = _monitored_loop(pb, 11, 3, update, sampler)
    _same_records(traj, ref)
    torch.testing.assert_close(w_end, ref.w_final, rtol=0, atol=0)


def test_certified_sgd_and_train_agree_on_their_common_first_step():
    """Both samplers start with the same batch, so one step of each is the same SGD step."""
    pb = _linear()
    step = sgd_step_size(pb, certify_plstar(pb, samples=2), batch_size=3)
    a = certified_sgd(pb, step, 1, seed=7)
    b = lg.train(pb, "sgd", 1, lr=step.step_size, batch_size=3, seed=7)
    assert list(a.steps) == list(b.steps) == [0, 1]
    for k in FIELDS[1:]:
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=1e-13, atol=1e-15)
    assert (a.lr, a.batch_size, a.seed) == (b.lr, b.batch_size, b.seed)


_MESSAGE = re.compile(
    r"^the loss became (nan|inf) at step (\d+) \((.+), lr=(.+)\): the step is too large for "
    r"this problem; lower the learning rate$"
)


def test_the_divergence_error_is_the_same_from_each_loop():
    pb = _linear()
    eta = 2.0
    errors = {}
    with pytest.raises(lg.TrainingDivergedError) as e:
        lg.train(pb, "gd", 400, lr=eta)
    errors["train"] = str(e.value)
    step = sgd_step_size(pb, certify_plstar(pb, samples=2), batch_size=pb.n)
    import dataclasses

    big = dataclasses.replace(step, step_size=eta)
    with pytest.raises(lg.TrainingDivergedError) as e:
        certified_sgd(pb, big, 400)
    errors["certified_sgd"] = str(e.value)
    with pytest.raises(lg.TrainingDivergedError) as e:
        _monitored_loop(pb, 400, 1, lambda w, g: w - eta * g, BatchSampler(pb.n, None, 0))
    errors["monitor"] = str(e.value)
    parsed = {k: _MESSAGE.match(v) for k, v in errors.items()}
    assert all(parsed.values()), errors
    assert {m.group(2) for m in parsed.values()} == {parsed["train"].group(2)}  # same step
    assert parsed["train"].group(3, 4) == ("gd", "2.0")
    assert parsed["certified_sgd"].group(3, 4) == ("certified-sgd", "2.0")
    assert parsed["monitor"].group(3, 4) == ("user", "None")


def test_batch_sampler_modes():
    n, b, seed = 10, 4, 3
    gen = torch.Generator().manual_seed(seed)
    ind = BatchSampler(n, b, seed, sampling="independent")
    for _ in range(5):
        idx = ind.next()
        torch.testing.assert_close(idx, torch.randperm(n, generator=gen)[:b])
        assert len(set(idx.tolist())) == b
    # epoch mode: consecutive cuts of one permutation, the tail dropped, then a new one
    gen = torch.Generator().manual_seed(seed)
    ep = BatchSampler(n, b, seed)
    perm = torch.randperm(n, generator=gen)
    torch.testing.assert_close(torch.cat([ep.next(), ep.next()]), perm[:8])
    torch.testing.assert_close(ep.next(), torch.randperm(n, generator=gen)[:b])
    # the first batch of both modes is the same
    torch.testing.assert_close(
        BatchSampler(n, b, 9).next(), BatchSampler(n, b, 9, sampling="independent").next()
    )
    # full batch: None in epoch mode; a permuted full batch when drawn independently
    assert BatchSampler(n, n, 0).next() is None and BatchSampler(n, None, 0).batch_size is None
    assert sorted(BatchSampler(n, n, 0, sampling="independent").next().tolist()) == list(range(n))
    with pytest.raises(ValueError, match="batch_size <= n"):
        BatchSampler(n, n + 1, 0, sampling="independent")
    with pytest.raises(ValueError, match="sampling"):
        BatchSampler(n, 2, 0, sampling="with_replacement")


def test_recorder_quantities_extras_and_iterates():
    """Records against the closed form of L = ½‖Xw − y‖² (zero loss gives an infinite ratio)."""
    X = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    Y = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    model = nn.Linear(2, 1, bias=False).double()
    pb = lg.Problem(model, X, Y)
    w0 = torch.zeros(2, dtype=torch.float64)
    rec = Recorder(
        pb,
        w0,
        every=2,
        optimizer="hand",
        lr=0.1,
        extra={"sq": lambda p, w: float(w @ w)},
        keep_iterates=True,
    )
    assert rec.due(0) and not rec.due(1) and rec.due(4)
    w1 = torch.tensor([0.5, 0.5], dtype=torch.float64)
    r = X @ w1 - Y[:, 0]
    out = rec.record(2, w1)
    g = X.T @ r
    assert out["loss"] == pytest.approx(0.5 * float(r @ r), rel=1e-14)
    assert out["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-14)
    assert out["distance"] == pytest.approx(float(w1.norm()), rel=1e-14)
    assert out["pl_ratio"] == pytest.approx(float(g @ g) / (0.5 * float(r @ r)), rel=1e-14)
    assert out["sq"] == pytest.approx(0.5)
    rec.record(4, torch.tensor([1.0, 1.0], dtype=torch.float64))  # the minimum: L = 0
    traj = rec.trajectory(torch.ones(2, dtype=torch.float64), num_steps=5, seed=3)
    assert traj.pl_ratio[-1] == np.inf and traj.loss[-1] == 0
    assert list(traj.steps) == [2, 4] and traj.num_steps == 5 and traj.seed == 3
    assert (traj.optimizer, traj.lr) == ("hand", 0.1)
    torch.testing.assert_close(traj.iterates[0], w1)
    assert rec.records["sq"] == [0.5, 2.0]
    with pytest.raises(ValueError, match="nothing recorded"):
        Recorder(pb, w0).trajectory(w0)
    with pytest.raises(ValueError, match="every"):
        Recorder(pb, w0, every=0)


class _ListSink:
    def __init__(self):
        self.rows = []

    def write_scalars(self, step, scalars):
        self.rows.append((step, scalars))

    def write_histogram(self, step, name, hist):
        self.rows.append((step, name))

    def close(self):
        self.rows.append("closed")


def test_only_rank_zero_writes_the_records(monkeypatch, tmp_path):
    """Off rank 0 (faked here), train and Monitor take the same records but write none."""
    import lossgeometry.recording as recording

    pb = _mlp_problem()
    assert recording.writes_records(pb)  # one process: it writes
    kw = dict(lr=0.05, batch_size=4, seed=1, record_every=2, progress=False)
    main_sink = _ListSink()
    main = lg.train(pb, "sgd", 5, sinks=[main_sink], **kw)
    assert [t for t, _ in main_sink.rows] == main.steps.tolist()
    monkeypatch.setattr(recording, "process_rank", lambda: 1)
    assert not recording.writes_records(pb)
    other_sink = _ListSink()
    other = lg.train(pb, "sgd", 5, sinks=[other_sink], **kw)
    _same_records(main, other)
    assert other_sink.rows == []
    mon_sink = _ListSink()
    mon = lg.Monitor(pb, every=1, path=tmp_path / "m.json", sinks=[mon_sink])
    mon.step(0)
    mon.close()
    assert mon.records["steps"] == [0] and not mon.writes
    assert mon_sink.rows == ["closed"]  # closed on every rank, written on none but rank 0
    assert not (tmp_path / "m.json").exists()
