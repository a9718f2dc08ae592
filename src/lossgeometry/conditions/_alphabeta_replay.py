"""The replay pass of :func:`lossgeometry.record_conditions`: per-step scalars of ``T``.

:class:`ReplayRecorder` is the ``lg.train`` callback of the second (replayed) run: at every
step it stores ``⟨∇f_B(x_k), x_k − x^K⟩``, ``f_B(x_k)``, ``‖∇f_B(x_k)‖`` and ``‖x_k − x^K‖`` from
the optimizer's own gradient, and the full-data records. :func:`build_trace` assembles the
recorders of all runs into a :class:`~lossgeometry.conditions.alphabeta_trace.ConditionTrace`.
Losses are means of per-sample losses (``scale`` divides out ``n`` for ``reduction="sum"``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from lossgeometry.conditions.alphabeta_trace import ConditionTrace
from lossgeometry.problem import Problem

__all__ = ["ReplayRecorder", "build_trace", "dropout_off", "f_star_vector"]


@contextlib.contextmanager
def dropout_off(model: nn.Module) -> Iterator[list[str]]:
    """Switch every active dropout module to eval mode; restore on exit; yield their names."""
    switched: list[tuple[str, nn.Module]] = []
    for name, mod in model.named_modules():
        active = (isinstance(mod, nn.modules.dropout._DropoutNd) and mod.p > 0) or (
            isinstance(mod, nn.MultiheadAttention) and float(mod.dropout) > 0
        )
        if active and mod.training:
            switched.append((name, mod))
    for _, mod in switched:
        mod.training = False
    try:
        yield [name for name, _ in switched]
    finally:
        for _, mod in switched:
            mod.training = True


def f_star_vector(
    f_star: Any, n: int, device: torch.device
) -> tuple[torch.Tensor | None, float | None]:
    if isinstance(f_star, (int, float)):
        if not math.isfinite(f_star):
            raise ValueError(f"f_star must be finite, got {f_star}")
        return None, float(f_star)
    vec = torch.as_tensor(np.asarray(f_star, dtype=np.float64)).reshape(-1)
    if vec.numel() != n:
        raise ValueError(
            f"f_star must be a number or hold one value per sample ({n}), got {vec.numel()}"
        )
    if not bool(torch.isfinite(vec).all()):
        raise ValueError("f_star contains NaN or Inf")
    return vec.to(device), None


def _couples_samples(model: nn.Module) -> bool:
    """Whether a sample's loss depends on the rest of its batch (train-mode BatchNorm)."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules()
    )


class ReplayRecorder:
    """The replay callback: per step, the scalars of T from the optimizer's own gradient.

    ``f_B(x^K)`` and ``f*_B`` are filled in by :meth:`finish` from the per-sample losses at
    ``x^K`` (one pass over the data) and the stored batch indices, instead of one forward
    pass per step; models whose samples are coupled (train-mode BatchNorm) get the per-step
    forward pass on the batch instead.
    """

    def __init__(
        self,
        problem: Problem,
        x_final: torch.Tensor,
        steps: int,
        batch: int | None,
        scale: float,
        f_star_vec: torch.Tensor | None,
        f_star: float | None,
        final_loss: float,
        full_every: int,
        full_grad: bool,
    ) -> None:
        self.problem, self.wK, self.scale = problem, x_final, scale
        self.f_star_vec, self.f_star, self.final_loss = f_star_vec, f_star, final_loss
        self.full_every, self.full_grad, self.steps = full_every, full_grad, steps
        self.coupled = _couples_samples(problem.model)
        # rows: inner, loss, grad norm, distance, loss at x^K, f*_B
        self.buf = torch.zeros((6, steps), dtype=torch.float64, device=problem.device)
        self.idx = torch.empty((steps, batch), dtype=torch.long) if batch else None
        self.full: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.seen = 0

    def __call__(
        self, t: int, w: torch.Tensor, idx: torch.Tensor | None, L: torch.Tensor, g: torch.Tensor
    ) -> None:
        if t >= self.steps:  # pragma: no cover - guarded by train
            raise RuntimeError("the replay took more steps than the first run")
        s = self.scale
        # in the model's dtype: the gradient carries that precision anyway, and float64
        # copies of w and g would cost several passes over p per step
        d = w - self.wK
        g = g.detach()
        vals = torch.stack((torch.dot(g, d), L.detach(), g.norm(), d.norm() * s))
        self.buf[:4, t] = vals.to(torch.float64) / s  # inner, loss, grad norm, distance
        if idx is not None:
            assert self.idx is not None
            self.idx[t] = idx
            if self.coupled:
                self.buf[4, t] = self.problem.loss(self.wK, idx).to(torch.float64) / s
        self.seen += 1
        if self.full_every and (t % self.full_every == 0 or t == self.steps - 1):
            dist = self.buf[3, t]
            if idx is None:
                self.full.append((t, self.buf[1, t], self.buf[0, t], self.buf[2, t], dist))
            elif self.full_grad:
                Lf, gf = self.problem.loss_and_grad(w)
                full = torch.stack((Lf, torch.dot(gf, d), gf.norm())).to(torch.float64) / s
                self.full.append((t, full[0], full[1], full[2], dist))
            else:
                Lf = self.problem.loss(w).to(torch.float64) / s
                nan = torch.tensor(float("nan"), dtype=torch.float64, device=Lf.device)
                self.full.append((t, Lf, nan, nan, dist))

    def finish(self) -> None:
        """Fill in ``f_B(x^K)`` and ``f*_B`` for every step."""
        dev = self.buf.device
        if self.idx is None:  # full batch
            self.buf[4] = self.final_loss
            fs = self.f_star if self.f_star_vec is None else float(self.f_star_vec.mean())
            self.buf[5] = fs
            return
        idx = self.idx.to(dev)
        if not self.coupled:
            per_sample = self.problem.per_sample_losses(self.wK).to(torch.float64)
            self.buf[4] = per_sample.to(dev)[idx].mean(dim=1)
        if self.f_star_vec is None:
            self.buf[5] = self.f_star
        else:
            self.buf[5] = self.f_star_vec.to(dev)[idx].mean(dim=1)


def build_trace(
    recs: list[ReplayRecorder],
    seeds: list[int],
    finals: list[float],
    errors: list[float],
    steps: int,
    opt_name: str,
    lr: float | None,
    batch: int | None,
    problem: Problem,
    f_star: float | None,
    disabled: list[str],
    wall: float,
    store_indices: bool,
) -> ConditionTrace:
    bufs = [r.buf.cpu().numpy() for r in recs]
    buf = np.concatenate(bufs, axis=1)
    run = np.concatenate([np.full(steps, j) for j in range(len(recs))])
    step = np.concatenate([np.arange(steps)] * len(recs))
    full_rows = [
        (j, t, *(float(v) for v in vals)) for j, r in enumerate(recs) for (t, *vals) in r.full
    ]
    F = np.asarray(full_rows, dtype=float).reshape(-1, 6)
    idx = None
    if store_indices and all(r.idx is not None for r in recs):
        idx = np.concatenate([r.idx.numpy() for r in recs if r.idx is not None])
    return ConditionTrace(
        run=run,
        step=step,
        inner=buf[0],
        loss_batch=buf[1],
        grad_norm=buf[2],
        distance=buf[3],
        loss_batch_final=buf[4],
        f_star_batch=buf[5],
        full_run=F[:, 0],
        full_step=F[:, 1],
        full_loss=F[:, 2],
        full_inner=F[:, 3],
        full_grad_norm=F[:, 4],
        full_distance=F[:, 5],
        seeds=seeds,
        final_loss=np.asarray(finals),
        replay_error=np.asarray(errors),
        steps_per_run=np.full(len(recs), steps),
        optimizer=opt_name,
        lr=lr,
        batch_size=batch,
        n=problem.n,
        p=problem.p,
        loss_name=problem.loss_name,
        reduction=problem.reduction,
        f_star=f_star,
        dropout_disabled=disabled,
        wall_time=wall,
        batch_indices=idx,
    )
