"""The curvature Results: summary() states the fields, plot() draws the Result's numbers,
save/load round-trips (HessianSpectrum, HessianDensity, HessianTrace, HessianBound,
ModelHessianNorm)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossgeometry as lg
from tests.conftest import tiny_mlp
from tests.result_checks import bar_heights, check_roundtrip, check_summary, close_all, new_axes


@pytest.fixture(scope="module")
def problem() -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(6, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(6, 2, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_mlp(3, 5, 2, seed=0), X, Y)


@pytest.fixture(autouse=True)
def _close():
    yield
    close_all()


def test_spectrum(problem, tmp_path):
    s = lg.hessian_spectrum(problem, top=2, bottom=1, solver="lanczos", tol=1e-10)
    check_summary(
        s,
        {
            "lambda_max": float(s.top[0]),
            "lambda_min": float(s.bottom[0]),
            "top": 2,
            "bottom": 1,
            "converged": s.converged,
            "max_residual": float(np.max(s.residuals)),
            "matvecs": s.matvecs,
            "method": "lanczos",
            "criterion": "eigenvalue",
            "tol": 1e-10,
            "of": "loss",
            "p": problem.p,
            "reduction": "sum",
        },
    )
    ax = s.plot(new_axes())
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), s.top)  # line 0 is the zero mark
    np.testing.assert_array_equal(ax.lines[2].get_xdata(), s.bottom)
    back = check_roundtrip(s, tmp_path)
    np.testing.assert_array_equal(back.top, s.top)


def test_density(problem, tmp_path):
    d = lg.hessian_density(problem, probes=2, steps=10, grid=50)
    check_summary(
        d,
        {
            "support_min": float(np.min(d.nodes)),
            "support_max": float(np.max(d.nodes)),
            "trace_estimate": d.trace_estimate,
            "sigma": d.sigma,
            "probes": 2,
            "steps": 10,
            "matvecs": d.matvecs,
            "of": "loss",
            "p": problem.p,
            "reduction": "sum",
        },
    )
    ax = d.plot(new_axes(), log=False, label="w")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), d.grid)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), d.density)
    ax = d.plot()  # log scale: floored at 1e-12 · max
    np.testing.assert_array_equal(
        ax.lines[0].get_ydata(), np.maximum(d.density, d.density.max() * 1e-12)
    )
    with pytest.raises(TypeError):
        d.plot(None, False)  # log is keyword-only
    check_roundtrip(d, tmp_path)


@pytest.mark.parametrize("method", ["hutchinson", "hutch++", "exact"])
def test_trace(problem, tmp_path, method):
    t = lg.hessian_trace(problem, estimator=method, samples=12, block=4)
    check_summary(
        t,
        {
            "estimate": t.estimate,
            "ci_low": t.ci_low,
            "ci_high": t.ci_high,
            "half_width": 0.5 * (t.ci_high - t.ci_low),
            "stderr": t.stderr,
            "confidence": 0.95,
            "method": method,
            "samples": t.samples,
            "matvecs": t.matvecs,
            "deflated": t.deflated,
            "mean_curvature": t.estimate / problem.p,
            "of": "loss",
            "p": problem.p,
            "reduction": "sum",
        },
    )
    ax = t.plot(new_axes())
    if method == "exact":
        assert t.per_sample_estimates is None
        assert len(ax.lines) == 1 and not ax.patches
    else:
        per = t.deflated + np.asarray(t.values)
        np.testing.assert_allclose(t.per_sample_estimates, per)
        np.testing.assert_allclose(per.mean(), t.estimate, rtol=1e-12)
        np.testing.assert_allclose(ax.lines[0].get_ydata(), per)
        running = ax.lines[1].get_ydata()
        np.testing.assert_allclose(running, np.cumsum(per) / np.arange(1, per.size + 1))
        np.testing.assert_allclose(running[-1], t.estimate, rtol=1e-12)
        band = ax.patches[0]
        lo, hi = band.get_y(), band.get_y() + band.get_height()
        np.testing.assert_allclose([lo, hi], [t.ci_low, t.ci_high], rtol=1e-12)
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), [t.estimate, t.estimate])
    back = check_roundtrip(t, tmp_path)
    assert isinstance(back, lg.HessianTrace) and back.mean_curvature == t.mean_curvature


def test_bound(problem, tmp_path):
    b = lg.hessian_bound(problem, tol=1e-8)
    c = problem.loss_scale
    mh = c * b.beta * b.residual_norm
    np.testing.assert_allclose(b.gauss_newton + mh, b.bound, rtol=1e-14)
    check_summary(
        b,
        {
            "lambda_max": b.lambda_max,
            "bound": b.bound,
            "ratio": b.lambda_max / b.bound,
            "holds": True,
            "gauss_newton": c * b.lf_squared,
            "model_hessian_term": mh,
            "gauss_newton_suffices": b.gauss_newton_suffices,
            "lf_squared": b.lf_squared,
            "beta": b.beta,
            "residual_norm": b.residual_norm,
            "loss_scale": c,
            "margin": b.margin,
            "matvecs": b.matvecs,
        },
    )
    ax = b.plot(new_axes())
    np.testing.assert_allclose(bar_heights(ax), [b.lambda_max, b.gauss_newton, mh])
    assert ax.patches[2].get_y() == b.gauss_newton  # the second term stacked on the first
    assert [t.get_text() for t in ax.get_xticklabels()] == ["λ_max", "bound"]
    assert "holds" in ax.get_title()
    check_roundtrip(b, tmp_path)


def test_model_hessian_norm(problem, tmp_path):
    m = lg.model_hessian_norm(problem, restarts=3, per_sample=True, tol=1e-8)
    assert m.history is not None and len(m.history) == 3
    # each restart's history ends at its value... up to the running maximum it returns
    for h, v in zip(m.history, m.restart_values, strict=True):
        assert max(h) == v
    assert m.best_restart == int(np.argmax(m.restart_values))
    assert max(m.history[m.best_restart]) == m.norm
    b = np.asarray(m.per_sample_norms)
    check_summary(
        m,
        {
            "norm": m.norm,
            "per_sample": False,
            "converged": m.converged,
            "eigen_residual": m.eigen_residual,
            "restarts": 3,
            "restart_min": min(m.restart_values),
            "n_inputs": problem.n,
            "k": problem.k,
            "p": problem.p,
            "iterations": m.iterations,
            "matvecs": m.matvecs,
            "second_derivatives": m.second_derivatives,
            "tol": 1e-8,
            "per_sample_max": float(b.max()),
            "per_sample_root_sum_squares": float(np.sqrt((b**2).sum())),
        },
    )
    assert b.max() <= m.norm * (1 + 1e-6) and m.norm <= np.sqrt((b**2).sum()) * (1 + 1e-6)
    ax = m.plot(new_axes())
    for line, h in zip(ax.lines[:3], m.history, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), h)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(len(h)))
    np.testing.assert_array_equal(ax.lines[3].get_ydata(), [m.norm, m.norm])
    back = check_roundtrip(m, tmp_path)
    assert back.history == m.history
    # a result saved before the history was recorded still loads and plots its restarts
    d = m.to_dict()
    del d["history"]
    old = lg.ModelHessianNorm.from_dict(d)
    ax = old.plot(new_axes())
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), m.restart_values)


def test_profile_summary_is_its_parts(problem):
    prof = lg.curvature_profile(
        problem, options=lg.CurvatureOptions(probes=2, steps=8, trace_samples=9)
    )
    s = prof.summary()
    assert s["lambda_max"] == prof.spectrum.summary()["lambda_max"]
    assert s["trace"] == prof.trace.summary()["estimate"]
    assert s["bound"] == prof.bound.summary()["bound"]
