"""The matrix-free NTK operator against the dense float64 oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

import lossgeometry as lg
from tests.kernel.kernel_oracle import oracle_kernel, rel_err


@pytest.fixture(scope="module")
def problem() -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    model = lg.models.mlp(4, 9, 2, 3, parameterization="ntk", seed=0).double()
    X = torch.randn(6, 4, generator=g, dtype=torch.float64)
    return lg.Problem(model, X, torch.zeros(6, 3, dtype=torch.float64), chunk_size=4)


def test_operator_products_match_dense(problem):
    K = oracle_kernel(problem.model, problem.batch()[0]).numpy()
    op = lg.ntk_operator(problem)
    assert isinstance(op, LinearOperator)
    assert op.shape == (18, 18) and op.dtype == np.float64
    rng = np.random.default_rng(0)
    v = rng.standard_normal(18)
    V = rng.standard_normal((18, 40))  # more than one block of vmapped columns
    assert np.allclose(op @ v, K @ v, rtol=1e-10, atol=1e-12)
    assert np.allclose(op @ V, K @ V, rtol=1e-10, atol=1e-12)
    assert np.allclose(op.T @ v, K @ v, rtol=1e-10, atol=1e-12)
    assert op.matvecs == 1 + 40 + 1
    Vt = torch.from_numpy(V)
    assert rel_err(op.apply(Vt), torch.from_numpy(K @ V)) < 1e-10


def test_double_vjp_path_when_forward_ad_is_unavailable(problem):
    K = oracle_kernel(problem.model, problem.batch()[0]).numpy()
    op = lg.ntk_operator(problem, chunk_size=5)
    op._forward_ad = False
    V = np.random.default_rng(1).standard_normal((18, 3))
    assert np.allclose(op @ V, K @ V, rtol=1e-10, atol=1e-12)


def test_scipy_eigsh_on_the_operator(problem):
    K = oracle_kernel(problem.model, problem.batch()[0])
    ev = torch.linalg.eigvalsh(K).numpy()
    top = eigsh(lg.ntk_operator(problem), k=2, which="LA", return_eigenvectors=False)
    assert np.allclose(np.sort(top), ev[-2:], rtol=1e-9)


def test_outputs_subset_indices_and_point(problem):
    w = problem.params() + 0.1
    X = problem.batch()[0]
    K = oracle_kernel(problem.with_params(w).model, X[[1, 4]]).reshape(2, 3, 2, 3)
    sub = K[:, [0, 2]][:, :, :, [0, 2]].reshape(4, 4).numpy()
    op = lg.ntk_operator(problem, w, outputs=[0, 2], indices=[1, 4])
    assert op.shape == (4, 4)
    assert np.allclose(op @ np.eye(4), sub, rtol=1e-10, atol=1e-12)


def test_errors(problem):
    with pytest.raises(ValueError, match="trace"):
        lg.ntk_operator(problem, outputs="trace")
    with pytest.raises(ValueError, match="chunk_size"):
        lg.ntk_operator(problem, chunk_size=0)
    with pytest.raises(ValueError, match="indices"):
        lg.ntk_operator(problem, indices=[7])
