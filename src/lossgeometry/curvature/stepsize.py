"""Step sizes from curvature: ``1/λ_max`` of the loss Hessian at a point."""

from __future__ import annotations

import torch

from lossgeometry.problem import Problem

__all__ = ["auto_lr"]


def auto_lr(problem: Problem, w: torch.Tensor, seed: int = 0, iters: int = 30) -> float:
    """Estimate ``1/λ_max(∇²L(w))`` by power iteration on Hessian-vector products.

    GD with ``lr = c/λ_max`` (``c < 2``) is stable near ``w``; ``train.lr_scale = "auto"``
    multiplies ``train.lr`` by this value.
    """
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
    lam_f = abs(float(lam))
    if lam_f <= 0:
        raise ValueError("the loss Hessian is zero at the start point: set train.lr explicitly")
    return 1.0 / lam_f
