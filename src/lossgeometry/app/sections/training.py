"""Report section: the training run — loss curve, gradient norm, distance, PL ratio."""

from __future__ import annotations

import numpy as np

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section


@section("training", title="Training and the PL ratio", order=20, data_parallel=True)
def training_section(ctx: Context) -> SectionOutput:
    """The loss curve and the empirical PL ratio ‖∇L‖²/L along the run."""
    import matplotlib.pyplot as plt

    tr = ctx.trajectory
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    tr.plot(axes[0], quantity="loss")
    axes[0].set_title("loss L(w_t)")
    tr.plot(axes[1], quantity="pl_ratio")
    axes[1].set_title("PL ratio ‖∇L‖² / L")
    axes[2].plot(tr.steps, tr.distance, lw=1.8, color="C2")
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("‖w_t − w_0‖")
    axes[2].set_title("distance from initialization")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    finite = tr.pl_ratio[np.isfinite(tr.pl_ratio)]
    pl_min = float(finite.min()) if finite.size else float("nan")
    # linear convergence rate actually observed over the run
    L0, LT = float(tr.loss[0]), float(tr.loss[-1])
    steps = max(int(tr.steps[-1]), 1)
    rate = (LT / L0) ** (1.0 / steps) if L0 > 0 and LT > 0 else float("nan")
    results = {
        "optimizer": tr.optimizer,
        "lr": tr.lr,
        "batch_size": tr.batch_size,
        "steps": int(tr.num_steps),
        "loss_initial": L0,
        "loss_final": LT,
        "grad_norm_final": float(tr.grad_norm[-1]),
        "distance_final": float(tr.distance[-1]),
        "pl_ratio_min": pl_min,
        "observed_rate_per_step": rate,
        "wall_time_s": tr.wall_time,
        "trajectory": tr.to_dict(),
    }
    text = (
        "The PL ratio ‖∇L(w)‖²/L(w) is the largest µ for which the µ-PL* inequality "
        "‖∇L‖² ≥ µ L holds at w. If it stays bounded away from 0 along the run, the run "
        "converged linearly; for L = ½‖F − y‖² it is at least 2 λ_min(K(w))."
    )
    body = (
        html.metrics(
            {
                "initial loss": L0,
                "final loss": LT,
                "min PL ratio": pl_min,
                "mean factor / step": rate,
                "distance travelled": float(tr.distance[-1]),
            }
        )
        + html.para(text)
        + ctx.figure(fig, "training.png", f"{tr.optimizer}, lr={html.fmt(tr.lr)}, {steps} steps")
    )
    summary = {k: v for k, v in results.items() if k != "trajectory"}
    return SectionOutput(results=results, html=body, summary=summary)
