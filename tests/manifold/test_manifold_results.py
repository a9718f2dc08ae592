"""The manifold Results: summary() states the fields, plot() draws the Result's numbers (read
back from the Axes), save/load round-trips; ManifoldWalk's old ``axes=`` still works."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from manifold_fixtures import interpolated, mlp_problem

import lossgeometry as lg
from lossgeometry.manifold.degenerate import predict_zero_layer_nullity, zero_layers
from tests.result_checks import bar_heights, check_roundtrip, check_summary, close_all, new_axes


@pytest.fixture(autouse=True)
def _close():
    yield
    close_all()


@pytest.fixture(scope="module")
def mlp():
    return interpolated("mlp")


def test_interpolant(tmp_path):
    pr = mlp_problem()
    sol = lg.find_interpolant(pr, progress=False)
    check_summary(
        sol,
        {
            "success": True,
            "residual_norm": sol.residual_norm,
            "loss": sol.loss,
            "grad_norm": sol.grad_norm,
            "relative_grad": sol.relative_grad,
            "iterations": sol.iterations,
            "tol": 1e-10,
            "method": "gauss-newton",
            "jacobian": "dense",
            "p": pr.p,
            "nk": pr.n * pr.k,
            "wall_time": sol.wall_time,
        },
    )
    ax = sol.plot(new_axes())
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), sol.history)
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [1e-10, 1e-10])
    back = check_roundtrip(sol, tmp_path)
    np.testing.assert_array_equal(np.asarray(back.w), sol.w.numpy())


def test_report_and_nullity(mlp, tmp_path):
    pr, w = mlp
    rep = lg.solution_manifold(pr, w)
    check_summary(
        rep,
        {
            "dimension": pr.p - 20,
            "expected_dimension": pr.p - 20,
            "hessian_nullity": pr.p - 20,
            "agrees": True,
            "rank": 20,
            "rank_gap": rep.rank.gap,
            "at_interpolant": True,
            "residual_norm": rep.residual_norm,
            "loss": rep.loss,
            "p": pr.p,
            "n": pr.n,
            "k": pr.k,
            "nk": 20,
            "jacobian_method": "dense",
            "hessian_method": "dense",
        },
    )
    ax = rep.plot(new_axes())
    s = np.asarray(rep.singular_values)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rep.loss_scale * s**2)
    h = np.sort(np.abs(rep.hessian_eigenvalues))[::-1]
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), np.maximum(h, 1e-300))
    check_roundtrip(rep, tmp_path, "rep.json")

    hn = lg.hessian_nullity(pr, w, solver="dense")
    check_summary(
        hn,
        {
            "nullity": pr.p - 20,
            "rank": 20,
            "gap": hn.rank.gap,
            "negative": hn.negative,
            "computed": pr.p,
            "p": pr.p,
            "method": "dense",
        },
    )
    ax = hn.plot(new_axes())
    ev = np.asarray(hn.eigenvalues)
    mags = np.sort(np.abs(ev))[::-1]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), np.maximum(mags, 1e-300))
    np.testing.assert_array_equal(ax.lines[2].get_xdata(), [20.5, 20.5])  # the cut
    assert len(ax.lines[1].get_ydata()) == hn.negative
    back = check_roundtrip(hn, tmp_path, "null.json")
    assert isinstance(back.rank, lg.Rank) and back.rank.rank == 20


def test_nullity_plot_marks_the_negative_eigenvalues():
    pr = mlp_problem()
    hn = lg.hessian_nullity(pr, solver="dense")  # at the initialization: indefinite
    assert hn.negative > 0
    ax = hn.plot()
    ev = np.asarray(hn.eigenvalues)
    neg = ev[ev < -hn.rank.tol]
    np.testing.assert_allclose(np.sort(ax.lines[1].get_ydata()), np.sort(-neg))


def test_growth(mlp, tmp_path):
    pr, w = mlp
    g = lg.loss_growth(pr, w, num_directions=2)
    check_summary(
        g,
        {
            "normal_exponent": g.normal_exponent,
            "tangent_exponent": g.tangent_exponent,
            "tangent_flat": False,
            "floor": g.floor,
            "directions": 2,
            "t_min": 1e-3,
            "t_max": 1e-1,
        },
    )
    assert g.normal_exponent == pytest.approx(2, abs=0.05)
    ax = g.plot(new_axes())
    for i in range(2):
        np.testing.assert_array_equal(ax.lines[i].get_ydata(), g.normal_loss[i])
        np.testing.assert_array_equal(ax.lines[2 + i].get_ydata(), g.tangent_loss[i])
    check_roundtrip(g, tmp_path)


def test_walk(mlp, tmp_path):
    pr, w = mlp
    walk = lg.walk_manifold(pr, w, steps=3, step_size=0.05, progress=False)
    check_summary(
        walk,
        {
            "steps": 3,
            "success": True,
            "step_size": 0.05,
            "direction": "random",
            "retract": True,
            "distance_travelled": float(walk.distance_travelled[-1]),
            "displacement": float(walk.displacement[-1]),
            "max_loss_before_retraction": float(walk.loss_before.max()),
            "max_loss": float(walk.loss.max()),
            "max_residual_norm": float(walk.residual_norm.max()),
            "mean_retraction_iterations": float(np.mean(walk.retraction_iterations)),
            "local_dimension": walk.local_dimension,
            "expected_dimension": pr.p - 20,
        },
    )
    fig, axes = plt.subplots(1, 2)
    assert walk.plot(axes) is fig
    left, right = axes
    np.testing.assert_array_equal(left.lines[0].get_ydata(), walk.loss_before)
    np.testing.assert_array_equal(left.lines[1].get_ydata(), np.maximum(walk.loss, 1e-300))
    np.testing.assert_array_equal(right.lines[0].get_ydata(), walk.distance_travelled)
    np.testing.assert_array_equal(right.lines[1].get_ydata(), walk.displacement)
    # the old keyword still draws on the given Axes, with a DeprecationWarning
    fig2, axes2 = plt.subplots(1, 2)
    with pytest.warns(DeprecationWarning, match="axes"):
        assert walk.plot(axes=axes2) is fig2
    np.testing.assert_array_equal(axes2[1].lines[0].get_ydata(), walk.distance_travelled)
    with pytest.raises(ValueError, match="2 panels"):
        walk.plot(new_axes())
    with pytest.raises(TypeError, match="both"):
        walk.plot(axes, axes=axes)
    assert len(walk.plot().axes) == 2
    back = check_roundtrip(walk, tmp_path)
    assert isinstance(back.pca_rank, lg.Rank) and back.pca_rank.rank == walk.pca_rank.rank


def test_walk_without_steps_summarizes():
    pr, w = interpolated("mlp")
    walk = lg.walk_manifold(pr, w, steps=1, step_size=0.05, progress=False)
    empty = type(walk).from_dict({**walk.to_dict(), "steps": 0})
    s = empty.summary()
    assert s["steps"] == 0 and s["distance_travelled"] == 0.0 and s["max_loss"] is None


def test_segment_and_curvature(mlp, tmp_path):
    pr, w = mlp
    walk = lg.walk_manifold(pr, w, steps=2, step_size=0.2, direction="persistent", progress=False)
    seg = lg.segment_loss(pr, w, walk.w_end, num=11)
    check_summary(
        seg,
        {
            "midpoint_loss": float(seg.loss[5]),
            "max_loss": float(seg.loss.max()),
            "convexity_gap": seg.convexity_gap,
            "convex_on_segment": False,
            "distance": seg.distance,
            "points": 11,
        },
    )
    ax = seg.plot(new_axes())
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), seg.loss)
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [seg.loss[0], seg.loss[-1]])
    check_roundtrip(seg, tmp_path, "seg.json")

    radii = (1e-2, 3e-3, 1e-3)
    nc = lg.negative_curvature_near(pr, w, radii=radii)
    e = np.asarray(nc.eigenvalue)
    check_summary(
        nc,
        {
            "found": True,
            "exponent": nc.exponent,
            "most_negative": float(e.min()),
            "eigenvalue_at_smallest_radius": float(e[2]),
            "smallest_radius": 1e-3,
            "radii": 3,
            "predicted_slope": nc.predicted_slope,
            "lambda_scale": nc.lambda_scale,
            "certificate": "exact",
            "tol": nc.tol,
        },
    )
    ax = nc.plot(new_axes())
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), -e)
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), -np.asarray(nc.rayleigh))
    np.testing.assert_allclose(ax.lines[2].get_ydata(), -nc.predicted_slope * np.array(radii))
    check_roundtrip(nc, tmp_path, "nc.json")


def test_local_convexity(tmp_path):
    pr, w = interpolated("mlp")
    lc = lg.local_convexity(pr, w, radii=(1e-2, 1e-3), samples=2)
    lm = np.asarray(lc.lambda_min)
    check_summary(
        lc,
        {
            "convex": False,
            "convex_radius": None,
            "lambda_min": float(lm.min()),
            "lambda_min_center": lc.lambda_min_center,
            "lambda_max_center": lc.lambda_max_center,
            "radii": 2,
            "points_per_radius": 4,
            "tol": lc.tol,
        },
    )
    ax = lc.plot(new_axes())
    for j in range(4):
        np.testing.assert_array_equal(ax.lines[j].get_ydata(), lm[:, j])
    np.testing.assert_array_equal(ax.lines[4].get_ydata(), lc.min_per_radius)
    check_roundtrip(lc, tmp_path)


def test_degenerate_prediction(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 5, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 3, generator=g, dtype=torch.float64)
    model = lg.models.mlp(5, 4, 2, 3, activation="tanh", bias=False, seed=0).double()
    pr = lg.Problem(model, X, Y)
    w = zero_layers(pr, pr.params(), layers=[0, 2])
    pred = predict_zero_layer_nullity(pr, w, layers=[0, 2])
    assert pred.nonzero == 2 * pred.rank_Q * pred.rank_GP > 0
    check_summary(
        pred,
        {
            "nullity": pred.nullity,
            "nonzero": pred.nonzero,
            "p": pr.p,
            "zero_fraction": pred.nullity / pr.p,
            "rank_Q": pred.rank_Q,
            "rank_GP": pred.rank_GP,
            "layers": "0,2",
        },
    )
    assert pred.nullity == lg.hessian_nullity(pr, w, solver="dense").nullity
    ax = pred.plot(new_axes())
    assert bar_heights(ax) == [pred.nullity, pred.nonzero]
    assert f"2 · {pred.rank_Q} · {pred.rank_GP}" in ax.get_title()
    check_roundtrip(pred, tmp_path)


def test_analysis_plots_on_given_axes():
    pr = mlp_problem(n=6, d=3, width=6, k=1)
    res = lg.analyze_manifold(pr, walk_steps=2, radii=(1e-2, 1e-3, 1e-4))
    assert res.success
    fig, axes = plt.subplots(2, 2)
    assert res.plot(axes) is fig
    ref = res.report.plot(new_axes())
    np.testing.assert_array_equal(axes[0, 0].lines[0].get_ydata(), ref.lines[0].get_ydata())
    np.testing.assert_array_equal(axes[0, 1].lines[0].get_ydata(), res.growth.normal_loss[0])
    np.testing.assert_array_equal(axes[1, 0].lines[0].get_ydata(), res.segment.loss)
    np.testing.assert_array_equal(
        axes[1, 1].lines[1].get_ydata(), -np.asarray(res.curvature.rayleigh)
    )
    assert res.plot(list(plt.subplots(1, 4)[1])) is not None  # any 4 Axes, in order
    with pytest.raises(ValueError, match="4 panels"):
        res.plot(plt.subplots(1, 2)[1])
    assert len(res.plot().axes) == 4
