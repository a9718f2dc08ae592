"""Records of a training run: the one recorder, the one batch sampler, the :class:`Trajectory`.

Every training loop of the package — :func:`lossgeometry.train`, :class:`lossgeometry.Monitor`
in a user's loop, and :func:`lossgeometry.conditions.certified_sgd` — records through
:class:`Recorder` and draws mini-batches from :class:`BatchSampler`, so their records, their
divergence error and their batches are the same for the same run.

A record at step ``t`` holds, on the *full* data and with the Problem's normalization:

* the loss ``L(w_t)``,
* the gradient norm ``‖∇L(w_t)‖₂``,
* the distance from the start ``‖w_t − w_0‖₂``,
* the empirical PL ratio ``‖∇L(w_t)‖² / L(w_t)`` (``inf`` where ``L = 0``; PL* holds on the
  run with constant ``µ`` iff the ratio stays ``≥ µ``; for ``L = ½‖F − y‖²`` it is
  ``≥ 2 λ_min(K(w_t))``),
* optionally extra scalars ``{name: fn(problem, w_t)}`` and the iterate ``w_t`` itself.

A NaN or infinite loss — recorded, or the mini-batch loss a loop is about to step on — raises
:class:`TrainingDivergedError` naming the step, the optimizer and the learning rate.

Across ranks (a data-parallel Problem, ``docs/distributed.md``): every rank draws the same
global batch indices from the same seed and takes the same records (every loss and gradient
is summed over the ranks); only the rank that :func:`writes_records` hands them to sinks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import axes_or_new
from lossgeometry.problem import Problem
from lossgeometry.results import Result, atomic_write_json

__all__ = [
    "BatchSampler",
    "Measurement",
    "Recorder",
    "TrainingDivergedError",
    "Trajectory",
    "process_rank",
    "writes_records",
]

Measurement = Callable[[Problem, torch.Tensor], float]
"""An extra scalar recorded beside the standard ones: ``fn(problem, w) -> float``."""

SAMPLINGS = ("epoch", "independent")


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
    """Seconds spent in the loop, recording included (this rank's own clock)."""
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
        """Save the record as JSON at ``path`` and the parameter tensors at ``path.pt``.

        Missing parent directories are created; both files are written atomically.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
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

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the loss at the start and end, the smallest PL ratio, the run.

        ``pl_ratio_min`` is over the finite ratios (``nan`` if none); ``rate`` is the mean
        per-step contraction ``(L_T/L_0)^{1/T}`` observed (``nan`` unless both are positive).
        """
        L0, LT = float(self.loss[0]), float(self.loss[-1])
        T = max(int(self.steps[-1]), 1)
        pl = np.asarray(self.pl_ratio, dtype=float)
        finite = pl[np.isfinite(pl)]
        return {
            "loss_initial": L0,
            "loss_final": LT,
            "loss_min": float(np.min(self.loss)),
            "grad_norm_final": float(self.grad_norm[-1]),
            "distance_final": float(self.distance[-1]),
            "pl_ratio_min": float(finite.min()) if finite.size else float("nan"),
            "rate": (LT / L0) ** (1.0 / T) if L0 > 0 and LT > 0 else float("nan"),
            "records": len(self.steps),
            "num_steps": self.num_steps,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "loss_name": self.loss_name,
            "reduction": self.reduction,
            "wall_time": self.wall_time,
        }

    QUANTITIES = ("loss", "grad_norm", "distance", "pl_ratio")

    def plot(self, ax: Any = None, *, quantity: str = "loss") -> Any:
        """Plot a recorded quantity against the step (log scale); returns the Axes.

        ``quantity``: ``"loss"``, ``"grad_norm"``, ``"distance"`` or ``"pl_ratio"``. The line's
        y-values are the recorded ones, with values ``≤ 0`` replaced by NaN (log scale).
        """
        if quantity not in self.QUANTITIES:
            raise ValueError(f"quantity must be one of {self.QUANTITIES}, got {quantity!r}")
        ax = axes_or_new(ax, (5, 3.4))
        y = np.asarray(getattr(self, quantity), dtype=float)
        ax.semilogy(self.steps, np.where(y > 0, y, np.nan), lw=1.8)
        ax.set_xlabel("step")
        ax.set_ylabel(quantity.replace("_", " "))
        ax.grid(alpha=0.3, which="both")
        return ax


class BatchSampler:
    """Seeded mini-batch indices, reproducible from ``seed``.

    ``sampling="epoch"`` (what :func:`lossgeometry.train` uses): a fresh random permutation of
    ``0..n−1`` per epoch, cut into consecutive batches of ``batch_size`` (a tail shorter than
    ``batch_size`` is dropped), so each sample is used at most once per epoch.
    ``batch_size=None`` (or ``≥ n``) gives the full data (``None``) at every step.

    ``sampling="independent"`` (what the SGD theorems assume, used by
    :func:`lossgeometry.conditions.certified_sgd`): every step draws ``batch_size`` distinct indices
    uniformly at random, independently of the past (the first ``batch_size`` entries of a fresh
    permutation). ``batch_size = n`` still draws (a permuted full batch), so the generator's
    stream does not depend on ``n``; ``batch_size > n`` is refused.

    Both modes draw from one ``torch.Generator`` seeded with ``seed``; the first batch of the
    two modes is the same. The indices are global sample indices: on a data-parallel Problem
    every rank draws the same batches and evaluates the samples of its own shard in them.
    """

    def __init__(
        self, n: int, batch_size: int | None, seed: int, *, sampling: str = "epoch"
    ) -> None:
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if sampling == "independent" and batch_size is not None and batch_size > n:
            raise ValueError(
                f"independent batches of {batch_size} distinct indices need batch_size <= n = {n}"
            )
        self.n = n
        self.sampling = sampling
        full = batch_size is None or (sampling == "epoch" and batch_size >= n)
        self.batch_size = None if full else batch_size
        self.gen = torch.Generator().manual_seed(int(seed))
        self._perm: torch.Tensor | None = None
        self._pos = 0

    def next(self) -> torch.Tensor | None:
        """Indices of the next batch (``None`` for full batch)."""
        if self.batch_size is None:
            return None
        if self.sampling == "independent":
            return torch.randperm(self.n, generator=self.gen)[: self.batch_size]
        if self._perm is None or self._pos + self.batch_size > self.n:
            self._perm = torch.randperm(self.n, generator=self.gen)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


class Recorder:
    """Full-data records of one training run, taken at a stride, and the run's divergence check.

    A loop asks :meth:`due` at every step ``t``, calls :meth:`record` when it is, calls
    :meth:`check` on the (mini-batch) loss it is about to step on, and ends with
    :meth:`trajectory`. ``records`` holds lists keyed ``"steps"``, ``"loss"``, ``"grad_norm"``,
    ``"distance"``, ``"pl_ratio"`` and the names of ``extra``.

    Args:
        problem: the Problem whose full data the records are taken on.
        w0: the start point (distances are ``‖w_t − w0‖``; flat, shape ``(p,)``).
        every: stride: :meth:`due` is true when ``t % every == 0``.
        optimizer: the optimizer's name, for the divergence error and the Trajectory.
        lr: the learning rate, for the divergence error and the Trajectory.
        extra: additional scalar measurements ``{name: fn(problem, w)}`` (not part of the
            Trajectory; read them from ``records``).
        keep_iterates: also keep ``w_t`` at every record (``(records, p)`` memory).

    The clock of ``Trajectory.wall_time`` starts when the recorder is made.
    """

    def __init__(
        self,
        problem: Problem,
        w0: torch.Tensor,
        *,
        every: int = 1,
        optimizer: str = "user",
        lr: float | None = None,
        extra: dict[str, Measurement] | None = None,
        keep_iterates: bool = False,
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.problem, self.every = problem, every
        self.w0 = w0.detach()
        self.optimizer, self.lr = optimizer, lr
        self.extra = dict(extra or {})
        self.keep_iterates = keep_iterates
        self.records: dict[str, list[float]] = {
            k: [] for k in ("steps", "loss", "grad_norm", "distance", "pl_ratio", *self.extra)
        }
        self.iterates: list[torch.Tensor] = []
        self.last_grad: torch.Tensor | None = None
        """``∇L(w_t)`` of the latest record (extras of that record may read it)."""
        self._t0 = time.perf_counter()

    def due(self, t: int) -> bool:
        """Whether step ``t`` is a record point (``t % every == 0``)."""
        return t % self.every == 0

    def check(self, t: int, loss: torch.Tensor | float) -> None:
        """Raise :class:`TrainingDivergedError` if ``loss`` (at step ``t``) is NaN or infinite."""
        if not torch.isfinite(torch.as_tensor(loss)):
            raise TrainingDivergedError(
                f"the loss became {float(loss)} at step {t} ({self.optimizer}, lr={self.lr}): "
                "the step is too large for this problem; lower the learning rate"
            )

    def record(
        self,
        t: int,
        w: torch.Tensor,
        loss: torch.Tensor | None = None,
        grad: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Record step ``t`` at the flat point ``w``; returns the record.

        ``loss`` and ``grad`` are ``L(w)`` and ``∇L(w)`` on the full data when the caller has
        them already (a full-batch step); otherwise they are computed in one pass.

        Raises:
            TrainingDivergedError: ``L(w)`` is NaN or infinite.
        """
        w = w.detach()
        if loss is None or grad is None:
            loss, grad = self.problem.loss_and_grad(w)
        self.check(t, loss)
        self.last_grad = grad.detach()
        Lf, gn = float(loss), float(grad.norm())
        rec: dict[str, float] = {
            "steps": t,
            "loss": Lf,
            "grad_norm": gn,
            "distance": float((w - self.w0).norm()),
            "pl_ratio": gn**2 / Lf if Lf > 0 else float("inf"),
        }
        for name, fn in self.extra.items():
            rec[name] = float(fn(self.problem, w))
        for k, v in rec.items():
            self.records[k].append(v)
        if self.keep_iterates:
            self.iterates.append(w.clone())
        return rec

    @property
    def last_step(self) -> int | None:
        """The step of the last record (``None`` before the first)."""
        return int(self.records["steps"][-1]) if self.records["steps"] else None

    @property
    def last_loss(self) -> float:
        """The loss of the last record."""
        return self.records["loss"][-1]

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The records as arrays (extras included)."""
        return {k: np.asarray(v) for k, v in self.records.items()}

    def trajectory(
        self,
        w_final: torch.Tensor,
        *,
        num_steps: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        optimizer: str | None = None,
        lr: float | None = None,
    ) -> Trajectory:
        """The records as a :class:`Trajectory` ending at ``w_final``.

        ``num_steps`` defaults to the last recorded step; ``optimizer`` and ``lr`` to the
        recorder's. Extras are not part of the Trajectory.
        """
        if not self.records["steps"]:
            raise ValueError("nothing recorded yet: record at least one step first")
        a = self.as_arrays()
        return Trajectory(
            steps=np.asarray(self.records["steps"], dtype=int),
            loss=a["loss"],
            grad_norm=a["grad_norm"],
            distance=a["distance"],
            pl_ratio=a["pl_ratio"],
            optimizer=self.optimizer if optimizer is None else optimizer,
            lr=self.lr if lr is None else lr,
            batch_size=batch_size,
            seed=seed,
            num_steps=self.last_step if num_steps is None else num_steps,
            loss_name=self.problem.loss_name,
            reduction=self.problem.reduction,
            wall_time=time.perf_counter() - self._t0,
            w0=self.w0,
            w_final=w_final.detach().clone(),
            iterates=torch.stack(self.iterates) if self.keep_iterates else None,
        )


def process_rank() -> int:
    """The rank of this process in the default ``torch.distributed`` group (0 without one)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def writes_records(problem: Problem) -> bool:
    """Whether this process hands records to sinks and files: one rank only.

    For a data-parallel Problem, rank 0 of its group; for any other Problem, rank 0 of the
    default process group when ``torch.distributed`` runs (each rank then computes the same
    records), and the one process otherwise.
    """
    if problem.shard is not None:
        return problem.rank == 0
    return process_rank() == 0


def write_record(sinks: Any, step: int, record: dict[str, float]) -> None:
    """Send one record's scalars (all but ``steps``) to every sink's ``write_scalars``.

    The one place ``train`` and :class:`~lossgeometry.Monitor` hand records to sinks
    (:mod:`lossgeometry.integrations`).
    """
    scalars = {k: float(v) for k, v in record.items() if k != "steps"}
    for sink in sinks:
        sink.write_scalars(step, scalars)
