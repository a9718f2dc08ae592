"""Essential non-convexity near over-parameterized minima, and the convex contrast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from manifold_fixtures import exponential_problem, interpolated

import lossgeometry as lg
from tests.oracles.dense import dense_hessian


def test_product_midpoint_loss_closed_form() -> None:
    pr, _ = interpolated("product")
    a, b = 0.5, 3.0
    wa = torch.tensor([a, 1 / a], dtype=torch.float64)
    wb = torch.tensor([b, 1 / b], dtype=torch.float64)
    seg = lg.segment_loss(pr, wa, wb, num=21)
    # midpoint product (a + b)(1/a + 1/b)/4 = (a + b)²/(4ab): L = ½ ((a − b)²/(4ab))²
    expected = 0.5 * ((a - b) ** 2 / (4 * a * b)) ** 2
    assert seg.loss[0] < 1e-28 and seg.loss[-1] < 1e-28
    assert seg.midpoint_loss == pytest.approx(expected, rel=1e-12)
    assert not seg.convex_on_segment and seg.convexity_gap == pytest.approx(expected, rel=1e-12)


def test_product_negative_curvature_matches_closed_form() -> None:
    pr, w = interpolated("product")
    nc = lg.negative_curvature_near(pr, w, radii=(1e-1, 1e-2, 1e-3, 1e-4))
    assert nc.found and nc.certificate == "exact"
    assert nc.exponent == pytest.approx(1.0, abs=0.05)
    a, b = w.tolist()
    # the only unit normal direction is ±(b, a)/s; the construction picks the sign with
    # negative curvature. Hessian of ½(xy − 1)²: [[y², 2xy − 1], [2xy − 1, x²]].
    s = np.hypot(a, b)
    for rho, lam in zip(nc.radii, nc.eigenvalue, strict=True):
        cands = []
        for sign in (1, -1):
            x, y = a + sign * rho * b / s, b + sign * rho * a / s
            H = np.array([[y * y, 2 * x * y - 1], [2 * x * y - 1, x * x]])
            cands.append(np.linalg.eigvalsh(H)[0])
        assert lam == pytest.approx(min(cands), rel=1e-9)
        assert lam < 0


def test_mlp_negative_curvature_at_every_radius() -> None:
    pr, w = interpolated("mlp", n=20, d=4, width=16, k=2)
    radii = (1e-1, 1e-2, 1e-3, 1e-4)
    nc = lg.negative_curvature_near(pr, w, radii=radii, seed=0)
    assert nc.found and np.all(nc.eigenvalue < -nc.tol)
    assert np.all(nc.eigenvalue <= nc.rayleigh + 1e-12)  # the Rayleigh quotient bounds λ_min
    assert nc.exponent == pytest.approx(1.0, abs=0.2)
    # first-order prediction tᵀ∇²L t ≈ −c ρ ‖Jᵀ D²F[t, t]‖ at the smallest radius
    assert nc.rayleigh[-1] == pytest.approx(nc.predicted_slope * 1e-4, rel=1e-2)
    # the exact λ_min from an independent dense Hessian at the same point
    rep = lg.solution_manifold(pr, w, hessian=False)
    rayleigh_only = lg.negative_curvature_near(
        pr, w, radii=radii, seed=0, solver="rayleigh", space=rep.tangent_space
    )
    assert rayleigh_only.certificate == "rayleigh" and rayleigh_only.found
    assert np.allclose(rayleigh_only.eigenvalue, nc.rayleigh, rtol=1e-8)


def test_mlp_exact_eigenvalue_against_dense_oracle() -> None:
    pr, w = interpolated("mlp", n=5, d=4, width=16, k=2)
    nc = lg.negative_curvature_near(pr, w, radii=(1e-2, 1e-3), seed=3)
    n, t = nc.normal_direction, nc.tangent_direction
    assert float(n.norm()) == pytest.approx(1.0) and float(t.norm()) == pytest.approx(1.0)
    rep = lg.solution_manifold(pr, w, hessian=False)
    assert float(rep.project_tangent(n).norm()) < 1e-10  # n is a normal direction
    for rho, lam, q in zip(nc.radii, nc.eigenvalue, nc.rayleigh, strict=True):
        H = dense_hessian(pr, w + rho * n)  # independent autograd oracle at the same point
        assert lam == pytest.approx(float(torch.linalg.eigvalsh(H)[0]), rel=1e-8)
        assert q == pytest.approx(float(t @ H @ t), rel=1e-8)
    ev0 = torch.linalg.eigvalsh(dense_hessian(pr, w))
    assert float(ev0[0]) > -1e-8 * float(ev0[-1])  # at w* itself the Hessian is PSD


def test_linear_model_has_no_negative_curvature() -> None:
    pr, w = interpolated("linear", n=6, d=15)
    nc = lg.negative_curvature_near(pr, w)
    assert not nc.found and nc.exponent is None
    assert np.all(nc.eigenvalue >= -nc.tol)
    lc = lg.local_convexity(pr, w, samples=3)
    assert lc.convex and lc.convex_radius == pytest.approx(max(lc.radii))


def test_under_parameterized_minimum_has_a_convex_neighbourhood() -> None:
    pr = exponential_problem(n=20)  # p = 2 < nk = 20
    m = lg.least_squares_minimum(pr, progress=False)
    assert m.success and m.residual_norm > 0.1  # a positive minimum: no interpolation
    lc = lg.local_convexity(pr, m.w, radii=(1e-1, 1e-2, 1e-3), samples=8)
    assert lc.convex and lc.lambda_min_center > 0
    assert lc.convex_radius == pytest.approx(1e-1)
    assert np.all(lc.lambda_min > 0)


def test_over_parameterized_minimum_has_no_convex_neighbourhood() -> None:
    pr, w = interpolated("mlp", n=20, d=4, width=16, k=2)
    lc = lg.local_convexity(pr, w, radii=(1e-1, 1e-2, 1e-3), samples=4)
    assert not lc.convex and lc.convex_radius is None
    assert np.all(lc.min_per_radius < -lc.tol)  # negative curvature at every radius
    assert lc.plot() is not None


def test_errors_and_roundtrip(tmp_path) -> None:
    pr, w = interpolated("product")
    with pytest.raises(ValueError, match="radii"):
        lg.negative_curvature_near(pr, w, radii=(-1.0,))
    with pytest.raises(ValueError, match="solver"):
        lg.negative_curvature_near(pr, w, solver="magic")
    with pytest.raises(ValueError, match="num"):
        lg.segment_loss(pr, w, w, num=2)
    nc = lg.negative_curvature_near(pr, w, radii=(1e-1, 1e-2, 1e-3))
    back = lg.NegativeCurvature.load(nc.save(tmp_path / "nc.json"))
    assert back.found and np.allclose(back.eigenvalue, nc.eigenvalue)
    assert nc.plot() is not None and lg.segment_loss(pr, w, w * 1.1).plot() is not None
