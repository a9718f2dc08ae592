"""Dense float64 oracles built from plain autograd, independent of lossgeometry's code paths."""

from __future__ import annotations

import torch
from torch.autograd.functional import hessian, jacobian


def dense_outputs(problem, w: torch.Tensor) -> torch.Tensor:
    """F(w) as (n, k) by a plain forward with the parameters written into the model."""
    m = problem.with_params(w).model
    X, _ = problem.batch()[0], problem.batch()[1]
    out = m(X)
    return out.reshape(out.shape[0], -1)


def dense_jacobian(problem, w: torch.Tensor) -> torch.Tensor:
    """DF(w) as (n*k, p) by torch.autograd.functional.jacobian of the flat forward."""
    X = problem.batch()[0]

    def f(w_):
        return problem.forward(w_, X).reshape(-1)

    return jacobian(f, w)


def dense_loss_fn(problem):
    """w -> L(w) written from scratch (no Problem loss code)."""
    X, Y = problem.batch()[0], problem.batch()[1]
    n = X.shape[0]

    def L(w_):
        out = problem.forward(w_, X)
        if problem.loss_name == "mse":
            r = out - Y.reshape(n, -1)
            return 0.5 * (r**2).sum() if problem.reduction == "sum" else (r**2).mean()
        ce = torch.nn.functional.cross_entropy(out, Y, reduction=problem.reduction)
        return ce

    return L


def dense_hessian(problem, w: torch.Tensor) -> torch.Tensor:
    """The loss Hessian (p, p) by torch.autograd.functional.hessian."""
    return hessian(dense_loss_fn(problem), w)
