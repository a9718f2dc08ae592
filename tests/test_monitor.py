import copy
import json

import numpy as np
import pytest
import torch

import lossgeometry as lg
from tests.conftest import tiny_mlp


def test_monitor_matches_lg_train(tmp_path):
    """A hand-written GD loop monitored step by step gives lg.train's records."""
    torch.manual_seed(0)
    model = tiny_mlp()
    X, Y = torch.randn(10, 3).double(), torch.randn(10, 2).double()
    pb = lg.Problem(model, X, Y)
    ref = lg.train(pb, "gd", steps=12, lr=0.05, record_every=3)
    mon = lg.Monitor(
        pb, every=3, extra={"sq_norm": lambda p, w: float(w @ w)}, path=tmp_path / "m.json"
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(13):
        mon.step(step)
        opt.zero_grad()
        loss = 0.5 * ((model(X) - Y) ** 2).sum()
        loss.backward()
        if step < 12:
            opt.step()
    traj = mon.trajectory(lr=0.05)
    np.testing.assert_allclose(traj.loss, ref.loss, rtol=1e-10)
    np.testing.assert_allclose(traj.pl_ratio, ref.pl_ratio, rtol=1e-8)
    np.testing.assert_allclose(traj.distance, ref.distance, rtol=1e-8, atol=1e-12)
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["steps"] == [0, 3, 6, 9, 12]
    assert saved["sq_norm"][0] == pytest.approx(float(mon.w0 @ mon.w0))


def test_monitor_errors():
    pb = lg.Problem(tiny_mlp(), torch.randn(4, 3).double(), torch.randn(4, 2).double())
    with pytest.raises(ValueError, match="every"):
        lg.Monitor(pb, every=0)
    with pytest.raises(ValueError, match="nothing recorded"):
        lg.Monitor(pb).trajectory()


class _BNDropCNN(torch.nn.Module):
    """A small CNN with BatchNorm, an nn.Dropout and a functional dropout in forward."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        h = self.drop(torch.relu(self.bn(self.conv(x))))
        h = torch.nn.functional.dropout(h.flatten(1), 0.2, self.training)
        return self.fc(h)


def _state(model):
    return {
        "params": {k: v.detach().clone() for k, v in model.named_parameters()},
        "buffers": {k: v.clone() for k, v in model.named_buffers()},
        "modes": [m.training for m in model.modules()],
        "rng": torch.get_rng_state(),
        "np_rng": np.random.get_state()[1].copy(),  # noqa: NPY002 (the global stream)
    }


def _train_loop(X, Y, *, monitor, build="allow"):
    """An ordinary train-mode loop: Adam on shuffled mini-batches, dropout and BN active."""
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002
    model = _BNDropCNN().double()
    model.train()
    model.drop.eval()  # a user's mixed modes must come back as they were
    model.drop.train()
    model.fc.eval()  # (a frozen-statistics head, say): flags are restored one by one
    mon = None
    if monitor:
        if build == "allow":
            pb = lg.Problem(
                model, X, Y, loss="cross_entropy", allow_batchnorm=True, allow_dropout=True
            )
        else:
            flags = [m.training for m in model.modules()]
            model.eval()
            pb = lg.Problem(model, X, Y, loss="cross_entropy")
            for m, f in zip(model.modules(), flags, strict=True):
                m.training = f
        # an extra measurement that draws from both global streams
        extra = {"draws": lambda p, w: float(torch.rand(()) * 0 + np.random.rand() * 0)}  # noqa: NPY002
        mon = lg.Monitor(pb, every=2, extra=extra)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for step in range(7):
        if mon is not None:
            mon.step(step)
        idx = torch.randperm(X.shape[0])[:8]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X[idx]), Y[idx])
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    if mon is not None:
        mon.step(7, force=True)
    return model, losses, mon


@pytest.mark.parametrize("build", ["allow", "eval"])
def test_monitor_in_train_mode_loop_leaves_no_trace(build):
    """A monitored train-mode loop (BN, dropout, Adam, shuffling) runs bit for bit like the
    same loop without the monitor: parameters, BN statistics, modes and RNG states agree."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(24, 1, 6, 6, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 3, (24,), generator=g)
    plain, losses, _ = _train_loop(X, Y, monitor=False)
    ref = _state(plain)
    watched, losses_m, mon = _train_loop(X, Y, monitor=True, build=build)
    got = _state(watched)
    assert losses_m == losses
    for key in ("params", "buffers"):
        assert got[key].keys() == ref[key].keys()
        for name in ref[key]:
            assert torch.equal(got[key][name], ref[key][name]), (key, name)
    assert int(got["buffers"]["bn.num_batches_tracked"]) == 7
    assert got["modes"] == ref["modes"] == [True, True, True, True, False]
    assert torch.equal(got["rng"], ref["rng"])
    assert np.array_equal(got["np_rng"], ref["np_rng"])
    # the records are the eval-mode model's loss (running statistics, no dropout)
    assert mon.records["steps"] == [0, 2, 4, 6, 7]
    evaluated = copy.deepcopy(watched).eval()
    with torch.no_grad():
        L = torch.nn.functional.cross_entropy(evaluated(X), Y)
    assert mon.records["loss"][-1] == pytest.approx(float(L), rel=1e-12)
    assert np.all(np.isfinite(mon.records["grad_norm"]))


def test_a_problem_on_a_wrapped_model_measures_the_module():
    """DataParallel/DistributedDataParallel wrappers are unwrapped: the same records."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    model = tiny_mlp()
    wrapped = torch.nn.DataParallel(torch.nn.DataParallel(model))
    pb, plain = lg.Problem(wrapped, X, Y), lg.Problem(model, X, Y)
    assert pb.model is model and pb.param_names == plain.param_names
    recs = []
    for problem in (pb, plain):
        mon = lg.Monitor(problem, measure=("hessian_max",))
        recs.append(mon.step(0))
    assert recs[0] == recs[1]
