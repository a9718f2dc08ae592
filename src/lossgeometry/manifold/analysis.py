"""One call that runs the whole manifold study on a Problem (used by the report and the CLI).

:func:`analyze_manifold` interpolates from a start point (usually the trained one), then
measures the solution manifold there: rank and dimension, Hessian nullity, loss growth
exponents, a short walk along the manifold, the loss at the midpoint between two minima and
negative curvature near ``w*``.

Large problems are studied on a **subset of the data**: the dense Gauss–Newton solve costs
``O(nk · p)`` memory and ``O(nk² p)`` time per iteration, which for the default report problem
(``nk = 1280``, ``p ≈ 85 000``: an 830 MiB Jacobian) is far over a 20-second budget. The
global minima of the first ``m`` samples form a manifold of dimension ``p − mk`` that contains
the full problem's solution set, and Cooper's theorem applies to it in the same way; the
result records which samples were used.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import panels
from lossgeometry._progress import CostEstimate, announce_cost
from lossgeometry.linalg.dense import DENSE_MAX_ORDER
from lossgeometry.manifold._linalg import (
    DENSE_JACOBIAN_MAX_BYTES,
    as_float64,
    choose_jacobian,
    require_mse,
    subproblem,
)
from lossgeometry.manifold.growth import LossGrowth, loss_growth
from lossgeometry.manifold.interpolant import find_interpolant
from lossgeometry.manifold.nonconvexity import (
    NegativeCurvature,
    SegmentLoss,
    negative_curvature_near,
    segment_loss,
)
from lossgeometry.manifold.options import ManifoldOptions
from lossgeometry.manifold.report import ManifoldReport, solution_manifold
from lossgeometry.manifold.walk import ManifoldWalk, walk_manifold
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["ManifoldAnalysis", "analyze_manifold"]

_NESTED: dict[str, type[Result]] = {
    "report": ManifoldReport,
    "growth": LossGrowth,
    "walk": ManifoldWalk,
    "segment": SegmentLoss,
    "curvature": NegativeCurvature,
}


@dataclasses.dataclass(frozen=True)
class ManifoldAnalysis(Result):
    """The manifold study of one Problem at one start point.

    Attributes:
        success: whether an interpolant was found (the other parts need one).
        reason: why not (empty on success).
        n_total: samples in the Problem; ``samples``: the sample indices studied (all of
            them when ``len(samples) == n_total``).
        p: parameters; ``k``: outputs per sample; ``nk``: equations of the studied problem.
        start_residual: ``‖F(w) − Y‖`` on the studied samples at the start point.
        interpolant: the :class:`~lossgeometry.manifold.Interpolant` as a dict, without
            ``w`` (iterations, residual history, time).
        report: rank, dimension and Hessian nullity (:class:`ManifoldReport`).
        growth: loss growth exponents (:class:`LossGrowth`).
        walk: a persistent walk along the manifold (:class:`ManifoldWalk`, ``w_end`` kept).
        segment: the loss on the segment from ``w*`` to the walk's end (:class:`SegmentLoss`).
        curvature: negative curvature near ``w*`` (:class:`NegativeCurvature`).
        timings: seconds per part.
        notes: what was done instead of the full study, in words.
    """

    success: bool
    reason: str
    n_total: int
    samples: list[int]
    p: int
    k: int
    nk: int
    start_residual: float
    interpolant: dict[str, Any]
    report: ManifoldReport | None
    growth: LossGrowth | None
    walk: ManifoldWalk | None
    segment: SegmentLoss | None
    curvature: NegativeCurvature | None
    timings: dict[str, float]
    notes: list[str]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ManifoldAnalysis:
        """Rebuild, including the nested results."""
        d = dict(d)
        for name, typ in _NESTED.items():
            if isinstance(d.get(name), dict):
                d[name] = typ.from_dict(d[name])
        return super().from_dict(d)

    def summary(self) -> dict[str, Any]:
        """The headline numbers as a flat dict."""
        out: dict[str, Any] = {
            "success": self.success,
            "samples": len(self.samples),
            "p": self.p,
            "nk": self.nk,
            "residual_norm": self.interpolant.get("residual_norm"),
        }
        if self.report is not None:
            out.update(
                rank=self.report.rank.rank,
                rank_gap=self.report.rank.gap,
                dimension=self.report.dimension,
                expected_dimension=self.report.expected_dimension,
                hessian_nullity=self.report.hessian_nullity,
                agrees=self.report.agrees,
            )
        if self.growth is not None:
            out.update(
                normal_exponent=self.growth.normal_exponent,
                tangent_exponent=self.growth.tangent_exponent,
            )
        if self.walk is not None:
            out.update(
                walk_steps=self.walk.steps,
                walk_max_loss=float(np.max(self.walk.loss)) if self.walk.steps else None,
                walk_distance=float(self.walk.distance_travelled[-1]) if self.walk.steps else 0.0,
            )
        if self.segment is not None:
            out.update(midpoint_loss=self.segment.midpoint_loss)
        if self.curvature is not None:
            out.update(
                negative_curvature_found=self.curvature.found,
                negative_curvature_exponent=self.curvature.exponent,
            )
        return out

    def plot(self, ax: Any = None) -> Any:
        """Four panels: the spectra, the loss growth, the segment loss, the negative curvature.

        ``ax``: four Axes in that order (e.g. ``plt.subplots(2, 2)[1]``), or ``None`` for a
        new 2 × 2 figure. A part that was not measured leaves its panel empty. Each panel is
        the part's own ``plot`` (:class:`ManifoldReport`, :class:`LossGrowth`,
        :class:`SegmentLoss`, :class:`NegativeCurvature`). Returns the Figure.
        """
        fig, axes, _ = panels(ax, 4, (11, 8), nrows=2, ncols=2, owner="ManifoldAnalysis.plot")
        parts = (self.report, self.growth, self.segment, self.curvature)
        for part, a in zip(parts, axes, strict=True):
            if part is not None:
                part.plot(a)
        if ax is None:
            fig.tight_layout()
        return fig


def choose_samples(problem: Problem, max_equations: int, seed: int) -> tuple[list[int], bool]:
    """At most ``max_equations // k`` sample indices (seeded, sorted); all when they fit."""
    per = max(1, max_equations // problem.k)
    if problem.n <= per:
        return list(range(problem.n)), False
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    idx = torch.randperm(problem.n, generator=g)[:per].sort().values
    return [int(i) for i in idx], True


def manifold_cost(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    options: ManifoldOptions,
    progress: bool | None = None,
) -> CostEstimate | None:
    """Print the estimated cost of :func:`analyze_manifold` on ``problem`` (when long).

    Counts, each timed once at ``w`` (the faster of two calls): dense Jacobians, at least
    ``2 + walk_steps`` (one Gauss–Newton iteration, the tangent space, one per walk step; the
    interpolation usually takes a few iterations more), and Hessian-vector products, ``p``
    for each dense Hessian (the nullity when asked for, and ``1 + len(radii)`` near ``w*``)
    when ``p ≤ DENSE_MAX_ORDER``, else ``len(radii) + 30``. A problem whose Jacobian is
    matrix-free counts no Jacobians. Nothing is measured with ``progress=False``.
    """
    if progress is False:
        return None
    from lossgeometry.operators.hessian import HessianOperator
    from lossgeometry.operators.jacobian import dense_jacobian

    o = options
    w = problem.check_w(w)
    dense_j = choose_jacobian(problem, "auto", DENSE_JACOBIAN_MAX_BYTES) == "dense"
    jacobians = 2 + o.walk_steps if dense_j else 0
    if problem.p <= DENSE_MAX_ORDER:
        hvps = problem.p * ((1 if o.hessian else 0) + 1 + len(o.radii))
    else:
        hvps = len(o.radii) + 30
    H = HessianOperator(problem, w)
    probe = torch.ones(problem.p, dtype=problem.dtype, device=problem.device) / problem.p**0.5
    return announce_cost(
        "manifold analysis",
        [
            ("dense Jacobians", jacobians, lambda: dense_jacobian(problem, w)),
            ("Hessian-vector products", hvps, lambda: H @ probe),
        ],
        progress,
        note=f"{problem.n} samples, p = {problem.p}; interpolation may take more iterations",
    )


@deprecated_call_style(renamed={"w0": "w"})
def analyze_manifold(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    options: ManifoldOptions | None = None,
    samples: list[int] | None = None,
    progress: bool | None = None,
    **overrides: Any,
) -> ManifoldAnalysis:
    """Interpolate from ``w`` and measure the manifold of global minima there.

    Args:
        problem: an MSE Problem.
        w: the start point (default: the model's parameters), e.g. the trained point
            (``w0=`` is its former name, kept for one release with a
            :class:`DeprecationWarning`).
        options: :class:`~lossgeometry.manifold.options.ManifoldOptions` (default: its
            defaults): ``max_equations`` (study at most this many equations ``mk``, ``m =
            max_equations // k`` samples drawn with ``seed``, when the full problem has more;
            ignored when ``samples`` is given), ``seed`` (of the subset and the random
            directions), ``tol`` (interpolation target ``‖F − Y‖ < tol``), ``max_iter``
            (Gauss–Newton iterations), ``hessian`` (:func:`solution_manifold`'s argument),
            ``walk_steps`` (0: no walk and no segment), ``walk_step_size`` (default
            ``0.01 · ‖w*‖``), ``radii`` (for :func:`negative_curvature_near`).
        samples: explicit sample indices to study.
        progress: progress bars, and the estimated cost printed first when it is long
            (:func:`manifold_cost`); ``False``: neither.
        **overrides: single options by name (``max_equations=50``), applied on ``options``.

    Returns:
        A :class:`ManifoldAnalysis`; ``success=False`` (with the reason) when no interpolant
        was found, e.g. for an under-parameterized problem.

    Raises:
        lossgeometry.options.OptionsError: an unknown option name or a bad value.
    """
    o = options if options is not None else ManifoldOptions()
    if overrides:
        o = o.replace(**overrides)
    max_equations, seed, tol, max_iter = o.max_equations, o.seed, o.tol, o.max_iter
    hessian, walk_steps, walk_step_size, radii = o.hessian, o.walk_steps, o.walk_step_size, o.radii
    require_mse(problem, "analyze_manifold")
    timings: dict[str, float] = {}
    notes: list[str] = []
    if samples is not None:
        idx = [int(i) for i in samples]
        subset = len(idx) < problem.n
    else:
        idx, subset = choose_samples(problem, max_equations, seed)
    study = subproblem(problem, idx) if subset else problem
    p64 = as_float64(study)
    nk = p64.n * p64.k
    if subset:
        notes.append(
            f"studied {p64.n} of {problem.n} samples (nk = {nk} of {problem.n * problem.k} "
            f"equations): a dense Gauss-Newton solve of the full problem needs a "
            f"{problem.n * problem.k} × {problem.p} Jacobian "
            f"({problem.n * problem.k * problem.p * 8 / 1024**2:.0f} MiB in float64) per "
            "iteration; raise max_equations to study more"
        )
    w = torch.as_tensor(w if w is not None else problem.params()).detach()
    w = w.to(device=p64.device, dtype=torch.float64)
    start = float(p64.residual(w).norm())
    manifold_cost(p64, w, options=o, progress=progress)
    t = time.perf_counter()
    sol = find_interpolant(p64, w, tol=tol, max_iter=max_iter, progress=progress)
    timings["interpolate"] = time.perf_counter() - t
    interp = {k: v for k, v in sol.to_dict().items() if k != "w"}
    base = dict(
        n_total=problem.n,
        samples=idx,
        p=p64.p,
        k=p64.k,
        nk=nk,
        start_residual=start,
        interpolant=interp,
    )
    if not sol.success:
        return ManifoldAnalysis(
            success=False,
            reason=sol.reason,
            report=None,
            growth=None,
            walk=None,
            segment=None,
            curvature=None,
            timings=timings,
            notes=notes,
            **base,
        )
    w_star = sol.w
    t = time.perf_counter()
    rep = solution_manifold(p64, w_star, hessian=hessian)
    timings["solution_manifold"] = time.perf_counter() - t
    space = rep.tangent_space
    t = time.perf_counter()
    growth = loss_growth(p64, w_star, space=space, num_directions=2, seed=seed)
    timings["loss_growth"] = time.perf_counter() - t
    walk = seg = None
    if walk_steps > 0:
        h = walk_step_size if walk_step_size is not None else 0.01 * float(w_star.norm())
        t = time.perf_counter()
        walk = walk_manifold(
            p64,
            w_star,
            steps=walk_steps,
            step_size=h,
            seed=seed,
            direction="persistent",
            pca=False,
            progress=progress,
        )
        timings["walk"] = time.perf_counter() - t
        if walk.steps > 0:
            seg = segment_loss(p64, w_star, walk.w_end)
        if not walk.success:
            notes.append(walk.reason)
    t = time.perf_counter()
    curv = negative_curvature_near(p64, w_star, radii=radii, seed=seed, space=space)
    timings["negative_curvature"] = time.perf_counter() - t
    return ManifoldAnalysis(
        success=True,
        reason="",
        report=rep,
        growth=growth,
        walk=walk,
        segment=seg,
        curvature=curv,
        timings=timings,
        notes=notes + list(rep.notes),
        **base,
    )
