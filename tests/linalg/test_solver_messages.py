"""ARPACK and LOBPCG say what the Lanczos path says when they stop short (issue #16).

ARPACK with no converged eigenvalue was "found only 0 of 1"; LOBPCG returned
``converged=False`` without a word. Both now speak as Lanczos does: what stopped the solver,
the tolerance, what to do, and that the result reports ``converged=False``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import aslinearoperator

import lossgeometry as lg
from lossgeometry.linalg.arpack import eigsh_end

LANCZOS_WORDS = "before every wanted eigenpair met tol="
RESULT_WORDS = "the result reports converged=False"


def _problem() -> lg.Problem:
    torch.manual_seed(0)
    X, Y = torch.randn(20, 3), torch.randn(20, 2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    return lg.Problem(model, X, Y)


def test_lanczos_wording_is_the_reference():
    pb = _problem()
    with pytest.warns(RuntimeWarning, match=f"Lanczos stopped after .* {LANCZOS_WORDS}"):
        spec = lg.hessian_spectrum(pb, solver="lanczos", maxiter=3, tol=1e-14, ncv=3)
    assert not spec.converged


@pytest.mark.parametrize(
    ("call", "hint"),
    [
        (lambda pb: lg.kernel_spectrum(pb, solver="arpack", maxiter=1, tol=1e-14), "dense"),
        (lambda pb: lg.hessian_spectrum(pb, solver="arpack", maxiter=1, tol=1e-14), "lanczos"),
    ],
    ids=["kernel", "hessian"],
)
def test_arpack_with_no_eigenvalue_says_which_end_and_what_to_do(call, hint):
    with pytest.raises(ValueError) as err, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the error alone, no warning first
        call(_problem())
    msg = str(err.value)
    assert msg.startswith("ARPACK stopped after maxiter=1 restarts with 0 of the 1 ")
    assert "eigenvalues (which=" in msg and "converged to tol=1e-14" in msg
    assert "no estimate to return" in msg and f"solver='{hint}'" in msg
    assert "found only" not in msg


def test_arpack_partial_result_warns_like_lanczos():
    """One outlier converges at once, the cluster below it does not: a partial result."""
    A = aslinearoperator(np.diag(np.concatenate([[100.0], np.linspace(1.0, 2.0, 199)])))
    with pytest.warns(RuntimeWarning) as rec:
        vals, _, ok = eigsh_end(
            A, 2, "LA", maxiter=1, tol=1e-10, v0=0, ncv=6, min_found=1, warn=True
        )
    assert not ok and vals.tolist() == pytest.approx([100.0])
    msg = str(rec[0].message)
    assert msg.startswith("ARPACK stopped after maxiter=1 restarts (1 of the 2 largest")
    assert LANCZOS_WORDS + "1e-10" in msg and msg.endswith(RESULT_WORDS)
    with warnings.catch_warnings():  # warn=False (callers that discard `converged`): silent
        warnings.simplefilter("error", RuntimeWarning)
        eigsh_end(A, 2, "LA", maxiter=1, tol=1e-10, v0=0, ncv=6, min_found=1)


def test_lobpcg_not_converged_is_no_longer_silent():
    pb = _problem()
    with pytest.warns(RuntimeWarning) as rec:
        spec = lg.kernel_spectrum(pb, solver="lobpcg", maxiter=2, tol=1e-12)
    assert not spec.converged
    msg = " ".join(str(r.message) for r in rec if "LOBPCG" in str(r.message))
    assert msg.startswith("LOBPCG stopped after ")
    assert "largest residual ‖Kv − λv‖ = " in msg and "tol·λ_max = " in msg
    assert LANCZOS_WORDS + "1e-12" in msg and msg.endswith(RESULT_WORDS)
    assert spec.error_estimate > 1e-12 * spec.lambda_max  # the warning tells the truth


def test_converged_solvers_stay_silent():
    pb = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        a = lg.kernel_spectrum(pb, solver="lobpcg", tol=1e-3)
        b = lg.kernel_spectrum(pb, solver="arpack", tol=1e-10)
    assert a.converged and b.converged
    assert a.lambda_max == pytest.approx(b.lambda_max, rel=1e-3)
