"""Shared machinery of optimizers whose step is ``x ← x − γ_k ∇f_{B_k}(x_k)`` with a scalar γ_k.

The step size is one number for all parameters, computed from the mini-batch loss the closure
returns and the squared norm of the whole gradient (all parameter groups together).
Hyperparameters are read from the first parameter group (schedulers that scale ``lr`` act on
every group alike). In a ``DistributedDataParallel`` loop the closure must return the loss
averaged over the ranks, :func:`~lossgeometry.optim.ranks.mean_over_ranks`, so that every rank
takes the same step (:func:`lossgeometry.train` on a data-parallel Problem already does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch


class ScalarStepOptimizer(torch.optim.Optimizer):
    """Base class: subclasses implement :meth:`step_size` from ``(loss, ‖g‖², state)``."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)
        self.last_step_size: float | None = None
        """γ_k of the last step (``None`` before the first)."""

    def _anchor(self) -> dict[str, Any]:
        """Optimizer-wide state, stored with the first parameter (so ``state_dict`` keeps it)."""
        first = self.param_groups[0]["params"][0]
        return self.state[first]

    def step_size(self, loss: float, grad_sq: float, state: dict[str, Any]) -> float:
        """The scalar γ_k; ``state`` persists between steps (``state["k"]`` is the step index)."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One step. ``closure`` is required: it sets the gradients and returns the loss."""
        if closure is None:
            raise ValueError(
                f"{type(self).__name__} needs a closure that sets the gradients and returns the "
                "mini-batch loss: opt.step(closure) (lossgeometry.train always passes one)"
            )
        with torch.enable_grad():
            loss = closure()
        if loss is None:
            raise ValueError(f"the closure given to {type(self).__name__} must return the loss")
        L = float(loss)
        if not math.isfinite(L):
            raise ValueError(f"{type(self).__name__}: the mini-batch loss is {L}")
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        grad_sq = float(sum(gr.detach().double().pow(2).sum() for gr in grads)) if grads else 0.0
        st = self._anchor()
        st.setdefault("k", 0)
        gamma = float(self.step_size(L, grad_sq, st))
        if not (gamma >= 0 and math.isfinite(gamma)):
            raise ValueError(f"{type(self).__name__}: the step size came out as {gamma}")
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-gamma)
        st["k"] += 1
        st["last_step_size"] = gamma
        self.last_step_size = gamma
        return loss
