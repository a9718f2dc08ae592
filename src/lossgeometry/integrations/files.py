"""CSV and JSON-lines sinks for :class:`~lossgeometry.Monitor` records (no dependencies).

* :class:`CSVSink` writes long-format rows ``step,name,value`` — one per scalar — so any set
  of measurements (and the hindsight Aiming angles that arrive at the end) fits one header.
  Read it with ``pandas.read_csv(path).pivot(index="step", columns="name", values="value")``.
* :class:`JSONLinesSink` writes one JSON object per line: ``{"step": t, "scalars": {...}}``
  for a record, ``{"step": t, "histogram": name, "edges": [...], "counts": [...]}`` for a
  histogram. Non-finite numbers are written as the strings ``"inf"``, ``"-inf"``, ``"nan"``
  (strict JSON).

Both append and flush after every write, so a crashed run keeps every finished record.

Across ranks (``torchrun``): a sink made on a process other than rank 0 of the default
process group opens no file and drops what it is given (``rank_zero_only=True``, the
default), so a script that builds the same sink on every rank writes one file, on rank 0.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, TextIO

from lossgeometry.monitor_measures import Histogram
from lossgeometry.recording import process_rank

__all__ = ["CSVSink", "JSONLinesSink"]


def _json_number(v: float) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else str(v)


def _open(
    path: str | Path, rank_zero_only: bool, newline: str | None = None
) -> tuple[Path, TextIO | None]:
    """``path`` and a new file there, or no file on a rank other than 0 (``rank_zero_only``)."""
    path = Path(path)
    if rank_zero_only and process_rank() != 0:
        return path, None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.open("w", newline=newline, encoding="utf-8")


class CSVSink:
    """Scalars as CSV rows ``step,name,value`` (a new file, header first).

    Args:
        path: the file (its folder is created).
        rank_zero_only: under ``torch.distributed``, write only on rank 0 (module docstring).
    """

    def __init__(self, path: str | Path, *, rank_zero_only: bool = True) -> None:
        self.path, self._file = _open(path, rank_zero_only, newline="")
        self.active = self._file is not None
        """Whether this sink writes (``False`` on a rank other than 0)."""
        if self._file is not None:
            self._writer = csv.writer(self._file)
            self._writer.writerow(["step", "name", "value"])
            self._file.flush()

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """One row ``step,name,value`` per scalar (``repr`` of the float: exact)."""
        if self._file is None:
            return
        for name, value in scalars.items():
            self._writer.writerow([step, name, repr(float(value))])
        self._file.flush()

    def write_histogram(self, step: int, name: str, hist: Histogram) -> None:
        """Histograms do not fit the CSV's rows: use :class:`JSONLinesSink` or TensorBoard."""

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()


class JSONLinesSink:
    """Records and histograms as JSON lines (a new file).

    Args:
        path: the file (its folder is created).
        rank_zero_only: under ``torch.distributed``, write only on rank 0 (module docstring).
    """

    def __init__(self, path: str | Path, *, rank_zero_only: bool = True) -> None:
        self.path, self._file = _open(path, rank_zero_only)
        self.active = self._file is not None
        """Whether this sink writes (``False`` on a rank other than 0)."""

    def _line(self, obj: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(obj, allow_nan=False) + "\n")
        self._file.flush()

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """One line ``{"step": t, "scalars": {...}}``."""
        self._line({"step": step, "scalars": {k: _json_number(v) for k, v in scalars.items()}})

    def write_histogram(self, step: int, name: str, hist: Histogram) -> None:
        """One line ``{"step": t, "histogram": name, "edges": [...], "counts": [...]}``."""
        self._line(
            {
                "step": step,
                "histogram": name,
                "edges": [float(e) for e in hist.edges],
                "counts": [float(c) for c in hist.counts],
            }
        )

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
