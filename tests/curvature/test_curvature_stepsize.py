"""auto_lr is power iteration on the Hessian operator, with the numbers of Problem.hvp."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.curvature.stepsize import auto_lr


def _reference_auto_lr(problem: lg.Problem, w: torch.Tensor, seed: int, iters: int) -> float:
    """The loop auto_lr replaced: power iteration on Problem.hvp, written out."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(problem.p, generator=g, dtype=problem.dtype).to(problem.device)
    v /= v.norm()
    lam = torch.tensor(0.0)
    for _ in range(iters):
        hv = problem.hvp(w, v)
        lam = v @ hv
        nv = hv.norm()
        if nv == 0:
            break
        v = hv / nv
    return 1.0 / abs(float(lam))


@pytest.mark.parametrize(
    "dtype,loss,chunk_size",
    [(torch.float32, "mse", None), (torch.float32, "mse", 5), (torch.float64, "cross_entropy", 4)],
)
def test_auto_lr_equals_power_iteration_on_problem_hvp_exactly(dtype, loss, chunk_size):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 9), nn.Tanh(), nn.Linear(9, 3)).to(dtype)
    X = torch.randn(12, 4, generator=g).to(dtype)
    Y = torch.randn(12, 3, generator=g).to(dtype) if loss == "mse" else torch.randint(0, 3, (12,))
    P = lg.Problem(net, X, Y, loss=loss, chunk_size=chunk_size)
    w = P.params() + 0.01
    for seed, iters in ((0, 30), (3, 7)):
        assert auto_lr(P, w, seed=seed, iters=iters) == _reference_auto_lr(P, w, seed, iters)


def test_auto_lr_refuses_a_zero_hessian():
    P = lg.Problem(nn.Linear(2, 1, bias=False).double(), torch.zeros(3, 2).double(),
                   torch.zeros(3, 1).double())  # fmt: skip
    with pytest.raises(ValueError, match="zero"):
        auto_lr(P, P.params())
