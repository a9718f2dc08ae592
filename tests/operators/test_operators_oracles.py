"""Every operator against its dense float64 oracle: to_dense, torch and SciPy products, solvers.

The ``case`` fixture (conftest.py) runs each test on the loss Hessian (both backends), the
GGN, the model Hessian, the Jacobian and its adjoint, both Gram matrices, the NTK and a
dense matrix.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

import lossgeometry as lg
from lossgeometry.linalg import hutchpp, lanczos_extremes, symmetric_dense


def _tol(oracle: torch.Tensor) -> dict[str, float]:
    return {"atol": 1e-11 * max(1.0, float(oracle.abs().max())), "rtol": 1e-9}


def _probe(n: int, m: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *(() if m is None else (m,)), generator=g, dtype=torch.float64)


def test_shape_dtype_and_to_dense(case):
    _, A, M = case
    A.reset_matvecs()
    assert isinstance(A, lg.TorchLinearOperator) and isinstance(A, sla.LinearOperator)
    assert A.shape == tuple(M.shape) and A.dtype == np.float64
    assert A.torch_dtype == torch.float64 and A.p == M.shape[1]
    D = A.to_dense()
    assert D.dtype == torch.float64 and D.shape == M.shape
    torch.testing.assert_close(D, M, **_tol(M))
    assert A.matvecs == M.shape[1]  # one product per column of the identity


def test_torch_products_vector_and_blocks(case):
    _, A, M = case
    n_out, n_in = M.shape
    A.reset_matvecs()
    v = _probe(n_in)
    Av = A @ v
    assert isinstance(Av, torch.Tensor) and Av.shape == (n_out,)
    torch.testing.assert_close(Av, M @ v, **_tol(M))
    torch.testing.assert_close(A.matvec_torch(v), M @ v, **_tol(M))
    V = _probe(n_in, 37, seed=1)  # more columns than any block size: several blocks
    torch.testing.assert_close(A @ V, M @ V, **_tol(M))
    torch.testing.assert_close(
        A.matmat_torch(V.float()).double(), M @ V.float().double(), **_tol(M)
    )
    assert A.matvecs == 1 + 1 + 37 + 37
    assert (A @ V[:, :0]).shape == (n_out, 0)


def test_adjoint_products(case):
    _, A, M = case
    n_out = M.shape[0]
    u, U = _probe(n_out, seed=2), _probe(n_out, 5, seed=3)
    torch.testing.assert_close(A.T @ u, M.T @ u, **_tol(M))
    torch.testing.assert_close(A.H @ U, M.T @ U, **_tol(M))
    torch.testing.assert_close(A.rmatvec_torch(u), M.T @ u, **_tol(M))
    torch.testing.assert_close(A.rmatmat_torch(U), M.T @ U, **_tol(M))
    assert A.T.T is A
    if A.symmetric:
        assert A.T is A and A.H is A
    torch.testing.assert_close(A.T.to_dense(), M.T, **_tol(M))


def test_scipy_protocol(case):
    _, A, M = case
    n_out, n_in = M.shape
    Mn = M.numpy()
    x = np.random.default_rng(0).standard_normal(n_in)
    X = np.random.default_rng(1).standard_normal((n_in, 4))
    y = np.random.default_rng(2).standard_normal(n_out)
    kw = {"atol": 1e-11 * max(1.0, float(np.abs(Mn).max())), "rtol": 1e-9}
    for out, ref in (
        (A @ x, Mn @ x),
        (A.matvec(x), Mn @ x),
        (A.matvec(x[:, None]), Mn @ x[:, None]),
        (A.dot(X), Mn @ X),
        (A.matmat(X), Mn @ X),
        (A(x), Mn @ x),
        (A.rmatvec(y), Mn.T @ y),
        (A.rmatmat(y[:, None]), Mn.T @ y[:, None]),
        (A.T @ y, Mn.T @ y),
        ((2.0 * A) @ x, 2.0 * Mn @ x),
    ):
        assert isinstance(out, np.ndarray) and out.dtype == np.float64
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, **kw)
    with pytest.raises(ValueError, match="mismatch"):
        A.matmat(np.zeros((n_in + 1, 2)))


def test_solvers_take_the_operator(case):
    _, A, M = case
    if not A.symmetric:  # rectangular: LSQR's least-squares solution, the pseudo-inverse one
        b = np.random.default_rng(4).standard_normal(M.shape[0])
        x = sla.lsqr(A, b, atol=1e-14, btol=1e-14, iter_lim=500)[0]
        ref = torch.linalg.pinv(M).numpy() @ b
        np.testing.assert_allclose(x, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())
        return
    ev = torch.linalg.eigvalsh(M)
    scale = float(ev.abs().max())
    top = sla.eigsh(A, k=2, which="LA", return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(top), ev[-2:].numpy(), atol=1e-9 * scale)
    r = lanczos_extremes(A, top=1, bottom=1, tol=1e-10)
    assert r.converged
    assert float(r.top[0]) == pytest.approx(float(ev[-1]), abs=1e-8 * scale)
    assert float(r.bottom[0]) == pytest.approx(float(ev[0]), abs=1e-8 * scale)
    if A.shape[0] >= 10:  # LOBPCG wants the order at least 5 times the block size
        X = np.random.default_rng(5).standard_normal((A.shape[0], 2))
        vals = sla.lobpcg(A, X, largest=True, tol=1e-10, maxiter=200)[0]
        np.testing.assert_allclose(np.sort(vals), ev[-2:].numpy(), rtol=1e-5, atol=1e-7 * scale)
    # Hutch++ with a budget of three times the order is exact: Q spans everything
    n = A.shape[0]
    t = hutchpp(A, 3 * n + 2)
    assert t.estimate == pytest.approx(float(M.trace()), abs=1e-8 * scale * n)
    torch.testing.assert_close(symmetric_dense(A), 0.5 * (M + M.T), **_tol(M))
