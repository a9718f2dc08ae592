"""SPSMax, DecSPS, NGN and AdaGradNormMax: steps match their formulas on a quadratic."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.optim import NGN, AdaGradNormMax, DecSPS, SPSMax

A = torch.tensor([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
B = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)


def quad(x):
    """f(x) = ½ xᵀAx − bᵀx + 1 (minimum value 1 − ½ bᵀA⁻¹b > 0)."""
    return 0.5 * x @ A @ x - B @ x + 1.0


def run(opt_cls, steps, x0=(1.0, -2.0, 0.5), **kw):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([x], **kw)
    xs, Ls, gs, gammas = [x.detach().clone()], [], [], []

    def closure():
        opt.zero_grad()
        L = quad(x)
        L.backward()
        return L

    for _ in range(steps):
        with torch.no_grad():
            Ls.append(float(quad(x)))
            gs.append((A @ x - B).clone())
        opt.step(closure)
        gammas.append(opt.last_step_size)
        xs.append(x.detach().clone())
    return xs, Ls, gs, gammas


def check_steps(xs, gs, gammas):
    for k, gam in enumerate(gammas):
        torch.testing.assert_close(xs[k + 1], xs[k] - gam * gs[k], rtol=1e-14, atol=1e-15)


def test_sps_max_formula():
    xs, Ls, gs, gammas = run(SPSMax, 8, lr=0.8, c=0.5, f_star=0.2)
    for k in range(8):
        expect = min((Ls[k] - 0.2) / (0.5 * float(gs[k] @ gs[k])), 0.8)
        assert gammas[k] == pytest.approx(expect, rel=1e-14)
    check_steps(xs, gs, gammas)
    # both branches of the min are exercised
    assert any(g == 0.8 for g in gammas) and any(g < 0.8 for g in gammas)


def test_dec_sps_formula():
    c0, gb, fs = 2.0, 0.5, 0.0
    xs, Ls, gs, gammas = run(DecSPS, 10, lr=gb, c0=c0, f_star=fs)
    prev = c0 * gb  # c_{-1} γ_{-1}
    for k in range(10):
        ck = c0 * math.sqrt(k + 1)
        expect = min((Ls[k] - fs) / float(gs[k] @ gs[k]), prev) / ck
        assert gammas[k] == pytest.approx(expect, rel=1e-13)
        prev = ck * expect
    check_steps(xs, gs, gammas)
    # c_k γ_k is non-increasing and γ_k ≤ γ_b c0 / c_k
    ck_gk = [c0 * math.sqrt(k + 1) * g for k, g in enumerate(gammas)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(ck_gk))


def test_ngn_formula():
    gamma = 0.8
    xs, Ls, gs, gammas = run(NGN, 10, lr=gamma)
    for k in range(10):
        gsq = float(gs[k] @ gs[k])
        assert gammas[k] == pytest.approx(gamma / (1 + gamma * gsq / (2 * Ls[k])), rel=1e-14)
        assert gammas[k] <= gamma
    check_steps(xs, gs, gammas)
    assert Ls[-1] < Ls[0]


def test_adagrad_norm_max_formula():
    gamma, b0, cap = 1.0, 0.5, 0.4
    xs, _Ls, gs, gammas = run(AdaGradNormMax, 10, lr=gamma, b0=b0, gamma_max=cap)
    acc = b0**2
    for k in range(10):
        acc += float(gs[k] @ gs[k])
        assert gammas[k] == pytest.approx(min(gamma / math.sqrt(acc), cap), rel=1e-14)
    check_steps(xs, gs, gammas)
    assert any(g == cap for g in gammas) and any(g < cap for g in gammas)
    assert all(b <= a for a, b in itertools.pairwise(gammas))  # non-increasing
    # no cap: plain AdaGrad-norm
    _, _, gs2, gam2 = run(AdaGradNormMax, 3, lr=gamma, b0=b0)
    assert gam2[0] == pytest.approx(gamma / math.sqrt(b0**2 + float(gs2[0] @ gs2[0])))


def test_errors_are_clear():
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="closure"):
        SPSMax([x]).step()
    with pytest.raises(ValueError, match="positive"):
        SPSMax([x], lr=0.0)
    with pytest.raises(ValueError, match="positive"):
        NGN([x], lr=-1)
    with pytest.raises(ValueError, match="b0"):
        AdaGradNormMax([x], b0=-1.0)

    def neg():
        x.grad = torch.ones(2)
        return torch.tensor(-1.0)

    with pytest.raises(ValueError, match="below f_star"):
        SPSMax([x]).step(neg)
    with pytest.raises(ValueError, match="below f_star"):
        DecSPS([x]).step(neg)
    with pytest.raises(ValueError, match="non-negative"):
        NGN([x]).step(neg)


def test_zero_gradient_and_zero_loss_give_zero_move():
    x = torch.ones(2, requires_grad=True)

    def flat():
        x.grad = torch.zeros(2)
        return torch.tensor(0.5)

    for cls in (SPSMax, DecSPS, NGN, AdaGradNormMax):
        opt = cls([x])
        opt.step(flat)
        torch.testing.assert_close(x.detach(), torch.ones(2))


def test_polyak_step_is_scale_invariant():
    """SPS's Polyak part (f − f*) g/(c‖g‖²) does not change when f is scaled."""
    for s in (1.0, 10.0):
        x = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64, requires_grad=True)
        opt = SPSMax([x], lr=1e9, c=0.5)

        def closure(s=s, x=x, opt=opt):
            opt.zero_grad()
            L = s * quad(x)
            L.backward()
            return L

        opt.step(closure)
        if s == 1.0:
            ref = x.detach().clone()
        else:
            torch.testing.assert_close(x.detach(), ref)


def test_state_dict_round_trip_and_schedulers():
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = DecSPS([x], lr=0.5, c0=1.0)

    def closure():
        opt.zero_grad()
        L = quad(x)
        L.backward()
        return L

    for _ in range(3):
        opt.step(closure)
    sd = opt.state_dict()
    y = x.detach().clone().requires_grad_(True)
    opt2 = DecSPS([y], lr=0.5, c0=1.0)
    opt2.load_state_dict(sd)
    st = next(iter(opt2.state.values()))
    assert st["k"] == 3 and st["c_gamma_prev"] > 0
    # a scheduler scales the cap γ_b (named lr)
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    o = SPSMax([z], lr=1.0)
    sch = torch.optim.lr_scheduler.StepLR(o, 1, 0.5)

    def zc():
        o.zero_grad()
        L = quad(z)
        L.backward()
        return L

    o.step(zc)
    sch.step()
    assert o.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(
    "factory",
    [
        lambda ps: SPSMax(ps, lr=1.0, c=0.5),
        lambda ps: DecSPS(ps, lr=1.0, c0=1.0),
        lambda ps: NGN(ps, lr=0.05),
        lambda ps: AdaGradNormMax(ps, lr=0.5, b0=0.1),
    ],
)
def test_they_train_an_interpolating_least_squares_problem(factory):
    torch.manual_seed(0)
    X = torch.randn(10, 20, dtype=torch.float64)  # p > n: interpolation, f* = 0
    Y = torch.randn(10, 1, dtype=torch.float64)
    model = nn.Linear(20, 1, bias=False).double()
    pb = lg.Problem(model, X, Y, reduction="mean")
    traj = lg.train(pb, factory, 300, batch_size=2, record_every=300)
    assert traj.loss[-1] < 0.2 * traj.loss[0]  # DecSPS's 1/√k steps are the slowest
    assert np.isfinite(traj.loss).all()


def test_mean_over_ranks_is_the_loss_on_one_process():
    """Without a process group the closure's loss comes back as it is, detached.

    (On two ranks, SPS in a DDP loop with this loss equals one process:
    tests/distributed/test_train_parallel.py.)
    """
    x = torch.tensor([1.5, -2.0], dtype=torch.float64, requires_grad=True)
    loss = (x**2).sum()
    got = lg.optim.mean_over_ranks(loss)
    assert not got.requires_grad and got.item() == loss.item() == 6.25
    assert lg.optim.mean_over_ranks(0.25).item() == 0.25
