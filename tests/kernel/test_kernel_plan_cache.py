"""The structured plan cache: keyed by module structure, never by object identity alone."""

from __future__ import annotations

import copy

import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.kernel import plan_cache
from lossgeometry.kernel.rules import RULES, LinearRule, register_rule
from lossgeometry.kernel.structured import build_plan
from tests.kernel.kernel_oracle import oracle_kernel, rel_err


def _model(width: int = 6, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 2))


def _X() -> torch.Tensor:
    return torch.randn(5, 3, generator=torch.Generator().manual_seed(1))


def _problem(model: nn.Module, X: torch.Tensor, **kw) -> lg.Problem:
    return lg.Problem(model, X, torch.zeros(X.shape[0], 2, dtype=X.dtype), **kw)


def _builds() -> int:
    return plan_cache.BUILDS[0]


def test_copies_reuse_the_plan_and_stay_exact() -> None:
    plan_cache.BY_STRUCTURE.clear()
    model, X = _model(), _X()
    b0 = _builds()
    build_plan(_problem(model, X))
    assert _builds() == b0 + 1
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for t in twin.parameters():
            t.mul_(1.7)
    build_plan(_problem(twin, X))
    wide = copy.deepcopy(model).to(torch.float64)
    pb = _problem(wide, X.double())
    K = lg.tangent_kernel(pb, method="structured")
    assert _builds() == b0 + 1  # the copy and the float64 copy reused the plan
    plan = build_plan(pb)
    assert all(e.module is dict(wide.named_modules())[p] for e, p in
               zip(plan.entries, ["0", "2"], strict=True))  # fmt: skip
    assert rel_err(K, oracle_kernel(wide, X.double())) < 1e-10


def test_a_different_structure_rebuilds() -> None:
    plan_cache.BY_STRUCTURE.clear()
    X = _X()
    b0 = _builds()
    build_plan(_problem(_model(), X))
    build_plan(_problem(_model(width=7), X))  # a layer's shape changed
    assert _builds() == b0 + 2
    pb = _problem(_model(), X, params=["2.weight", "2.bias"])  # other counted parameters
    plan = build_plan(pb)
    assert _builds() == b0 + 3
    assert sorted(n for e in plan.entries for n in e.param_names) == ["2.bias", "2.weight"]
    build_plan(_problem(_model(), X[:4]))  # another n
    assert _builds() == b0 + 4
    m = _model()
    m[1] = nn.ReLU()  # same parameters, another layer: its repr differs
    build_plan(_problem(m, X))
    assert _builds() == b0 + 5
    build_plan(_problem(_model().eval(), X))  # training flags differ
    assert _builds() == b0 + 6
    build_plan(_problem(_model(seed=3), X))  # only the values differ: reused
    assert _builds() == b0 + 6


def test_registering_a_rule_rebuilds() -> None:
    plan_cache.BY_STRUCTURE.clear()
    X = _X()
    b0 = _builds()
    build_plan(_problem(_model(), X))
    rule = LinearRule()
    register_rule(rule)
    try:
        build_plan(_problem(_model(), X))
        assert _builds() == b0 + 2
    finally:
        RULES.remove(rule)
    build_plan(_problem(_model(), X))  # the original rules again: the first plan
    assert _builds() == b0 + 2
