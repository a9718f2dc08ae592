"""Report section: the α-β-condition, Aiming and relaxed PL along the training run.

By default it replays the config's own run (same optimizer, step, batches) with the run's end
point as ``x^K`` (no first pass needed: the replay is checked against it) and records the
α-β test quantity at every step. Options (``[report.alphabeta]``): ``batch_size``, ``steps``,
``seeds``, ``optimizer``, ``lr`` (a separate run instead of the config's), ``margin`` (0.1),
``grid`` (41), ``alpha_max`` (automatic), ``exclude_last`` (0), ``full_loss_every``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossgeometry.app.report import html
from lossgeometry.app.report.section import Context, SectionOutput, section

_OWN_RUN_KEYS = ("batch_size", "steps", "seeds", "optimizer", "lr")


@section("alphabeta", title="The α-β-condition, Aiming and PL along training", order=70)
def alphabeta_section(ctx: Context) -> SectionOutput:
    """Smallest feasible (α, β) along the run, heatmap of min T, Aiming angle, PL constants."""
    import matplotlib.pyplot as plt

    from lossgeometry.conditions.alphabeta import record_conditions

    opts: dict[str, Any] = dict(ctx.options)
    tr = ctx.trajectory
    margin = float(opts.get("margin", 0.1))
    exclude_last = int(opts.get("exclude_last", 0))
    own = any(k in opts for k in _OWN_RUN_KEYS)
    kwargs = ctx.config.get("train", {}).get("kwargs")
    if own:
        seeds = [int(s) for s in opts.get("seeds", [ctx.seed])]
        trace = record_conditions(
            ctx.problem,
            opts.get("optimizer", tr.optimizer),
            int(opts.get("steps", tr.num_steps)),
            opts.get("batch_size", tr.batch_size),
            seeds=seeds,
            lr=float(opts["lr"]) if "lr" in opts else tr.lr,
            optimizer_kwargs=kwargs if "optimizer" not in opts else None,
            w0=ctx.w0,
            full_loss_every=opts.get("full_loss_every"),
            store_indices=False,
            progress=ctx.progress,
        )
        what = "a separate run set by [report.alphabeta]"
    else:
        if tr.num_steps < 1:
            return SectionOutput(results={}, html="", skipped="the training run took no steps")
        trace = record_conditions(
            ctx.problem,
            tr.optimizer,
            int(tr.num_steps),
            tr.batch_size,
            seeds=(int(tr.seed),),
            lr=tr.lr,
            optimizer_kwargs=kwargs,
            w0=ctx.w0,
            x_final=tr.w_final,
            full_loss_every=opts.get("full_loss_every"),
            store_indices=False,
            progress=ctx.progress,
        )
        what = "a replay of the training run above (checked to end at its last iterate)"

    pair = trace.smallest_pair(margin, exclude_last=exclude_last)
    size = int(opts.get("grid", 41))
    top = opts.get("alpha_max")
    if top is None:
        top = 10.0 if pair is None else float(np.ceil(max(1.0, 1.5 * pair[0] + 0.5)))
    g = np.linspace(0.0, float(top), size)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    trace.plot(g, g, margin=margin, ax=axes[0])
    metrics: dict[str, Any] = {
        "smallest α": float("nan") if pair is None else pair[0],
        "smallest β": float("nan") if pair is None else pair[1],
    }
    results: dict[str, Any] = {"summary": trace.summary(margin), "what": what}
    has_full = trace.full_step.size > 0 and not np.all(np.isnan(trace.full_inner))
    if has_full:
        am = trace.aiming("full")
        am.plot(ax=axes[1])
        pl = trace.pl_relaxed((1.0, 2.0))
        pl.plot(ax=axes[2])
        metrics["Aiming fails at"] = f"{100 * am.negative_fraction:.0f}% of records"
        metrics["min aiming coef."] = am.min_coefficient
        metrics["PL µ (δ=2)"] = float(pl.mu[1])
        results["aiming"] = am.to_dict()
        results["pl"] = pl.to_dict()
    else:
        for ax in axes[1:]:
            ax.axis("off")
    fig.tight_layout()
    results["min_T"] = {
        "alphas": g,
        "betas": g,
        "values": trace.min_T(g, g, exclude_last=exclude_last),
    }
    results["trace"] = trace.to_dict()
    text = (
        "Definition (Islamov et al., NeurIPS 2024): f satisfies the α-β-condition if "
        "⟨∇f_i(x), x − x_p⟩ ≥ α (f_i(x) − f_i(x_p)) − β (f_i(x) − f_i*) for all i. Along the "
        f"run ({what}) the last iterate x^K stands in for the projection x_p and the "
        "mini-batch loss for f_i, with f_i* = 0; a pair holds when T(x_k) ≥ 0 at every step. "
        f"Pairs need α ≥ β + {margin:g}. Losses are means of per-sample losses."
    )
    verdict = (
        html.note(
            f"No pair with α ≥ β + {margin:g} holds along this run: the condition is not "
            "supported by the recorded steps.",
            "warn",
        )
        if pair is None
        else ""
    )
    body = (
        html.metrics(metrics)
        + verdict
        + html.para(text)
        + ctx.figure(
            fig,
            "alphabeta.png",
            "min over steps of T(x_k) (blue: the pair holds), Aiming angle, relaxed PL constant",
        )
    )
    return SectionOutput(results=results, html=body)
