"""Shared machinery of the α-β experiments: one sweep = settings × seeds → traces → figures.

Each setting (a width, a channel count, a batch size, an optimizer) builds, per seed, a
:class:`~lossgeometry.Problem` (model initialized with the seed) and a training spec;
:func:`~lossgeometry.record_conditions` records the run (the seed also fixes the batch order)
and the per-seed traces are merged, so ``min T`` is over all steps of all runs, as in
Islamov et al. Finished settings are saved atomically under ``out/points/`` (a summary JSON
with the setting's cache key, and the trace) and skipped when the sweep is run again with the
same key (resume; see :func:`run_sweep`).

Configs are typed: :class:`AlphaBetaSweep` (the fields of
:class:`~lossgeometry.conditions.alphabeta_study.AlphaBetaOptions` — ``margin``,
``exclude_last``, ``grid``, ``alpha_max``, ``full_loss_every``, ``f_star`` with their
defaults there — plus ``seeds`` and ``store_indices``) and :class:`ClassifierSweep` (adds the
data: ``data``, ``n``, ``data_seed``, ``dtype``); each experiment derives its own with its
model and run fields. A ``[full]`` table overrides them under ``--full``. Every setting's
trace is analysed by :func:`~lossgeometry.conditions.alphabeta_study.analyze_trace` (the
analysis of the CLI's and the report's α-β study).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lossgeometry.app.config import resolve_dtype
from lossgeometry.app.figures import save_figure
from lossgeometry.app.outdir import corrupt, load_point, save_point
from lossgeometry.app.outdir import inputs as cache_inputs
from lossgeometry.conditions.alphabeta import ConditionTrace, record_conditions
from lossgeometry.conditions.alphabeta_study import AlphaBetaOptions, analyze_trace, heatmap_axis
from lossgeometry.options import Options
from lossgeometry.problem import Problem
from lossgeometry.results import atomic_write_json


@dataclasses.dataclass(frozen=True)
class AlphaBetaSweep(AlphaBetaOptions):
    """Options every α-β sweep shares: the study's options, the seeds, the stored indices."""

    seeds: tuple[int, ...] = (0,)
    """Runs per setting: the seed fixes the initialization and the batch order."""
    store_indices: bool = False
    """Keep the batch indices in the saved traces."""

    def study(self) -> AlphaBetaOptions:
        """The :class:`AlphaBetaOptions` part."""
        return AlphaBetaOptions(**{k: getattr(self, k) for k in AlphaBetaOptions.field_names()})


@dataclasses.dataclass(frozen=True)
class ClassifierSweep(AlphaBetaSweep):
    """An α-β sweep on a classification data set (cross-entropy)."""

    data: str = "digits"
    """A :func:`lossgeometry.data.available` name (``"fashion-mnist:DIR"`` etc. for files)."""
    n: int | None = None
    """Samples (``None``: all)."""
    data_seed: int = 0
    """Seed of the sample choice."""
    dtype: Literal["float32", "float64"] = "float32"
    """Computation dtype."""
    activation: str = "relu"
    """Hidden activation of the swept models."""

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype of :attr:`dtype`."""
        return resolve_dtype(self.dtype)


@dataclasses.dataclass(frozen=True)
class MinibatchRuns(Options):
    """Mini-batch runs of a fixed length (the sweeps that do not vary them)."""

    steps: int = 400
    """Optimizer steps per run."""
    batch_size: int = 64
    """Mini-batch size."""


@dataclasses.dataclass(frozen=True)
class OneOptimizer(Options):
    """One optimizer for every setting of a sweep."""

    optimizer: str = "sgd"
    """A :func:`lossgeometry.train` optimizer name (the registry's)."""
    lr: float = 0.1
    """Learning rate."""


@dataclasses.dataclass
class RunSpec:
    """What one seed of one setting trains."""

    problem: Problem
    optimizer: Any
    steps: int
    batch_size: int | None
    lr: float | None = None
    optimizer_kwargs: dict[str, Any] | None = None


@dataclasses.dataclass
class Setting:
    """One point of a sweep: a label, its x value and a per-seed builder."""

    label: str
    x: float | str
    make: Callable[[int], RunSpec]
    key: dict[str, Any] | None = None
    """What this setting's runs depend on beyond the sweep's config, its label and ``x``
    (e.g. its row of a table of optimizers); part of its cache key."""


def classifier_setting(
    label: str,
    x: float | str,
    build: Callable[[int], torch.nn.Module],
    cfg: ClassifierSweep,
    X: torch.Tensor,
    Y: torch.Tensor,
    *,
    optimizer: Any,
    steps: int,
    batch_size: int | None,
    lr: float | None,
    optimizer_kwargs: dict[str, Any] | None = None,
    key: dict[str, Any] | None = None,
) -> Setting:
    """A setting whose seed ``s`` trains ``build(s)`` (in ``cfg``'s dtype) with cross-entropy.

    ``key``: see :attr:`Setting.key`.
    """

    def make(seed: int) -> RunSpec:
        model = build(seed).to(cfg.torch_dtype)
        return RunSpec(
            cross_entropy_problem(model, X, Y), optimizer, steps, batch_size, lr, optimizer_kwargs
        )

    return Setting(label, x, make, key)


def load_data(cfg: ClassifierSweep, *, images: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, Y)`` of ``cfg.data`` with ``cfg.n`` samples, integer labels.

    ``images=True`` returns ``(n, C, H, W)`` (digits become ``1×8×8``); otherwise flat inputs.
    """
    from lossgeometry import data

    ds = data.load(cfg.data, n=cfg.n, seed=cfg.data_seed, dtype=cfg.torch_dtype)
    X, Y = ds.X, ds.Y
    if images:
        if X.ndim == 2:
            side = math.isqrt(X.shape[1])
            if side * side != X.shape[1]:
                raise ValueError(f"{cfg.data} inputs of size {X.shape[1]} are not square images")
            X = X.reshape(X.shape[0], 1, side, side)
    else:
        X = X.reshape(X.shape[0], -1)
    return X, Y


def summarize(label: str, x: Any, trace: ConditionTrace, options: AlphaBetaOptions) -> dict:
    """The JSON row of one setting: the study's summary (smallest pair, Aiming, PL, losses)."""
    st = analyze_trace(trace, options=options).summary()
    row: dict[str, Any] = {"setting": label, "x": x}
    row.update({k: st[k] for k in ("alpha", "beta", "alpha_max_at_beta0")})
    row["p"] = trace.p
    row.update({k: st[k] for k in ("runs", "steps", "final_loss_mean", "max_replay_error")})
    row["seconds"] = trace.wall_time
    for k in ("aiming_negative_fraction", "aiming_min_coefficient", "pl_mu_delta2"):
        if k in st:
            row[k] = st[k]
    return row


def _setting_key(
    name: str, cfg: AlphaBetaSweep, grid_field: str | None, s: Setting
) -> dict[str, Any]:
    """Everything a setting's rows and trace depend on (the sweep's grid list left out)."""
    config = {k: v for k, v in cfg.to_dict().items() if k != grid_field}
    return {"experiment": name, "config": config, "label": s.label, "x": s.x, "extra": s.key}


def run_sweep(
    name: str,
    cfg: AlphaBetaSweep,
    out: Path,
    settings: Sequence[Setting],
    *,
    xlabel: str,
    xlog: bool = True,
    grid_field: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Record every setting (resuming finished ones), write figures and ``results.json``.

    A setting is reused from ``out/points/LABEL.json`` and ``LABEL.trace.json`` only if it
    was recorded with the same key: the whole config less ``grid_field`` (the list the
    settings are made from, so a grown list reuses the settings it had), the setting's
    label, ``x`` and :attr:`Setting.key`, the versions and local data files
    (:func:`lossgeometry.app.outdir.inputs`).

    Raises:
        CorruptCacheError: a point or trace file does not read back (``--fresh`` fixes it).
    """
    study = cfg.study()
    points = out / "points"
    points.mkdir(parents=True, exist_ok=True)
    named = cache_inputs(cfg.to_dict())
    rows: list[dict[str, Any]] = []
    traces: dict[str, ConditionTrace] = {}
    for s in settings:
        pfile, tfile = points / f"{s.label}.json", points / f"{s.label}.trace.json"
        key = _setting_key(name, cfg, grid_field, s)
        row = load_point(pfile, key, named)
        if row is not None and tfile.is_file():
            try:
                traces[s.label] = ConditionTrace.load(tfile)
            except Exception as e:  # any unreadable trace: JSON, fields, arrays
                raise corrupt(tfile, e) from None
            rows.append(row)
            if log:
                log(f"[{name}] {s.label}: done earlier (resumed)")
            continue
        pfile.unlink(missing_ok=True)  # the trace is rewritten: the old row must not vouch
        parts = []
        for seed in cfg.seeds:
            spec = s.make(seed)
            parts.append(
                record_conditions(
                    spec.problem,
                    spec.optimizer,
                    spec.steps,
                    spec.batch_size,
                    seeds=(seed,),
                    lr=spec.lr,
                    optimizer_kwargs=spec.optimizer_kwargs,
                    f_star=study.f_star,
                    full_loss_every=study.full_loss_every,
                    store_indices=cfg.store_indices,
                    progress=progress,
                )
            )
        trace = ConditionTrace.concat(parts)
        row = summarize(s.label, s.x, trace, study)
        trace.save(tfile)
        save_point(pfile, key, named, row)
        traces[s.label] = trace
        rows.append(row)
        if log:
            a, b = row["alpha"], row["beta"]
            pair = "none" if a is None else f"({a:.3g}, {b:.3g})"
            log(f"[{name}] {s.label}: smallest pair {pair}, {row['seconds']:.1f} s")
    alphas = heatmap_axis(study, [r["alpha"] for r in rows])
    betas = alphas.copy()
    write_figures(name, out, traces, rows, alphas, betas, study.margin, xlabel, xlog)
    result = {
        "experiment": name,
        "config": cfg.to_dict(),
        "margin": study.margin,
        "exclude_last": study.exclude_last,
        "alphas": alphas,
        "betas": betas,
        "rows": rows,
    }
    atomic_write_json(out / "results.json", result)
    return {"experiment": name, "out": str(out), "rows": rows}


def write_figures(
    name: str,
    out: Path,
    traces: dict[str, ConditionTrace],
    rows: list[dict[str, Any]],
    alphas: np.ndarray,
    betas: np.ndarray,
    margin: float,
    xlabel: str,
    xlog: bool,
) -> None:
    """``heatmaps.png`` (min T per setting), ``smallest_pair.png``, ``aiming.png``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    k = len(traces)
    cols = min(4, k)
    nrows = math.ceil(k / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.6 * nrows), squeeze=False)
    for ax, (label, tr) in zip(axes.flat, traces.items(), strict=False):
        tr.plot(ax, alphas=alphas, betas=betas, margin=margin, title=label, colorbar=False)
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    fig.suptitle(f"{name}: min over steps and runs of T(x_k)  (blue: holds)")
    save_figure(fig, out, "heatmaps.png", dpi=120)

    fig, ax = plt.subplots(figsize=(5, 3.6))
    xs = [r["x"] for r in rows]
    numeric = all(isinstance(x, (int, float)) for x in xs)
    pos = xs if numeric else list(range(len(xs)))
    for key, mark in (("alpha", "o-"), ("beta", "s-")):
        ys = [np.nan if r[key] is None else r[key] for r in rows]
        ax.plot(pos, ys, mark, label=f"smallest {'α' if key == 'alpha' else 'β'}")
    if numeric and xlog:
        ax.set_xscale("log", base=2)
    if not numeric:
        ax.set_xticks(pos, [str(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("smallest feasible pair")
    ax.set_title(f"{name} (α ≥ β + {margin:g})")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out, "smallest_pair.png", dpi=120)

    with_full = {k: t for k, t in traces.items() if not np.all(np.isnan(t.full_inner))}
    if with_full:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for j, (label, tr) in enumerate(with_full.items()):
            am = tr.aiming("full")
            for r in np.unique(am.run):
                m = am.run == r
                ax.plot(
                    am.step[m],
                    am.cos[m],
                    color=f"C{j % 10}",
                    lw=1.2,
                    label=label if r == am.run.min() else None,
                )
        ax.axhline(0.0, color="k", lw=0.8, ls="--")
        ax.set_xlabel("step k")
        ax.set_ylabel(r"$\cos\angle(\nabla f(x_k), x_k - x^K)$")
        ax.set_title("Aiming along training (positive: holds)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        save_figure(fig, out, "aiming.png", dpi=120)


def cross_entropy_problem(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor) -> Problem:
    """A cross-entropy Problem (mean reduction), the paper's training loss."""
    return Problem(model, X, Y, loss="cross_entropy", reduction="mean")
