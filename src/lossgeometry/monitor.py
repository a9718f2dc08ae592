"""A callback for your own training loop: record the theory's quantities as you train.

>>> mon = lg.Monitor(problem, every=10)              # doctest: +SKIP
>>> for step, (x, y) in enumerate(loader):           # doctest: +SKIP
...     loss = loss_fn(model(x), y); loss.backward(); opt.step(); opt.zero_grad()
...     mon.step(step)                                # reads the model's current parameters
>>> mon.trajectory().plot()                          # doctest: +SKIP

Every ``every`` steps the monitor evaluates, on the Problem's full data and at the model's
current parameters: the loss ``L(w_t)``, ``‖∇L(w_t)‖``, ``‖w_t − w_0‖`` and the PL ratio
``‖∇L‖²/L``, plus any extra measurements ``{name: fn(problem, w) -> float}`` (e.g.
``lambda p, w: lg.kernel_spectrum(p, w).lambda_min``). The model must be the Problem's model
(the monitor reads its parameters); evaluation does not change the model or its gradients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lossgeometry.problem import Problem
from lossgeometry.recording import Measurement, Recorder, Trajectory
from lossgeometry.results import atomic_write_json

__all__ = ["Measurement", "Monitor"]


class Monitor:
    """Record loss, gradient norm, distance, PL ratio (and extras) from a user's loop.

    The records are those of :func:`lossgeometry.train` (both use
    :class:`~lossgeometry.recording.Recorder`): same quantities, same numbers, and a NaN or
    infinite loss raises the same :class:`~lossgeometry.TrainingDivergedError`.

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

        Raises:
            TrainingDivergedError: the full loss is NaN or infinite.
        """
        if not force and not self.recorder.due(step):
            return None
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
