"""PL* certificates: exact constants on linear models, honest refusals, the PL-ratio bound."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from plstar_fixtures import dense_kernel, linear_problem, mlp_problem

import lossgeometry as lg
from lossgeometry.conditions import (
    CertifiedGD,
    PLStarCertificate,
    certify_plstar,
    compare_with_certificate,
    pl_ratio_profile,
    run_certified_gd,
)


def _xxt_extremes(X: torch.Tensor) -> tuple[float, float]:
    ev = torch.linalg.eigvalsh(X @ X.T)
    return float(ev[0]), float(ev[-1])


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_linear_model_constants_are_exact(reduction):
    problem, X = linear_problem(reduction=reduction)
    lam_min, lam_max = _xxt_extremes(X)
    cert = certify_plstar(problem, samples=3)
    r0 = float(problem.residual().norm())
    c = problem.loss_scale
    assert cert.certified, cert.verdict
    assert cert.mu == pytest.approx(lam_min, rel=1e-9)
    assert cert.lambda0 == pytest.approx(lam_min, rel=1e-9)
    assert cert.lipschitz_F**2 == pytest.approx(lam_max, rel=1e-9)
    assert cert.smoothness_F <= 1e-10 * lam_max  # D²F = 0 for a linear model
    assert cert.residual_norm == pytest.approx(r0, rel=1e-12)
    assert cert.radius == pytest.approx(2 * math.sqrt(lam_max) * r0 / lam_min, rel=1e-8)
    assert cert.step_size == pytest.approx(1 / (c * lam_max), rel=1e-8)
    assert cert.step_size_strict == pytest.approx(cert.step_size, rel=1e-8)
    assert cert.rate == pytest.approx(1 - lam_min / lam_max, rel=1e-8)
    assert cert.pl_constant == pytest.approx(2 * c * lam_min, rel=1e-8)
    assert cert.condition_number == pytest.approx(lam_max / lam_min, rel=1e-8)
    # the Hessian-based bound is exact for a constant kernel
    assert cert.conditioning_bound == pytest.approx(lam_min, rel=1e-8)
    assert math.isinf(cert.analytic_margin)  # β_F = 0: the Hessian bound alone certifies
    assert cert.loss0 == pytest.approx(float(problem.loss()), rel=1e-12)
    assert cert.predicted(0) == pytest.approx(cert.loss0)
    assert cert.predicted(10) == pytest.approx(cert.loss0 * cert.rate**10)
    assert "not proven" in cert.verdict or "Estimated" in cert.verdict


def test_step_and_rate_do_not_depend_on_reduction():
    a = certify_plstar(linear_problem(reduction="sum")[0], samples=2)
    b = certify_plstar(linear_problem(reduction="mean")[0], samples=2)
    assert a.step_size * a.loss_scale == pytest.approx(b.step_size * b.loss_scale, rel=1e-10)
    assert a.rate == pytest.approx(b.rate, rel=1e-10)
    assert a.radius == pytest.approx(b.radius, rel=1e-10)
    assert b.loss_scale == pytest.approx(2 / (6 * 2))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_linear_gd_never_above_the_bound(reduction):
    problem, _ = linear_problem(reduction=reduction)
    cert = certify_plstar(problem, samples=2)
    run = lg.train(problem, lambda ps: CertifiedGD(ps, cert), steps=150)
    check = compare_with_certificate(run, cert, lr=cert.step_size)
    assert check.covered and check.loss_holds and check.distance_holds
    assert np.all(run.loss <= cert.predicted(run.steps) * (1 + 1e-9))
    assert np.all(run.distance <= cert.radius)
    # the loss went down by many orders of magnitude (the bound is not vacuous)
    assert run.loss[-1] < 1e-6 * run.loss[0]


def test_too_large_step_breaks_the_bound():
    """The theorem fails outside its hypothesis: a step above 2/λ_max(H) diverges."""
    problem, _ = linear_problem()
    cert = certify_plstar(problem, samples=2)
    lr = 2.5 * cert.step_size
    run = lg.train(problem, "gd", steps=30, lr=lr)
    check = compare_with_certificate(run, cert)
    assert not check.covered
    assert not check.loss_holds and check.max_excess > 10
    assert "exceeds the certified step" in check.note


def test_under_parameterized_declines():
    # p = 2·2 + 2 + 2·3 + 3 = 15 < nk = 30
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 2, generator=g, dtype=torch.float64)
    Y = torch.randn(10, 3, generator=g, dtype=torch.float64)
    model = lg.models.mlp(2, 2, 1, 3, seed=0).double()
    problem = lg.Problem(model, X, Y)
    assert problem.p < problem.n * problem.k
    cert = certify_plstar(problem, samples=2)
    assert not cert.certified
    assert cert.mu == 0.0
    assert math.isinf(cert.radius) and math.isinf(cert.condition_number)
    assert cert.rate == 1.0
    assert any("under-parameterized" in r for r in cert.reasons)
    assert cert.verdict.startswith("Cannot certify")
    assert "p = 15 < nk = 30" in cert.verdict
    with pytest.raises(ValueError, match="declined"):
        CertifiedGD([torch.zeros(3, requires_grad=True)], cert)


def test_singular_kernel_with_enough_parameters_declines():
    """p ≥ nk but two identical inputs: K is singular, so µ = 0 and the certificate declines."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 3, generator=g, dtype=torch.float64)
    X[1] = X[0]
    Y = torch.randn(4, 1, generator=g, dtype=torch.float64)
    problem = lg.Problem(lg.models.mlp(3, 64, 1, 1, parameterization="ntk", seed=0).double(), X, Y)
    cert = certify_plstar(problem, samples=2)
    assert not cert.certified and cert.mu == 0.0
    assert any("numerically zero" in r for r in cert.reasons)


def test_given_radius_too_small_declines():
    problem, _ = linear_problem()
    full = certify_plstar(problem, samples=2)
    cert = certify_plstar(problem, radius=0.1 * full.radius, samples=2)
    assert not cert.certified
    assert any("exceeds the given radius" in r for r in cert.reasons)
    assert cert.sampled_radius == pytest.approx(0.1 * full.radius)
    big = certify_plstar(problem, radius=2 * full.radius, samples=3)
    assert big.certified
    d = big.sample_distance[np.asarray(big.sample_source) == "sphere"]
    assert np.allclose(
        sorted(d), sorted([0.5 * big.sampled_radius, 0.25 * big.sampled_radius, big.sampled_radius])
    )


def test_pl_ratio_at_least_two_lambda_min_at_random_points():
    for reduction in ("sum", "mean"):
        problem = mlp_problem(n=5, width=16, k=2, noise=1.0, reduction=reduction)
        c = problem.loss_scale
        g = torch.Generator().manual_seed(1)
        w0 = problem.params()
        for _ in range(6):
            w = w0 + 0.5 * torch.randn(problem.p, generator=g, dtype=torch.float64)
            L, grad = problem.loss_and_grad(w)
            ratio = float(grad.norm() ** 2 / L)
            ev = torch.linalg.eigvalsh(dense_kernel(problem, w))
            assert ratio >= 2 * c * float(ev[0]) * (1 - 1e-10)
            assert ratio <= 2 * c * float(ev[-1]) * (1 + 1e-10)


def test_pl_ratio_bound_is_attained_so_the_factor_two_is_exact():
    """With y = F(w) − v_min the residual is K's bottom eigenvector: ratio = 2cλ_min exactly."""
    problem = mlp_problem(n=4, width=16, k=1)
    w = problem.params()
    K = dense_kernel(problem, w)
    ev, V = torch.linalg.eigh(K)
    F = problem.F(w).reshape(-1)
    for reduction in ("sum", "mean"):
        p2 = lg.Problem(
            problem.model, problem.batch()[0], (F - V[:, 0]).reshape(-1, 1), reduction=reduction
        )
        L, grad = p2.loss_and_grad(w)
        assert float(grad.norm() ** 2 / L) == pytest.approx(
            2 * p2.loss_scale * float(ev[0]), rel=1e-8
        )


def test_pl_ratio_profile_along_a_run():
    problem = mlp_problem(n=5, width=32, k=1, noise=1.0)
    run = lg.train(problem, "gd", steps=40, lr=0.05, record_iterates=True, record_every=4)
    prof = pl_ratio_profile(problem, run, max_points=6)
    assert prof.holds and prof.min_margin >= 1 - 1e-6
    assert len(prof.steps) == 6
    ref = [
        float(torch.linalg.eigvalsh(dense_kernel(problem, run.iterates[i]))[0])
        for i in np.unique(np.linspace(0, len(run.iterates) - 1, 6).round().astype(int))
    ]
    assert np.allclose(prof.lambda_min, ref, rtol=1e-6)
    with pytest.raises(ValueError, match="record_iterates"):
        pl_ratio_profile(problem, lg.train(problem, "gd", steps=2, lr=0.05))


def test_overparameterized_mlp_certified_and_bound_holds_along_certified_gd():
    problem = mlp_problem(n=4, d_in=3, width=128, noise=0.05)
    cert = certify_plstar(problem, samples=3)
    assert cert.certified, cert.verdict
    assert 0 < cert.mu <= cert.lambda0
    assert cert.smoothness_F > 0
    assert cert.step_size_strict < cert.step_size
    run = run_certified_gd(problem, cert, steps=120)
    assert run.lr == cert.step_size and run.optimizer == "CertifiedGD"
    check = compare_with_certificate(run, cert)
    assert check.covered and check.loss_holds and check.distance_holds, check
    assert run.distance.max() <= cert.radius
    assert run.loss[-1] < 0.05 * run.loss[0]
    # the Weyl bound (√λ0 − d·β_F)² ≤ λ_min(K) holds at every sampled point
    lb = np.maximum(np.sqrt(cert.lambda0) - cert.sample_distance * cert.smoothness_F, 0) ** 2
    assert np.all(cert.sample_lambda_min >= lb * (1 - 1e-9))


def test_trajectory_points_enter_the_estimates():
    problem = mlp_problem(n=4, width=64, noise=0.1)
    run = lg.train(problem, "gd", steps=20, lr=0.05, record_iterates=True)
    cert = certify_plstar(problem, samples=2, trajectory=run, trajectory_points=3)
    src = np.asarray(cert.sample_source)
    assert (src == "trajectory").sum() == 3 and src[0] == "w0"
    traj_lmin = cert.sample_lambda_min[src == "trajectory"]
    ref = float(torch.linalg.eigvalsh(dense_kernel(problem, run.iterates[-1]))[0])
    assert traj_lmin[-1] == pytest.approx(ref, rel=1e-6)
    assert cert.mu <= traj_lmin.min() + 1e-12


def test_certificate_json_round_trip(tmp_path):
    problem, _ = linear_problem()
    cert = certify_plstar(problem, samples=2)
    path = cert.save(tmp_path / "cert.json")
    back = PLStarCertificate.load(path)
    assert back.points is None and back.mu == cert.mu and back.radius == cert.radius
    assert back.sample_source == cert.sample_source
    assert np.allclose(back.sample_lambda_min, cert.sample_lambda_min)
    assert back.steps_to(1e-6 * back.loss0) == cert.steps_to(1e-6 * cert.loss0)
    assert cert.distance_bound(10**6) < cert.radius
    assert cert.distance_bound(0) == 0.0


def test_invalid_arguments():
    problem, _ = linear_problem()
    with pytest.raises(ValueError, match="radius"):
        certify_plstar(problem, radius=-1.0)
    with pytest.raises(ValueError, match="radii"):
        certify_plstar(problem, radii=(0.0, 2.0))
    with pytest.raises(ValueError, match="samples"):
        certify_plstar(problem, samples=-1)
    ce = lg.Problem(
        torch.nn.Linear(3, 2).double(),
        torch.randn(4, 3, dtype=torch.float64),
        torch.tensor([0, 1, 0, 1]),
        loss="cross_entropy",
    )
    with pytest.raises(ValueError, match="square loss"):
        certify_plstar(ce)


def test_certified_gd_warns_when_leaving_the_ball():
    problem, _ = linear_problem()
    cert = certify_plstar(problem, samples=2)
    tiny = dataclasses.replace(cert, radius=1e-6)
    with pytest.warns(RuntimeWarning, match="left the certified ball"):
        lg.train(problem, lambda ps: CertifiedGD(ps, tiny), steps=3)
    with pytest.raises(ValueError, match="scale"):
        CertifiedGD([torch.zeros(2, requires_grad=True)], cert, scale=1.5)


def test_plots_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problem = mlp_problem(n=4, width=32, noise=0.5)
    run = lg.train(problem, "gd", steps=12, lr=0.05, record_iterates=True, record_every=3)
    cert = certify_plstar(problem, samples=2, trajectory=run, max_rounds=1)
    for fig in (
        cert.plot(),
        compare_with_certificate(run, cert).plot(),
        lg.plstar_epsilon(run).plot(),
        pl_ratio_profile(problem, run).plot().figure,
    ):
        assert len(fig.axes) >= 1
        plt.close(fig)
