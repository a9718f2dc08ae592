"""Jacobian specifics: the dense builder, the double-VJP fallback, Gram sides, LSQR."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

import lossgeometry as lg
from lossgeometry.operators import GramOperator, JacobianOperator, gram_operator
from lossgeometry.operators.jacobian import dense_jacobian
from tests.operators import operator_oracles as orc


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_dense_jacobian_matches_autograd(model):
    P = orc.make_problem(model)
    w = orc.point(P)
    torch.testing.assert_close(dense_jacobian(P, w), orc.jacobian(P, w), atol=1e-13, rtol=1e-11)
    with pytest.raises(ValueError, match="matrix-free"):
        dense_jacobian(P, w, max_bytes=8)


def test_double_vjp_fallback_gives_the_same_products():
    P = orc.make_problem("cnn")
    w = orc.point(P)
    J = JacobianOperator(P, w, chunk_size=3)
    V = torch.randn(P.p, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fwd = J @ V
    J._forward_ad = False
    torch.testing.assert_close(J @ V, fwd, atol=1e-13, rtol=1e-11)
    torch.testing.assert_close(fwd, orc.jacobian(P, w) @ V, atol=1e-13, rtol=1e-11)


def test_gram_operator_takes_the_smaller_side():
    P = orc.make_problem("mlp")  # nk = 21 < p = 38
    J = JacobianOperator(P, orc.point(P))
    G = gram_operator(J)
    assert G.side == "outer" and G.shape == (21, 21) and G.symmetric
    assert GramOperator(J, "inner").shape == (P.p, P.p)
    with pytest.raises(ValueError, match="side"):
        GramOperator(J, "left")


def test_lsqr_on_the_jacobian_is_the_minimum_norm_gauss_newton_step():
    P = orc.make_problem("mlp")
    w = orc.point(P)
    J = JacobianOperator(P, w)
    r = P.residual(w).reshape(-1).numpy()
    step = sla.lsqr(J, -r, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    Jd = orc.jacobian(P, w).numpy()
    np.testing.assert_allclose(step, -np.linalg.pinv(Jd) @ r, rtol=1e-7, atol=1e-9)
    # and through the transpose: the normal-space projection of a vector
    v = np.random.default_rng(0).standard_normal(P.p)
    z = sla.lsqr(J.T, v, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    np.testing.assert_allclose(J.T @ z, Jd.T @ np.linalg.lstsq(Jd.T, v, rcond=None)[0], atol=1e-9)


def test_ntk_operator_is_the_gram_matrix_of_its_jacobian():
    P = orc.make_problem("mlp")
    w = orc.point(P)
    K = lg.ntk_operator(P, w, outputs=[1], indices=[0, 3, 6])
    assert isinstance(K, GramOperator) and K.shape == (3, 3) and (K.m, K.ks) == (3, 1)
    Jd = orc.jacobian(P, w, [1], [0, 3, 6])
    torch.testing.assert_close(K.to_dense(), Jd @ Jd.T, atol=1e-12, rtol=1e-10)
    U = torch.randn(3, 2, dtype=torch.float64)
    torch.testing.assert_close(K.jt(U), Jd.T @ U, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(K.apply(U), Jd @ (Jd.T @ U), atol=1e-12, rtol=1e-10)
