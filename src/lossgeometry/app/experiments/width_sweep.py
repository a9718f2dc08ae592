"""Width sweep: kernel conditioning, model-Hessian norm and certified radius versus width.

Reproduces the transition to linearity (Liu, Zhu & Belkin, arXiv:2010.01092) and the
mechanism behind "wide networks satisfy PL*" (arXiv:2003.00307; ``docs/theory.md`` sections
4 and 6). For NTK-parameterized MLPs of width ``m`` at initialization it measures

* ``λ0 = λ_min(K(w0))`` and ``λ_max(K(w0))`` (``lg.kernel_spectrum``),
* ``β_F = ‖D²F(w0)‖`` over all outputs, and ``‖D²f(w0; x_1)‖`` for one input
  (``lg.model_hessian_norm``),
* the radius ``ρ = √λ0 / (3 β_F)`` of the ball in which the Hessian bound certifies
  ``λ_min(K) ≥ µ = 4λ0/9``, the radius ``R = 2 L_F ‖F(w0) − y‖ / µ`` the PL* theorem needs,
  and the analytic margin ``2 λ0^{3/2} / (27 β_F L_F ‖r0‖)`` (``≥ 1``: certified),

for three variants: a linear output (expected slope of ``log β_F`` against ``log m`` near
−½), a ``tanh`` output (no decay) and a fixed-width bottleneck in the middle hidden layer (no
decay). The constants at ``w0`` stand in for the sup/inf over the ball, so ``ρ`` and the
margin are estimates.

The kernel spectrum comes from :func:`lossgeometry.kernel.change.kernel_change` (the kernel
study of the CLI and the report) at ``w0``.

Config (``configs/width_sweep.toml``): the fields of :class:`WidthSweepConfig` — ``widths``,
``seeds``, ``variants``, ``depth``, ``activation``, ``bottleneck``, ``dtype``,
``fit_min_width``, ``[data]``, ``[hessian]`` (keyword arguments of ``lg.model_hessian_norm``),
``[kernel]`` (options of the kernel study) — and a ``[full]`` table used with ``--full``.
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
from lossgeometry.app.experiments.plstar_common import cached_point, loglog_slope, ntk_mlp_problem
from lossgeometry.app.figures import save_figure
from lossgeometry.app.outdir import inputs as cache_inputs
from lossgeometry.kernel.change import KernelChangeOptions
from lossgeometry.options import Options, OptionsError
from lossgeometry.results import atomic_write_json

__all__ = ["VARIANTS", "WidthSweepConfig", "loglog_slope", "measure_width_point", "width_sweep"]

VARIANTS: dict[str, dict[str, Any]] = {
    "linear": {"label": "linear output", "expected_slope": -0.5},
    "tanh_output": {"label": "tanh output", "expected_slope": 0.0},
    "bottleneck": {"label": "fixed-width bottleneck", "expected_slope": 0.0},
}
"""The model variants: linear output, non-linear (tanh) output, fixed-width bottleneck."""


@dataclasses.dataclass(frozen=True)
class WidthSweepConfig(Options):
    """The ``width_sweep`` experiment's TOML."""

    widths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    """Hidden widths ``m`` (at least two)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Initializations per width (medians are reported)."""
    variants: tuple[Literal["linear", "tanh_output", "bottleneck"], ...] = (
        "linear",
        "tanh_output",
        "bottleneck",
    )
    """Linear output, ``tanh`` output, fixed-width bottleneck in the middle hidden layer."""
    depth: int = 3
    """Hidden layers (the bottleneck is the middle one)."""
    activation: str = "tanh"
    """Hidden activation (the theory needs C²)."""
    bottleneck: int = 8
    """Width of the fixed bottleneck layer."""
    dtype: Literal["float32", "float64"] = "float64"
    """Computation dtype."""
    fit_min_width: int = 0
    """Fit the slopes on widths ``≥`` this."""
    data: DataTable = dataclasses.field(default_factory=lambda: DataTable(n=16))
    """The ``[data]`` table."""
    hessian: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments of ``lg.model_hessian_norm`` (``[hessian]``)."""
    kernel: KernelChangeOptions = dataclasses.field(default_factory=KernelChangeOptions)
    """Options of the kernel study (``[kernel]``)."""

    def check(self) -> None:
        """At least two widths."""
        if len(self.widths) < 2:
            raise OptionsError("the width sweep needs at least two widths")


def measure_width_point(
    cfg: WidthSweepConfig, variant: str, width: int, seed: int, X: Any, Y: Any
) -> dict[str, Any]:
    """All measurements of one (variant, width, seed) at initialization."""
    from lossgeometry.curvature import model_hessian_norm
    from lossgeometry.kernel.change import kernel_change

    t0 = time.perf_counter()
    dtype = resolve_dtype(cfg.dtype)
    problem = ntk_mlp_problem(
        X,
        Y,
        width=width,
        depth=cfg.depth,
        activation=cfg.activation,
        dtype=dtype,
        seed=seed,
        variant=variant,
        bottleneck=cfg.bottleneck,
    )
    w0 = problem.params()
    spec = kernel_change(problem, w0, options=cfg.kernel).start
    r0 = problem.residual(w0)
    hopts = dict(cfg.hessian)
    beta = float(model_hessian_norm(problem, w0, seed=seed, u0=r0, **hopts).norm)
    beta_x0 = float(
        model_hessian_norm(problem, w0, inputs=problem.batch()[0][0], seed=seed, **hopts).norm
    )
    lam0 = max(float(spec.lambda_min), 0.0)
    lmax = float(spec.lambda_max)
    lf, rn = math.sqrt(lmax), float(r0.norm())
    mu = 4.0 * lam0 / 9.0
    return {
        "variant": variant,
        "width": width,
        "seed": seed,
        "p": problem.p,
        "lambda_min": lam0,
        "lambda_max": lmax,
        "hessian_norm": beta,
        "hessian_norm_x0": beta_x0,
        "residual_norm": rn,
        "certified_radius": math.sqrt(lam0) / (3.0 * beta) if beta > 0 else math.inf,
        "radius_needed": 2.0 * lf * rn / mu if mu > 0 else math.inf,
        "analytic_margin": (2.0 * lam0**1.5 / (27.0 * beta * lf * rn))
        if beta * rn > 0
        else math.inf,
        "seconds": time.perf_counter() - t0,
    }


def _median(points: list[dict[str, Any]], field: str) -> float:
    vals = [float(p[field]) for p in points]
    return float(np.median(vals))


@experiment("width_sweep", options=WidthSweepConfig)
def width_sweep(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Run the width sweep; write ``results.json`` and the figures into ``out``.

    Figures: ``hessian_vs_width.png``, ``kernel_vs_width.png``, ``radius_vs_width.png``.
    """
    c = experiment_options(WidthSweepConfig, cfg, full)
    widths, seeds, variants = list(c.widths), list(c.seeds), list(c.variants)
    X, Y = square_loss_data(c.data, resolve_dtype(c.dtype))
    key_base = {k: v for k, v in c.to_dict().items() if k not in ("widths", "seeds", "variants")}
    named = cache_inputs(c.to_dict())  # versions, local data files
    grid = [(v, m, s) for v in variants for m in widths for s in seeds]
    points: list[dict[str, Any]] = []
    for v, m, s in progress_bar(grid, progress, desc="width sweep", unit="point"):
        name = f"{v}_m{m}_s{s}"
        points.append(
            cached_point(
                out,
                name,
                {**key_base, "variant": v, "width": m, "seed": s},
                lambda v=v, m=m, s=s: measure_width_point(c, v, m, s, X, Y),
                inputs=named,
            )
        )
    fit_min = c.fit_min_width
    summary: dict[str, Any] = {"widths": widths, "seeds": seeds, "variants": {}}
    for v in variants:
        rows = []
        for m in widths:
            pts = [p for p in points if p["variant"] == v and p["width"] == m]
            rows.append(
                {
                    "width": m,
                    "p": pts[0]["p"],
                    **{
                        f: _median(pts, f)
                        for f in (
                            "lambda_min",
                            "lambda_max",
                            "hessian_norm",
                            "hessian_norm_x0",
                            "certified_radius",
                            "radius_needed",
                            "analytic_margin",
                        )
                    },
                }
            )
        sel = [r for r in rows if r["width"] >= fit_min]
        fits = {}
        for field in ("hessian_norm", "hessian_norm_x0", "certified_radius"):
            s_, i_, se = loglog_slope([r["width"] for r in sel], [r[field] for r in sel])
            fits[field] = {"slope": s_, "intercept": i_, "stderr": se}
        summary["variants"][v] = {
            "label": VARIANTS[v]["label"],
            "expected_hessian_slope": VARIANTS[v]["expected_slope"],
            "rows": rows,
            "fits": fits,
        }
    lin = summary["variants"].get("linear")
    if lin is not None:
        summary["crossing_width"] = _crossing_width(lin["rows"])
    figs = _figures(summary, out)
    result = {
        "experiment": "width_sweep",
        "full": full,
        "config": c.to_dict(),
        "summary": summary,
        "points": points,
        "figures": figs,
    }
    atomic_write_json(Path(out) / "results.json", result)
    return {
        v: {
            "hessian_slope": round(s["fits"]["hessian_norm"]["slope"], 3),
            "hessian_slope_stderr": round(s["fits"]["hessian_norm"]["stderr"], 3),
            "hessian_slope_single_input": round(s["fits"]["hessian_norm_x0"]["slope"], 3),
            "expected": s["expected_hessian_slope"],
        }
        for v, s in summary["variants"].items()
    } | {"crossing_width": summary.get("crossing_width")}


def _crossing_width(rows: list[dict[str, Any]]) -> float | None:
    """Extrapolated width from which ``ρ(m) ≥ R``: the Hessian bound alone certifies PL*.

    ``ρ = √λ0/(3β_F)`` is fitted by a power law in ``m``; the needed radius ``R`` does not
    depend on ``m`` in the NTK parameterization (``λ0``, ``L_F`` and ``‖r0‖`` converge as
    ``m → ∞``), so its median over the widths is used (fitting a slope to it would only fit
    seed noise). Returns the smallest measured width where ``ρ ≥ R`` if there is one, and
    ``None`` when ``ρ`` does not grow.
    """
    ok = [
        r
        for r in rows
        if math.isfinite(r["certified_radius"])
        and math.isfinite(r["radius_needed"])
        and r["certified_radius"] > 0
        and r["radius_needed"] > 0
    ]
    if len(ok) < 2:
        return None
    hit = [r["width"] for r in ok if r["certified_radius"] >= r["radius_needed"]]
    if hit:
        return float(min(hit))
    slope, intercept, _ = loglog_slope(
        [r["width"] for r in ok], [r["certified_radius"] for r in ok]
    )
    if slope <= 0:
        return None
    R = float(np.median([r["radius_needed"] for r in ok]))
    return float(math.exp((math.log(R) - intercept) / slope))


def _width_axis(ax: Any, widths: list[int]) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(widths)
    ax.set_xticklabels([str(m) for m in widths], fontsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _figures(summary: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, field, title in (
        (axes[0], "hessian_norm", "‖D²F(w0)‖ (all outputs)"),
        (axes[1], "hessian_norm_x0", "‖D²f(w0; x₁)‖ (one input)"),
    ):
        for s in summary["variants"].values():
            ms = np.array([r["width"] for r in s["rows"]], dtype=float)
            ys = np.array([r[field] for r in s["rows"]])
            fit = s["fits"][field]
            line = ax.loglog(ms, ys, "o", label=f"{s['label']}: slope {fit['slope']:.2f}")[0]
            ax.loglog(
                ms, np.exp(fit["intercept"]) * ms ** fit["slope"], "-", color=line.get_color(), lw=1
            )
        ms = np.array(summary["widths"], dtype=float)
        ref = summary["variants"].get("linear", next(iter(summary["variants"].values())))
        y0 = ref["rows"][0][field]
        ax.loglog(ms, y0 * (ms / ms[0]) ** -0.5, "k:", lw=1, label="m^(−1/2)")
        ax.set_xlabel("width m")
        _width_axis(ax, summary["widths"])
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    files.append(save_figure(fig, out, "hessian_vs_width.png"))

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for s in summary["variants"].values():
        ms = [r["width"] for r in s["rows"]]
        ax.semilogx(ms, [r["lambda_min"] for r in s["rows"]], "o-", label=s["label"])
    ax.set_xlabel("width m")
    _width_axis(ax, summary["widths"])
    ax.set_ylabel("λ_min(K(w0))")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    files.append(save_figure(fig, out, "kernel_vs_width.png"))

    lin = summary["variants"].get("linear")
    if lin is not None:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ms = [r["width"] for r in lin["rows"]]
        ax.loglog(
            ms,
            [r["certified_radius"] for r in lin["rows"]],
            "o-",
            label="ρ = √λ0/(3β_F): Hessian-certified ball",
        )
        ax.loglog(
            ms,
            [r["radius_needed"] for r in lin["rows"]],
            "s-",
            label="R = 2L_F‖r0‖/µ, µ = 4λ0/9: ball needed",
        )
        ax.set_xlabel("width m")
        _width_axis(ax, summary["widths"])
        ax.set_ylabel("radius")
        cw = summary.get("crossing_width")
        ax.set_title(
            "linear output" + (f"; extrapolated crossing m ≈ {cw:.3g}" if cw else ""), fontsize=9
        )
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        files.append(save_figure(fig, out, "radius_vs_width.png"))
    return files
