"""The conditions' Results: flat summary(), plot(ax=None) drawing their own fields, save/load.

Each plot test reads the data back from the matplotlib artists (line y-values, scatter
offsets) and compares it with the Result's fields, so a plot that draws the wrong array fails.
"""

from __future__ import annotations

import math
import warnings

import matplotlib
import numpy as np
import pytest
from plstar_fixtures import mlp_problem

import lossgeometry as lg
from lossgeometry.conditions import (
    CertificateCheck,
    PLStarCertificate,
    PLStarEpsilon,
    certify_plstar,
    compare_with_certificate,
    pl_ratio_profile,
)
from lossgeometry.conditions import _alphabeta_grid as grid
from lossgeometry.results import Result

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@pytest.fixture(scope="module")
def run_and_cert():
    problem = mlp_problem(n=4, width=32, noise=0.5)
    run = lg.train(problem, "gd", steps=12, lr=0.05, record_iterates=True, record_every=3)
    cert = certify_plstar(problem, samples=2, trajectory=run, max_rounds=1)
    return problem, run, cert


def _flat(summary: dict) -> None:
    assert summary and all(isinstance(k, str) for k in summary)
    for k, v in summary.items():
        ok = v is None or isinstance(v, (bool, int, float, np.integer, np.floating))
        assert ok or (isinstance(v, str) and len(v) <= 80), (k, v)


def _roundtrip(res: Result, tmp_path) -> Result:
    path = res.save(tmp_path / f"{type(res).__name__}.json")
    back = lg.load_result(path)
    assert type(back) is type(res)
    assert back.to_dict() == res.to_dict()
    assert back.summary() == pytest.approx(res.summary(), nan_ok=True)
    return back


def _ydata(ax, label: str) -> np.ndarray:
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return np.asarray(line.get_ydata(), dtype=float)


def _nan_pos(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return np.where(a > 0, a, np.nan)


def test_certificate_plot_draws_the_sampled_constants(run_and_cert, tmp_path):
    _, _, cert = run_and_cert
    _flat(cert.summary())
    _roundtrip(cert, tmp_path)
    fig = cert.plot()
    ax1, ax2 = fig.axes
    src = np.asarray(cert.sample_source)
    for s in ("w0", "sphere", "trajectory"):
        m = src == s
        (c1,) = [c for c in ax1.collections if c.get_label() == s]
        (c2,) = [c for c in ax2.collections if c.get_label() == s]
        np.testing.assert_array_equal(c1.get_offsets()[:, 0], cert.sample_distance[m])
        np.testing.assert_array_equal(c1.get_offsets()[:, 1], cert.sample_lambda_min[m])
        np.testing.assert_array_equal(c2.get_offsets()[:, 1], cert.sample_hessian_norm[m])
    assert _ydata(ax1, "µ")[0] == cert.mu
    plt.close(fig)


def test_check_plot_draws_observed_predicted_and_distances(run_and_cert, tmp_path):
    _, run, cert = run_and_cert
    check = compare_with_certificate(run, cert)
    s = check.summary()
    _flat(s)
    assert s["loss_holds"] is check.loss_holds and s["max_excess"] == check.max_excess
    assert s["final_loss"] == check.observed[-1] and s["records"] == len(check.steps)
    _roundtrip(check, tmp_path)
    fig = check.plot()
    ax1, ax2 = fig.axes
    np.testing.assert_array_equal(_ydata(ax1, "observed L(w_t)"), _nan_pos(check.observed))
    np.testing.assert_array_equal(_ydata(ax1, "predicted bound"), _nan_pos(check.predicted))
    np.testing.assert_array_equal(_ydata(ax2, "‖w_t − w0‖"), check.distance)
    np.testing.assert_array_equal(_ydata(ax2, "bound"), check.distance_bound)
    plt.close(fig)


def test_epsilon_plot_draws_loss_and_ratio(run_and_cert, tmp_path):
    _, run, _ = run_and_cert
    eps = lg.plstar_epsilon(run)
    s = eps.summary()
    _flat(s)
    assert (s["mu"], s["epsilon"], s["stalled"]) == (eps.mu, eps.epsilon, eps.stalled)
    _roundtrip(eps, tmp_path)
    fig = eps.plot()
    ax1, ax2 = fig.axes
    np.testing.assert_array_equal(ax1.get_lines()[0].get_xdata(), eps.steps)
    np.testing.assert_array_equal(ax1.get_lines()[0].get_ydata(), _nan_pos(eps.loss))
    ok = (eps.loss > 0) & np.isfinite(eps.pl_ratio) & (eps.pl_ratio > 0)
    np.testing.assert_array_equal(ax2.get_lines()[0].get_ydata(), eps.pl_ratio[ok])
    assert _ydata(ax2, f"µ = {eps.mu:.3g}")[0] == eps.mu
    plt.close(fig)


def test_pl_ratio_profile_plot_and_summary(run_and_cert, tmp_path):
    problem, run, _ = run_and_cert
    prof = pl_ratio_profile(problem, run)
    s = prof.summary()
    _flat(s)
    assert s["holds"] is prof.holds and s["min_margin"] == prof.min_margin
    assert s["min_bound"] == float(np.min(prof.bound))
    _roundtrip(prof, tmp_path)
    fig, ax = plt.subplots()
    assert prof.plot(ax) is ax  # draws on the given Axes
    np.testing.assert_array_equal(_ydata(ax, "‖∇L‖²/L (observed)"), prof.pl_ratio)
    np.testing.assert_array_equal(
        _ydata(ax, "2c·λ_min(K(w_t))"), np.where(prof.bound > 0, prof.bound, np.nan)
    )
    plt.close(fig)


@pytest.mark.parametrize("cls", [PLStarCertificate, CertificateCheck, PLStarEpsilon])
def test_two_panel_plots_take_axes_and_the_deprecated_fig(run_and_cert, cls):
    _, run, cert = run_and_cert
    res = {
        PLStarCertificate: cert,
        CertificateCheck: compare_with_certificate(run, cert),
        PLStarEpsilon: lg.plstar_epsilon(run),
    }[cls]
    fig, axes = plt.subplots(1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new style does not warn
        assert res.plot(axes) is fig
    drawn = [np.asarray(ln.get_ydata(), float) for ax in axes for ln in ax.get_lines()]
    plt.close(fig)
    old = plt.figure()
    with pytest.warns(DeprecationWarning, match=r"plot\(fig=...\) is deprecated"):
        assert res.plot(fig=old) is old
    again = [np.asarray(ln.get_ydata(), float) for ax in old.axes for ln in ax.get_lines()]
    assert len(again) == len(drawn)
    for a, b in zip(again, drawn, strict=True):
        np.testing.assert_array_equal(a, b)
    plt.close(old)
    with pytest.raises(TypeError, match="2 panels"):
        res.plot(axes[:1])
    with pytest.raises(TypeError, match="not both"):
        res.plot(list(axes), fig=old)


def test_condition_trace_plot_draws_the_exact_boundary(tmp_path):
    problem = mlp_problem(n=6, width=16, noise=0.5)
    tr = lg.record_conditions(problem, "sgd", 10, 3, lr=0.05)
    al = np.linspace(0.0, 4.0, 9)
    fig, ax = plt.subplots()
    assert tr.plot(ax, alphas=al, betas=al, margin=0.2, colorbar=False) is ax
    lo, hi = tr.beta_interval(al)
    ok = (lo <= hi) & np.isfinite(lo)
    np.testing.assert_array_equal(_ydata(ax, "min T = 0"), lo[ok])
    np.testing.assert_array_equal(_ydata(ax, "α = β + 0.2"), al - 0.2)
    (mesh,) = ax.collections  # the heatmap: signed log of min T, β along the rows
    shown = np.asarray(mesh.get_array(), dtype=float).reshape(al.size, al.size).T
    np.testing.assert_allclose(shown, grid.signed_log(tr.min_T(al, al)), rtol=1e-12)
    plt.close(fig)
    with pytest.raises(TypeError, match="first argument is ax"):
        tr.plot(al, betas=al)
    back = lg.load_result(tr.save(tmp_path / "trace.json"))
    np.testing.assert_array_equal(back.min_T(al, al), tr.min_T(al, al))
    s = tr.summary()
    assert s["runs"] == 1 and math.isfinite(s["alpha_max_at_beta0"])
