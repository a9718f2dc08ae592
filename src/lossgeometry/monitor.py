"""A callback for your own training loop: record the theory's quantities as you train.

>>> import torch
>>> import lossgeometry as lg
>>> g = torch.Generator().manual_seed(0)
>>> X, Y = torch.randn(16, 3, generator=g), torch.randn(16, 2, generator=g)
>>> model = lg.models.mlp(3, 8, 1, 2, seed=0)
>>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=4)
>>> opt, loss_fn = torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss()
>>> mon = lg.Monitor(lg.Problem(model, X, Y), every=2)
>>> _ = mon.step(0)                                   # the start point
>>> for step, (x, y) in enumerate(loader, start=1):
...     loss = loss_fn(model(x), y); loss.backward(); opt.step(); opt.zero_grad()
...     _ = mon.step(step)                            # reads the model's current parameters
>>> run = mon.trajectory(optimizer="sgd", lr=0.1)
>>> run.steps.tolist(), bool(run.loss[-1] < run.loss[0])
([0, 2, 4], True)
>>> ax = run.plot(quantity="pl_ratio")               # the Axes of a new figure

Every ``every`` steps the monitor evaluates, on the Problem's full data and at the model's
current parameters: the loss ``L(w_t)``, ``‖∇L(w_t)‖``, ``‖w_t − w_0‖`` and the PL ratio
``‖∇L‖²/L``, plus any extra measurements ``{name: fn(problem, w) -> float}`` (e.g.
``lambda p, w: lg.kernel_spectrum(p, w).lambda_min``). The model must be the Problem's model
(the monitor reads its parameters).

Train-mode loops. The loop may keep the model in train mode (BatchNorm on batch statistics,
dropout on). The monitor measures the model *as a function*, with its eval-mode behaviour:
BatchNorm normalizes with its current running statistics and dropout is off, so ``L(w_t)``
and ``∇L(w_t)`` are deterministic, per-sample well defined, and what the model computes at
inference. (Batch statistics would make the loss depend on how the data are chunked, dropout
would make it random.) Recording leaves no trace on the loop: afterwards every module's mode
flag, the BatchNorm running statistics (and ``num_batches_tracked``), the parameters and
their ``.grad`` and the global random generators (torch CPU and CUDA, NumPy, Python's
``random``) are exactly as they were, so a monitored loop runs bit for bit like the same loop
without the monitor. Under ``torch.autocast`` (mixed-precision loops) the records, extras
included, are taken with autocast off, in the Problem's dtype. A Problem for such a loop is
built either from ``model.eval()`` (then call ``model.train()``) or with
``allow_batchnorm=True, allow_dropout=True``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from lossgeometry._checks import preserved_rng
from lossgeometry.problem import Problem, full_precision
from lossgeometry.recording import Measurement, Recorder, Trajectory
from lossgeometry.results import atomic_write_json

__all__ = ["Measurement", "Monitor", "measured_as_function"]


@contextmanager
def measured_as_function(model: nn.Module) -> Iterator[None]:
    """Run a block with ``model`` in eval mode, then restore the user's state exactly.

    Restores each module's own ``training`` flag (not ``model.train()``, which would set
    them all) and the global random generators (:func:`~lossgeometry._checks.preserved_rng`).
    In eval mode BatchNorm reads its running statistics without updating them.
    """
    flags = [(m, m.training) for m in model.modules()]
    with preserved_rng():
        model.eval()
        try:
            yield
        finally:
            for m, flag in flags:
                m.training = flag


class Monitor:
    """Record loss, gradient norm, distance, PL ratio (and extras) from a user's loop.

    The records are those of :func:`lossgeometry.train` (both use
    :class:`~lossgeometry.recording.Recorder`): same quantities, same numbers, and a NaN or
    infinite loss raises the same :class:`~lossgeometry.TrainingDivergedError`. Records are
    taken with the model in eval mode, leaving the loop's state untouched (see the module
    docstring).

    Args:
        problem: the Problem whose model is being trained.
        every: record when ``step % every == 0`` (``step`` is what you pass to :meth:`step`).
        extra: additional scalar measurements ``{name: fn(problem, w)}``.
        path: if given, the records are written there (JSON, atomically) after each record,
            so a crashed run keeps what was measured.
    """

    def __init__(
        self,
        problem: Problem,
        every: int = 1,
        extra: dict[str, Measurement] | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.problem = problem
        self.w0 = problem.params()
        self.recorder = Recorder(problem, self.w0, every=every, extra=extra)
        self.every, self.extra = every, self.recorder.extra
        self.path = Path(path) if path is not None else None

    @property
    def records(self) -> dict[str, list[float]]:
        """The records so far, as lists keyed by quantity.

        Keys: ``steps``, ``loss``, ``grad_norm``, ``distance``, ``pl_ratio`` and the extras'.
        """
        return self.recorder.records

    def step(self, step: int, force: bool = False) -> dict[str, float] | None:
        """Record at ``step`` if it is due (or ``force``); returns the record or ``None``.

        The model is measured in eval mode; its modes, buffers and the random generators are
        restored afterwards (see the module docstring).

        Raises:
            TrainingDivergedError: the full loss is NaN or infinite.
        """
        if not force and not self.recorder.due(step):
            return None
        with measured_as_function(self.problem.model), full_precision(self.problem.device):
            rec = self.recorder.record(step, self.problem.params())
        if self.path is not None:
            atomic_write_json(self.path, self.records)
        return rec

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The records as arrays (extras included)."""
        return self.recorder.as_arrays()

    def trajectory(
        self, optimizer: str = "user", lr: float | None = None, **meta: Any
    ) -> Trajectory:
        """The records as a :class:`~lossgeometry.Trajectory` (extras are not part of it)."""
        if not self.records["steps"]:
            raise ValueError("nothing recorded yet: call monitor.step(step) in your loop")
        return self.recorder.trajectory(
            self.problem.params(),
            batch_size=meta.get("batch_size"),
            seed=int(meta.get("seed", 0)),
            optimizer=optimizer,
            lr=lr,
        )
