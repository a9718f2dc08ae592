"""Conv nets in float64: the conv rule's per-sample gradients, ResNet-8 and VGG kernels against
the Jacobian route and the dense oracle, and the symmetric product of the diagonal blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.kernel.rules import base
from lossgeometry.kernel.rules.base import Materialized, materialize, symmetric_product
from lossgeometry.kernel.rules.conv import ConvRule, per_sample_gradients
from lossgeometry.kernel.structured import build_plan
from tests.kernel.kernel_oracle import oracle_kernel, rel_err


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _problem(model: nn.Module, X: torch.Tensor, **kw) -> tuple[lg.Problem, torch.Tensor]:
    model = model.double().eval()
    X = X.double()
    with torch.no_grad():
        k = model(X).reshape(X.shape[0], -1).shape[1]
    return lg.Problem(model, X, torch.zeros(X.shape[0], k, dtype=torch.float64), **kw), X


CONVS = {
    "plain": dict(kernel_size=3, padding=1),
    "stride-dilation": dict(kernel_size=3, stride=2, dilation=2, padding=2),
    "groups": dict(kernel_size=3, groups=2, padding=1),
    "circular-nobias": dict(kernel_size=(2, 3), padding=1, padding_mode="circular", bias=False),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_per_sample_gradients_match_the_bilinear_factors(name):
    """The direct bmm equals materializing the Gram-route factors (same layout)."""
    conv = nn.Conv2d(4, 6, **CONVS[name]).double()
    x1 = torch.randn(3, 4, 7, 6, generator=_g(1), dtype=torch.float64)
    x2 = torch.randn(3, 4, 7, 6, generator=_g(2), dtype=torch.float64)  # a second call
    ks = 2
    outs = [conv(x) for x in (x1, x2)]
    grads = [torch.randn(3, ks, *o.shape[1:], generator=_g(3 + i), dtype=torch.float64)
             for i, o in enumerate(outs)]  # fmt: skip
    active = frozenset(n for n, _ in conv.named_parameters())
    rule = ConvRule()
    ref = materialize(rule.factors(conv, [x1, x2], grads, active, "gram"))
    got = per_sample_gradients(conv, [x1, x2], grads, active)
    torch.testing.assert_close(got.P, ref.P, rtol=1e-12, atol=1e-12)
    # and it is the per-sample gradient autograd computes
    for i in range(3):
        for a in range(ks):
            w = conv.weight.detach().requires_grad_(True)
            b = None if conv.bias is None else conv.bias.detach().requires_grad_(True)
            f = lambda x, w=w, b=b: conv._conv_forward(x, w, b)  # noqa: E731
            s = sum(
                (f(x[i : i + 1]) * g[i : i + 1, a]).sum()
                for x, g in zip((x1, x2), grads, strict=True)
            )
            gs = torch.autograd.grad(s, [t for t in (w, b) if t is not None])
            G = conv.groups
            gw = gs[0].reshape(G, -1, gs[0][0].numel())
            parts = [gw]
            if b is not None:
                parts.append(gs[1].reshape(G, -1, 1))
            exact = torch.cat(parts, -1).reshape(-1)
            torch.testing.assert_close(got.P[i, a], exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(CONVS))
def test_materialized_route_against_the_oracle(name):
    conv = nn.Conv2d(2, 4, **CONVS[name])
    with torch.no_grad():
        flat = conv(torch.zeros(1, 2, 6, 5)).numel()
    model = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), nn.Linear(flat, 3))
    pb, X = _problem(model, torch.randn(4, 2, 6, 5, generator=_g()))
    for e in build_plan(pb).entries:
        if e.rule.name == "conv":
            e.route = "materialize"
    K0 = oracle_kernel(pb.model, X)
    assert rel_err(lg.tangent_kernel(pb, method="structured"), K0) < 1e-10
    K0t = torch.einsum("iaja->ij", K0.reshape(4, 3, 4, 3))
    assert rel_err(lg.tangent_kernel(pb, method="structured", outputs="trace"), K0t) < 1e-10


def test_frozen_conv_bias():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(48, 2))
    pb, X = _problem(
        model, torch.randn(3, 2, 4, 4, generator=_g()), params=["0.weight", "3.weight"]
    )
    for e in build_plan(pb).entries:
        e.route = "materialize"
    K0 = oracle_kernel(pb.model, X, ["0.weight", "3.weight"])
    assert rel_err(lg.tangent_kernel(pb, method="structured"), K0) < 1e-10


@pytest.mark.parametrize("arch", ["resnet8", "vgg"])
def test_convnets_against_the_jacobian_route(arch):
    """ResNet-8 (three stages of one block) and the VGG on 3-channel images, float64."""
    if arch == "resnet8":
        model = lg.models.resnet(3, 4, width=2, blocks=(1, 1, 1), input_size=8, seed=0)
    else:
        model = lg.models.vgg(3, 4, (2, 2, "M", 4, "M"), input_size=8, pool="avg", seed=0)
    pb, X = _problem(model, torch.randn(5, 3, 8, 8, generator=_g()))
    plan = build_plan(pb)
    assert not plan.fallback
    assert {e.rule.name for e in plan.entries} == {"conv", "linear"}
    Kj = lg.tangent_kernel(pb, method="jacobian")
    assert rel_err(Kj, oracle_kernel(pb.model, X)) < 1e-10
    for route in ("gram", "materialize"):
        for e in plan.entries:
            if e.rule.name == "conv":
                e.route = route
        assert rel_err(lg.tangent_kernel(pb, method="structured"), Kj) < 1e-10
    assert rel_err(lg.tangent_kernel(pb), Kj) < 1e-10  # auto


@pytest.mark.parametrize("N", [5, 512, 700])
def test_symmetric_product(N, monkeypatch):
    monkeypatch.setattr(base, "SYMMETRIC_BLOCK", 64)
    P = torch.randn(N, 37, generator=_g(), dtype=torch.float64)
    O = torch.randn(N, N, generator=_g(1), dtype=torch.float64)
    ref = P @ P.T
    torch.testing.assert_close(symmetric_product(P), ref, rtol=1e-12, atol=1e-12)
    out = O.clone()
    assert symmetric_product(P, out) is out
    torch.testing.assert_close(out, O + ref, rtol=1e-12, atol=1e-12)
    S = symmetric_product(P)
    assert torch.equal(S, S.T) or N < 128  # mirrored blocks: exactly symmetric


def test_materialized_self_block_uses_the_symmetric_product(monkeypatch):
    monkeypatch.setattr(base, "SYMMETRIC_BLOCK", 4)
    calls = []
    real = base.symmetric_product
    monkeypatch.setattr(base, "symmetric_product", lambda *a: calls.append(1) or real(*a))
    P = torch.randn(6, 3, 11, generator=_g(), dtype=torch.float64)
    f, f2 = Materialized(P), Materialized(P.clone())
    K = f.block(f, "full")
    assert calls and rel_err(K, f2.block(f2, "full")) < 1e-14
    out = torch.ones(6, 3, 6, 3, dtype=torch.float64)
    f.block(f, "full", out=out)
    torch.testing.assert_close(out, 1 + K)
