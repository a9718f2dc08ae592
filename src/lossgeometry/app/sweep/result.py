"""The result of a sweep: one :class:`SweepRun` row per grid point, a table and a plot."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from lossgeometry._plotting import axes_or_new
from lossgeometry.results import Result

STATUSES = ("done", "skipped", "failed", "pending")
"""Run states: finished now, finished earlier (reused), failed, not run yet."""

_HEADLINE = (
    "problem.p",
    "problem.overparameterization",
    "training.loss_final",
    "training.pl_ratio_min",
)
"""Metrics shown by default for ``job="analyze"`` sweeps (when present)."""


@dataclasses.dataclass(frozen=True)
class SweepRun(Result):
    """One run of a sweep: its parameters, what happened, and its headline numbers."""

    name: str
    """Directory name under the sweep's ``out``, built from the parameter values."""
    params: dict[str, Any]
    """The swept values of this run, by dotted config key (``{"model.width": 64}``)."""
    status: str
    """``"done"`` (ran now), ``"skipped"`` (finished earlier with the same config, reused),
    ``"failed"`` (see :attr:`error`) or ``"pending"`` (not run yet)."""
    seconds: float
    """Wall time of the run in seconds (for a skipped run: of the run that produced it);
    ``nan`` while pending."""
    directory: str
    """The run's directory (``config.json``, the job's outputs, ``done.json``/``error.json``)."""
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    """Scalar numbers from the job's results, by dotted name: ``"training.loss_final"``
    (``job="analyze"``: ``SECTION.KEY`` of each section's ``summary`` in ``results.json``) or
    the experiment summary's keys (``job="run"``)."""
    error: str | None = None
    """``"ExceptionType: message"`` of a failed run, else ``None``."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepRun:
        """Rebuild from :meth:`to_dict` output (``"nan"``/``"inf"`` metrics become floats)."""
        res = super().from_dict(d)
        metrics = {
            k: float(v) if isinstance(v, str) and v in ("nan", "inf", "-inf") else v
            for k, v in res.metrics.items()
        }
        return dataclasses.replace(res, metrics=metrics)

    @property
    def ok(self) -> bool:
        """Whether the run finished (``done`` or ``skipped``)."""
        return self.status in ("done", "skipped")

    def summary(self) -> dict[str, Any]:
        """Flat headline numbers: name, status, seconds, each swept value and every metric.

        Swept values come as ``params.KEY`` (lists as their text), metrics under their own
        dotted names.
        """
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "seconds": self.seconds,
        }
        for k, v in self.params.items():
            scalar = v is None or isinstance(v, (bool, int, float, str))
            out[f"params.{k}"] = v if scalar else str(v)
        out.update(self.metrics)
        return out

    def plot(self, ax: Any = None, *, metrics: list[str] | None = None) -> Any:
        """The run's finite numeric metrics as horizontal bars, one per metric; returns the Axes.

        Args:
            ax: the matplotlib Axes to draw on (default: a new figure).
            metrics: the metric names to draw (default: all of them, in order); non-numeric
                and non-finite values get no bar.
        """
        names = list(self.metrics) if metrics is None else list(metrics)
        missing = [m for m in names if m not in self.metrics]
        if missing:
            raise ValueError(
                f"run {self.name!r} has no metric {missing}; it has {list(self.metrics)}"
            )
        names = [m for m in names if _numeric(self.metrics[m])]
        own = ax is None
        ax = axes_or_new(ax, (5.5, 0.6 + 0.35 * max(1, len(names))))
        ax.barh(range(len(names)), [float(self.metrics[m]) for m in names], color="C0")
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()  # first metric on top
        ax.set_title(f"{self.name} ({self.status})")
        ax.grid(alpha=0.3, axis="x")
        if own:  # room for the metric names and the title inside the figure
            ax.figure.tight_layout()
        return ax


@dataclasses.dataclass(frozen=True)
class SweepResult(Result):
    """A grid of runs (:func:`lossgeometry.app.sweep`): one :class:`SweepRun` per grid point.

    Saved as ``OUT/sweep.json`` after every finished run and at the end; reload it with
    ``SweepResult.load(path)`` or ``lg.load_result(path)``.
    """

    out: str
    """The sweep directory; run ``r`` lives in ``out/r.name``."""
    job: str
    """``"analyze"`` (the report of ``lossgeometry analyze``) or ``"run"`` (an experiment)."""
    grid: dict[str, list[Any]]
    """The swept values, by dotted config key, in the order they were given."""
    runs: list[SweepRun]
    """One row per grid point (cartesian product of :attr:`grid`, first key slowest)."""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The base config every run starts from (defaults filled in for ``job="analyze"``)."""
    seconds: float = float("nan")
    """Wall time of this sweep call in seconds (skipped runs cost almost nothing)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepResult:
        """Rebuild from :meth:`to_dict` output, rows included."""
        res = super().from_dict(d)
        runs = [r if isinstance(r, SweepRun) else SweepRun.from_dict(r) for r in res.runs]
        seconds = res.seconds if isinstance(res.seconds, float) else float(res.seconds)
        return dataclasses.replace(res, runs=runs, seconds=seconds)

    # --- views ---------------------------------------------------------------------------
    @property
    def failed(self) -> list[SweepRun]:
        """The runs that failed (each with its :attr:`SweepRun.error`)."""
        return [r for r in self.runs if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """Whether every run finished (none failed or pending)."""
        return all(r.ok for r in self.runs)

    def summary(self) -> dict[str, Any]:
        """Flat headline numbers: the job, how many runs in each state, the wall time."""
        return {
            "job": self.job,
            "runs": len(self.runs),
            **self.counts(),
            "ok": self.ok,
            "seconds": self.seconds,
            "swept": ", ".join(self.grid),
            "metrics": len(self.metric_names()),
        }

    def counts(self) -> dict[str, int]:
        """How many runs are in each state: ``{"done": 4, "skipped": 2, "failed": 0, ...}``."""
        return {s: sum(r.status == s for r in self.runs) for s in STATUSES}

    def metric_names(self) -> list[str]:
        """All metric names that appear in at least one run, in first-seen order."""
        names: dict[str, None] = {}
        for r in self.runs:
            names.update(dict.fromkeys(r.metrics))
        return list(names)

    def headline(self, limit: int = 4) -> list[str]:
        """A few metrics worth a column: the usual report numbers if present, else the first."""
        names = self.metric_names()
        preferred = [m for m in _HEADLINE if m in names]
        return (preferred or names)[:limit]

    def param_labels(self) -> dict[str, str]:
        """Short labels of the swept keys (as in the run names): see :func:`short_labels`."""
        return short_labels(list(self.grid))

    def _param_key(self, name: str) -> str:
        if name in self.grid:
            return name
        for key, label in self.param_labels().items():
            if label == name:
                return key
        raise ValueError(f"{name!r} is not a swept parameter; the sweep varies {list(self.grid)}")

    def table(self, metrics: list[str] | None = None) -> list[dict[str, Any]]:
        """One dict per run: name, each parameter (short label), status, seconds, metrics.

        Args:
            metrics: the metric names to include (default: every metric of
                :meth:`metric_names`); a run without one gets ``None``.
        """
        names = self.metric_names() if metrics is None else list(metrics)
        labels = self.param_labels()
        rows = []
        for r in self.runs:
            row: dict[str, Any] = {"name": r.name}
            row.update({labels[k]: r.params.get(k) for k in self.grid})
            row.update({"status": r.status, "seconds": r.seconds})
            row.update({m: r.metrics.get(m) for m in names})
            if r.error:
                row["error"] = r.error
            rows.append(row)
        return rows

    def rich_table(self, metrics: list[str] | None = None) -> Any:
        """The table as a :class:`rich.table.Table` (default metrics: :meth:`headline`)."""
        from rich.table import Table
        from rich.text import Text  # cells are text, never console markup

        names = self.headline() if metrics is None else list(metrics)
        labels = self.param_labels()
        c = self.counts()
        title = "sweep: " + ", ".join(f"{v} {k}" for k, v in c.items() if v)
        table = Table(title=title)
        for k in self.grid:
            table.add_column(labels[k])
        table.add_column("status")
        table.add_column("time (s)", justify="right")
        for m in names:  # "training.loss_final" → two header lines, narrower columns
            table.add_column(m.replace(".", "\n", 1), justify="right")
        style = {"done": "green", "skipped": "cyan", "failed": "bold red", "pending": "dim"}
        for r in self.runs:
            table.add_row(
                *[Text(_fmt(r.params.get(k))) for k in self.grid],
                Text(r.status, style=style[r.status]),
                "—" if math.isnan(r.seconds) else f"{r.seconds:.2f}",
                *[Text(_fmt(r.metrics.get(m))) for m in names],
            )
        return table

    def plot(
        self,
        ax: Any = None,
        *,
        x: str,
        y: str,
        logx: bool = False,
        logy: bool = False,
    ) -> Any:
        """Draw metric ``y`` against swept parameter ``x``, one line per value of the others.

        Args:
            ax: the matplotlib Axes to draw on (default: a new figure).
            x: a swept key (``"model.width"``) or its short label (``"width"``).
            y: a metric name (see :meth:`metric_names`), e.g. ``"training.loss_final"``.
            logx: logarithmic x axis.
            logy: logarithmic y axis.

        Returns:
            The Axes. Runs without a finished value of ``y`` are left out.
        """
        xkey = self._param_key(x)
        if y not in self.metric_names():
            raise ValueError(f"no run has a metric {y!r}; metrics: {self.metric_names()}")
        own = ax is None
        ax = axes_or_new(ax, (5.5, 3.8))
        labels = self.param_labels()
        others = [k for k in self.grid if k != xkey]
        xs_all = list(self.grid[xkey])
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs_all)
        pos = {_key(v): i for i, v in enumerate(xs_all)}
        groups: dict[tuple[Any, ...], list[tuple[Any, float]]] = {}
        for r in self.runs:
            val = r.metrics.get(y)
            if not r.ok or not isinstance(val, (int, float)):
                continue
            gkey = tuple(_key(r.params.get(k)) for k in others)
            xv = r.params.get(xkey)
            groups.setdefault(gkey, []).append((xv if numeric else pos[_key(xv)], float(val)))
        for i, (gkey, pts) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
            pts.sort(key=lambda p: p[0])
            label = ", ".join(f"{labels[k]}={v}" for k, v in zip(others, gkey, strict=True)) or None
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            ax.plot(xs, ys, "-o", ms=4, color=f"C{i % 10}", label=label)
        if not numeric:
            ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xkey)
        ax.set_ylabel(y)
        if others and groups:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        if own:  # the axis labels inside the figure (the x label was cut off at the bottom)
            ax.figure.tight_layout()
        return ax


def short_labels(keys: list[str]) -> dict[str, str]:
    """Short labels of dotted keys: the last part (``model.width`` → ``width``).

    Keys that share a last part keep their full dotted name.
    """
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def _key(v: Any) -> Any:
    """A hashable stand-in for a parameter value (lists become tuples)."""
    return tuple(_key(x) for x in v) if isinstance(v, (list, tuple)) else v


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}g}"
    return str(v)
