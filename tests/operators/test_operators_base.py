"""The base class itself: blocking, counting, dtypes, adjoints, wrappers and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

import lossgeometry as lg
from lossgeometry.operators import (
    AdjointOperator,
    CallableOperator,
    TorchLinearOperator,
    as_torch_operator,
)
from tests.operators import operator_oracles as orc


class Diagonal(TorchLinearOperator):
    """``diag(d)``: the smallest subclass, it implements ``_matmat`` only."""

    def __init__(self, d: torch.Tensor, max_vectors: int | None = None) -> None:
        super().__init__(d.numel(), d.dtype, d.device, max_vectors=max_vectors)
        self.d = d
        self.calls: list[int] = []

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        self.calls.append(V.shape[1])
        return self.d[:, None] * V


def test_a_subclass_that_implements_only_matmat_gets_everything():
    d = torch.arange(1.0, 8.0, dtype=torch.float64)
    A = Diagonal(d, max_vectors=3)
    V = torch.randn(7, 8, dtype=torch.float64)
    torch.testing.assert_close(A @ V, d[:, None] * V)
    assert A.calls == [3, 3, 2] and A.matvecs == 8  # blocks of max_vectors columns
    torch.testing.assert_close(A.to_dense(), torch.diag(d))
    assert A.T is A and A.H is A  # symmetric by default
    np.testing.assert_allclose(A.rmatvec(np.ones(7)), d.numpy())
    vals = sla.eigsh(A, k=2, which="LA", return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(vals), [6.0, 7.0])
    assert "Diagonal 7×7, float64, cpu" in repr(A)
    A.reset_matvecs()
    assert A.matvecs == 0


def test_float32_products_with_a_float64_scipy_side():
    P = orc.make_problem().to(dtype=torch.float32)
    K = lg.ntk_operator(P)
    assert K.torch_dtype == torch.float32 and K.dtype == np.float64
    x = np.random.default_rng(0).standard_normal(K.shape[0])
    y = K @ x
    assert y.dtype == np.float64
    v = torch.from_numpy(x)  # float64 in: computed in float32 on the operator's side
    assert (K @ v).dtype == torch.float32
    np.testing.assert_allclose(y, (K @ v).double().numpy())
    P64 = P.to(dtype=torch.float64)
    Jd = orc.jacobian(P64, P64.params())
    np.testing.assert_allclose(y, (Jd @ Jd.T).numpy() @ x, rtol=1e-4, atol=1e-4 * np.abs(y).max())


def test_non_symmetric_operators_and_their_adjoint():
    M = torch.randn(4, 6, dtype=torch.float64)
    A = CallableOperator(lambda V: M @ V, (4, 6), symmetric=False, rmatmat=lambda U: M.T @ U)
    assert A.shape == (4, 6) and not A.symmetric
    At = A.T
    assert isinstance(At, AdjointOperator) and At.shape == (6, 4) and A.H is At and At.T is A
    torch.testing.assert_close(At.to_dense(), M.T)
    u = torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(A.rmatvec_torch(u), M.T @ u)
    # without an adjoint product: a clear error, not a silent wrong answer
    B = CallableOperator(lambda V: M @ V, (4, 6), symmetric=False)
    with pytest.raises(NotImplementedError, match="adjoint"):
        B.rmatvec(np.ones(4))
    with pytest.raises(ValueError, match="square"):
        CallableOperator(lambda V: M @ V, (4, 6))  # symmetric needs square


def test_as_torch_operator_wraps_tensors_arrays_and_scipy_operators():
    S = torch.randn(5, 5, dtype=torch.float64)
    S = S + S.T
    A = as_torch_operator(S.numpy())
    assert A.symmetric and A.shape == (5, 5)
    assert as_torch_operator(A) is A
    R = as_torch_operator(torch.ones(3, 2, dtype=torch.int64))
    assert not R.symmetric and R.torch_dtype == torch.float64
    L = as_torch_operator(sla.aslinearoperator(S.numpy()))
    v = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(L @ v, S @ v)
    r = lg.linalg.lanczos_extremes(L, top=1, tol=1e-12)
    assert float(r.top[0]) == pytest.approx(float(torch.linalg.eigvalsh(S)[-1]))
    with pytest.raises(TypeError, match="TorchLinearOperator"):
        as_torch_operator("no")
    with pytest.raises(ValueError, match="matrix"):
        as_torch_operator(torch.ones(3))


def test_input_checks():
    A = Diagonal(torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        A.matvec_torch(torch.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        A @ torch.zeros(3, 2)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        A.matmat_torch(np.zeros((4, 1)))
    with pytest.raises(TypeError, match="dtype"):
        Diagonal(torch.ones(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="max_vectors"):
        Diagonal(torch.ones(4), max_vectors=0)
    with pytest.raises(ValueError, match="GiB"):
        CallableOperator(lambda V: V, 10**6).to_dense()

    class Nothing(TorchLinearOperator):
        pass

    with pytest.raises(NotImplementedError, match="_matmat"):
        Nothing(3, torch.float64, "cpu") @ torch.ones(3, dtype=torch.float64)


def test_solvers_refuse_rectangular_operators():
    A = as_torch_operator(torch.ones(3, 2, dtype=torch.float64))
    for solver in (lg.linalg.lanczos_extremes, lg.linalg.hutchinson, lg.linalg.power_iteration):
        with pytest.raises(ValueError, match="square"):
            solver(A)


def test_numerical_rank_of_an_operator():
    P = orc.make_problem()
    w = orc.point(P)
    J = lg.JacobianOperator(P, w)
    assert lg.numerical_rank(J).rank == min(J.shape)  # a generic point: full rank 21
    G = lg.hessian_operator(P, w, of="ggn")
    assert lg.numerical_rank(G).rank == P.n * P.k  # JᵀJ with p = 38 > nk = 21


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_every_product_path_refuses_non_finite_values(bad: float) -> None:
    """One check in the base: torch products, adjoints, SciPy products and to_dense."""
    M = torch.eye(4, dtype=torch.float64)
    M[2, 1] = bad
    with pytest.raises(ValueError, match="the matrix has NaN/Inf"):
        as_torch_operator(M)
    A = CallableOperator(lambda V: M @ V, 4, rmatmat=lambda U: M.T @ U, symmetric=False)
    S = CallableOperator(lambda V: M @ V, 4)  # declared symmetric: the square solvers take it
    e = torch.ones(4, dtype=torch.float64)
    calls = [
        lambda: A @ e,
        lambda: A.rmatvec_torch(e),
        lambda: A.matvec(np.ones(4)),
        lambda: A.to_dense(),
        lambda: lg.linalg.lanczos_extremes(S),
        lambda: lg.linalg.hutchinson(S, 8),
        lambda: lg.linalg.power_iteration(S),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="NaN/Inf: the model or loss is not finite"):
            call()
    assert torch.equal(as_torch_operator(torch.eye(4)) @ torch.ones(4), torch.ones(4))
