"""Progress of long loops, on a terminal and off it, and the cost announced before long work.

``progress=`` of every long-running function means:

* ``True``: a tqdm bar (standard error);
* ``None`` (the default): a tqdm bar when standard error is a terminal; otherwise (a log file,
  CI, a job scheduler) one plain line every :data:`LOG_INTERVAL` seconds with the items done,
  the total, the elapsed time and the estimated time left, e.g.
  ``kernel: 12/40 (30%), 0:00:45 elapsed, ETA 0:01:45, loss=1.23e-02``. A loop shorter than
  one interval prints nothing;
* ``False``: nothing at all.

Before a long measurement the study functions announce its estimated cost
(:func:`announce_cost`): the number of products it needs times the measured cost of one product,
printed when the estimate reaches :data:`COST_NOTICE_SECONDS` and skipped (nothing measured)
with ``progress=False``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = [
    "COST_NOTICE_SECONDS",
    "LOG_INTERVAL",
    "CostEstimate",
    "LogProgress",
    "announce_cost",
    "format_seconds",
    "progress_bar",
    "show_progress",
    "time_call",
]

LOG_INTERVAL = 20.0
"""Seconds between two progress lines off a terminal."""

COST_NOTICE_SECONDS = 10.0
"""A cost estimate at least this long (seconds) is printed before the measurement starts."""


def _clock() -> float:
    return time.monotonic()


def _stream() -> TextIO:
    return sys.stderr


def show_progress(progress: bool | None) -> bool:
    """Whether a tqdm bar is shown: ``progress=None`` means when standard error is a terminal."""
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


def format_seconds(seconds: float) -> str:
    """``H:MM:SS`` for progress lines (``?`` for an unknown or infinite time)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _human(seconds: float) -> str:
    """A duration for a sentence: ``850 ms``, ``12 s``, ``3.5 min``, ``1.2 h``."""
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.2g} min"
    return f"{seconds / 3600:.2g} h"


class LogProgress:
    """Iterate over ``it`` and write one progress line every ``interval`` seconds.

    Args:
        it: the iterable.
        total: number of items (default ``len(it)`` when it has one; else unknown, no ETA).
        desc: what is running (the line's prefix).
        unit: the items' name (``"step"``, ``"block"``).
        initial: items already done before this iteration (a resumed sweep).
        interval: seconds between lines (:data:`LOG_INTERVAL`).
        stream: where to write (standard error).

    The estimated time left is ``elapsed / done · (total − done)``, counting only the items
    done here. :meth:`set_postfix` adds ``key=value`` pairs to the next line (as tqdm's).
    """

    def __init__(
        self,
        it: Iterable[T],
        total: int | None = None,
        desc: str | None = None,
        unit: str = "it",
        initial: int = 0,
        interval: float | None = None,
        stream: TextIO | None = None,
    ) -> None:
        if total is None:
            try:
                total = len(it)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.it, self.total, self.desc, self.unit = it, total, desc or "working", unit
        self.initial = int(initial)
        self.n = self.initial
        self.interval = LOG_INTERVAL if interval is None else float(interval)
        self.stream = stream
        self.postfix: dict[str, Any] = {}
        self.lines = 0
        self._items: Iterator[Any] | None = None
        self._started = False
        self._start = self._last = 0.0

    def set_postfix(self, refresh: bool = True, **kwargs: Any) -> None:
        """Show ``key=value`` for each keyword on the next line."""
        self.postfix = dict(kwargs)

    def line(self, elapsed: float) -> str:
        """The progress line after ``elapsed`` seconds."""
        done = self.n - self.initial
        if self.total is not None:
            pct = 100.0 * self.n / self.total if self.total else 100.0
            head = f"{self.desc}: {self.n}/{self.total} {self.unit}s ({pct:.0f}%)"
        else:
            head = f"{self.desc}: {self.n} {self.unit}s"
        text = f"{head}, {format_seconds(elapsed)} elapsed"
        if self.total is not None:
            left = elapsed / done * (self.total - self.n) if done > 0 else math.inf
            text += f", ETA {format_seconds(left)}"
        if self.postfix:
            text += ", " + ", ".join(f"{k}={v}" for k, v in self.postfix.items())
        return text

    def __iter__(self) -> LogProgress:
        return self

    def __next__(self) -> Any:
        if self._items is None:
            self._items = iter(self.it)
            self._start = self._last = _clock()
        if self._started:  # the previous item is done
            self.n += 1
            now = _clock()
            if now - self._last >= self.interval:
                self._last = now
                self.lines += 1
                print(self.line(now - self._start), file=self.stream or _stream(), flush=True)
        item = next(self._items)
        self._started = True
        return item

    def close(self) -> None:
        """Nothing to release (tqdm's interface)."""


def progress_bar(
    it: Iterable[T], progress: bool | None = None, **kwargs: Any
) -> Iterator[T] | tqdm | LogProgress:
    """Wrap an iterable: a tqdm bar, progress lines off a terminal, or nothing.

    See the module docstring for what ``progress`` means. ``kwargs`` go to tqdm (``desc``,
    ``unit``, ``total``, ``initial`` are also used by the lines off a terminal). The returned
    object has ``set_postfix`` whenever progress is shown.
    """
    if progress is False:
        return iter(it)
    if show_progress(progress):
        return tqdm(it, dynamic_ncols=True, leave=False, **kwargs)
    keep = {k: kwargs[k] for k in ("total", "desc", "unit", "initial") if k in kwargs}
    return LogProgress(it, **keep)


def time_call(fn: Callable[[], object], repeats: int = 2) -> float:
    """Seconds of one call of ``fn``: the fastest of ``repeats`` calls (the first warms up)."""
    best = math.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    """The estimated cost of a measurement: ``Σ count × seconds per item`` over its parts.

    Attributes:
        what: the measurement.
        parts: ``(name, count, seconds_each)`` per kind of product (e.g. Hessian-vector
            products, dense Jacobians).
        note: how the counts were made (e.g. iterative parts counted at one Krylov basis).
    """

    what: str
    parts: tuple[tuple[str, int, float], ...]
    note: str = ""

    @property
    def seconds(self) -> float:
        """The estimate: ``Σ count · seconds_each``."""
        return float(sum(count * each for _, count, each in self.parts))

    def message(self) -> str:
        """One line: the estimate and each part's count × measured cost."""
        terms = " + ".join(f"{count:,} {name} × {_human(each)}" for name, count, each in self.parts)
        text = f"{self.what}: about {_human(self.seconds)} ({terms})"
        return text + (f"; {self.note}" if self.note else "")


def announce_cost(
    what: str,
    parts: Sequence[tuple[str, int, float | Callable[[], object]]],
    progress: bool | None,
    *,
    note: str = "",
    min_seconds: float | None = None,
    stream: TextIO | None = None,
) -> CostEstimate | None:
    """Estimate a measurement's cost and print it when it is long; ``None`` if progress is off.

    Args:
        what: the measurement (the line's prefix).
        parts: ``(name, count, cost)`` per kind of product; ``cost`` is the seconds of one
            product, or a function computing one product, timed by :func:`time_call` (only
            when ``count > 0``).
        progress: the measurement's ``progress=``: ``False`` measures and prints nothing.
        note: how the counts were made, appended to the line.
        min_seconds: print only estimates at least this long (:data:`COST_NOTICE_SECONDS`).
        stream: where to print (standard error).

    Returns:
        The :class:`CostEstimate` (printed or not), or ``None`` with ``progress=False``.
    """
    if progress is False:
        return None
    timed = []
    for name, count, cost in parts:
        each = 0.0 if count <= 0 else (cost if isinstance(cost, (int, float)) else time_call(cost))
        timed.append((name, int(count), float(each)))
    est = CostEstimate(what, tuple(timed), note)
    limit = COST_NOTICE_SECONDS if min_seconds is None else min_seconds
    if est.seconds >= limit:
        print(est.message(), file=stream or _stream(), flush=True)
    return est
