"""One command over the ranks torchrun started: the group, who writes, the shared decisions.

``torchrun --nproc-per-node N -m lossgeometry analyze -c run.toml`` starts the same command
``N`` times with torchrun's variables set. Each command calls :func:`start` once it has its
config; it returns the :class:`Ranks` of this process:

* under torchrun (``WORLD_SIZE > 1``) it starts the default process group
  (:func:`lossgeometry.distributed.init`): ``gloo`` when the config's ``device`` is the CPU
  (the default), ``nccl`` on CUDA (each rank on GPU ``LOCAL_RANK``), every rank waiting at
  most ``timeout`` seconds for the others, to join and in each collective;
* without torchrun it starts nothing and every method below is the identity: one process
  runs exactly as before.

Every rank builds the whole Problem from the config (the built-in loaders read the whole data
set) and trains it with one-process arithmetic (the same numbers on every rank; rank 0's run
is then broadcast, so every rank holds it bitwise). A measurement that runs data-parallel gets
this rank's shard (:meth:`Ranks.problem_for` → :func:`lossgeometry.distributed.shard`); the
others run on the whole Problem on every rank, the same arithmetic everywhere (what
:func:`lossgeometry.distributed.gather` would rebuild; here no data need to be sent). Which
measurements run data-parallel is one flag each: ``data_parallel=`` of a report section
(:func:`~lossgeometry.app.sections.base.section`), ``DATA_PARALLEL`` of a command module,
:data:`TRAINING_DATA_PARALLEL` for the training run.

Rank 0 alone writes (files, the output-directory lock, progress and printed results); what
depends on files (is a cached result reusable?) it decides and broadcasts
(:meth:`Ranks.on_main`), so every rank runs the same measurements in the same order. Every
rank passes the same ``progress=`` to the measurements (a cost estimate times a product, a
collective, unless ``progress=False``), and the other ranks' standard error is muted while
they run (:func:`mute`): they print only their own error, if any.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from lossgeometry.distributed import (
    DEFAULT_TIMEOUT_S,
    DistributedError,
    default_backend,
    in_torchrun,
    init,
    is_initialized,
    rank,
    shard,
    shutdown,
    world_size,
)
from lossgeometry.problem import Problem

if TYPE_CHECKING:
    from lossgeometry.app.config import AnalyzeConfig, Setup

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TRAINING_DATA_PARALLEL",
    "Ranks",
    "mute",
    "rank_prefix",
    "start",
    "stop",
    "unmute",
]

T = TypeVar("T")

TRAINING_DATA_PARALLEL = True
"""Whether the config's training run (``[train]``) runs on this rank's shard under torchrun
(``lossgeometry.train`` draws mini-batches by global index and all-reduces each step);
``False``: every rank trains the whole Problem."""


def rank_prefix() -> str:
    """``"rank R of W: "`` in a process torchrun started (``WORLD_SIZE > 1``), else ``""``."""
    if not in_torchrun():
        return ""
    return f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}: "


@dataclasses.dataclass
class Ranks:
    """The ranks of one command: this process's rank, their number, their timeout.

    ``Ranks()`` is one process (rank 0 of 1): every method is then the identity.
    """

    rank: int = 0
    world_size: int = 1
    timeout_s: float | None = None
    backend: str | None = None
    device: str = "cpu"
    """Where objects sent by rank 0 land on this rank (its CUDA device under ``nccl``)."""
    _shards: dict[int, tuple[Problem, Problem]] = dataclasses.field(
        default_factory=dict, repr=False
    )

    @property
    def is_main(self) -> bool:
        """Whether this process writes: rank 0 (or the only process)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one rank runs."""
        return self.world_size > 1

    def log(self, log: Callable[[str], Any]) -> Callable[[str], Any]:
        """``log`` on rank 0; on the others a function that prints nothing."""
        return log if self.is_main else _silent

    def problem_for(self, problem: Problem, data_parallel: bool) -> Problem:
        """The Problem a measurement runs on: this rank's shard, or the whole ``problem``.

        ``data_parallel`` (the measurement runs on a data-parallel Problem) on more than one
        rank gives ``lossgeometry.distributed.shard(problem)`` (rank ``r`` keeps samples
        ``shard_bounds(n, W, r)``), made once per ``problem`` (every rank calls this in the
        same order, as every measurement); otherwise ``problem`` itself, whole on every rank.
        """
        if not (data_parallel and self.distributed):
            return problem
        key = id(problem)
        if key not in self._shards or self._shards[key][0] is not problem:
            self._shards[key] = (problem, shard(problem))
        return self._shards[key][1]

    @classmethod
    def current(cls) -> Ranks:
        """The ranks of the default process group as it runs (one process without one).

        For a launcher that started the group itself (Ray Train's ``TorchTrainer`` in a
        sweep point): every rank passes ``Ranks.current()`` to
        :func:`~lossgeometry.app.report.build.build_report`. Nothing is started or muted.
        """
        if not is_initialized():
            return cls()
        import torch.distributed as dist

        from lossgeometry.distributed.group import group_timeout

        backend = str(dist.get_backend())
        here = f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else "cpu"
        return cls(rank(), world_size(), group_timeout(), backend, here)

    def setup(
        self,
        cfg: AnalyzeConfig,
        *,
        do_train: bool = True,
        progress: bool | None = None,
        record_iterates: bool = False,
    ) -> Setup:
        """:func:`lossgeometry.app.config.setup` on every rank, the training run rank 0's.

        Every rank builds the whole Problem and trains it (on this rank's shard if
        :data:`TRAINING_DATA_PARALLEL`); rank 0's run is then sent to every rank, so all hold
        it bitwise. ``record_iterates`` keeps ``w_t`` at every record (for PCA planes).
        """
        from lossgeometry.app.config import run_training
        from lossgeometry.app.config import setup as setup_config

        s = setup_config(cfg, do_train=False)
        if do_train:
            trainee = self.problem_for(s.problem, TRAINING_DATA_PARALLEL)
            traj = run_training(trainee, s.config, progress, record_iterates=record_iterates)
            s.trajectory = self.same(traj)
        return s

    def on_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on rank 0 alone; its value (or its failure) sent to every rank.

        For what only rank 0 may do (claim the output directory, read the cache) and every
        rank must know (which results to recompute). ``fn``'s value must pickle. If ``fn``
        raises, rank 0 raises that error and the other ranks a :class:`DistributedError`
        that quotes it, so no rank waits for a measurement that will not come.
        """
        if not self.distributed:
            return fn()
        msg: tuple[str, Any] | None = None
        error: BaseException | None = None
        if self.is_main:
            try:
                msg = ("ok", fn())
            except Exception as e:  # every rank must hear of it
                error = e
                msg = ("error", f"{type(e).__name__}: {e}")
        status, value = self._broadcast(msg)
        if error is not None:
            raise error
        if status == "error":
            raise DistributedError(f"rank 0 stopped: {value}")
        return value

    def same(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (``value`` itself on one process).

        The other ranks get a copy whose tensors are on their own device.
        """
        if not self.distributed:
            return value
        return self._broadcast(value)

    def _broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (``torch.save``d, so tensors land on this rank's device)."""
        import io

        import torch.distributed as dist

        from lossgeometry._collectives import collective

        blob: list[Any] = [None]
        if self.is_main:
            buf = io.BytesIO()
            torch.save(value, buf)
            blob[0] = buf.getvalue()
        collective(dist.broadcast_object_list, blob, src=0, timeout_s=self.timeout_s)
        if self.is_main:
            return value
        return torch.load(io.BytesIO(blob[0]), map_location=self.device, weights_only=False)


def _silent(*_: Any, **__: Any) -> None:
    """Print nothing (the log of a rank that does not write)."""


_STDERR: list[Any] = []
"""The standard error a muted rank had (empty when not muted)."""


def mute() -> None:
    """Send this process's standard error (progress bars and lines, warnings) to nowhere."""
    if not _STDERR:
        import sys

        _STDERR.append(sys.stderr)
        sys.stderr = open(os.devnull, "w")  # kept open until unmute()


def unmute() -> None:
    """Give back the standard error :func:`mute` took (nothing if not muted)."""
    if _STDERR:
        import sys

        muted, sys.stderr = sys.stderr, _STDERR.pop()
        muted.close()


def start(device: str | None = None, timeout: float | None = None) -> Ranks:
    """The ranks of this command: the process group started under torchrun, else one process.

    A process group that runs already is used as it is (``device`` and ``timeout`` then do
    not apply). On a rank other than 0 standard error is muted until :func:`unmute`.

    Args:
        device: the config's ``device`` (``None``: the CPU): ``gloo`` for the CPU, ``nccl``
            for CUDA (each rank then on GPU ``LOCAL_RANK``).
        timeout: seconds each rank waits for the others, to join and in every collective
            (``None``: :data:`~lossgeometry.distributed.DEFAULT_TIMEOUT_S`, 300 s).

    Raises:
        DistributedError: not every rank joined within ``timeout``.
        ValueError: a timeout that is not positive; ``nccl`` without CUDA.
    """
    seconds = DEFAULT_TIMEOUT_S if timeout is None else float(timeout)
    if seconds <= 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {timeout!r}")
    if not (in_torchrun() or is_initialized()):
        return Ranks()
    if not is_initialized():
        backend = default_backend(device or "cpu")
        if backend == "nccl" and torch.device(device).index is not None:  # type: ignore[arg-type]
            raise ValueError(
                f"device = {device!r} under torchrun: write device = 'cuda', so that each "
                "rank takes its own GPU (LOCAL_RANK)"
            )
        init(backend, timeout=seconds, device=device)
    ranks = Ranks.current()
    if not ranks.is_main:
        mute()  # until the command ends: an error is printed after unmute()
    return ranks


def stop() -> None:
    """End the process group of a command that finished (nothing on one process)."""
    unmute()
    if is_initialized():
        shutdown()
