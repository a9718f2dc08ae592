"""Training loops that record what the theory talks about.

:func:`train` runs full-batch gradient descent or mini-batch SGD (or any ``torch.optim``
optimizer) on the flat parameters of a :class:`~lossgeometry.Problem` and records, every
``record_every`` steps, on the *full* data:

* the loss ``L(w_t)`` (the Problem's normalization),
* the gradient norm ``‖∇L(w_t)‖``,
* the distance from the start ``‖w_t − w_0‖``,
* the empirical PL ratio ``‖∇L(w_t)‖² / L(w_t)`` (PL* holds on the run with constant ``µ``
  iff the ratio stays ``≥ µ``; for ``L = ½‖F − y‖²`` it is ``≥ 2 λ_min(K(w_t))``).

Runs are deterministic given ``seed`` (mini-batches come from a seeded ``torch.Generator``)
and the model's initial parameters; the model itself is not modified (``w_final`` is returned).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossgeometry._progress import progress_bar
from lossgeometry.optim.registry import OptimizerSpec, make_optimizer
from lossgeometry.problem import Problem
from lossgeometry.results import Result, atomic_write_json

StepCallback = Callable[
    [int, torch.Tensor, "torch.Tensor | None", torch.Tensor, torch.Tensor], None
]
"""``callback(t, w, idx, L, g)`` of :func:`train`, called before each optimizer step."""


class TrainingDivergedError(ValueError):
    """The loss became NaN or infinite during training (usually: the step is too large)."""


@dataclasses.dataclass(frozen=True)
class Trajectory(Result):
    """A recorded training run.

    Arrays are indexed by record point; ``steps[j]`` is the optimizer step at which record
    ``j`` was taken (``0`` is the start). All quantities are on the full data set.
    """

    steps: np.ndarray
    """Optimizer step of each record."""
    loss: np.ndarray
    """``L(w_t)``, with the Problem's normalization (see ``reduction``)."""
    grad_norm: np.ndarray
    """``‖∇L(w_t)‖₂``."""
    distance: np.ndarray
    """``‖w_t − w_0‖₂``."""
    pl_ratio: np.ndarray
    """``‖∇L(w_t)‖² / L(w_t)`` (``inf`` where ``L = 0``)."""
    optimizer: str
    lr: float | None
    batch_size: int | None
    """``None`` for full-batch gradient descent."""
    seed: int
    num_steps: int
    loss_name: str
    reduction: str
    wall_time: float
    """Seconds spent in the loop, recording included."""
    w0: torch.Tensor | None = dataclasses.field(default=None, repr=False, compare=False)
    """Flat start point (not in the JSON; saved beside it as ``.pt`` by :meth:`save`)."""
    w_final: torch.Tensor | None = dataclasses.field(default=None, repr=False, compare=False)
    """Flat end point (not in the JSON; saved beside it as ``.pt`` by :meth:`save`)."""
    iterates: torch.Tensor | None = dataclasses.field(default=None, repr=False, compare=False)
    """``(records, p)`` parameters at each record when ``record_iterates=True``."""

    _TENSORS = ("w0", "w_final", "iterates")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict without the parameter tensors (see :meth:`save`)."""
        d = super().to_dict()
        for name in self._TENSORS:
            d.pop(name, None)
        return d

    def save(self, path: str | Path) -> Path:
        """Save the record as JSON at ``path`` and the parameter tensors at ``path.pt``."""
        path = Path(path)
        tensors = {k: getattr(self, k) for k in self._TENSORS if getattr(self, k) is not None}
        if tensors:
            tmp = path.with_name(path.name + ".pt.tmp")
            torch.save({k: v.detach().cpu() for k, v in tensors.items()}, tmp)
            tmp.replace(path.with_name(path.name + ".pt"))
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        """Load a trajectory saved with :meth:`save` (tensors too, when present)."""
        traj = super().load(path)
        pt = Path(path).with_name(Path(path).name + ".pt")
        if pt.exists():
            traj = dataclasses.replace(traj, **torch.load(pt, weights_only=True))
        return traj

    @property
    def final_loss(self) -> float:
        """The last recorded loss."""
        return float(self.loss[-1])

    def plot(self, ax: Any = None, quantity: str = "loss") -> Any:
        """Plot a recorded quantity against the step (log scale); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.4))
        y = np.asarray(getattr(self, quantity), dtype=float)
        ax.semilogy(self.steps, np.where(y > 0, y, np.nan), lw=1.8)
        ax.set_xlabel("step")
        ax.set_ylabel(quantity.replace("_", " "))
        ax.grid(alpha=0.3, which="both")
        return ax


class BatchSampler:
    """Seeded mini-batch indices: a fresh random permutation per epoch, cut into batches.

    ``batch_size=None`` (or ``≥ n``) gives the full data at every step.
    """

    def __init__(self, n: int, batch_size: int | None, seed: int) -> None:
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        self.n = n
        self.batch_size = None if batch_size is None or batch_size >= n else batch_size
        self.gen = torch.Generator().manual_seed(int(seed))
        self._perm: torch.Tensor | None = None
        self._pos = 0

    def next(self) -> torch.Tensor | None:
        """Indices of the next batch (``None`` for full batch)."""
        if self.batch_size is None:
            return None
        if self._perm is None or self._pos + self.batch_size > self.n:
            self._perm = torch.randperm(self.n, generator=self.gen)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


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
) -> Trajectory:
    """Train ``problem`` from ``w0`` and record the loss, gradient norm, distance and PL ratio.

    Args:
        problem: the Problem (its model is not modified; use ``problem.set_params(traj.w_final)``).
        optimizer: ``"gd"`` (full-batch SGD), ``"sgd"``, ``"momentum"``, ``"nesterov"``,
            ``"adam"``, ``"adamw"``, ``"adagrad"``, ``"rmsprop"``, ``"lbfgs"``; a
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
    opt, opt_name = make_optimizer(optimizer, [w], lr, **(optimizer_kwargs or {}))
    scheduler = lr_scheduler(opt) if lr_scheduler is not None else None
    sampler = BatchSampler(problem.n, batch_size, seed)
    full_batch = sampler.batch_size is None

    rec: dict[str, list[float]] = {k: [] for k in ("steps", "loss", "grad_norm", "distance", "pl")}
    iterates: list[torch.Tensor] = []

    def record(t: int, L: torch.Tensor, g: torch.Tensor) -> None:
        Lf, gn = float(L), float(g.norm())
        rec["steps"].append(t)
        rec["loss"].append(Lf)
        rec["grad_norm"].append(gn)
        rec["distance"].append(float((w.detach() - start).norm()))
        rec["pl"].append(gn**2 / Lf if Lf > 0 else float("inf"))
        if record_iterates:
            iterates.append(w.detach().clone())

    def check(t: int, L: torch.Tensor) -> None:
        if not torch.isfinite(L):
            raise TrainingDivergedError(
                f"the loss became {float(L)} at step {t} ({opt_name}, lr={lr}): the step is too "
                "large for this problem; lower the learning rate"
            )

    t0 = time.perf_counter()
    bar = progress_bar(range(steps), progress, desc=f"train ({opt_name})", unit="step")
    t = 0
    for t in bar:
        idx = sampler.next()
        L, g = problem.loss_and_grad(w.detach(), idx)
        check(t, L)
        due = t % record_every == 0
        if due:
            if full_batch:
                record(t, L, g)
            else:
                record(t, *problem.loss_and_grad(w.detach()))
            if stop_loss is not None and rec["loss"][-1] <= stop_loss:
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
        if due and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{rec['loss'][-1]:.3e}")
    else:
        t = steps
    if not rec["steps"] or rec["steps"][-1] != t:
        Lf, gf = problem.loss_and_grad(w.detach())
        check(t, Lf)
        record(t, Lf, gf)
    return Trajectory(
        steps=np.asarray(rec["steps"], dtype=int),
        loss=np.asarray(rec["loss"]),
        grad_norm=np.asarray(rec["grad_norm"]),
        distance=np.asarray(rec["distance"]),
        pl_ratio=np.asarray(rec["pl"]),
        optimizer=opt_name,
        lr=lr,
        batch_size=sampler.batch_size,
        seed=seed,
        num_steps=t,
        loss_name=problem.loss_name,
        reduction=problem.reduction,
        wall_time=time.perf_counter() - t0,
        w0=start,
        w_final=w.detach().clone(),
        iterates=torch.stack(iterates) if record_iterates else None,
    )
