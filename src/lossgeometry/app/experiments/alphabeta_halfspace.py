"""Half-space learning: Aiming along SGD, against the α-β-condition on the same run.

Islamov et al. (NeurIPS 2024, Fig. 2) train half-space learning with SGD (20 points per class,
learning rate 1/4, batch size 1) and observe that the Aiming condition
``⟨∇f(x_k), x_k − x^K⟩ > 0`` fails along the run while the α-β-condition holds. The model is
a logistic unit ``σ(wᵀx + b)`` fitted with the squared loss ``(σ(wᵀx_i + b) − y_i)²``,
``y_i ∈ {0, 1}`` (non-convex in ``(w, b)``). Our data: two Gaussian classes in ``R^d`` with
means ``offset ± separation`` (uncentered inputs make the landscape ill-conditioned, and the
run curves); the settings are initializations ``(w_0, b_0)``. Besides the sweep figures this
writes ``halfspace.png``: loss, gradient norm and ``cos ∠(∇f(x_k), x_k − x^K)`` per step.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lossgeometry.app.experiments.alphabeta_common import (
    AlphaBetaSweep,
    RunSpec,
    Setting,
    run_sweep,
)
from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.app.experiments.options import experiment_options
from lossgeometry.app.figures import save_figure
from lossgeometry.options import OptionsError
from lossgeometry.problem import Problem
from lossgeometry.results import atomic_write_json

__all__ = ["AlphaBetaHalfspaceConfig", "alphabeta_halfspace", "halfspace_data"]


@dataclasses.dataclass(frozen=True)
class AlphaBetaHalfspaceConfig(AlphaBetaSweep):
    """The ``alphabeta_halfspace`` experiment's TOML (besides the shared α-β sweep options)."""

    full_loss_every: int | None = 1
    """Full-data records every step: ``n`` is tiny, the full gradient is cheap."""
    per_class: int = 20
    """Points per class (the paper's 20)."""
    dim: int = 2
    """Input dimension."""
    separation: float = 0.6
    """Class means ``offset·1 ± separation·e_1``."""
    offset: float = 4.0
    """Uncentered inputs (ill-conditioned landscape, curved runs)."""
    data_seed: int = 0
    """Seed of the data."""
    inits: tuple[tuple[float, ...], ...] = ((1.0, -1.0, -3.0), (0.0, 0.0, 0.0), (-1.0, 1.0, 3.0))
    """Initializations ``[w_1, …, w_dim, b]``: the settings."""
    lr: float = 0.25
    """SGD step (the paper's 1/4)."""
    batch_size: int = 1
    """Mini-batch size (the paper's 1)."""
    steps: int = 1500
    """SGD steps per run."""
    early_steps: int = 300
    """Steps counted as early for the reported Aiming failure fraction."""

    def check(self) -> None:
        """Each init has ``dim + 1`` numbers."""
        super().check()
        for init in self.inits:
            if len(init) != self.dim + 1:
                raise OptionsError(
                    f"each init is [w_1, …, w_{self.dim}, b]: {self.dim + 1} numbers, got "
                    f"{list(init)}"
                )


def halfspace_data(
    per_class: int, dim: int, separation: float, offset: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``2·per_class`` points: class 1 around ``offset·1 + separation·e_1``, class 0 mirrored."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.zeros(dim, dtype=torch.float64)
    shift[0] = separation
    center = torch.full((dim,), float(offset), dtype=torch.float64)
    pos = torch.randn(per_class, dim, generator=g, dtype=torch.float64) + center + shift
    neg = torch.randn(per_class, dim, generator=g, dtype=torch.float64) + center - shift
    X = torch.cat([pos, neg])
    Y = torch.cat([torch.ones(per_class, 1), torch.zeros(per_class, 1)]).double()
    return X, Y


@experiment("alphabeta_halfspace", options=AlphaBetaHalfspaceConfig)
def alphabeta_halfspace(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """One setting per initialization; Aiming and α-β on each SGD run."""
    c = experiment_options(AlphaBetaHalfspaceConfig, cfg, full)
    dim = c.dim
    X, Y = halfspace_data(c.per_class, dim, c.separation, c.offset, c.data_seed)

    def setting(j: int, init: list[float]) -> Setting:
        def make(seed: int) -> RunSpec:
            model = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid()).double()
            with torch.no_grad():
                model[0].weight.copy_(torch.tensor([init[:dim]], dtype=torch.float64))
                model[0].bias.fill_(float(init[dim]))
            pb = Problem(model, X, Y, loss="mse", reduction="mean")
            return RunSpec(pb, "sgd", c.steps, c.batch_size, c.lr)

        x = "[" + ", ".join(f"{v:g}" for v in init) + "]"
        return Setting(f"init_{j}", x, make, key={"init": init})

    settings = [setting(j, list(v)) for j, v in enumerate(c.inits)]
    summary = run_sweep(
        "alphabeta_halfspace",
        c,
        out,
        settings,
        xlabel="initialization (w0, b0)",
        xlog=False,
        grid_field="inits",
        progress=progress,
    )
    _halfspace_figure(out, [s.label for s in settings], c.early_steps, summary)
    return summary


def _halfspace_figure(out: Path, labels: list[str], early: int, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from lossgeometry.conditions.alphabeta import ConditionTrace

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for j, label in enumerate(labels):
        tr = ConditionTrace.load(out / "points" / f"{label}.trace.json")
        am = tr.aiming("full")
        m = tr.full_run == 0
        axes[0].semilogy(tr.full_step[m], tr.full_loss[m], color=f"C{j}", label=label)
        axes[1].semilogy(tr.full_step[m], tr.full_grad_norm[m], color=f"C{j}")
        axes[2].plot(am.step[am.run == 0], am.cos[am.run == 0], color=f"C{j}", lw=0.9)
        neg = am.cos <= 0
        row = next(r for r in summary["rows"] if r["setting"] == label)
        row["aiming_early_negative_fraction"] = float(np.mean(neg[am.step < early]))
        row["first_negative_step"] = int(am.step[neg].min()) if neg.any() else None
    axes[0].set_title("full loss f(x_k)")
    axes[1].set_title("full gradient norm")
    axes[2].set_title(r"$\cos\angle(\nabla f(x_k), x_k - x^K)$ (Aiming: > 0)")
    axes[2].axhline(0, color="k", lw=0.8, ls="--")
    for ax in axes:
        ax.set_xlabel("step k")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    save_figure(fig, out, "halfspace.png", dpi=120)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results["rows"] = summary["rows"]
    atomic_write_json(out / "results.json", results)
