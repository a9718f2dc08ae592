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

Every ``every`` steps the monitor evaluates, on the Problem's full data (or a fixed probe
subset, ``probe=``) and at the model's current parameters: the loss ``L(w_t)``,
``‖∇L(w_t)‖``, ``‖w_t − w_0‖`` and the PL ratio ``‖∇L‖²/L``, the named measurements of
``measure=`` (:mod:`lossgeometry.monitor_measures`: ``"hessian_max"``, ``"kernel_min"``,
``"kernel_cond"``, ``"aiming_angle"``, ``"hessian_density"``), plus any extra measurements
``{name: fn(problem, w) -> float}``. The model must be the Problem's model (the monitor
reads its parameters). Each record goes to the ``sinks`` (TensorBoard, CSV, JSON lines:
:mod:`lossgeometry.integrations`); ``budget=0.05`` keeps the time spent measuring near 5 %
of the loop's own time (see :class:`Monitor`).

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

Across ranks. In a loop whose model is wrapped in ``DistributedDataParallel``, build the
Problem on the wrapped model (or its ``.module``: the Problem measures the module inside)
and make it data-parallel (:func:`lossgeometry.distributed.shard` or ``data_parallel``);
every rank calls :meth:`Monitor.step` with the same steps, each computes its samples' part of
every record and gets the same records, equal to one process's. Only rank 0 writes to the
sinks and to ``path`` (:func:`~lossgeometry.recording.writes_records`). ``budget=`` is
decided on rank 0 and broadcast, so the ranks skip the same records (see :class:`Monitor`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from lossgeometry._checks import preserved_rng
from lossgeometry.monitor_measures import (
    HISTOGRAMS,
    Histogram,
    aiming_angle,
    check_names,
    histogram_of,
    scalar_measures,
)
from lossgeometry.problem import Problem, full_precision
from lossgeometry.recording import (
    Measurement,
    Recorder,
    Trajectory,
    write_record,
    writes_records,
)
from lossgeometry.results import atomic_write_json

__all__ = ["Measurement", "Monitor", "Sink", "measured_as_function"]


class Sink(Protocol):
    """Where a :class:`Monitor` sends its records (TensorBoard, CSV, JSON lines, ...)."""

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Scalars of one record (``steps`` excluded)."""

    def write_histogram(self, step: int, name: str, hist: Histogram) -> None:
        """A histogram of one record."""

    def close(self) -> None:
        """Flush and release the sink."""


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
        measure: named measurements (:mod:`lossgeometry.monitor_measures`), e.g.
            ``("hessian_max", "kernel_min", "hessian_density")``.
        probe: measure on a fixed subset of the data instead of all of it: sample indices,
            or a count ``m`` (``m`` samples drawn once with ``seed``). The same subset at
            every record, so records are comparable along the run.
        sinks: objects with ``write_scalars(step, dict)``, ``write_histogram(step, name,
            Histogram)`` and ``close()`` (:mod:`lossgeometry.integrations`). Across ranks
            only rank 0 writes to them (and to ``path``); :meth:`close` closes them on
            every rank.
        budget: a fraction of the loop's own time (e.g. ``0.05``): after the first record, a
            due record is skipped while the seconds spent measuring exceed ``budget`` × the
            seconds the loop spent between calls to :meth:`step`. ``None``: no limit.
            :meth:`overhead` reports the times and the skipped records. On a data-parallel
            Problem rank 0 decides from its own clock and broadcasts the decision (one
            ``all_reduce`` of a flag per due record), so every rank skips the same records.
        aiming_reference: the point ``w_ref`` of ``"aiming_angle"``; without it the angles
            are taken against the last record and filled in by :meth:`close`.
        seed: seed of the probe draw and of the stochastic measurements.
    """

    def __init__(
        self,
        problem: Problem,
        every: int = 1,
        extra: dict[str, Measurement] | None = None,
        path: str | Path | None = None,
        *,
        measure: Sequence[str] = (),
        probe: int | Sequence[int] | torch.Tensor | None = None,
        sinks: Sequence[Sink] = (),
        budget: float | None = None,
        aiming_reference: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        names = check_names(measure)
        if budget is not None and not 0 < budget:
            raise ValueError(f"budget must be a positive fraction of the step time, got {budget}")
        self.full_problem = problem
        if probe is not None:
            if isinstance(probe, int):
                if not 1 <= probe <= problem.n:
                    raise ValueError(f"probe must be a count in [1, {problem.n}], got {probe}")
                g = torch.Generator().manual_seed(seed)
                probe = torch.randperm(problem.n, generator=g)[:probe].sort().values
            problem = problem.subset(probe)
        self.problem = problem
        self.w0 = problem.params()
        self.measure, self.seed, self.budget = names, seed, budget
        self.aiming_reference = (
            problem.check_w(aiming_reference).detach() if aiming_reference is not None else None
        )
        extras = dict(scalar_measures(names, seed=seed))
        if "aiming_angle" in names and self.aiming_reference is not None:
            extras["aiming_angle"] = self._aiming_online
        extras.update(extra or {})
        self.recorder = Recorder(problem, self.w0, every=every, extra=extras)
        self.every, self.extra = every, dict(extra or {})
        self.path = Path(path) if path is not None else None
        self.sinks = list(sinks)
        self.writes = writes_records(problem)
        """Whether this process writes the records to ``sinks`` and ``path`` (rank 0)."""
        self.histograms: dict[str, list[tuple[int, Histogram]]] = {
            n: [] for n in names if n in HISTOGRAMS
        }
        self._hindsight: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.aiming_hindsight: dict[int, float] = {}
        self.train_seconds = self.measure_seconds = 0.0
        self.skipped = 0
        self._last: float | None = None

    def _aiming_online(self, problem: Problem, w: torch.Tensor) -> float:
        g = self.recorder.last_grad
        assert g is not None and self.aiming_reference is not None
        return aiming_angle(g, w, self.aiming_reference)

    @property
    def records(self) -> dict[str, list[float]]:
        """The records so far, as lists keyed by quantity.

        Keys: ``steps``, ``loss``, ``grad_norm``, ``distance``, ``pl_ratio``, the scalar
        measurements' and the extras'. Histograms are in :attr:`histograms`.
        """
        return self.recorder.records

    def step(self, step: int, force: bool = False) -> dict[str, float] | None:
        """Record at ``step`` if it is due (or ``force``); returns the record or ``None``.

        The model is measured in eval mode; its modes, buffers and the random generators are
        restored afterwards (see the module docstring).

        Raises:
            TrainingDivergedError: the full loss is NaN or infinite.
        """
        now = time.perf_counter()
        if self._last is not None:
            self.train_seconds += now - self._last
        self._last = now
        if not force and not self.recorder.due(step):
            return None
        if not force and self.budget is not None and self._over_budget():
            self.skipped += 1
            return None
        with measured_as_function(self.problem.model), full_precision(self.problem.device):
            w = self.problem.params()
            rec = self.recorder.record(step, w)
            hists = {
                name: histogram_of(self.problem, w, seed=self.seed) for name in self.histograms
            }
            if "aiming_angle" in self.measure and self.aiming_reference is None:
                assert self.recorder.last_grad is not None
                self._hindsight.append((step, w, self.recorder.last_grad))
        for name, h in hists.items():
            self.histograms[name].append((step, h))
        if self.writes:
            if self.path is not None:
                atomic_write_json(self.path, self.records)
            write_record(self.sinks, step, rec)
            for sink in self.sinks:
                for name, h in hists.items():
                    sink.write_histogram(step, name, h)
        self._last = time.perf_counter()
        self.measure_seconds += self._last - now
        return rec

    def _over_budget(self) -> bool:
        """Whether measuring has used more than ``budget`` × the loop's time (rank 0 decides).

        On a data-parallel Problem rank 0's answer reaches every rank through one sum over
        the ranks of a flag that only rank 0 may set, so no rank skips a record (and its
        collectives) that another takes.
        """
        assert self.budget is not None
        over = self.measure_seconds > self.budget * self.train_seconds
        if self.problem.shard is None:
            return over
        mine = over and self.problem.rank == 0
        flag = torch.tensor([1.0 if mine else 0.0], device=self.problem.device)
        return bool(self.problem.all_sum(flag).item() > 0)

    def close(self) -> dict[int, float]:
        """End of the run: the hindsight Aiming angles (if asked for), then close the sinks.

        Without ``aiming_reference``, ``"aiming_angle"`` at each record ``t`` is
        ``∠(∇L(w_t), w_t − w_T)`` with ``w_T`` the last record (the run's end stands in for
        the projection onto the minimizers); they are written to the sinks at their steps
        (the last record has none) and returned as ``{step: angle}``. Across ranks every
        rank computes them and closes its sinks; only rank 0 writes.
        """
        if self._hindsight:
            _, w_end, _ = self._hindsight[-1]
            self.aiming_hindsight = {
                t: aiming_angle(g, w, w_end) for t, w, g in self._hindsight[:-1]
            }
            self._hindsight = []
            for t, a in self.aiming_hindsight.items():
                for sink in self.sinks if self.writes else ():
                    sink.write_scalars(t, {"aiming_angle": a})
        for sink in self.sinks:
            sink.close()
        return self.aiming_hindsight

    def overhead(self) -> dict[str, float]:
        """Seconds in the loop (between calls to :meth:`step`) and measuring, their ratio, skips.

        The seconds are this rank's own; the skips are the same on every rank.

        ``fraction = measure_seconds / (train_seconds + measure_seconds)``.
        """
        total = self.train_seconds + self.measure_seconds
        return {
            "train_seconds": self.train_seconds,
            "measure_seconds": self.measure_seconds,
            "fraction": self.measure_seconds / total if total > 0 else 0.0,
            "records": len(self.records["steps"]),
            "skipped": self.skipped,
        }

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
