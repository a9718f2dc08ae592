"""Dense float64 oracles for every operator, from plain autograd on tiny problems.

Each oracle is written from the definition (``torch.autograd.functional`` on the flat forward),
not from the operators' code paths: the loss Hessian and the Jacobian come from
:mod:`tests.oracles.dense`, the rest is built here.
"""

from __future__ import annotations

import torch
from torch.autograd.functional import hessian

import lossgeometry as lg
from tests.conftest import tiny_cnn, tiny_mlp
from tests.oracles.dense import dense_hessian, dense_jacobian


def make_problem(
    model: str = "mlp", loss: str = "mse", reduction: str = "sum", n: int = 7, seed: int = 0
) -> lg.Problem:
    """A float64 Problem: a tiny MLP (3 → 5 → 3) or CNN (6×6 images, 3 classes), 3 chunks."""
    g = torch.Generator().manual_seed(seed)
    if model == "mlp":
        net = tiny_mlp(d_in=3, width=5, d_out=3)
        X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    else:
        net = tiny_cnn(channels=2, classes=3)
        X = torch.randn(n, 1, 6, 6, generator=g, dtype=torch.float64)
    if loss == "mse":
        Y = torch.randn(n, 3, generator=g, dtype=torch.float64)
    else:
        Y = torch.randint(0, 3, (n,), generator=g)
    return lg.Problem(net, X, Y, loss=loss, reduction=reduction, chunk_size=3)


def point(problem: lg.Problem, seed: int = 1) -> torch.Tensor:
    """A point away from the initialization (so no Hessian term vanishes by accident)."""
    g = torch.Generator().manual_seed(seed)
    return problem.params() + 0.3 * torch.randn(problem.p, generator=g, dtype=torch.float64)


def loss_hessian(problem: lg.Problem, w: torch.Tensor) -> torch.Tensor:
    """``∇²L(w)`` (``p × p``) by ``torch.autograd.functional.hessian`` of the written-out loss."""
    return dense_hessian(problem, w)


def ggn(problem: lg.Problem, w: torch.Tensor) -> torch.Tensor:
    """``Σ_i J_iᵀ Λ_i J_i`` with ``Λ`` written by hand (``c·I`` for MSE, softmax form for CE)."""
    n, k = problem.n, problem.k
    J = dense_jacobian(problem, w).reshape(n, k, -1)
    if problem.is_mse:
        return problem.loss_scale * torch.einsum("iap,iaq->pq", J, J)
    pi = problem.F(w).softmax(-1)
    Lam = torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]
    G = torch.einsum("iap,iab,ibq->pq", J, Lam, J)
    return G / n if problem.reduction == "mean" else G


def model_hessian(problem: lg.Problem, w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``Σ_{ia} u_{ia} ∇²F_{ia}(w)`` as the Hessian of ``w ↦ ⟨u, F(w)⟩``."""
    X = problem.batch()[0]
    return hessian(lambda w_: (problem.forward(w_, X) * u).sum(), w)


def second_derivatives(problem: lg.Problem, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``vᵀ ∇²F_{ia}(w) v`` for every output, shape ``(n, k)``, one Hessian per output."""
    X = problem.batch()[0]
    flat = problem.F(w).reshape(-1)
    out = torch.empty_like(flat)
    for j in range(flat.numel()):
        Hj = hessian(lambda w_, j=j: problem.forward(w_, X).reshape(-1)[j], w)
        out[j] = v @ Hj @ v
    return out.reshape(problem.n, problem.k)


def jacobian(
    problem: lg.Problem,
    w: torch.Tensor,
    sel: list[int] | None = None,
    indices: list[int] | None = None,
) -> torch.Tensor:
    """``DF(w)`` restricted to the samples ``indices`` and outputs ``sel``, rows sample-major."""
    J = dense_jacobian(problem, w).reshape(problem.n, problem.k, -1)
    if indices is not None:
        J = J[indices]
    if sel is not None:
        J = J[:, sel]
    return J.reshape(-1, problem.p)
