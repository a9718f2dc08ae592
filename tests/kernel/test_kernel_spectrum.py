"""kernel_spectrum: dense and matrix-free against eigvalsh of the float64 oracle kernel."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.kernel.spectrum import spectrum_from_kernel
from tests.kernel.kernel_oracle import oracle_kernel


def _problem(n: int = 6, width: int = 12, k: int = 2, dtype=torch.float64) -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    model = lg.models.mlp(3, width, 1, k, parameterization="ntk", seed=0).to(dtype)
    X = torch.randn(n, 3, generator=g, dtype=dtype)
    return lg.Problem(model, X, torch.zeros(n, k, dtype=dtype))


@pytest.fixture(scope="module")
def problem() -> lg.Problem:
    return _problem()


@pytest.fixture(scope="module")
def oracle_ev(problem) -> np.ndarray:
    return torch.linalg.eigvalsh(oracle_kernel(problem.model, problem.batch()[0])).numpy()


def test_dense_spectrum_matches_eigvalsh(problem, oracle_ev):
    s = lg.kernel_spectrum(problem)
    assert isinstance(s, lg.KernelSpectrum)
    assert s.method == "dense" and s.size == 12
    np.testing.assert_allclose(s.eigenvalues, oracle_ev, rtol=1e-9, atol=1e-12 * oracle_ev[-1])
    assert s.lambda_min == pytest.approx(oracle_ev[0], rel=1e-9)
    assert s.lambda_max == pytest.approx(oracle_ev[-1], rel=1e-12)
    assert s.condition_number == pytest.approx(oracle_ev[-1] / oracle_ev[0], rel=1e-9)
    assert s.trace == pytest.approx(oracle_ev.sum(), rel=1e-12)
    assert s.rank == 12
    assert 0 < s.error_estimate < 1e-12 * oracle_ev[-1] * 12


@pytest.fixture(scope="module")
def wide_problem() -> lg.Problem:
    """N = 40 outputs, well conditioned (κ ≈ 200): matrix-free solvers converge quickly."""
    g = torch.Generator().manual_seed(0)
    model = lg.models.mlp(32, 64, 1, 2, parameterization="ntk", seed=0).double()
    X = torch.randn(20, 32, generator=g, dtype=torch.float64)
    return lg.Problem(model, X, torch.zeros(20, 2, dtype=torch.float64))


@pytest.mark.parametrize("method", ["lanczos", "arpack"])
def test_matrix_free_extremes(wide_problem, method):
    pb = wide_problem
    ev = torch.linalg.eigvalsh(oracle_kernel(pb.model, pb.batch()[0])).numpy()
    s = lg.kernel_spectrum(pb, solver=method, num_eigenvalues=2, tol=1e-8, seed=3)
    assert s.method == method and s.converged
    exact = np.r_[ev[:2], ev[-2:]]
    np.testing.assert_allclose(s.eigenvalues, exact, rtol=1e-7)
    assert s.residual_norms.shape == (4,)
    assert s.matvecs > 0 and s.iterations <= s.matvecs
    assert s.error_estimate == pytest.approx(s.residual_norms.max())
    # the residual norms bound the eigenvalue errors (symmetric K)
    assert np.all(np.abs(s.eigenvalues - exact) <= s.residual_norms + 1e-12)
    if method == "arpack":
        assert s.residual_norms.max() < 1e-6 * ev[-1]


def test_matrix_free_not_converged(wide_problem):
    pb = wide_problem
    with pytest.warns(RuntimeWarning, match="maxiter"):
        s = lg.kernel_spectrum(pb, solver="lanczos", tol=1e-12, maxiter=3, ncv=4)
    assert not s.converged and s.iterations == 3
    with pytest.raises(ValueError, match="maxiter"):
        lg.kernel_spectrum(pb, solver="arpack", tol=1e-12, maxiter=1, ncv=4)


def test_lanczos_lambda_min_of_an_ill_conditioned_kernel():
    # N = 300 outputs, κ(K) ≈ 3·10⁴: tol·‖K‖ would be 3 % of λ_min at tol = 1e-6, so this
    # checks that the test is relative to λ_min itself, and that it stops well before the
    # Krylov space is exhausted (N products); with a small basis it must survive restarts
    g = torch.Generator().manual_seed(1)
    model = lg.models.mlp(16, 64, 1, 2, parameterization="ntk", seed=1).double()
    X = torch.randn(150, 16, generator=g, dtype=torch.float64)
    pb = lg.Problem(model, X, torch.zeros(150, 2, dtype=torch.float64))
    ev = torch.linalg.eigvalsh(oracle_kernel(pb.model, pb.batch()[0])).numpy()
    assert 1e4 < ev[-1] / ev[0] < 1e5
    for ncv, budget in ((None, 200), (40, 1500)):
        s = lg.kernel_spectrum(pb, solver="lanczos", tol=1e-6, seed=0, ncv=ncv, maxiter=3000)
        assert s.converged and s.matvecs <= budget + 2  # + the two explicit residual products
        assert s.lambda_min == pytest.approx(ev[0], rel=1e-6)
        assert s.lambda_max == pytest.approx(ev[-1], rel=1e-6)


def test_lobpcg_extremes_and_non_convergence(wide_problem):
    pb = wide_problem
    ev = torch.linalg.eigvalsh(oracle_kernel(pb.model, pb.batch()[0])).numpy()
    s = lg.kernel_spectrum(pb, solver="lobpcg", tol=1e-5, seed=3)
    assert s.method == "lobpcg" and s.converged
    np.testing.assert_allclose(s.eigenvalues, [ev[0], ev[-1]], rtol=1e-5)
    assert np.all(np.abs(s.eigenvalues - [ev[0], ev[-1]]) <= s.residual_norms + 1e-12)
    with pytest.warns(RuntimeWarning, match="LOBPCG stopped"):
        s = lg.kernel_spectrum(pb, solver="lobpcg", tol=1e-12, maxiter=2, seed=3)
    assert not s.converged
    assert s.residual_norms[0] > 1e-12 * ev[-1]


def test_float32_problem_and_float64_request():
    pb = _problem(dtype=torch.float32)
    ev = torch.linalg.eigvalsh(
        oracle_kernel(copy.deepcopy(pb.model).double(), pb.batch()[0].double())
    ).numpy()
    s32 = lg.kernel_spectrum(pb)
    assert s32.dtype == "float32"
    assert s32.lambda_min == pytest.approx(ev[0], abs=10 * s32.error_estimate)
    s64 = lg.kernel_spectrum(pb, dtype=torch.float64)
    assert s64.dtype == "float64"
    assert s64.lambda_min == pytest.approx(ev[0], rel=1e-9)


def test_under_parameterized_kernel_is_singular():
    """p < nk ⇒ λ_min(K) = 0 and rank p (the PL* condition fails)."""
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(), torch.nn.Linear(2, 2))
    model = model.double()  # p = 12
    X = torch.randn(10, 2, generator=g, dtype=torch.float64)  # nk = 20
    pb = lg.Problem(model, X, torch.zeros(10, 2, dtype=torch.float64))
    s = lg.kernel_spectrum(pb)
    assert s.rank == pb.p
    assert abs(s.lambda_min) <= s.error_estimate
    assert s.condition_number > 1e10 or math.isinf(s.condition_number)
    # over-parameterized counterpart: full rank, λ_min clearly positive
    s2 = lg.kernel_spectrum(_problem())
    assert s2.rank == s2.size and s2.lambda_min > 1e3 * s2.error_estimate


def test_trace_outputs_and_indices(problem):
    K = oracle_kernel(problem.model, problem.batch()[0]).reshape(6, 2, 6, 2)
    s = lg.kernel_spectrum(problem, outputs="trace")
    ev = torch.linalg.eigvalsh(torch.einsum("iaja->ij", K)).numpy()
    np.testing.assert_allclose(s.eigenvalues, ev, rtol=1e-9, atol=1e-12 * ev[-1])
    s = lg.kernel_spectrum(problem, outputs=[1], indices=[0, 2, 5])
    ev = torch.linalg.eigvalsh(K[[0, 2, 5], 1][:, [0, 2, 5], 1]).numpy()
    np.testing.assert_allclose(s.eigenvalues, ev, rtol=1e-9)


def test_round_trip_and_plot(tmp_path, problem):
    s = lg.kernel_spectrum(problem)
    path = s.save(tmp_path / "spec.json")
    back = lg.load_result(path)
    assert isinstance(back, lg.KernelSpectrum)
    np.testing.assert_allclose(back.eigenvalues, s.eigenvalues)
    assert back.lambda_min == s.lambda_min and back.method == "dense"
    import matplotlib

    matplotlib.use("Agg")
    ax = s.plot(label="w0")
    assert ax.get_yscale() == "log"


def test_spectrum_from_kernel_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        spectrum_from_kernel(torch.zeros(2, 3))


def test_errors(problem):
    with pytest.raises(ValueError, match="unknown spectrum solver"):
        lg.kernel_spectrum(problem, solver="power")
    with pytest.raises(ValueError, match="num_eigenvalues must be"):
        lg.kernel_spectrum(problem, num_eigenvalues=0)
    with pytest.raises(ValueError, match="too many"):
        lg.kernel_spectrum(problem, solver="lanczos", num_eigenvalues=6)
    with pytest.raises(ValueError, match="trace"):
        lg.kernel_spectrum(problem, solver="lanczos", outputs="trace")
    with pytest.raises(ValueError, match="memory limit"):
        lg.kernel_spectrum(problem, solver="dense", max_memory=100)
