"""ManifoldOptions: the one place the manifold study's defaults live; errors; old keywords."""

from __future__ import annotations

import pytest
from manifold_fixtures import mlp_problem

import lossgeometry as lg
from lossgeometry.manifold.options import ManifoldOptions
from lossgeometry.options import OptionsError


def test_options_and_keywords_give_the_same_study():
    pr = mlp_problem(n=12, d=4, width=16, k=2)
    opts = ManifoldOptions(max_equations=16, walk_steps=1, radii=(1e-2, 1e-3), hessian=False)
    a = lg.analyze_manifold(pr, options=opts)
    b = lg.analyze_manifold(pr, max_equations=16, walk_steps=1, radii=(1e-2, 1e-3), hessian=False)
    assert a.success and a.report.hessian_nullity is None
    assert a.summary() == b.summary()
    assert a.samples == b.samples and len(a.samples) == 8
    # keywords override the options they are given with
    c = lg.analyze_manifold(pr, options=opts, walk_steps=0)
    assert c.walk is None and c.summary()["rank"] == a.summary()["rank"]


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"max_equation": 5}, r"\[report.manifold\] max_equation: unknown option; did you mean"),
        ({"hessian": "exact"}, "hessian = 'exact': expected"),
        ({"max_iter": 0}, "max_iter = 0: must be at least 1"),
        ({"radii": []}, "radii = \\[\\]: must be positive numbers"),
        ({"walk_step_size": 0.0}, "must be positive"),
    ],
)
def test_options_errors(data, msg):
    with pytest.raises(OptionsError, match=msg):
        ManifoldOptions.from_mapping(data, where="report.manifold")


def test_unknown_keyword_names_the_closest_option():
    with pytest.raises(OptionsError, match="did you mean 'walk_steps'"):
        lg.analyze_manifold(mlp_problem(n=4, d=2, width=8, k=1), walk_step=2)
