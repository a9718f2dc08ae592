r"""The α-β-condition along a training run: record once, evaluate any ``(α, β)`` afterwards.

Islamov, Ajroldi, Orvieto & Lucchi (NeurIPS 2024), Definition 1: ``f = (1/n) Σ_i f_i``
satisfies the α-β-condition (``α > β ≥ 0``) if for every ``x`` there is
``x_p ∈ Proj(x, S)`` (``S`` the minimizer set of ``f``) with, for all ``i``,

    ⟨∇f_i(x), x − x_p⟩ ≥ α (f_i(x) − f_i(x_p)) − β (f_i(x) − f_i*),     f_i* = min f_i.

The empirical protocol checks it on the mini-batch losses seen by a training run, with the
last iterate ``x^K`` as the proxy for ``x_p``. Per step ``k`` (batch ``B_k``)

    T(x_k) = ⟨∇f_B(x_k), x_k − x^K⟩ − α (f_B(x_k) − f_B(x^K)) + β (f_B(x_k) − f*_B),  B = B_k

and a pair holds on the run when ``min_k T(x_k) ≥ 0`` (over all steps and seeds).

*Sign of the β term.* We follow Definition 1, which gives ``+β (f − f*)`` in ``T``; with it
``(α, β) ⇒ (α + δ, β + δ)`` (because ``f_i* ≤ f_i(x_p)``) and Example 1's region
``4α/5 ≤ β < α`` comes out (see :mod:`lossgeometry.examples.alpha_beta`). The paper's figure
captions print ``− β f_{i_k}(x^k)``; that sign contradicts Definition 1 (with it a larger β
would only make the condition harder and the constraint ``α ≥ β + 0.1`` would be idle).

*Normalization.* ``f_B = (1/|B|) Σ_{i∈B} ℓ_i`` is the **mean** of the Problem's per-sample
losses ``ℓ_i`` whatever the Problem's ``reduction`` (for ``reduction="sum"`` the optimizer
minimizes ``n · f``; the gradients and losses are divided by ``n`` before they are stored).
Scaling ``f`` by ``c > 0`` scales ``T`` by ``c``, so which pairs hold does not depend on it;
``f_i*`` is given in the same units as ``ℓ_i``.

Cost: the run is done twice (once for ``x^K``, once replayed); the replay reuses the gradient
the optimizer needs and adds one forward pass on the batch at ``x^K`` per step, plus a
full-data evaluation every ``full_loss_every`` steps.

The trace Result is :mod:`lossgeometry.conditions.alphabeta_trace`, the replay callback
:mod:`lossgeometry.conditions._alphabeta_replay`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry.conditions._alphabeta_replay import (
    ReplayRecorder,
    build_trace,
    dropout_off,
    f_star_vector,
)
from lossgeometry.conditions.alphabeta_trace import ConditionTrace
from lossgeometry.problem import Problem
from lossgeometry.train import OptimizerSpec, train

__all__ = ["ConditionTrace", "ReplayMismatchError", "record_conditions"]


class ReplayMismatchError(ValueError):
    """The replayed run did not reproduce the first run's last iterate ``x^K``."""


def record_conditions(
    problem: Problem,
    optimizer: OptimizerSpec = "sgd",
    steps: int = 100,
    batch_size: int | None = None,
    seeds: Sequence[int] = (0,),
    *,
    lr: float | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    f_star: float | Sequence[float] | np.ndarray | torch.Tensor = 0.0,
    full_loss_every: int | None = None,
    full_grad: bool = True,
    w0: torch.Tensor | None = None,
    x_final: torch.Tensor | None = None,
    store_indices: bool = True,
    replay_rtol: float = 1e-6,
    progress: bool | None = None,
) -> ConditionTrace:
    """Run training, replay it, and record the per-step scalars of the α-β test quantity.

    For each seed: a first run (:func:`lossgeometry.train`) gives the last iterate ``x^K``;
    the same run is replayed (same start, same seeded batches, fresh optimizer and scheduler
    from the same spec) and, at each step ``k`` before the optimizer steps, records the batch
    indices, ``f_B(x_k)``, ``f_B(x^K)``, ``⟨∇f_B(x_k), x_k − x^K⟩``, ``‖∇f_B(x_k)‖`` (the
    optimizer's own gradient, not recomputed) and, every ``full_loss_every`` steps, the
    full-data loss and gradient. The replay must end at ``x^K`` (checked).

    Args:
        problem: the Problem. Losses are recorded as means of its per-sample losses.
        optimizer: as in :func:`lossgeometry.train`: a name (``"sgd"``, ``"momentum"``,
            ``"adam"``, ...), a ``torch.optim.Optimizer`` class or a factory
            ``params -> Optimizer`` (``lossgeometry.optim.SPSMax`` etc. work).
        steps: optimizer steps ``K`` per run.
        batch_size: mini-batch size (``None``: full batch).
        seeds: one run per seed (the seed fixes the mini-batch order).
        lr: learning rate (required for the SGD family).
        optimizer_kwargs: extra keyword arguments for a named or class optimizer.
        lr_scheduler: factory ``optimizer -> scheduler`` (stepped after every step).
        f_star: ``f_i*``, a number for all samples or one value per sample (units of the
            Problem's per-sample loss ``ℓ_i``). The paper assumes 0 (non-negative losses).
        full_loss_every: stride of the full-data records (``0``: none; the last step is
            always included otherwise). Default: every step for full batch (free), else every
            ``⌈4 n / batch_size⌉`` steps (once per four epochs), so that the full passes cost
            about a quarter of the training.
        full_grad: also compute the full-data gradient at the full records (needed by
            :meth:`ConditionTrace.aiming` and :meth:`ConditionTrace.pl_relaxed`).
        w0: start point (default: the model's current parameters).
        x_final: the last iterate of an identical earlier run (one seed only); the first pass
            is then skipped and the replay is checked against it.
        store_indices: keep the ``(steps, batch_size)`` batch indices in the trace.
        replay_rtol: tolerance of the replay check, relative to ``‖x^K − x_0‖``.
        progress: progress bars.

    Returns:
        A :class:`ConditionTrace`.

    Raises:
        ReplayMismatchError: the replay did not reproduce ``x^K`` (non-deterministic
            operations, e.g. some CUDA kernels: call
            ``torch.use_deterministic_algorithms(True)``, or a stateful optimizer factory).
        ValueError: invalid arguments; lossgeometry.TrainingDivergedError if the run diverges.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a lossgeometry.Problem, got {type(problem).__name__}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: pass at least one seed")
    if x_final is not None and len(seeds) != 1:
        raise ValueError("x_final is the end point of one run: pass a single seed with it")
    if not (replay_rtol >= 0):
        raise ValueError(f"replay_rtol must be >= 0, got {replay_rtol}")
    n = problem.n
    batch = None if batch_size is None or batch_size >= n else int(batch_size)
    if full_loss_every is None:
        full_loss_every = 1 if batch is None else max(1, math.ceil(4 * n / batch))
    if not isinstance(full_loss_every, int) or full_loss_every < 0:
        raise ValueError(f"full_loss_every must be a non-negative integer, got {full_loss_every}")
    scale = float(n) if problem.reduction == "sum" else 1.0
    f_star_vec, f_star_scalar = f_star_vector(f_star, n, problem.device)
    start = problem.check_w(w0).detach().clone()
    common = dict(
        lr=lr,
        batch_size=batch,
        w0=start,
        record_every=steps + 1,
        optimizer_kwargs=optimizer_kwargs,
        lr_scheduler=lr_scheduler,
        progress=progress,
    )

    t0 = time.perf_counter()
    recs: list[ReplayRecorder] = []
    finals: list[float] = []
    errors: list[float] = []
    opt_name = ""
    with dropout_off(problem.model) as disabled:
        for seed in seeds:
            if x_final is None:
                first = train(problem, optimizer, steps, seed=seed, **common)
                assert first.w_final is not None
                wK = first.w_final
                final_loss = float(first.loss[-1]) / scale
                opt_name = first.optimizer
            else:
                wK = problem.check_w(x_final).detach().clone()
                final_loss = float(problem.loss(wK)) / scale
            rec = ReplayRecorder(
                problem,
                wK,
                steps,
                batch,
                scale,
                f_star_vec,
                f_star_scalar,
                final_loss,
                full_loss_every,
                full_grad,
            )
            second = train(problem, optimizer, steps, seed=seed, callback=rec, **common)
            opt_name = second.optimizer
            assert second.w_final is not None
            if rec.seen != steps:
                raise ValueError(f"the replay took {rec.seen} steps instead of {steps}")
            rec.finish()
            ref = float((wK - start).norm())
            err = float((second.w_final - wK).norm()) / max(ref, 1e-30)
            if not math.isfinite(err) or err > replay_rtol:
                raise ReplayMismatchError(
                    f"the replay of seed {seed} did not reproduce the last iterate x^K: "
                    f"relative error {err:.3e} > replay_rtol={replay_rtol:g}. The run is not "
                    "deterministic: remove randomness from the model's forward pass, make a "
                    "stateful optimizer factory build a fresh optimizer on every call, or on "
                    "CUDA call torch.use_deterministic_algorithms(True); raise replay_rtol to "
                    "accept a small mismatch"
                    + (
                        "; x_final must come from the same run (same seed, lr, steps)"
                        if x_final is not None
                        else ""
                    )
                )
            recs.append(rec)
            finals.append(final_loss)
            errors.append(err)
    wall = time.perf_counter() - t0
    return build_trace(
        recs,
        seeds,
        finals,
        errors,
        steps,
        opt_name,
        lr,
        batch,
        problem,
        f_star_scalar,
        disabled,
        wall,
        store_indices,
    )
