"""The model Hessian's second view, ``g(v) = D²F[v, v]``, against per-output dense Hessians."""

from __future__ import annotations

import pytest
import torch

import lossgeometry as lg
from lossgeometry.curvature import second_directional_derivative
from tests.operators import operator_oracles as orc


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_second_directional_derivative_matches_dense(model):
    P = orc.make_problem(model, n=4)
    w = orc.point(P)
    v = torch.randn(P.p, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    g = second_directional_derivative(P, w, v, chunk_size=3)
    assert g.shape == (P.n, P.k)
    torch.testing.assert_close(g, orc.second_derivatives(P, w, v), atol=1e-12, rtol=1e-10)
    # the two views meet: vᵀ M_u v = ⟨u, g(v)⟩
    u = torch.randn(P.n, P.k, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    M = lg.model_hessian_operator(P, w, u)
    assert float(v @ (M @ v)) == pytest.approx(float((u * g).sum()), rel=1e-10)
    # a subset of the samples is the subset of the rows
    sub = second_directional_derivative(P, w, v, indices=[0, 2])
    torch.testing.assert_close(sub, g[[0, 2]], atol=1e-13, rtol=1e-11)


def test_second_directional_derivative_on_raw_inputs():
    P = orc.make_problem("mlp", n=3)
    w = orc.point(P)
    v = torch.randn(P.p, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    g = second_directional_derivative(P, w, v, inputs=x)
    ref = torch.stack(
        [
            v
            @ torch.autograd.functional.hessian(lambda w_, j=j: P.forward(w_, x).reshape(-1)[j], w)
            @ v
            for j in range(2 * P.k)
        ]
    ).reshape(2, P.k)
    torch.testing.assert_close(g, ref, atol=1e-12, rtol=1e-10)
