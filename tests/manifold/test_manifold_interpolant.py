"""find_interpolant / least_squares_minimum: reach F(w) = Y to float64 precision or say why not."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch
from manifold_fixtures import exponential_problem, linear_problem, mlp_problem, product_problem
from torch import nn

import lossgeometry as lg
from tests.oracles.dense import dense_outputs


def test_gauss_newton_interpolates_an_mlp() -> None:
    pr = mlp_problem(n=10, width=8, k=2)  # p = 3*8+8+8*2+2 = 50 > nk = 20
    sol = lg.find_interpolant(pr, progress=False)
    assert sol.success and bool(sol) and sol.reason == ""
    assert sol.residual_norm < 1e-10
    # independent check of the residual with a plain forward pass
    F = dense_outputs(pr, sol.w)
    assert float((F.detach() - pr.targets()).norm()) < 1e-10
    assert sol.w.dtype == torch.float64 and sol.w.shape == (pr.p,)
    assert sol.history[0] > sol.history[-1] and len(sol.history) == sol.iterations + 1
    assert sol.loss == pytest.approx(0.5 * sol.residual_norm**2, abs=1e-25)
    assert sol.raise_if_failed() is sol


def test_matrix_free_gauss_newton_matches_dense() -> None:
    pr = mlp_problem(n=6, width=6, k=1)
    dense = lg.find_interpolant(pr, jacobian="dense", progress=False)
    free = lg.find_interpolant(pr, jacobian="matrix-free", progress=False)
    assert dense.success and free.success
    assert free.jacobian == "matrix-free" and dense.jacobian == "dense"
    # the same minimum-norm steps from the same start: the same interpolant
    assert float((dense.w - free.w).norm()) < 1e-6 * float(dense.w.norm())


def test_linear_model_is_solved_in_one_step_at_the_minimum_norm_point() -> None:
    pr = linear_problem(n=6, d=15)
    w0 = torch.zeros(pr.p, dtype=torch.float64)
    sol = lg.find_interpolant(pr, w0, progress=False)
    # one Gauss-Newton step solves it (the second, a polishing step, only removes rounding)
    assert sol.success and sol.history[1] < 1e-13 and sol.iterations <= 2
    X, Y = pr.batch()[0], pr.batch()[1]
    w_min_norm = torch.linalg.pinv(X) @ Y.reshape(-1)  # closed form X⁺ Y
    assert torch.allclose(sol.w, w_min_norm, atol=1e-12)


def test_lbfgs_interpolates_and_gd_reports_its_budget() -> None:
    pr = product_problem()
    sol = lg.find_interpolant(pr, solver="lbfgs", progress=False)
    assert sol.success and sol.residual_norm < 1e-10
    a, b = sol.w.tolist()
    assert a * b == pytest.approx(1.0, abs=1e-10)
    slow = lg.find_interpolant(mlp_problem(n=10), solver="gd", max_iter=20, progress=False)
    assert not slow.success and "max_iter=20" in slow.reason
    assert slow.residual_norm < slow.history[0]  # it did descend


def test_under_parameterized_is_a_clear_could_not() -> None:
    pr = exponential_problem(n=20)  # p = 2 < nk = 20
    sol = lg.find_interpolant(pr, progress=False)
    assert not sol.success
    assert "under-parameterized" in sol.reason and "p = 2 < nk = 20" in sol.reason
    with pytest.raises(ValueError, match="under-parameterized"):
        sol.raise_if_failed()


def test_stationary_point_that_does_not_interpolate() -> None:
    # a ReLU net whose hidden units are all dead: J = 0, a critical point of the loss
    torch.manual_seed(0)
    X = torch.randn(4, 2, dtype=torch.float64)
    Y = torch.randn(4, 1, dtype=torch.float64)
    model = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(-1.0)
    sol = lg.find_interpolant(lg.Problem(model, X, Y), progress=False)
    assert not sol.success and "Jacobian DF(w) is zero" in sol.reason


def test_float32_problem_is_solved_in_float64() -> None:
    pr32 = mlp_problem(n=5, width=6, k=1).to(dtype=torch.float32)
    sol = lg.find_interpolant(pr32, progress=False)
    assert sol.success and sol.w.dtype == torch.float64 and sol.residual_norm < 1e-10


def test_least_squares_minimum_matches_scipy() -> None:
    pr = exponential_problem(n=20)
    sol = lg.least_squares_minimum(pr, progress=False)
    assert sol.success and sol.relative_grad < 1e-9
    x = pr.batch()[0].reshape(-1).numpy()
    y = pr.batch()[1].reshape(-1).numpy()
    ref = scipy.optimize.least_squares(
        lambda v: v[0] * np.exp(v[1] * x) - y, x0=[1.0, 0.5], xtol=1e-15, ftol=1e-15, gtol=1e-15
    )
    assert np.allclose(sol.w.numpy(), ref.x, atol=1e-8)
    assert sol.residual_norm == pytest.approx(float(np.linalg.norm(ref.fun)), rel=1e-10)


def test_errors_and_roundtrip(tmp_path) -> None:
    pr = mlp_problem(n=4, width=4, k=1)
    with pytest.raises(ValueError, match="solver"):
        lg.find_interpolant(pr, solver="newton")
    with pytest.raises(ValueError, match="tol"):
        lg.find_interpolant(pr, tol=0.0)
    ce = lg.Problem(
        nn.Linear(3, 2).double(),
        torch.randn(5, 3, dtype=torch.float64),
        torch.tensor([0, 1, 0, 1, 1]),
        loss="cross_entropy",
    )
    with pytest.raises(ValueError, match="squared loss"):
        lg.find_interpolant(ce)
    sol = lg.find_interpolant(pr, progress=False)
    back = lg.Interpolant.load(sol.save(tmp_path / "sol.json"))
    assert back.success and back.residual_norm == sol.residual_norm
    assert np.allclose(back.w, sol.w.numpy())
    ax = sol.plot()
    assert ax.get_yscale() == "log"
