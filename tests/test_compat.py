"""lossgeometry._compat: old keyword names and old positional arguments, for one release."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry._compat import deprecated_call_style
from lossgeometry.conditions.plstar import evaluate_point


@deprecated_call_style(renamed={"w0": "w"}, positional=("radius", "samples"))
def _measure(problem, w=None, *, radius=1.0, samples=8):
    return problem, w, radius, samples


def test_new_call_style_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _measure("pb", 3, radius=2.0) == ("pb", 3, 2.0, 8)
        assert _measure("pb", w=3, samples=1) == ("pb", 3, 1.0, 1)
    # the signature shown is the new one
    params = list(inspect.signature(_measure).parameters.values())
    assert [p.name for p in params] == ["problem", "w", "radius", "samples"]
    assert params[2].kind is inspect.Parameter.KEYWORD_ONLY


def test_old_keyword_warns_and_forwards():
    with pytest.warns(DeprecationWarning, match="'w0' is now called 'w'"):
        assert _measure("pb", w0=5) == ("pb", 5, 1.0, 8)


def test_old_positional_arguments_warn_and_map_in_order():
    with pytest.warns(DeprecationWarning, match="passing radius, samples by position"):
        assert _measure("pb", 5, 0.5, 3) == ("pb", 5, 0.5, 3)
    with pytest.warns(DeprecationWarning, match="radius by position"):
        assert _measure("pb", 5, 0.5, samples=2) == ("pb", 5, 0.5, 2)


def test_conflicts_are_type_errors():
    with pytest.raises(TypeError, match="both 'w0'"):
        _measure("pb", 1, w0=2)
    with pytest.raises(TypeError, match="both 'w0'"):
        _measure("pb", w=1, w0=2)
    with pytest.raises(TypeError, match="multiple values for argument 'radius'"):
        _measure("pb", 1, 0.5, radius=0.25)
    with pytest.raises(TypeError, match="at most 4 positional"):
        _measure("pb", 1, 0.5, 3, "extra")


def test_rename_target_must_exist():
    with pytest.raises(ValueError, match="no parameter 'v'"):
        deprecated_call_style(renamed={"u": "v"})(lambda problem, w=None: None)


def _linear():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(6, 10, generator=g, dtype=torch.float64)
    Y = torch.randn(6, 2, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    return lg.Problem(nn.Linear(10, 2, bias=False).double(), X, Y)


def test_certify_plstar_keeps_w0_and_positional_calls_for_one_release():
    problem = _linear()
    w = problem.params() + 0.01
    new = lg.certify_plstar(problem, w, radius=0.5, samples=2)
    with pytest.warns(DeprecationWarning, match="'w0' is now called 'w'"):
        old_kw = lg.certify_plstar(problem, w0=w, radius=0.5, samples=2)
    with pytest.warns(DeprecationWarning, match="radius, samples by position"):
        old_pos = lg.certify_plstar(problem, w, 0.5, 2)
    assert old_kw.to_dict() == new.to_dict() == old_pos.to_dict()
    assert new.residual_norm == pytest.approx(float(problem.residual(w).norm()), rel=1e-12)


def test_evaluate_point_centre_is_keyword_only():
    problem = _linear()
    w0 = problem.params()
    w = w0 + 0.1
    new = evaluate_point(problem, w, w0=w0)
    assert new.distance == pytest.approx(float((w - w0).norm()), rel=1e-12)
    with pytest.warns(DeprecationWarning, match="w0 by position"):
        assert evaluate_point(problem, w, w0) == new
