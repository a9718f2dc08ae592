"""Degenerate critical points with zero weight matrices: closed-form Hessian nullity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.manifold.degenerate import linear_layers, predict_zero_layer_nullity, zero_layers


def deep_problem(depth: int, width: int, n: int = 8, d: int = 5, k: int = 3) -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    model = lg.models.mlp(d, width, depth, k, activation="tanh", bias=False, seed=0).double()
    return lg.Problem(model, X, Y)


@pytest.mark.parametrize(
    ("depth", "width", "layers"),
    [
        (1, 4, [0, 1]),
        (2, 4, [0, 1]),
        (2, 6, [0, 2]),
        (2, 3, [1, 2]),
        (3, 4, [0, 3]),
        (3, 4, [1, 2]),
    ],
)
def test_predicted_nullity_matches_the_dense_hessian(depth, width, layers) -> None:
    pr = deep_problem(depth, width)
    w = zero_layers(pr, pr.params(), layers=layers)
    assert float(pr.grad(w).norm()) == 0.0  # a critical point: J = 0
    pred = predict_zero_layer_nullity(pr, w, layers=layers)
    measured = lg.hessian_nullity(pr, w, solver="dense")
    assert measured.nullity == pred.nullity
    assert 0 < pred.nonzero < pr.p
    # the spectrum is symmetric: ±σ_i(B)
    ev = measured.eigenvalues
    nz = ev[abs(ev) > measured.rank.tol]
    assert sorted(nz) == pytest.approx(sorted(-nz), rel=1e-8)


def test_three_zero_layers_give_a_zero_hessian() -> None:
    pr = deep_problem(2, 4)
    w = zero_layers(pr, pr.params(), layers=[0, 1, 2])
    assert predict_zero_layer_nullity(pr, w, layers=[0, 1, 2]).nullity == pr.p
    assert lg.hessian_nullity(pr, w).nullity == pr.p


def test_prediction_fails_where_the_theory_does_not_apply() -> None:
    pr = deep_problem(2, 4)
    with pytest.raises(ValueError, match="not zero"):
        predict_zero_layer_nullity(pr, pr.params(), layers=[0, 1])
    with pytest.raises(ValueError, match="at least two"):
        predict_zero_layer_nullity(pr, zero_layers(pr, pr.params(), layers=[0]), layers=[0])
    biased = lg.Problem(
        nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double(),
        torch.randn(4, 2, dtype=torch.float64),
        torch.randn(4, 1, dtype=torch.float64),
    )
    with pytest.raises(ValueError, match="bias"):
        linear_layers(biased)
    shifted = lg.Problem(
        nn.Sequential(
            nn.Linear(2, 3, bias=False), nn.Sigmoid(), nn.Linear(3, 1, bias=False)
        ).double(),
        torch.randn(4, 2, dtype=torch.float64),
        torch.randn(4, 1, dtype=torch.float64),
    )
    with pytest.raises(ValueError, match="does not map 0 to 0"):
        linear_layers(shifted)
