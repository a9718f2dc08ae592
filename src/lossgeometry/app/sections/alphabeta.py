"""Report section: the α-β-condition, Aiming and relaxed PL along the training run.

By default it replays the config's own run (same optimizer, step, batches) with the run's end
point as ``x^K`` (no first pass needed: the replay is checked against it) and records the
α-β test quantity at every step, with
:func:`lossgeometry.conditions.alphabeta_study.alphabeta_study` (the study the CLI calls
too). Options (``[report.alphabeta]``): ``batch_size``, ``steps``, ``seeds``, ``optimizer``,
``lr`` (a separate run instead of the config's), and the fields of
:class:`~lossgeometry.conditions.alphabeta_study.AlphaBetaOptions` with their defaults there
(``margin``, ``grid``, ``alpha_max``, ``exclude_last``, ``full_loss_every``, ``f_star``).
"""

from __future__ import annotations

from typing import Any

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section

_OWN_RUN_KEYS = ("batch_size", "steps", "seeds", "optimizer", "lr")


@section(
    "alphabeta",
    title="The α-β-condition, Aiming and PL along training",
    order=70,
    data_parallel=True,
)
def alphabeta_section(ctx: Context) -> SectionOutput:
    """Smallest feasible (α, β) along the run, heatmap of min T, Aiming angle, PL constants."""
    import matplotlib.pyplot as plt

    from lossgeometry.conditions.alphabeta_study import AlphaBetaOptions, alphabeta_study

    opts: dict[str, Any] = dict(ctx.options)
    run = {k: opts.pop(k) for k in _OWN_RUN_KEYS if k in opts}
    ab = AlphaBetaOptions.from_mapping(opts, where="report.alphabeta")
    tr = ctx.trajectory
    kwargs = ctx.config.get("train", {}).get("kwargs")
    if run:
        seeds = [int(s) for s in run.get("seeds", [ctx.seed])]
        study = alphabeta_study(
            ctx.problem,
            run.get("optimizer", tr.optimizer),
            int(run.get("steps", tr.num_steps)),
            run.get("batch_size", tr.batch_size),
            seeds=seeds,
            lr=float(run["lr"]) if "lr" in run else tr.lr,
            optimizer_kwargs=kwargs if "optimizer" not in run else None,
            w0=ctx.w0,
            options=ab,
            progress=ctx.progress,
        )
        what = "a separate run set by [report.alphabeta]"
    else:
        if tr.num_steps < 1:
            return SectionOutput(results={}, html="", skipped="the training run took no steps")
        study = alphabeta_study(
            ctx.problem,
            tr.optimizer,
            int(tr.num_steps),
            tr.batch_size,
            seeds=(int(tr.seed),),
            lr=tr.lr,
            optimizer_kwargs=kwargs,
            w0=ctx.w0,
            x_final=tr.w_final,
            options=ab,
            progress=ctx.progress,
        )
        what = "a replay of the training run above (checked to end at its last iterate)"

    trace, pair, g, margin = study.trace, study.smallest_pair, study.alphas, ab.margin
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    trace.plot(axes[0], alphas=g, betas=g, margin=margin)
    metrics: dict[str, Any] = {
        "smallest α": float("nan") if pair is None else pair[0],
        "smallest β": float("nan") if pair is None else pair[1],
    }
    results: dict[str, Any] = {"summary": trace.summary(margin), "what": what}
    am, pl = study.aiming, study.pl
    if am is not None and pl is not None:
        am.plot(ax=axes[1])
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
    results["min_T"] = {"alphas": g, "betas": g, "values": study.min_T}
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
    return SectionOutput(results=results, html=body, summary=study.summary())
