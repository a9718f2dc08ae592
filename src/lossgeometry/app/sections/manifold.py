"""Report section: the manifold of global minima through the trained point.

It calls :func:`lossgeometry.analyze_manifold` from the trained point and renders the
result. Options (``[report.manifold]``) are the fields of
:class:`~lossgeometry.manifold.options.ManifoldOptions`, with their defaults there:

* ``max_equations``: study at most this many equations ``mk``: the Gauss–Newton
  interpolation and the Jacobian factorizations cost ``O(mk · p)`` memory and
  ``O((mk)² p)`` time per iteration. On the default problem (``nk = 1280``, ``p ≈ 85 000``)
  the full solve would need an 830 MiB Jacobian per iteration, so the section studies a
  seeded subset of ``max_equations // k`` samples (10 of 128) and says so. Raise it for a
  larger study (all samples are used when they fit).
* ``hessian``: count the Hessian's zero eigenvalues (``"auto"``: dense for small ``p``,
  randomized range finder above); ``false`` to skip.
* ``walk_steps``, ``walk_step_size`` (default ``0.01 ‖w*‖``), ``radii``.
* ``tol``, ``max_iter``, ``seed`` (default: the config's seed).

The section is skipped, with the reason, for a non-MSE loss and when no interpolant is
found within ``max_iter`` Gauss–Newton iterations (e.g. an under-parameterized subset).
"""

from __future__ import annotations

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section


@section("manifold", title="The manifold of global minima", order=60)
def manifold_section(ctx: Context) -> SectionOutput:
    """Interpolate from the trained point; dimension, loss growth, walk, non-convexity."""
    from lossgeometry.manifold import analyze_manifold
    from lossgeometry.manifold.options import ManifoldOptions

    opts = ManifoldOptions.from_mapping({"seed": ctx.seed, **ctx.options}, where="report.manifold")
    problem = ctx.problem
    if not problem.is_mse:
        return SectionOutput(
            results={},
            html="",
            skipped=(
                f"the loss is {problem.loss_name!r}: the global minima form the manifold "
                "F(w) = Y only for the squared loss"
            ),
        )
    res = analyze_manifold(problem, ctx.w_trained, options=opts, progress=ctx.progress)
    results = res.to_dict()
    if res.walk is not None:
        results["walk"].pop("w_end", None)
    results["summary"] = res.summary()
    if not res.success:
        return SectionOutput(
            summary=res.summary(),
            results=results,
            html="",
            skipped=(
                f"no interpolant found from the trained point on {len(res.samples)} samples "
                f"(nk = {res.nk}, p = {res.p}): {res.reason}"
            ),
        )
    rep, gr, seg, curv, walk = res.report, res.growth, res.segment, res.curvature, res.walk
    assert rep is not None and gr is not None and curv is not None
    m = len(res.samples)
    subset = m < res.n_total
    metrics = {
        "samples studied": f"{m} of {res.n_total}",
        "‖F(w*) − Y‖": rep.residual_norm,
        "rank J": rep.rank.rank,
        "dim M (p − rank)": rep.dimension,
        (f"p − mk (m = {m})" if subset else "p − nk"): rep.expected_dimension,
        "Hessian nullity": "—" if rep.hessian_nullity is None else rep.hessian_nullity,
        "normal exponent": gr.normal_exponent if gr.normal_exponent is not None else "—",
        "tangent exponent": gr.tangent_exponent if gr.tangent_exponent is not None else "flat",
    }
    if seg is not None:
        metrics["midpoint loss"] = seg.midpoint_loss
    nk = "p − mk" if subset else "p − nk"
    verdict = (
        f"The measured dimension equals {nk}"
        + (" and the Hessian nullity agrees" if rep.hessian_nullity is not None else "")
        + ": the minima through w* form a manifold of that dimension (Cooper)."
        if rep.agrees
        else f"The measured dimension does NOT equal {nk}: see the notes."
    )
    text = (
        "From the trained point, Gauss–Newton (minimum-norm steps, float64) solves F(w) = Y "
        "to ‖F − Y‖ < tol. At the interpolant w*, the rank of J = DF(w*) is read from its "
        "singular values (largest relative gap), the dimension of the solution manifold is "
        "p − rank J, and the loss Hessian (= c JᵀJ at w*) must have exactly that many zero "
        "eigenvalues. The loss grows like t² along normal directions and like t⁴ along "
        "tangent ones. Walking along the manifold (tangent step + Gauss–Newton retraction) "
        "keeps the loss at rounding level, yet the straight segment back to w* leaves it "
        "(midpoint loss > 0), and points with negative Hessian eigenvalues exist at every "
        "radius around w*: the loss is not convex in any neighbourhood of its minima "
        "(Liu, Zhu & Belkin)."
    )
    body = html.metrics(metrics)
    if subset:
        body += html.para(subset_sentence(m, res.n_total, res.k, res.p))
    body += html.para(verdict) + html.para(text)
    warn = ("not an interpolant", "rank deficient", "differs", "retraction failed")
    for n in res.notes:
        body += html.note(n, "warn" if any(w in n for w in warn) else "info")
    rows = [["rank gap σ_r/σ_{r+1} (or σ_min/floor)", rep.rank.gap]]
    if walk is not None and walk.steps:
        rows += [
            ["walk steps (persistent)", walk.steps],
            ["walk step size", walk.step_size],
            ["distance travelled", float(walk.distance_travelled[-1])],
            ["max loss after retraction", float(walk.loss.max())],
            ["max loss before retraction", float(walk.loss_before.max())],
        ]
    rows += [
        [f"negative curvature at ρ = {r:g} ({curv.certificate})", float(e)]
        for r, e in zip(curv.radii, curv.eigenvalue, strict=True)
    ]
    if curv.exponent is not None:
        rows.append(["slope of |λ| vs ρ (≈ 1)", curv.exponent])
    rows += [[f"time: {k}", v] for k, v in res.timings.items()]
    body += html.table(rows, header=["quantity", "value"])
    body += ctx.figure(
        res.plot(),
        "manifold.png",
        "Singular values of J and Hessian eigenvalues; loss growth along tangent/normal "
        "directions; loss on the segment w* → walk end; negative curvature near w*.",
    )
    return SectionOutput(results=results, html=body, summary=res.summary())


def subset_sentence(m: int, n: int, k: int, p: int) -> str:
    """Why this section's ``p − mk`` differs from the Problem section's ``p − nk``."""
    return (
        f"This section studies a {m}-sample subset of the {n} samples (m = {m}): its manifold "
        f"is the solution set of those {m * k} equations, of dimension p − mk = {p - m * k:,}. "
        f"The Problem section's p − nk = {p - n * k:,} is the dimension for all {n} samples; "
        "their solution set lies inside this one."
    )
