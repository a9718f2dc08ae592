"""Under- versus over-parameterized: the tangent kernel's rank, GD stalling, linear convergence.

``K(w) = DF DFᵀ`` is ``nk × nk`` of rank at most ``p``, so ``λ_min(K) = 0`` whenever ``p < nk``
and no PL* constant exists: GD then converges (at best) to a non-zero loss. When ``p ≫ nk``
the kernel is well conditioned and GD converges linearly to zero loss (Liu, Zhu & Belkin,
arXiv:2003.00307; ``docs/theory.md`` sections 1 and 7). For one data set and MLPs whose width
is chosen to hit given ratios ``p/(nk)``, this experiment measures ``λ_min(K(w0))`` and the
kernel's numerical rank, trains full-batch GD with ``lr = lr_scale / λ_max(∇²L(w0))``, and
analyses every run for PL*_ε (:func:`lossgeometry.plstar_epsilon`): where linear convergence
ends and above which loss ``ε`` the PL inequality holds.

The kernel spectra at ``w0`` and ``w_T`` come from
:func:`lossgeometry.kernel.change.kernel_change` (the kernel study of the CLI and the report).

Config (``configs/overparameterization.toml``): the fields of
:class:`OverparameterizationConfig` — ``ratios``, ``seeds``, ``depth``, ``activation``,
``steps``, ``lr_scale``, ``record_every``, ``pl_window``, ``dtype``, ``[data]``, ``[kernel]``
— and a ``[full]`` table applied with ``--full``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lossgeometry._progress import progress_bar
from lossgeometry.app.config import resolve_dtype
from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.app.experiments.options import DataTable, experiment_options, square_loss_data
from lossgeometry.app.experiments.plstar_common import cached_point, ntk_mlp_problem
from lossgeometry.app.figures import save_figure
from lossgeometry.app.outdir import inputs as cache_inputs
from lossgeometry.kernel.change import KernelChangeOptions
from lossgeometry.options import Options
from lossgeometry.results import atomic_write_json

__all__ = ["OverparameterizationConfig", "overparameterization", "width_for_ratio"]


@dataclasses.dataclass(frozen=True)
class OverparameterizationConfig(Options):
    """The ``overparameterization`` experiment's TOML."""

    ratios: tuple[float, ...] = (0.25, 0.5, 0.9, 1.1, 2.0, 8.0, 32.0)
    """Target ``p/(nk)``; the width is chosen to match."""
    seeds: tuple[int, ...] = (0,)
    """Initializations (medians in the table)."""
    depth: int = 1
    """Hidden layers of the NTK MLP."""
    activation: str = "tanh"
    """Hidden activation."""
    steps: int = 2000
    """Full-batch GD steps."""
    lr_scale: float = 1.0
    """``lr = lr_scale / λ_max(∇²L(w0))``."""
    record_every: int = 10
    """Record stride of the runs."""
    pl_window: int = 1
    """Records per window of the PL*_ε stall test."""
    dtype: Literal["float32", "float64"] = "float64"
    """Computation dtype."""
    data: DataTable = dataclasses.field(default_factory=lambda: DataTable(n=64))
    """The ``[data]`` table."""
    kernel: KernelChangeOptions = dataclasses.field(default_factory=KernelChangeOptions)
    """Options of the kernel study (``[kernel]``)."""


def width_for_ratio(ratio: float, d_in: int, depth: int, d_out: int, nk: int) -> int:
    """The hidden width whose MLP parameter count ``p`` is closest to ``ratio · nk``."""
    from lossgeometry.models import mlp_num_params

    target = ratio * nk
    best, best_err = 1, math.inf
    w = 1
    while True:
        p = mlp_num_params(d_in, w, depth, d_out)
        err = abs(math.log(p / target))
        if err < best_err:
            best, best_err = w, err
        if p > 2 * target:
            return best
        w += 1 if w < 64 else max(1, w // 64)


def _run_point(c: OverparameterizationConfig, width: int, seed: int, X: Any, Y: Any) -> dict:
    from lossgeometry import train
    from lossgeometry.conditions.pl_ratio import plstar_epsilon
    from lossgeometry.curvature.stepsize import auto_lr
    from lossgeometry.kernel.change import kernel_change

    t0 = time.perf_counter()
    dtype = resolve_dtype(c.dtype)
    problem = ntk_mlp_problem(
        X, Y, width=width, depth=c.depth, activation=c.activation, dtype=dtype, seed=seed
    )
    w0 = problem.params()
    lr = c.lr_scale * auto_lr(problem, w0, seed=seed)
    run = train(problem, "gd", steps=c.steps, lr=lr, record_every=c.record_every, seed=seed)
    ch = kernel_change(problem, w0, run.w_final, options=c.kernel)
    spec0, specT = ch.start, ch.end
    assert specT is not None
    eps = plstar_epsilon(run, window=c.pl_window)
    nk = problem.n * problem.k
    return {
        "width": width,
        "seed": seed,
        "p": problem.p,
        "nk": nk,
        "ratio": problem.p / nk,
        "lambda_min_w0": max(float(spec0.lambda_min), 0.0),
        "lambda_max_w0": float(spec0.lambda_max),
        "rank_w0": int(spec0.rank),
        "lambda_min_wT": max(float(specT.lambda_min), 0.0),
        "two_c_lambda_min_wT": 2.0 * problem.loss_scale * max(float(specT.lambda_min), 0.0),
        "final_pl_ratio": float(run.pl_ratio[-1]),
        "error_estimate_w0": float(spec0.error_estimate),
        "lr": lr,
        "steps": run.steps.tolist(),
        "loss": run.loss.tolist(),
        "pl_ratio": run.pl_ratio.tolist(),
        "initial_loss": float(run.loss[0]),
        "final_loss": float(run.loss[-1]),
        "linear_rate": eps.linear_rate,
        "stalled": eps.stalled,
        "plateau": eps.plateau,
        "linear_until_step": eps.linear_until_step,
        "loss_at_break": eps.loss_at_break,
        "epsilon": eps.epsilon,
        "mu_epsilon": eps.mu,
        "seconds": time.perf_counter() - t0,
    }


@experiment("overparameterization", options=OverparameterizationConfig)
def overparameterization(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep ``p/(nk)``; write ``results.json`` and the figures into ``out``.

    Figures: ``kernel_vs_ratio.png``, ``loss_curves.png``, ``pl_ratio_vs_loss.png``,
    ``final_loss_vs_ratio.png``.
    """
    c = experiment_options(OverparameterizationConfig, cfg, full)
    X, Y = square_loss_data(c.data, resolve_dtype(c.dtype))
    nk = X.shape[0] * Y.shape[1]
    ratios, seeds = list(c.ratios), list(c.seeds)
    widths = [width_for_ratio(r, X.shape[1], c.depth, Y.shape[1], nk) for r in ratios]
    key_base = {k: v for k, v in c.to_dict().items() if k not in ("ratios", "seeds")}
    named = cache_inputs(c.to_dict())  # versions, local data files
    grid = [(m, s) for m in widths for s in seeds]
    points = []
    for m, s in progress_bar(grid, progress, desc="over-parameterization", unit="run"):
        points.append(
            cached_point(
                out,
                f"width{m}_s{s}",
                {**key_base, "width": m, "seed": s},
                lambda m=m, s=s: _run_point(c, m, s, X, Y),
                inputs=named,
            )
        )
    rows = []
    for r, m in zip(ratios, widths, strict=True):
        pts = [p for p in points if p["width"] == m]
        rows.append(
            {
                "target_ratio": r,
                "width": m,
                "p": pts[0]["p"],
                "ratio": pts[0]["ratio"],
                "lambda_min_w0": float(np.median([p["lambda_min_w0"] for p in pts])),
                "rank_w0": int(np.median([p["rank_w0"] for p in pts])),
                "final_over_initial": float(
                    np.median([p["final_loss"] / p["initial_loss"] for p in pts])
                ),
                "final_pl_ratio": float(np.median([p["final_pl_ratio"] for p in pts])),
                "two_c_lambda_min_wT": float(np.median([p["two_c_lambda_min_wT"] for p in pts])),
                "stalled": sum(bool(p["stalled"]) for p in pts) / len(pts),
                "plateau_over_initial": float(
                    np.median([p["plateau"] / p["initial_loss"] for p in pts])
                ),
                "epsilon_over_initial": float(
                    np.median([p["epsilon"] / p["initial_loss"] for p in pts])
                ),
            }
        )
    figs = _figures(rows, points, nk, out)
    atomic_write_json(
        Path(out) / "results.json",
        {
            "experiment": "overparameterization",
            "full": full,
            "config": c.to_dict(),
            "nk": nk,
            "rows": rows,
            "points": points,
            "figures": figs,
        },
    )
    return {
        "nk": nk,
        "rows": [
            {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        ],
    }


def _figures(
    rows: list[dict[str, Any]], points: list[dict[str, Any]], nk: int, out: Path
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    ratio = np.array([r["ratio"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    lam = np.array([r["lambda_min_w0"] for r in rows])
    floor = max(lam[lam > 0].min() * 1e-3, 1e-300) if (lam > 0).any() else 1e-12
    axes[0].loglog(ratio, np.maximum(lam, floor), "o-")
    for x, y in zip(ratio[lam == 0], np.full((lam == 0).sum(), floor), strict=True):
        axes[0].annotate("0", (x, y), textcoords="offset points", xytext=(0, 5), ha="center")
    axes[0].axvline(1.0, color="k", lw=1, ls="--", label="p = nk")
    axes[0].set_xlabel("p / (nk)")
    axes[0].set_ylabel("λ_min(K(w0))  (0 drawn at the floor)")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3, which="both")
    axes[1].semilogx(ratio, [r["rank_w0"] for r in rows], "o-", label="numerical rank of K")
    axes[1].semilogx(ratio, np.minimum(ratio * nk, nk), "k:", label="min(p, nk)")
    axes[1].set_xlabel("p / (nk)")
    axes[1].set_ylabel("rank")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3, which="both")
    files.append(save_figure(fig, out, "kernel_vs_ratio.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    cmap = plt.get_cmap("viridis")
    seed0 = min(p["seed"] for p in points)
    for j, r in enumerate(rows):
        p = next(q for q in points if q["width"] == r["width"] and q["seed"] == seed0)
        loss = np.asarray(p["loss"]) / p["initial_loss"]
        ax.semilogy(
            p["steps"],
            np.where(loss > 0, loss, np.nan),
            color=cmap(j / max(1, len(rows) - 1)),
            label=f"p/nk = {r['ratio']:.2g}",
        )
        if p["stalled"]:
            ax.plot(
                [p["linear_until_step"]],
                [p["loss_at_break"] / p["initial_loss"]],
                "x",
                color=cmap(j / max(1, len(rows) - 1)),
            )
    ax.set_xlabel("GD step")
    ax.set_ylabel("L(w_t) / L(w0)   (× : linear phase ends)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    files.append(save_figure(fig, out, "loss_curves.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for j, r in enumerate(rows):
        p = next(q for q in points if q["width"] == r["width"] and q["seed"] == seed0)
        loss = np.asarray(p["loss"])
        pr = np.asarray(p["pl_ratio"], dtype=float)
        ok = (loss > 0) & np.isfinite(pr) & (pr > 0)
        col = cmap(j / max(1, len(rows) - 1))
        ax.loglog(loss[ok], pr[ok], "-", color=col, lw=1.2, label=f"p/nk = {r['ratio']:.2g}")
        if p["two_c_lambda_min_wT"] > 0:
            ax.axhline(p["two_c_lambda_min_wT"], color=col, lw=0.8, ls=":")
    ax.set_xlabel("loss L(w_t)  (training goes right to left)")
    ax.set_ylabel("‖∇L‖² / L   (dotted: 2c·λ_min(K(w_T)))")
    ax.invert_xaxis()
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    files.append(save_figure(fig, out, "pl_ratio_vs_loss.png"))

    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.loglog(ratio, [max(r["final_over_initial"], 1e-300) for r in rows], "o-")
    ax.axvline(1.0, color="k", lw=1, ls="--")
    ax.set_xlabel("p / (nk)")
    ax.set_ylabel("final / initial loss")
    ax.grid(alpha=0.3, which="both")
    files.append(save_figure(fig, out, "final_loss_vs_ratio.png"))
    return files
