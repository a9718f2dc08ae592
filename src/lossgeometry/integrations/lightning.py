"""PyTorch Lightning: a ``Callback`` that records the Monitor's measurements while you fit.

Use (run in docs/usage.md, "In your training loop")::

    cb = LossGeometryCallback(
        lambda module: lg.Problem(module.net, X_probe, Y_probe),
        every_n_steps=50, measure=("hessian_max", "kernel_min"), sinks=[JSONLinesSink("g.jsonl")],
    )
    lightning.Trainer(callbacks=[cb]).fit(module, loader)

The callback builds a :class:`~lossgeometry.Monitor` when fitting starts (from a Problem, or
from ``problem(pl_module)`` — a Problem over the module's network and a fixed probe set) and
records at the start, then every ``every_n_steps`` optimizer steps (``trainer.global_step``)
or at the end of every ``every_n_epochs``-th epoch; the Monitor's ``budget`` (a fraction of
the loop's time) can skip records. Each record also goes to ``trainer.logger`` (as
``lossgeometry/NAME``) when the trainer has one. Measuring leaves the fit untouched (modes,
BatchNorm statistics, gradients and random generators are restored; see
:mod:`lossgeometry.monitor`). Needs ``lightning`` (``pip install 'lossgeometry[lightning]'``),
imported when this module is.

Under a DDP strategy the callback runs on every rank: a factory returning a data-parallel
Problem (``lg.distributed.shard(lg.Problem(module.net, X, Y))``) has each rank measure its
samples, every rank gets the same records, and only rank 0 writes the sinks (the Monitor's
rule, docs/distributed.md); Lightning's own loggers write on rank 0 as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from lossgeometry.monitor import Monitor, Sink
from lossgeometry.problem import Problem

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Lightning callback needs the lightning package: pip install 'lossgeometry[lightning]'"
    ) from e

__all__ = ["LossGeometryCallback"]


class LossGeometryCallback(Callback):
    """Record loss-geometry measurements during ``Trainer.fit``.

    Args:
        problem: a :class:`~lossgeometry.Problem` whose model is (part of) the module being
            trained, or ``problem(pl_module) -> Problem``, called when fitting starts.
        every_n_steps: record when ``trainer.global_step % every_n_steps == 0``.
        every_n_epochs: record at the end of every ``every_n_epochs``-th epoch instead.
        measure, probe, budget, seed: as :class:`~lossgeometry.Monitor`.
        sinks: where the records go besides ``trainer.logger`` (:mod:`lossgeometry.integrations`).
        log_to_trainer: also send the scalars to ``trainer.logger``.

    After fitting, :attr:`monitor` holds the records (``monitor.records``,
    ``monitor.histograms``, ``monitor.overhead()``).
    """

    def __init__(
        self,
        problem: Problem | Callable[[LightningModule], Problem],
        *,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = None,
        measure: Sequence[str] = (),
        probe: int | Sequence[int] | torch.Tensor | None = None,
        sinks: Sequence[Sink] = (),
        budget: float | None = None,
        log_to_trainer: bool = True,
        seed: int = 0,
    ) -> None:
        if (every_n_steps is None) == (every_n_epochs is None):
            raise ValueError("give exactly one of every_n_steps and every_n_epochs")
        for name, v in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.problem = problem
        self.every_n_steps, self.every_n_epochs = every_n_steps, every_n_epochs
        self.options: dict[str, Any] = {
            "measure": tuple(measure),
            "probe": probe,
            "sinks": list(sinks),
            "budget": budget,
            "seed": seed,
        }
        self.log_to_trainer = log_to_trainer
        self.monitor: Monitor | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Build the Monitor (and the Problem, from ``pl_module``, if a factory was given)."""
        problem = self.problem if isinstance(self.problem, Problem) else self.problem(pl_module)
        every = self.every_n_steps or 1
        self.monitor = Monitor(problem, every=every, **self.options)

    def _record(self, trainer: Trainer, force: bool = False) -> None:
        assert self.monitor is not None
        step = trainer.global_step
        if self.monitor.records["steps"] and self.monitor.records["steps"][-1] == step:
            return  # already recorded at this step (e.g. a validation-only pass)
        rec = self.monitor.step(step, force=force)
        if rec is not None and self.log_to_trainer and trainer.logger is not None:
            metrics = {f"lossgeometry/{k}": float(v) for k, v in rec.items() if k != "steps"}
            trainer.logger.log_metrics(metrics, step=step)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record the start point."""
        self._record(trainer, force=True)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Record if ``global_step`` is a multiple of ``every_n_steps`` (and the budget allows)."""
        if self.every_n_steps is not None:
            self._record(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record after every ``every_n_epochs``-th epoch (if the budget allows)."""
        if (
            self.every_n_epochs is not None
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        ):
            self._record(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fill in hindsight Aiming angles and close the sinks."""
        if self.monitor is not None:
            self.monitor.close()
