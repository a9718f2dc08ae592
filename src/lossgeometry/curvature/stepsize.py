"""Step sizes from curvature: ``1/λ_max`` of the loss Hessian at a point."""

from __future__ import annotations

import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry.linalg.power import power_iteration
from lossgeometry.operators.hessian import HessianOperator
from lossgeometry.problem import Problem

__all__ = ["auto_lr"]


@deprecated_call_style(positional=("seed", "iters"))
def auto_lr(problem: Problem, w: torch.Tensor, *, seed: int = 0, iters: int = 30) -> float:
    """Estimate ``1/λ_max(∇²L(w))`` by ``iters`` steps of power iteration on the loss Hessian.

    ``λ_max`` is the Rayleigh quotient ``vᵀ ∇²L(w) v`` of the last iterate
    (:func:`~lossgeometry.linalg.power_iteration`, start vector from ``seed``), with the
    Hessian-vector products of :meth:`Problem.hvp` (forward-over-reverse, normalized like
    ``problem.loss``). GD with ``lr = c/λ_max`` (``c < 2``) is stable near ``w``;
    ``train.lr_scale = "auto"`` multiplies ``train.lr`` by this value.

    Raises:
        ValueError: the Hessian is zero at ``w``.

    Passing ``seed`` or ``iters`` by position (the former call style) works for one release,
    with a :class:`DeprecationWarning`.
    """
    H = HessianOperator(problem, w, backend="fwdrev", max_vectors=1)
    lam = abs(power_iteration(H, iters, seed).value)
    if lam <= 0:
        raise ValueError("the loss Hessian is zero at the start point: set train.lr explicitly")
    return 1.0 / lam
