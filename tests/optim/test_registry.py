"""The optimizer registry: the package's own optimizers by name, one step against its formula."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.conditions import certify_plstar, run_certified_gd
from lossgeometry.optim import registry
from lossgeometry.optim.registry import make_optimizer, optimizer_names, register_optimizer

OWN = ("sps", "decsps", "ngn", "adagrad_norm", "certified_gd")


def _linear(n=8, d=14, k=2, seed=0):
    """L = ½‖XW − Y‖² with p = dk ≥ nk: interpolating, f* = 0, PL* holds."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    return lg.Problem(nn.Linear(d, k, bias=False).double(), X, Y), X, Y


def _loss_grad(X, Y, w):
    """Closed form at flat w (row-major (k, d) weight): L = ½‖X Wᵀ − Y‖², ∇L = (Rᵀ X) flat."""
    W = w.view(Y.shape[1], X.shape[1])
    R = X @ W.T - Y
    return 0.5 * float((R**2).sum()), (R.T @ X).reshape(-1)


def test_names_are_listed():
    names = optimizer_names()
    assert set(OWN) <= set(names)
    assert {"gd", "sgd", "momentum", "nesterov", "adam", "lbfgs"} <= set(names)
    assert names == sorted(names)


def _gamma(name, L, gsq, kw):
    """The first step size of each optimizer, by its formula (k = 0)."""
    if name == "sps":
        return min(L / (kw["c"] * gsq), kw["lr"])
    if name == "decsps":
        return min(L / gsq, kw["c0"] * kw["lr"]) / kw["c0"]
    if name == "ngn":
        return kw["lr"] / (1 + kw["lr"] * gsq / (2 * L))
    if name == "adagrad_norm":
        return min(kw["lr"] / math.sqrt(kw["b0"] ** 2 + gsq), kw["gamma_max"])
    raise AssertionError(name)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("sps", {"lr": 1.0, "c": 0.5}),
        ("decsps", {"lr": 1.0, "c0": 1.0}),
        ("ngn", {"lr": 0.02}),
        ("adagrad_norm", {"lr": 0.5, "b0": 0.1, "gamma_max": 0.05}),
    ],
)
def test_own_optimizers_train_by_name_and_take_their_formula_step(name, kw):
    pb, X, Y = _linear()
    lr, extra = kw["lr"], {k: v for k, v in kw.items() if k != "lr"}
    traj = lg.train(pb, name, 40, lr=lr, optimizer_kwargs=extra, record_iterates=True)
    assert traj.optimizer == name and traj.lr == lr
    assert traj.loss[-1] < 0.5 * traj.loss[0] and np.isfinite(traj.loss).all()
    for t in (0, 1):  # step t; for t = 1 the state (k, accumulators) has moved on
        w = traj.iterates[t]
        L, g = _loss_grad(X, Y, w)
        assert traj.loss[t] == pytest.approx(L, rel=1e-12)
        if t == 0:
            gamma = _gamma(name, L, float(g @ g), kw)
            torch.testing.assert_close(traj.iterates[1], w - gamma * g, rtol=1e-13, atol=1e-15)
    # the same run from the class, by a factory: the same numbers
    cls = {
        "sps": lg.optim.SPSMax,
        "decsps": lg.optim.DecSPS,
        "ngn": lg.optim.NGN,
        "adagrad_norm": lg.optim.AdaGradNormMax,
    }[name]
    same = lg.train(pb, lambda ps: cls(ps, **kw), 40)
    np.testing.assert_array_equal(same.loss, traj.loss)


def test_certified_gd_by_name_certifies_the_start_and_takes_its_step():
    pb, X, Y = _linear()
    traj = lg.train(
        pb, "certified_gd", 30, optimizer_kwargs={"certify": {"samples": 2}}, record_iterates=True
    )
    cert = certify_plstar(pb, samples=2)
    assert cert.certified and traj.optimizer == "certified_gd"
    _, g = _loss_grad(X, Y, traj.iterates[0])
    torch.testing.assert_close(
        traj.iterates[1], traj.iterates[0] - cert.step_size * g, rtol=1e-13, atol=1e-15
    )
    assert traj.loss[-1] < traj.loss[0]
    ref = run_certified_gd(pb, cert, 30)
    np.testing.assert_array_equal(traj.loss, ref.loss)
    # a given certificate and a scale
    half = lg.train(
        pb,
        "certified_gd",
        1,
        optimizer_kwargs={"certificate": cert, "scale": 0.5},
        record_iterates=True,
    )
    torch.testing.assert_close(half.iterates[1], half.iterates[0] - 0.5 * cert.step_size * g)


def test_certified_gd_refuses_what_it_cannot_certify():
    pb, _, _ = _linear()
    with pytest.raises(ValueError, match="leave lr unset"):
        lg.train(pb, "certified_gd", 1, lr=0.1)
    w = pb.params().requires_grad_(True)
    with pytest.raises(ValueError, match="needs the Problem"):
        make_optimizer("certified_gd", [w], None)
    with pytest.raises(ValueError, match="flat"):
        make_optimizer("certified_gd", list(pb.model.parameters()), None, problem=pb)


def test_register_a_factory_that_takes_the_problem(monkeypatch):
    monkeypatch.setattr(registry, "_NAMED", dict(registry._NAMED))
    seen = {}

    def scaled_gd(params, lr, problem, *, factor=1.0):
        seen["problem"] = problem
        return torch.optim.SGD(params, lr=factor * lr / problem.n)

    register_optimizer("scaled_gd", scaled_gd, {"factor": 2.0}, needs_lr=True)
    # the same builder again is allowed (it replaces the defaults)
    register_optimizer("scaled_gd", scaled_gd, {"factor": 2.0}, needs_lr=True)
    assert "scaled_gd" in optimizer_names()
    pb, _, _ = _linear()
    a = lg.train(pb, "Scaled_GD", 5, lr=0.4)
    b = lg.train(pb, "gd", 5, lr=2.0 * 0.4 / pb.n)
    assert seen["problem"] is pb and a.optimizer == "scaled_gd"
    np.testing.assert_array_equal(a.loss, b.loss)
    with pytest.raises(ValueError, match="already registered"):
        register_optimizer("scaled_gd", torch.optim.SGD)
    register_optimizer("broken", lambda params, lr, problem: "not an optimizer")
    with pytest.raises(TypeError, match=r"must return a torch\.optim\.Optimizer"):
        lg.train(pb, "broken", 1)


def test_config_names_an_own_optimizer(tmp_path):
    from lossgeometry.app.config import load_config, setup
    from tests.conftest import tiny_toml

    path = tmp_path / "c.toml"
    path.write_text(
        tiny_toml([]).replace("[train]\n", '[train]\noptimizer = "ngn"\nlr_scale = "none"\n')
    )
    traj = setup(load_config(path)).trajectory
    assert traj.optimizer == "ngn" and traj.lr == pytest.approx(1.0)
    assert traj.loss[-1] < traj.loss[0]
