"""Helpers for the PL* tests: linear models (closed forms) and small MLPs (dense oracles)."""

from __future__ import annotations

import torch
from torch import nn

import lossgeometry as lg


def linear_problem(
    n: int = 6, d: int = 10, k: int = 2, reduction: str = "sum", seed: int = 0
) -> tuple[lg.Problem, torch.Tensor]:
    """F(w) = X W (no bias): K = (X Xᵀ) ⊗ I_k is constant, D²F = 0. Returns (problem, X)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    model = nn.Linear(d, k, bias=False).double()
    return lg.Problem(model, X, Y, reduction=reduction), X


def mlp_problem(
    n: int = 4,
    d_in: int = 3,
    width: int = 256,
    depth: int = 1,
    k: int = 1,
    noise: float = 0.05,
    reduction: str = "sum",
    seed: int = 0,
) -> lg.Problem:
    """An over-parameterized NTK MLP whose targets sit close to its initial outputs."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    model = lg.models.mlp(d_in, width, depth, k, parameterization="ntk", seed=seed).double()
    with torch.no_grad():
        Y = model(X) + noise * torch.randn(n, k, generator=g, dtype=torch.float64)
    return lg.Problem(model, X, Y, reduction=reduction)


def dense_kernel(problem: lg.Problem, w: torch.Tensor) -> torch.Tensor:
    """K = J Jᵀ from torch.func.jacrev of the flat forward (independent of lg.kernel)."""
    X = problem.batch()[0]
    J = torch.func.jacrev(lambda w_: problem.forward(w_, X).reshape(-1))(w)
    return J @ J.T
