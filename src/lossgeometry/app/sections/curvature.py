"""Report section: curvature of the loss at initialization and at the trained point.

It calls :func:`lossgeometry.curvature.profile.curvature_profile` at ``w0`` (without the
trace) and at ``w_T`` and renders the results: both ends of the loss Hessian's spectrum, its
SLQ density, its trace (Hutch++ with a confidence interval) and the check
``λ_max(∇²L) ≤ c (‖DF‖² + ‖D²F‖ ‖F − Y‖)`` at both points.

Options (``[report.curvature]``) are the fields of
:class:`~lossgeometry.curvature.profile.CurvatureOptions`, with their defaults there:
``top``, ``bottom``, ``tol`` (relative to ``‖H‖``), ``probes`` and ``steps`` of the density,
``trace_samples``, ``bound`` (square loss only), ``restarts`` (of the model-Hessian norm),
``solver``, ``criterion``, ``of``, ``density``, ``trace``, ``model_hessian`` and ``seed``
(default: the config's seed).
"""

from __future__ import annotations

import math
from typing import Any

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section


@section(
    "curvature",
    title="Curvature: loss Hessian spectrum, density, trace",
    order=40,
    data_parallel=True,
)
def curvature_section(ctx: Context) -> SectionOutput:
    """Both ends of the Hessian spectrum, its density, trace and λ_max ≤ L_F² + β_F‖F − y‖."""
    import matplotlib.pyplot as plt

    from lossgeometry.curvature.profile import CurvatureOptions, curvature_profile

    opts = CurvatureOptions.from_mapping(
        {"seed": ctx.seed, **ctx.options}, where="report.curvature"
    )
    problem = ctx.problem
    points = {"init": ctx.w0, "trained": ctx.w_trained}
    results: dict[str, Any] = {"options": opts.to_dict(), "points": {}}
    summary: dict[str, Any] = {}
    rows, bound_rows = [], []
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, w in points.items():
        # the trace is reported at the trained point only
        prof = curvature_profile(
            problem,
            w,
            options=opts if name == "trained" else opts.replace(trace=False),
            progress=ctx.progress,
        )
        summary.update({f"{k}_{name}": v for k, v in prof.summary().items()})
        spec, dens, b = prof.spectrum, prof.density, prof.bound
        point: dict[str, Any] = {"spectrum": spec.to_dict()}
        if dens is not None:
            dens.plot(
                ax, label=f"{name} (λ_max {spec.lambda_max:.3g}, λ_min {spec.lambda_min:.3g})"
            )
            point["density"] = dens.to_dict()
        if prof.trace is not None:
            point["trace"] = prof.trace.to_dict()
        if b is not None:
            point["bound"] = b.to_dict()
            bound_rows.append(
                [
                    name,
                    b.lambda_max,
                    b.lf_squared,
                    b.beta,
                    b.residual_norm,
                    b.bound,
                    "yes" if b.holds else "NO",
                    "yes" if b.gauss_newton_suffices else "no",
                ]
            )
        if prof.model_hessian is not None:
            point["model_hessian_norm"] = prof.model_hessian.to_dict()
        results["points"][name] = point
        rows.append(
            [
                name,
                *[float(x) for x in spec.top],
                "…",
                *[float(x) for x in spec.bottom][::-1],
                spec.matvecs,
                "yes" if spec.converged else "no",
            ]
        )
    ax.set_title("spectral density of ∇²L (SLQ, log scale)")
    fig.tight_layout()
    specs = {name: results["points"][name]["spectrum"] for name in points}
    ends = {name: (sp["top"][0] if sp["top"] else math.nan) for name, sp in specs.items()}
    lows = {name: (sp["bottom"][0] if sp["bottom"] else math.nan) for name, sp in specs.items()}
    metrics: dict[str, Any] = {
        "λ_max at init": ends["init"],
        "λ_max trained": ends["trained"],
        "λ_min at init": lows["init"],
        "λ_min trained": lows["trained"],
    }
    tr_d = results["points"]["trained"].get("trace")
    if tr_d is not None:
        metrics["tr ∇²L trained"] = tr_d["estimate"]
        metrics["± (95 %)"] = 0.5 * (tr_d["ci_high"] - tr_d["ci_low"])
    k_top, k_bot = opts.top, opts.bottom
    header = (
        ["point"]
        + [f"λ_{i + 1}" for i in range(k_top)]
        + ["…"]
        + [f"λ_p−{k_bot - 1 - i}" if k_bot - 1 - i else "λ_p" for i in range(k_bot)]
        + ["products", "converged"]
    )
    neg = lows["trained"]
    body = html.metrics(metrics) + html.table(rows, header)
    tol_text = f"{opts.tol:g}" if opts.tol is not None else f"{specs['init']['tol']:g}"
    body += html.para(
        f"Eigenvalues of the loss Hessian (normalization of the loss: reduction "
        f"{problem.reduction!r}) by thick-restart Lanczos, accurate to {tol_text}·‖H‖. "
        "Near a global minimum of an over-parameterized model the Hessian has at most nk "
        "positive eigenvalues and the rest near zero; negative eigenvalues close to the "
        "minimum show the absence of a convex neighbourhood."
    )
    if isinstance(neg, (int, float)) and math.isfinite(neg) and neg < 0:
        body += html.note(
            f"λ_min = {neg:.3g} < 0 at the trained point: the loss is not locally convex there.",
            "info",
        )
    body += ctx.figure(fig, "curvature_density.png", "SLQ spectral density at init and trained")
    if bound_rows:
        body += html.para(
            "Check of λ_max(∇²L) ≤ c(L_F² + β_F‖F − y‖) at each point, with L_F² = σ_max(J)² and "
            "β_F = ‖D²F‖ evaluated at the point (c = loss_scale). 'GN suffices' says whether "
            "c·L_F² alone already bounds λ_max; when it does not, the model-Hessian term is needed."
        )
        body += html.table(
            bound_rows,
            ["point", "λ_max(∇²L)", "L_F²", "β_F", "‖F − y‖", "bound", "holds", "GN suffices"],
        )
    elif opts.bound:
        body += html.note("The bound check applies to the square loss only; skipped.", "info")
    return SectionOutput(results=results, html=body, summary=summary)
