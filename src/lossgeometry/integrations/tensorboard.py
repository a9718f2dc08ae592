"""TensorBoard sink: :class:`~lossgeometry.Monitor` records as scalars and histograms.

Scalars go to ``add_scalar(prefix + name, value, step)`` (``lossgeometry/loss``,
``lossgeometry/pl_ratio``, ``lossgeometry/hessian_max``, ``lossgeometry/kernel_min``, ...);
the Hessian eigenvalue density goes to ``add_histogram_raw`` with the SLQ histogram's bucket
edges and counts (counts add up to ``p``; see :mod:`lossgeometry.monitor_measures`). Needs
``tensorboard`` (``pip install 'lossgeometry[tensorboard]'``), imported when this module is.
Under ``torch.distributed`` only rank 0 writes (``rank_zero_only``, as
:mod:`lossgeometry.integrations.files`): on another rank no writer is made and nothing is
written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lossgeometry.monitor_measures import Histogram
from lossgeometry.recording import process_rank

try:
    from torch.utils.tensorboard import SummaryWriter
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the TensorBoard sink needs the tensorboard package: "
        "pip install 'lossgeometry[tensorboard]'"
    ) from e

__all__ = ["TensorBoardSink"]


class TensorBoardSink:
    """Write Monitor records through a ``SummaryWriter``.

    Args:
        log_dir_or_writer: a directory for a new ``SummaryWriter`` (closed by :meth:`close`),
            or the writer of your own loop (left open).
        prefix: tag prefix of every record.
        rank_zero_only: under ``torch.distributed``, write only on rank 0 (on another rank
            no ``SummaryWriter`` is made and the writes are dropped).
    """

    def __init__(
        self,
        log_dir_or_writer: str | Path | Any,
        prefix: str = "lossgeometry/",
        *,
        rank_zero_only: bool = True,
    ) -> None:
        self.active = not rank_zero_only or process_rank() == 0
        """Whether this sink writes (``False`` on a rank other than 0)."""
        if not self.active:
            self.writer, self._owned = None, False
        elif isinstance(log_dir_or_writer, (str, Path)):
            self.writer, self._owned = SummaryWriter(log_dir=str(log_dir_or_writer)), True
        else:
            self.writer, self._owned = log_dir_or_writer, False
        self.prefix = prefix

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """``add_scalar(prefix + name, value, step)`` for each scalar."""
        if self.writer is None:
            return
        for name, value in scalars.items():
            self.writer.add_scalar(self.prefix + name, float(value), global_step=step)

    def write_histogram(self, step: int, name: str, hist: Histogram) -> None:
        """``add_histogram_raw`` with the histogram's buckets (right edges as limits)."""
        if self.writer is None:
            return
        edges = np.asarray(hist.edges, dtype=float)
        counts = np.asarray(hist.counts, dtype=float)
        centers = 0.5 * (edges[:-1] + edges[1:])
        self.writer.add_histogram_raw(
            self.prefix + name,
            min=float(edges[0]),
            max=float(edges[-1]),
            num=float(counts.sum()),
            sum=float((counts * centers).sum()),
            sum_squares=float((counts * centers**2).sum()),
            bucket_limits=edges[1:].tolist(),
            bucket_counts=counts.tolist(),
            global_step=step,
        )

    def close(self) -> None:
        """Flush; close the writer if this sink made it."""
        if self.writer is None:
            return
        self.writer.flush()
        if self._owned:
            self.writer.close()
