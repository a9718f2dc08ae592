"""Training loops that record what the theory talks about.

:func:`train` runs full-batch gradient descent or mini-batch SGD (or any optimizer of the
registry, :mod:`lossgeometry.optim.registry`) on the flat parameters of a
:class:`~lossgeometry.Problem` and records, every ``record_every`` steps, on the *full* data
(through :class:`~lossgeometry.recording.Recorder`):

* the loss ``L(w_t)`` (the Problem's normalization),
* the gradient norm ``‖∇L(w_t)‖``,
* the distance from the start ``‖w_t − w_0‖``,
* the empirical PL ratio ``‖∇L(w_t)‖² / L(w_t)`` (PL* holds on the run with constant ``µ``
  iff the ratio stays ``≥ µ``; for ``L = ½‖F − y‖²`` it is ``≥ 2 λ_min(K(w_t))``).

Runs are deterministic given ``seed`` (mini-batches come from
:class:`~lossgeometry.recording.BatchSampler`, a seeded permutation per epoch) and the model's
initial parameters; the model itself is not modified (``w_final`` is returned).
``Trajectory``, ``TrainingDivergedError`` and ``BatchSampler`` live in
:mod:`lossgeometry.recording` and are re-exported here.

On a data-parallel Problem (``docs/distributed.md``) every rank runs this same loop: the
sampler draws the same global indices on every rank, :meth:`~lossgeometry.Problem.loss_and_grad`
sums each rank's samples of the batch over the ranks (normalized by the global batch size),
and every rank steps the same optimizer on the same numbers, so every rank ends with the
same parameters and records (the all-reduce of ``DistributedDataParallel``, done by the
Problem). Only rank 0 writes to ``sinks`` and shows a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from lossgeometry._progress import progress_bar
from lossgeometry.optim.registry import OptimizerSpec, make_optimizer
from lossgeometry.problem import Problem
from lossgeometry.recording import (
    BatchSampler,
    Recorder,
    TrainingDivergedError,
    Trajectory,
    write_record,
    writes_records,
)

__all__ = [
    "BatchSampler",
    "OptimizerSpec",
    "StepCallback",
    "TrainingDivergedError",
    "Trajectory",
    "make_optimizer",
    "train",
]

StepCallback = Callable[
    [int, torch.Tensor, "torch.Tensor | None", torch.Tensor, torch.Tensor], None
]
"""``callback(t, w, idx, L, g)`` of :func:`train`, called before each optimizer step."""


def train(
    problem: Problem,
    optimizer: OptimizerSpec = "gd",
    steps: int = 100,
    *,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    w0: torch.Tensor | None = None,
    record_every: int = 1,
    record_iterates: bool = False,
    optimizer_kwargs: dict[str, Any] | None = None,
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    stop_loss: float | None = None,
    progress: bool | None = None,
    callback: StepCallback | None = None,
    sinks: Sequence[Any] = (),
) -> Trajectory:
    """Train ``problem`` from ``w0`` and record the loss, gradient norm, distance and PL ratio.

    Args:
        problem: the Problem (its model is not modified; use ``problem.set_params(traj.w_final)``).
        optimizer: a registered name (``lossgeometry.optim.optimizer_names()``): ``"gd"``
            (full-batch SGD), ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``,
            ``"adamw"``, ``"adagrad"``, ``"rmsprop"``, ``"lbfgs"``, and the package's own
            ``"sps"``, ``"decsps"``, ``"ngn"``, ``"adagrad_norm"``, ``"certified_gd"``; a
            ``torch.optim.Optimizer`` class (built with ``lr`` and ``optimizer_kwargs``); or
            a factory ``params -> Optimizer`` (e.g. ``lambda ps: lg.optim.SPSMax(ps)``).
            Optimizers get a closure, so line-search and Polyak-type methods work.
        steps: number of optimizer steps.
        lr: learning rate (required for the SGD family).
        batch_size: ``None`` for full batch; else mini-batches of this size, drawn without
            replacement in seeded random epochs. The mini-batch loss is the unbiased estimate
            of ``L`` (see :meth:`Problem.loss`).
        seed: seeds the mini-batch order (training is deterministic given it and ``w0``).
        w0: start point (default: the model's current parameters).
        record_every: stride of the full-data records (the start and the end are always
            recorded). Each record costs one full pass when ``batch_size`` is set.
        record_iterates: also keep the parameters at every record (``(records, p)`` memory).
        optimizer_kwargs: extra keyword arguments for a named or class optimizer.
        lr_scheduler: optional factory ``optimizer -> scheduler``; ``scheduler.step()`` is
            called after every optimizer step.
        stop_loss: stop early once the recorded full loss falls below this value.
        progress: progress bar (default: on when attached to a terminal).
        callback: optional ``callback(t, w, idx, L, g)`` called once per optimizer step ``t``,
            just before the step, with the current parameters ``w`` (a detached view: do not
            modify it), the batch indices ``idx`` (``None`` for full batch), and the mini-batch
            loss ``L`` and gradient ``g`` the optimizer is about to use (Problem's
            normalization). It sees exactly the steps that are taken.
        sinks: objects with ``write_scalars(step, dict)`` (:mod:`lossgeometry.integrations`:
            CSV, JSON lines, TensorBoard): every record (``loss``, ``grad_norm``,
            ``distance``, ``pl_ratio``) is written to each as it is taken, so a TensorBoard
            shows the run live. The caller owns the sinks (``train`` does not close them).
            Across ranks only rank 0 writes (:func:`~lossgeometry.recording.writes_records`).

    Returns:
        A :class:`Trajectory`.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite (lower ``lr``).
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    if lr is not None and not (lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    start = problem.check_w(w0).detach().clone()
    w = start.clone().requires_grad_(True)
    opt, opt_name = make_optimizer(optimizer, [w], lr, problem=problem, **(optimizer_kwargs or {}))
    scheduler = lr_scheduler(opt) if lr_scheduler is not None else None
    if not writes_records(problem):  # one rank writes and shows progress
        sinks, progress = (), False
    sampler = BatchSampler(problem.n, batch_size, seed)
    full_batch = sampler.batch_size is None
    rec = Recorder(
        problem,
        start,
        every=record_every,
        optimizer=opt_name,
        lr=lr,
        keep_iterates=record_iterates,
    )
    bar = progress_bar(range(steps), progress, desc=f"train ({opt_name})", unit="step")
    loss_key = "loss" if full_batch else "batch_loss"
    t = 0
    for t in bar:
        idx = sampler.next()
        L, g = problem.loss_and_grad(w.detach(), idx)
        rec.check(t, L)
        due = rec.due(t)
        if due:
            record = rec.record(t, w, L, g) if full_batch else rec.record(t, w)
            write_record(sinks, t, record)
            if stop_loss is not None and rec.last_loss <= stop_loss:
                break
        if callback is not None:
            callback(t, w.detach(), idx, L, g)
        calls = [0]

        def closure(
            idx: torch.Tensor | None = idx,
            L: torch.Tensor = L,
            g: torch.Tensor = g,
            calls: list[int] = calls,
        ) -> torch.Tensor:
            calls[0] += 1
            if calls[0] > 1:  # re-evaluation (line searches, LBFGS)
                L, g = problem.loss_and_grad(w.detach(), idx)
            w.grad = g.clone()
            return L

        opt.step(closure)
        if scheduler is not None:
            scheduler.step()
        if hasattr(bar, "set_postfix"):  # this step's loss (a mini-batch estimate for SGD)
            bar.set_postfix(**{loss_key: f"{float(L):.3e}"}, refresh=False)
    else:
        t = steps
    if rec.last_step != t:
        write_record(sinks, t, rec.record(t, w))
    return rec.trajectory(w, num_steps=t, batch_size=sampler.batch_size, seed=seed)
