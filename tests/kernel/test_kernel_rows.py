"""kernel_rows and solver="sharded" on one process, against the dense float64 oracle.

On one process the rows are the whole kernel and the sharded Lanczos runs on it; the 2-rank
versions are in tests/distributed/test_kernel_parallel.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.kernel import memory
from tests.kernel.kernel_oracle import oracle_kernel, rel_err


def _problem(n: int = 7, k: int = 2) -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    model = lg.models.mlp(5, 16, 1, k, seed=0).double()
    X = torch.randn(n, 5, generator=g, dtype=torch.float64)
    return lg.Problem(model, X, torch.zeros(n, k, dtype=torch.float64))


@pytest.fixture(scope="module")
def problem() -> lg.Problem:
    return _problem()


@pytest.fixture(scope="module")
def oracle(problem) -> torch.Tensor:
    return oracle_kernel(problem.model, problem.batch()[0])


@pytest.mark.parametrize("method", ["structured", "jacobian", "ntvp"])
def test_rows_on_one_process_are_the_whole_kernel(problem, oracle, method):
    rows = lg.kernel.kernel_rows(problem, method=method)
    assert isinstance(rows, lg.kernel.KernelRows)
    assert torch.equal(rows.K, lg.tangent_kernel(problem, method=method))
    assert torch.equal(rows.rows, torch.arange(14)) and rows.m == 7 and rows.ks == 2
    assert rel_err(rows.K, oracle) < 1e-12
    tr = lg.kernel.kernel_rows(problem, method=method, outputs="trace")
    assert torch.equal(tr.rows, torch.arange(7)) and tr.K.shape == (7, 7)
    diag = lg.kernel.kernel_rows(problem, method=method, diagonal_only=True)
    assert diag.K.shape == (7, 2, 2) and torch.equal(diag.rows, torch.arange(7))
    with pytest.raises(ValueError, match="diagonal blocks are not the kernel"):
        diag.operator(problem)


def test_the_row_operator_multiplies_by_the_kernel(problem, oracle):
    op = lg.kernel.kernel_rows(problem).operator(problem)
    V = torch.randn(14, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert rel_err(op @ V, oracle @ V) < 1e-12
    x = np.ones(14)
    np.testing.assert_allclose(op.matvec(x), oracle.numpy() @ x, rtol=1e-12)


@pytest.mark.parametrize("outputs", ["full", "trace", [1]])
def test_sharded_lanczos_matches_eigvalsh_of_the_oracle(problem, oracle, outputs):
    K = oracle
    if outputs == "trace":
        K = torch.diagonal(oracle.reshape(7, 2, 7, 2), dim1=1, dim2=3).sum(-1)
    elif outputs == [1]:
        K = oracle[1::2, 1::2]
    ev = torch.linalg.eigvalsh(K)
    s = lg.kernel_spectrum(problem, solver="sharded", outputs=outputs, tol=1e-12, progress=False)
    assert s.method == "sharded" and s.converged and s.size == K.shape[0]
    assert s.kernel_method == "auto" and s.matvecs > 0
    assert s.lambda_min == pytest.approx(float(ev[0]), rel=1e-9)
    assert s.lambda_max == pytest.approx(float(ev[-1]), rel=1e-12)


def test_auto_on_one_process_never_picks_sharded(problem):
    # the dense eigenvalues (3 N² float64) do not fit, the kernel itself would: still lanczos
    s = lg.kernel_spectrum(problem, max_memory=14 * 14 * 8 * 2, progress=False)
    assert s.method == "lanczos"


def test_memory_limit_is_agreed_only_across_ranks(problem):
    assert memory.agreed_limit(problem, "1MiB") == 1024**2
    assert memory.agreed_limit(problem, None) > 0


def test_rows_refuse_what_exceeds_the_limit_on_one_process(problem):
    with pytest.raises(ValueError, match="more than the memory limit"):
        lg.kernel.kernel_rows(problem, max_memory=100)
