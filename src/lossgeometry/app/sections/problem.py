"""Report section: what the problem is (p, n, k, p/(nk)) and how it was set up."""

from __future__ import annotations

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section


@section("problem", title="Problem", order=10, data_parallel=True)
def problem_section(ctx: Context) -> SectionOutput:
    """Sizes (p, n, k, p/(nk)), loss and its normalization, model and data."""
    pb = ctx.problem
    s = pb.summary()
    over = s["overparameterization"]
    regime = (
        "over-parameterized (p > nk): interpolation is possible and minima form a manifold of "
        f"dimension p − nk = {pb.p - pb.n * pb.k:,}"
        if pb.p > pb.n * pb.k
        else "under-parameterized (p ≤ nk): the tangent kernel is singular, PL* cannot hold"
    )
    loss_formula = {
        ("mse", "sum"): "L(w) = ½ Σᵢ ‖f(w; xᵢ) − yᵢ‖²",
        ("mse", "mean"): "L(w) = (1/(nk)) Σᵢ ‖f(w; xᵢ) − yᵢ‖²",
        ("cross_entropy", "mean"): "L(w) = (1/n) Σᵢ −log softmax(f(w; xᵢ))[yᵢ]",
        ("cross_entropy", "sum"): "L(w) = Σᵢ −log softmax(f(w; xᵢ))[yᵢ]",
    }.get((pb.loss_name, pb.reduction), f"custom loss {pb.loss_name}, reduction {pb.reduction}")
    model_cfg = {k: v for k, v in ctx.config.get("model", {}).items() if k != "kwargs"}
    body = (
        html.metrics(
            {"parameters p": pb.p, "samples n": pb.n, "outputs k": pb.k, "p / (nk)": over},
            hints={
                "p / (nk)": "over-parameterization ratio; > 1 means more unknowns than equations"
            },
        )
        + html.note(regime, "ok" if pb.p > pb.n * pb.k else "warn")
        + html.kv_table(
            {
                "loss": loss_formula,
                "reduction": pb.reduction
                + ("" if "reduction" in ctx.config.get("loss", {}) else " (the loss's default)"),
                "data": ctx.data_name or ctx.config.get("data", {}).get("name", "?"),
                "model": ", ".join(f"{k}={v}" for k, v in model_cfg.items()),
                "dtype / device": f"{s['dtype']} / {s['device']}",
                "seed": ctx.seed,
            }
        )
    )
    summary = {k: v for k, v in s.items() if isinstance(v, (int, float, str, bool))}
    return SectionOutput(results={**s, "model_config": model_cfg}, html=body, summary=summary)
