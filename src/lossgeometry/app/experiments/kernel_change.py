"""Relative change of the tangent kernel during training, versus width.

With ``‖J(w) − J(w0)‖ ≤ β_F ‖w − w0‖`` and a distance travelled that does not grow with the
width in the NTK parameterization, the kernel moves by ``O(β_F) = Õ(1/√m)`` for a linear
output (Liu, Zhu & Belkin, arXiv:2010.01092; ``docs/theory.md`` section 6): wide networks
train in their "lazy" regime. For NTK-parameterized MLPs of width ``m`` this experiment
trains full-batch GD (``lr = lr_scale / λ_max(∇²L(w0))``) until the loss falls below
``target · L(w0)`` (or ``max_steps``), then measures

* ``‖K(w_T) − K(w0)‖_F / ‖K(w0)‖_F`` and the same ratio in spectral norm,
* the relative change of ``λ_min(K)``, and the distance ``‖w_T − w0‖``,

and fits the log–log slope of the relative change against ``m``. The Hessian bound gives
``O(1/√m)`` (slope ≤ −½) with a linear output; it is an upper bound, and the measured change
decays faster (about ``1/m``, consistent with the ``O(1/m)`` kernel velocity found by Dyer &
Gur-Ari, arXiv:1909.11304). A ``tanh`` output keeps its Θ(1) curvature and does not decay.

The kernels are measured by :func:`lossgeometry.kernel.change.kernel_change` (the study the
CLI's ``kernel`` command and the report's kernel section call), with ``spectral_norm`` on.

Config (``configs/kernel_change.toml``): the fields of :class:`KernelChangeConfig` —
``widths``, ``seeds``, ``variants``, ``depth``, ``activation``, ``lr_scale``, ``target``,
``max_steps``, ``record_every``, ``dtype``, ``[data]``, ``[kernel]`` (options of the kernel
study) — and a ``[full]`` table applied with ``--full``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

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

__all__ = ["KernelChangeConfig", "kernel_change", "measure_kernel_change"]

_VARIANTS = {"linear": "linear output", "tanh_output": "tanh output"}


@dataclasses.dataclass(frozen=True)
class KernelChangeConfig(Options):
    """The ``kernel_change`` experiment's TOML."""

    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    """Hidden widths ``m`` (at least two)."""
    seeds: tuple[int, ...] = (0,)
    """Initializations per width (medians are reported)."""
    variants: tuple[Literal["linear", "tanh_output"], ...] = ("linear", "tanh_output")
    """Linear output layer, ``tanh`` output layer."""
    depth: int = 2
    """Hidden layers of the NTK MLP."""
    activation: str = "tanh"
    """Hidden activation."""
    lr_scale: float = 1.0
    """``lr = lr_scale / λ_max(∇²L(w0))``."""
    target: float = 1e-2
    """Train until ``L(w_T) ≤ target · L(w0)`` ..."""
    max_steps: int = 2000
    """... or this many GD steps."""
    record_every: int = 10
    """Record stride of the training runs."""
    dtype: Literal["float32", "float64"] = "float64"
    """Computation dtype."""
    data: DataTable = dataclasses.field(default_factory=lambda: DataTable(n=32))
    """The ``[data]`` table."""
    kernel: KernelChangeOptions = dataclasses.field(
        default_factory=lambda: KernelChangeOptions(spectral_norm=True)
    )
    """Options of the kernel study (``[kernel]``); the spectral-norm change is reported."""

    def check(self) -> None:
        """At least two widths."""
        if len(self.widths) < 2:
            raise OptionsError("the kernel-change sweep needs at least two widths")


def measure_kernel_change(
    c: KernelChangeConfig, variant: str, width: int, seed: int, X: torch.Tensor, Y: torch.Tensor
) -> dict[str, Any]:
    """Train one (variant, width, seed) and measure how far its tangent kernel moved."""
    from lossgeometry import train
    from lossgeometry.curvature.stepsize import auto_lr
    from lossgeometry.kernel.change import kernel_change as kernel_study

    if variant not in _VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {sorted(_VARIANTS)}")
    t0 = time.perf_counter()
    dtype = resolve_dtype(c.dtype)
    problem = ntk_mlp_problem(
        X,
        Y,
        width=width,
        depth=c.depth,
        activation=c.activation,
        dtype=dtype,
        seed=seed,
        variant=variant,
    )
    w0 = problem.params()
    lr = c.lr_scale * auto_lr(problem, w0, seed=seed)
    L0 = float(problem.loss(w0))
    run = train(
        problem,
        "gd",
        steps=c.max_steps,
        lr=lr,
        record_every=c.record_every,
        seed=seed,
        stop_loss=c.target * L0,
    )
    ch = kernel_study(problem, w0, run.w_final, options=c.kernel)
    assert ch.end is not None
    lam0, lamT = ch.start.lambda_min, ch.end.lambda_min
    return {
        "variant": variant,
        "width": width,
        "seed": seed,
        "p": problem.p,
        "lr": lr,
        "steps": int(run.num_steps),
        "initial_loss": L0,
        "final_loss": float(run.loss[-1]),
        "distance": float(run.distance[-1]),
        "rel_change_fro": ch.relative_change,
        "rel_change_spec": ch.relative_change_spectral,
        "lambda_min_w0": lam0,
        "lambda_min_wT": lamT,
        "rel_change_lambda_min": float(abs(lamT - lam0) / abs(lam0)) if lam0 != 0 else float("inf"),
        "seconds": time.perf_counter() - t0,
    }


@experiment("kernel_change", options=KernelChangeConfig)
def kernel_change(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep the width; writes ``results.json`` and ``kernel_change_vs_width.png`` into ``out``."""
    c = experiment_options(KernelChangeConfig, cfg, full)
    X, Y = square_loss_data(c.data, resolve_dtype(c.dtype))
    widths, seeds, variants = list(c.widths), list(c.seeds), list(c.variants)
    key_base = {k: v for k, v in c.to_dict().items() if k not in ("widths", "seeds", "variants")}
    named = cache_inputs(c.to_dict())  # versions, local data files
    grid = [(v, m, s) for v in variants for m in widths for s in seeds]
    points = []
    for v, m, s in progress_bar(grid, progress, desc="kernel change", unit="run"):
        points.append(
            cached_point(
                out,
                f"{v}_m{m}_s{s}",
                {**key_base, "variant": v, "width": m, "seed": s},
                lambda v=v, m=m, s=s: measure_kernel_change(c, v, m, s, X, Y),
                inputs=named,
            )
        )
    summary: dict[str, Any] = {}
    for v in variants:
        rows = []
        for m in widths:
            pts = [p for p in points if p["variant"] == v and p["width"] == m]
            rows.append(
                {
                    "width": m,
                    **{
                        f: float(np.median([p[f] for p in pts]))
                        for f in (
                            "rel_change_fro",
                            "rel_change_spec",
                            "rel_change_lambda_min",
                            "distance",
                            "final_loss",
                            "initial_loss",
                            "steps",
                        )
                    },
                }
            )
        slope, intercept, se = loglog_slope(widths, [r["rel_change_fro"] for r in rows])
        summary[v] = {
            "label": _VARIANTS[v],
            "rows": rows,
            "fit": {"slope": slope, "intercept": intercept, "stderr": se},
        }
    fig_name = _figure(summary, widths, out)
    atomic_write_json(
        Path(out) / "results.json",
        {
            "experiment": "kernel_change",
            "full": full,
            "config": c.to_dict(),
            "summary": summary,
            "points": points,
            "figures": [fig_name],
        },
    )
    return {
        v: {
            "slope": round(s["fit"]["slope"], 3),
            "stderr": round(s["fit"]["stderr"], 3),
            "expected": "<= -0.5 (Hessian bound)" if v == "linear" else "no decay",
        }
        for v, s in summary.items()
    }


def _figure(summary: dict[str, Any], widths: list[int], out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ms = np.array(widths, dtype=float)
    for s in summary.values():
        ys = [r["rel_change_fro"] for r in s["rows"]]
        line = axes[0].loglog(ms, ys, "o", label=f"{s['label']}: slope {s['fit']['slope']:.2f}")[0]
        axes[0].loglog(
            ms,
            np.exp(s["fit"]["intercept"]) * ms ** s["fit"]["slope"],
            "-",
            color=line.get_color(),
            lw=1,
        )
        axes[1].semilogx(ms, [r["distance"] for r in s["rows"]], "o-", label=s["label"])
    first = next(iter(summary.values()))["rows"][0]["rel_change_fro"]
    axes[0].loglog(ms, first * (ms / ms[0]) ** -0.5, "k:", lw=1, label="m^(−1/2)")
    axes[0].set_ylabel("‖K(w_T) − K(w0)‖_F / ‖K(w0)‖_F")
    axes[1].set_ylabel("distance ‖w_T − w0‖")
    for ax in axes:
        ax.set_xlabel("width m")
        ax.set_xticks(widths)
        ax.set_xticklabels([str(m) for m in widths], fontsize=7)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save_figure(fig, out, "kernel_change_vs_width.png")
