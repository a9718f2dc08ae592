"""Report section: the PL* certificate — constants, verdict, predicted versus observed loss.

It calls :func:`lossgeometry.conditions.plstar_study.plstar_study` from ``w0`` with the
training run and renders the result. Options (``[report.plstar]``) are the fields of
:class:`~lossgeometry.conditions.plstar_study.PLStarOptions`, with their defaults there:
``samples`` (random points per round in ``B(w0, R)`` besides ``w0`` and the trained point;
each costs a kernel spectrum and a model-Hessian norm), ``max_rounds``, ``radius``,
``radii``, ``margin``, ``trajectory_points``, ``hessian_restarts`` (random restarts of the
model-Hessian norm estimator besides its start from the residual direction ``u = F(w) − y``;
more restarts tighten the lower bound ``β_F`` of the sup at a few seconds each),
``certified_gd_steps`` (when the certificate holds, run ``CertifiedGD`` this many steps and
compare it with the bound; 0: skip) and ``seed`` (default: the config's seed).
"""

from __future__ import annotations

import math
from typing import Any

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section


@section("plstar", title="PL* certificate", order=50, data_parallel=True)
def plstar_section(ctx: Context) -> SectionOutput:
    """Estimate µ, L_F, β_F in a ball, certify GD, compare the bound with the training run."""
    from lossgeometry.conditions.plstar_study import PLStarOptions, plstar_study

    opts = PLStarOptions.from_mapping({"seed": ctx.seed, **ctx.options}, where="report.plstar")
    pb = ctx.problem
    if not pb.is_mse:
        return SectionOutput(
            results={},
            html="",
            skipped="PL* certificates are derived for the square loss (loss = 'mse')",
        )
    study = plstar_study(pb, ctx.w0, trajectory=ctx.trajectory, options=opts, progress=ctx.progress)
    cert = study.certificate
    results: dict[str, Any] = {"certificate": cert.to_dict()}
    body = html.note(cert.verdict, "ok" if cert.certified else "warn")
    body += html.kv_table(cert.summary())

    tr = ctx.trajectory
    check = study.training_run
    if check is not None:
        results["training_run"] = check.to_dict()
        fig = check.plot()
        fig.axes[0].set_title(f"training run ({tr.optimizer}, lr = {tr.lr:.3g})", fontsize=9)
        _radius_title(fig.axes[1], check.radius, check.distance)
        body += html.para(
            f"The configured training run against the bound L(w0)(1 − η c µ)^t at its own step "
            f"η = {html.fmt(float(tr.lr))} (certified step: {html.fmt(cert.step_size)}). "
            + check.note
            + (" " + check.bound_remark if check.bound_remark else "")
        )
        caption = "observed loss vs bound; distance vs R"
        if check.bound_remark:
            caption += f" (the bound is flat: η c µ = {check.contraction:.2g} per step)"
        body += ctx.figure(fig, "plstar_training.png", caption)

    steps = opts.certified_gd_steps
    gd_check = study.certified_gd
    if gd_check is not None:
        results["certified_gd"] = gd_check.to_dict()
        fig = gd_check.plot()
        fig.axes[0].set_title(f"CertifiedGD (η = {cert.step_size:.3g})", fontsize=9)
        _radius_title(fig.axes[1], gd_check.radius, gd_check.distance)
        holds = gd_check.loss_holds and gd_check.distance_holds
        if gd_check.bound_remark:
            body += html.para(gd_check.bound_remark)
        body += html.note(
            f"CertifiedGD for {steps} steps: the loss stayed below the bound and the iterates "
            "inside the certified ball."
            if holds
            else f"CertifiedGD for {steps} steps left the bound (max observed/predicted "
            f"{gd_check.max_excess:.3g}) or the ball: the sampled constants were too optimistic.",
            "ok" if holds else "warn",
        )
        body += ctx.figure(fig, "plstar_certified_gd.png", "CertifiedGD: loss vs bound")

    # the PL ratio of the run against its kernel bound, at the evaluated points of the run
    c = pb.loss_scale
    rows = []
    lam0 = cert.lambda0
    rows.append(("w0", float(tr.pl_ratio[0]), 2 * c * lam0))
    src = list(cert.sample_source)
    if "trajectory" in src:
        j = len(src) - 1 - src[::-1].index("trajectory")
        rows.append(("w_T", float(tr.pl_ratio[-1]), 2 * c * float(cert.sample_lambda_min[j])))
    results["pl_ratio_vs_kernel"] = [
        {"point": p, "pl_ratio": r, "two_c_lambda_min": b} for p, r, b in rows
    ]
    body += html.para(
        "‖∇L‖²/L ≥ 2c·λ_min(K) holds at every point (docs/theory.md, section 1); the PL ratio "
        "of the run beside its kernel bound:"
    )
    body += html.table(rows, header=["point", "‖∇L‖²/L", "2c·λ_min(K)"])
    return SectionOutput(results=results, html=body, summary=study.summary())


def _radius_title(ax: Any, radius: float, distance: Any) -> None:
    """Say where R is when it is far off the distance axis (it is then not drawn to scale)."""
    dmax = float(max(distance)) if len(distance) else 0.0
    if math.isfinite(radius) and radius > 20 * max(dmax, 1e-300):
        ax.set_ylim(0, 1.2 * max(dmax, 1e-12))
        ax.set_title(f"R = {radius:.3g} (off the chart)", fontsize=9)
    elif not math.isfinite(radius):
        ax.set_title("R = ∞ (µ = 0)", fontsize=9)
