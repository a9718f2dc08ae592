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

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lossgeometry.app.experiments.alphabeta_common import (
    RunSpec,
    Setting,
    _save,
    merged_config,
    run_sweep,
)
from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.problem import Problem
from lossgeometry.results import atomic_write_json


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


@experiment("alphabeta_halfspace")
def alphabeta_halfspace(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """One setting per initialization; Aiming and α-β on each SGD run."""
    c = merged_config(cfg, full)
    c.setdefault("full_loss_every", 1)  # n is tiny: the full gradient every step is cheap
    dim = int(c.get("dim", 2))
    X, Y = halfspace_data(
        int(c.get("per_class", 20)),
        dim,
        float(c.get("separation", 0.6)),
        float(c.get("offset", 4.0)),
        int(c.get("data_seed", 0)),
    )
    inits = c.get("inits", [[1.0, -1.0, -3.0], [0.0, 0.0, 0.0], [-1.0, 1.0, 3.0]])

    def setting(j: int, init: list[float]) -> Setting:
        if len(init) != dim + 1:
            raise ValueError(f"each init is [w_1, …, w_{dim}, b]: {dim + 1} numbers, got {init}")

        def make(seed: int) -> RunSpec:
            model = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid()).double()
            with torch.no_grad():
                model[0].weight.copy_(torch.tensor([init[:dim]], dtype=torch.float64))
                model[0].bias.fill_(float(init[dim]))
            pb = Problem(model, X, Y, loss="mse", reduction="mean")
            return RunSpec(
                pb,
                "sgd",
                int(c.get("steps", 1500)),
                int(c.get("batch_size", 1)),
                float(c.get("lr", 0.25)),
            )

        return Setting(f"init_{j}", "[" + ", ".join(f"{v:g}" for v in init) + "]", make)

    settings = [setting(j, list(map(float, v))) for j, v in enumerate(inits)]
    summary = run_sweep(
        "alphabeta_halfspace",
        c,
        out,
        settings,
        xlabel="initialization (w0, b0)",
        xlog=False,
        progress=progress,
    )
    _halfspace_figure(out, [s.label for s in settings], int(c.get("early_steps", 300)), summary)
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
    fig.tight_layout()
    _save(fig, out / "halfspace.png")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results["rows"] = summary["rows"]
    atomic_write_json(out / "results.json", results)
