"""Report section: curvature of the loss at initialization and at the trained point.

Both ends of the loss Hessian's spectrum, its SLQ density, its trace (Hutch++ with a
confidence interval) and the check ``λ_max(∇²L) ≤ c (‖DF‖² + ‖D²F‖ ‖F − Y‖)`` at both points.

Options (``[report.curvature]``): ``top`` (3), ``bottom`` (3), ``tol`` (1e-3, relative to
``‖H‖``), ``probes`` (4) and ``steps`` (30) of the density, ``trace_samples`` (30 products),
``bound`` (true; square loss only), ``restarts`` (1, of the model-Hessian norm), ``seed``.
"""

from __future__ import annotations

import math
from typing import Any

from lossgeometry.app.report import html
from lossgeometry.app.report.section import Context, SectionOutput, section

_DEFAULTS: dict[str, Any] = {
    "top": 3,
    "bottom": 3,
    "tol": 1e-3,
    "probes": 4,
    "steps": 30,
    "trace_samples": 30,
    "bound": True,
    "restarts": 1,
}


@section("curvature", title="Curvature: loss Hessian spectrum, density, trace", order=40)
def curvature_section(ctx: Context) -> SectionOutput:
    """Both ends of the Hessian spectrum, its density, trace and λ_max ≤ L_F² + β_F‖F − y‖."""
    import matplotlib.pyplot as plt

    from lossgeometry.curvature import (
        hessian_bound,
        hessian_density,
        hessian_spectrum,
        hessian_trace,
    )

    unknown = set(ctx.options) - set(_DEFAULTS) - {"seed"}
    if unknown:
        raise ValueError(
            f"unknown [report.curvature] options {sorted(unknown)}; known: {sorted(_DEFAULTS)}"
        )
    opt = {**_DEFAULTS, **ctx.options}
    seed = int(opt.get("seed", ctx.seed))
    problem = ctx.problem
    points = {"init": ctx.w0, "trained": ctx.w_trained}
    results: dict[str, Any] = {"options": opt, "points": {}}
    rows, bound_rows = [], []
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, w in points.items():
        spec = hessian_spectrum(
            problem,
            w,
            top=int(opt["top"]),
            bottom=int(opt["bottom"]),
            tol=float(opt["tol"]),
            method="lanczos",
            seed=seed,
            progress=ctx.progress,
        )
        dens = hessian_density(
            problem,
            w,
            probes=int(opt["probes"]),
            steps=int(opt["steps"]),
            seed=seed,
            progress=ctx.progress,
        )
        dens.plot(ax, label=f"{name} (λ_max {spec.lambda_max:.3g}, λ_min {spec.lambda_min:.3g})")
        point: dict[str, Any] = {"spectrum": spec.to_dict(), "density": dens.to_dict()}
        if name == "trained":
            tr = hessian_trace(problem, w, samples=int(opt["trace_samples"]), seed=seed)
            point["trace"] = tr.to_dict()
        if opt["bound"] and problem.is_mse:
            b = hessian_bound(
                problem,
                w,
                tol=float(opt["tol"]),
                seed=seed,
                restarts=int(opt["restarts"]),
                progress=ctx.progress,
            )
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
    trained = results["points"]["trained"]
    tr_d = trained["trace"]
    metrics = {
        "λ_max at init": results["points"]["init"]["spectrum"]["top"][0],
        "λ_max trained": trained["spectrum"]["top"][0],
        "λ_min at init": results["points"]["init"]["spectrum"]["bottom"][0],
        "λ_min trained": trained["spectrum"]["bottom"][0],
        "tr ∇²L trained": tr_d["estimate"],
        "± (95 %)": 0.5 * (tr_d["ci_high"] - tr_d["ci_low"]),
    }
    k_top, k_bot = int(opt["top"]), int(opt["bottom"])
    header = (
        ["point"]
        + [f"λ_{i + 1}" for i in range(k_top)]
        + ["…"]
        + [f"λ_p−{k_bot - 1 - i}" if k_bot - 1 - i else "λ_p" for i in range(k_bot)]
        + ["products", "converged"]
    )
    neg = trained["spectrum"]["bottom"][0]
    body = html.metrics(metrics) + html.table(rows, header)
    body += html.para(
        f"Eigenvalues of the loss Hessian (normalization of the loss: reduction "
        f"{problem.reduction!r}) by thick-restart Lanczos, accurate to {opt['tol']:g}·‖H‖. "
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
    elif opt["bound"]:
        body += html.note("The bound check applies to the square loss only; skipped.", "info")
    return SectionOutput(results=results, html=body)
