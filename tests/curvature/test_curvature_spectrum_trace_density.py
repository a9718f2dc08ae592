"""Spectrum ends, trace and density of the loss Hessian against dense eigvalsh; the bound."""

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from tests.conftest import tiny_cnn, tiny_mlp
from tests.oracles.dense import dense_hessian


def mlp_problem(loss="mse", reduction=None, n=8, width=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Y = (
        torch.randn(n, 2, generator=g, dtype=torch.float64)
        if loss == "mse"
        else torch.randint(0, 2, (n,), generator=g)
    )
    return lg.Problem(
        tiny_mlp(d_in=3, width=width, d_out=2, seed=seed), X, Y, loss=loss, reduction=reduction
    )


def cnn_problem():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(6, 1, 6, 6, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_cnn(), X, torch.randint(0, 3, (6,), generator=g), loss="cross_entropy")


@pytest.mark.parametrize("make", [mlp_problem, cnn_problem])
@pytest.mark.parametrize("method", ["lanczos", "arpack", "dense"])
def test_both_ends_match_eigvalsh(make, method):
    P = make()
    w = P.params()
    ev = torch.linalg.eigvalsh(dense_hessian(P, w)).numpy()
    s = lg.hessian_spectrum(P, w, top=3, bottom=3, tol=1e-10, solver=method)
    assert s.converged and s.method == method
    np.testing.assert_allclose(s.top, ev[::-1][:3], atol=1e-8)
    np.testing.assert_allclose(s.bottom, ev[:3], atol=1e-8)
    assert s.lambda_min < 0 < s.lambda_max  # indefinite away from a minimum
    assert len(s.residuals) == 6 and len(s.error_bounds) == 6
    # the default criterion bounds the eigenvalue errors, not the residuals
    scale = np.abs(ev).max()
    assert np.all(s.error_bounds <= 1e-10 * scale * (1 + 1e-9))
    exact = np.concatenate([ev[::-1][:3], ev[:3]])
    assert np.all(np.abs(np.concatenate([s.top, s.bottom]) - exact) <= s.error_bounds + 1e-12)


@pytest.mark.parametrize("make", [mlp_problem, cnn_problem])
def test_residual_criterion_bounds_the_residuals(make):
    P = make()
    w = P.params()
    ev = torch.linalg.eigvalsh(dense_hessian(P, w)).numpy()
    s = lg.hessian_spectrum(P, w, top=2, bottom=2, tol=1e-8, solver="lanczos", criterion="residual")
    assert s.converged and s.criterion == "residual"
    assert np.all(s.residuals <= 1e-8 * np.abs(ev).max() * (1 + 1e-9))
    e = lg.hessian_spectrum(P, w, top=2, bottom=2, tol=1e-8, solver="lanczos")
    assert e.criterion == "eigenvalue" and e.matvecs <= s.matvecs
    np.testing.assert_allclose(e.top, ev[::-1][:2], atol=1e-8 * np.abs(ev).max())


def test_float32_default_tolerance_and_vectors():
    net = tiny_mlp(d_in=3, width=10, d_out=2).float()
    X, Y = torch.randn(12, 3), torch.randn(12, 2)
    P = lg.Problem(net, X, Y, reduction="mean")
    ev = torch.linalg.eigvalsh(dense_hessian(P.to(dtype=torch.float64), P.params().double()))
    s = lg.hessian_spectrum(P, top=2, bottom=2, solver="lanczos", return_vectors=True)
    assert s.tol == 1e-4 and s.reduction == "mean" and s.loss_scale == pytest.approx(2 / 24)
    scale = float(ev.abs().max())
    np.testing.assert_allclose(s.top, ev.flip(0)[:2], atol=1e-4 * scale)
    np.testing.assert_allclose(s.bottom, ev[:2], atol=1e-4 * scale)
    assert s.vectors.shape == (P.p, 4)
    again = lg.HessianSpectrum.from_dict(s.to_dict())
    np.testing.assert_allclose(again.top, s.top)


def test_ggn_spectrum_is_nonnegative_and_bad_arguments():
    P = mlp_problem()
    s = lg.hessian_spectrum(P, of="ggn", top=1, bottom=2, solver="dense")
    assert s.bottom[0] > -1e-10 and s.of == "ggn"
    with pytest.raises(ValueError, match="at least one"):
        lg.hessian_spectrum(P, top=0, bottom=0)
    with pytest.raises(ValueError, match="exceeds"):
        lg.hessian_spectrum(P, top=P.p, bottom=1)
    with pytest.raises(ValueError, match="solver"):
        lg.hessian_spectrum(P, solver="power")


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
def test_trace_mean_over_seeds_within_interval(method):
    P = mlp_problem(loss="cross_entropy", width=8)
    exact = float(torch.trace(dense_hessian(P, P.params())))
    ests = [lg.hessian_trace(P, estimator=method, samples=30, seed=s) for s in range(12)]
    assert sum(e.covers(exact) for e in ests) >= 9  # nominal 95 % coverage
    vals = np.array([e.estimate for e in ests])
    # the mean over seeds lies within its own 99 % interval of the exact trace
    assert abs(vals.mean() - exact) <= 3 * vals.std(ddof=1) / np.sqrt(len(vals))
    assert ests[0].matvecs == 30 and ests[0].of == "loss"
    ex = lg.hessian_trace(P, estimator="exact")
    assert ex.estimate == pytest.approx(exact, rel=1e-10) and ex.covers(exact)


def test_density_integrates_to_one_and_matches_the_exact_spectrum():
    P = mlp_problem(width=8)
    ev = torch.linalg.eigvalsh(dense_hessian(P, P.params())).numpy()
    p = P.p
    d = lg.hessian_density(P, probes=30, steps=p, grid=3000)
    assert d.matvecs == 30 * p
    assert np.trapezoid(d.density, d.grid) == pytest.approx(1.0, abs=1e-3)
    # same Gaussian smoothing of the exact eigenvalues: the densities agree
    exact = np.exp(-0.5 * ((d.grid[:, None] - ev[None]) / d.sigma) ** 2).sum(1) / (
        p * d.sigma * np.sqrt(2 * np.pi)
    )
    l1 = np.trapezoid(np.abs(d.density - exact), d.grid)
    assert l1 < 0.35
    # histogram of exact eigenvalues vs the quadrature CDF (Kolmogorov distance)
    ts = np.linspace(ev.min(), ev.max(), 200)
    ecdf = (ev[None, :] <= ts[:, None]).mean(1)
    assert np.abs(d.cdf(ts) - ecdf).max() < 0.15
    # moments: exact for degree < 2·steps; E over probes = tr(H^j)/p
    for j in (1, 2):
        assert d.moment(j) == pytest.approx((ev**j).mean(), rel=0.25)
    # a wrong spectrum (the eigenvalues scaled by 2) is far away: the test can fail
    wrong = np.exp(-0.5 * ((d.grid[:, None] - 2 * ev[None]) / d.sigma) ** 2).sum(1) / (
        p * d.sigma * np.sqrt(2 * np.pi)
    )
    assert np.trapezoid(np.abs(d.density - wrong), d.grid) > 2 * l1
    ax = d.plot()
    assert ax.get_yscale() == "log"


def test_bound_holds_and_the_gauss_newton_part_alone_fails():
    P = mlp_problem(width=5)
    b = lg.hessian_bound(P, tol=1e-9)
    ev = torch.linalg.eigvalsh(dense_hessian(P, P.params()))
    assert b.lambda_max == pytest.approx(float(ev[-1]), rel=1e-8)
    assert b.holds and b.lambda_max <= b.bound
    # at this non-minimum the residual term adds curvature: λ_max > ‖J‖², the β term is needed
    assert not b.gauss_newton_suffices and b.lambda_max > b.gauss_newton
    # "mean" scales everything by loss_scale = 2/(nk)
    Pm = mlp_problem(width=5, reduction="mean")
    bm = lg.hessian_bound(Pm, tol=1e-9)
    c = Pm.loss_scale
    assert bm.loss_scale == pytest.approx(c)
    assert bm.lambda_max == pytest.approx(c * b.lambda_max, rel=1e-7)
    assert bm.bound == pytest.approx(c * b.bound, rel=1e-5) and bm.holds


def test_bound_is_tight_for_a_linear_model_and_refuses_cross_entropy():
    torch.manual_seed(0)
    P = lg.Problem(nn.Linear(3, 2).double(), torch.randn(6, 3).double(), torch.randn(6, 2).double())
    b = lg.hessian_bound(P, tol=1e-10)
    assert b.beta == 0.0 and b.bound == pytest.approx(b.lambda_max, rel=1e-8)
    assert b.holds and b.gauss_newton_suffices
    with pytest.raises(ValueError, match="square loss"):
        lg.hessian_bound(mlp_problem(loss="cross_entropy"))
