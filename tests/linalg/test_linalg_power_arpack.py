"""Power iteration, the ARPACK/LOBPCG adapters and the dense helpers against eigvalsh."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossgeometry.linalg import (
    DENSE_MAX_ORDER,
    CallableOperator,
    as_torch_operator,
    eigsh_end,
    lobpcg_end,
    power_iteration,
    symmetric_dense,
)


def sym(p, spectrum, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
    return (Q * torch.as_tensor(spectrum, dtype=torch.float64)) @ Q.T


def test_power_iteration_converges_to_the_dominant_eigenpair():
    spec = torch.cat([torch.tensor([5.0, 2.0]), torch.linspace(-1, 1, 28)])
    A = sym(30, spec)
    r = power_iteration(A, iters=80, seed=3)
    assert r.iterations == 80
    assert r.value == pytest.approx(5.0, rel=1e-10)
    assert r.norm == pytest.approx(5.0, rel=1e-10)
    torch.testing.assert_close(A @ r.vector, 5.0 * r.vector, atol=1e-8, rtol=0)
    # the start vector is randn(p) from a CPU generator seeded with `seed`, normalized
    v = torch.randn(30, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    one = power_iteration(A, iters=1, seed=3)
    assert one.value == pytest.approx(float(v @ A @ v / (v @ v)), rel=1e-12)


def test_power_iteration_stops_on_a_zero_operator():
    Z = CallableOperator(lambda V: torch.zeros_like(V), 6)
    r = power_iteration(Z, iters=10)
    assert r.iterations == 1 and r.value == 0.0 and r.norm == 0.0 and Z.matvecs == 1


def test_eigsh_end_both_ends_sorted_and_partial_results():
    spec = torch.linspace(-3, 7, 40)
    A = as_torch_operator(sym(40, spec, seed=1))
    top, vecs, ok = eigsh_end(A, 3, "LA", v0=0)
    assert ok and np.all(np.diff(top) > 0)
    np.testing.assert_allclose(top, spec[-3:].numpy(), atol=1e-10)
    np.testing.assert_allclose(A.matmat(vecs), vecs * top, atol=1e-9)
    bot, none, _ = eigsh_end(A, 2, "SA", v0=np.ones(40), vectors=False)
    assert none is None
    np.testing.assert_allclose(bot, spec[:2].numpy(), atol=1e-10)
    # a seed and the vector it draws give the same run
    same = eigsh_end(A, 3, "LA", v0=np.random.default_rng(0).standard_normal(40))[0]
    np.testing.assert_array_equal(same, top)
    # maxiter too small: a clear error (too few eigenvalues), else partial results with the
    # Lanczos path's warning
    clustered = as_torch_operator(sym(200, torch.linspace(0, 1, 200) ** 4, seed=2))
    with pytest.raises(
        ValueError,
        match=r"ARPACK stopped after maxiter=1 restarts with \d of "
        r"the 6 smallest eigenvalues .*no estimate to return: do this",
    ):
        eigsh_end(clustered, 6, "SA", v0=0, maxiter=1, ncv=8, warn=True, hint="do this")
    with pytest.warns(RuntimeWarning, match="the result reports converged=False"):
        vals, _, ok = eigsh_end(clustered, 6, "SA", v0=0, maxiter=1, ncv=8, min_found=0, warn=True)
    assert not ok and len(vals) < 6


def test_lobpcg_end_matches_eigvalsh():
    spec = torch.cat([torch.tensor([10.0, 9.0]), torch.rand(48, generator=torch.Generator())])
    M = sym(50, spec, seed=4)
    A = as_torch_operator(M)
    X = np.random.default_rng(0).standard_normal((50, 2))
    vals, vecs, iters = lobpcg_end(A, X, largest=True, tol=1e-10, maxiter=300)
    np.testing.assert_allclose(np.sort(vals), [9.0, 10.0], rtol=1e-8)
    # the returned vectors are the eigenvectors of those values, and it stopped on tol
    Md = M.double().numpy()
    np.testing.assert_allclose(Md @ vecs, vecs * vals[None, :], atol=1e-6)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(2), atol=1e-8)
    assert iters < 300


def test_lobpcg_end_on_a_small_problem_scipy_solves_densely():
    # n < 5 b: SciPy solves densely and returns no history (this used to crash unpacking it)
    M = sym(8, torch.tensor([5.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.5, 0.25]), seed=1)
    X = np.random.default_rng(0).standard_normal((8, 2))
    vals, vecs, iters = lobpcg_end(as_torch_operator(M), X, largest=False, tol=1e-10, maxiter=50)
    np.testing.assert_allclose(np.sort(vals), [0.25, 0.5], rtol=1e-8)
    Md = M.double().numpy()
    np.testing.assert_allclose(Md @ vecs, vecs * vals[None, :], atol=1e-8)
    assert iters == 0


def test_symmetric_dense_and_the_threshold():
    M = torch.randn(6, 6, dtype=torch.float64)
    D = symmetric_dense(as_torch_operator(M + M.T + 1e-9 * torch.triu(M)))
    torch.testing.assert_close(D, D.T, atol=0, rtol=0)
    torch.testing.assert_close(D, M + M.T, atol=1e-8, rtol=0)
    assert DENSE_MAX_ORDER == 3000
