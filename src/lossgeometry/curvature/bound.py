r"""The curvature bound ``λ_max(∇²L) ≤ c (L_F² + β_F ‖F − Y‖)`` evaluated at a point.

Derivation (square loss). With ``L = c · ½‖F − Y‖²`` (``c = problem.loss_scale``: 1 for
reduction ``"sum"``, ``2/(nk)`` for ``"mean"``), residual ``r = F(w) − Y`` and Jacobian
``J = DF(w)``:

    ∇²L(w) = c (JᵀJ + M_r),     M_r = Σ_j r_j ∇²F_j(w).

For unit ``v``: ``vᵀJᵀJv ≤ σ_max(J)² = λ_max(K)`` (``K = JJᵀ``, the tangent kernel) and
``vᵀM_r v = ‖r‖ · vᵀM_{r/‖r‖}v ≤ ‖r‖ · ‖D²F(w)‖``. Hence

    λ_max(∇²L(w)) ≤ c (σ_max(J)² + ‖D²F(w)‖ · ‖F(w) − Y‖) ≤ c (L_F² + β_F ‖F(w) − Y‖),

the bound of Liu, Zhu & Belkin behind the step size ``η ≤ 1/(L_F² + β_F‖F(w0) − y‖)``, where
``L_F = sup ‖DF‖`` and ``β_F = sup ‖D²F‖`` over a region. :func:`hessian_bound` evaluates
the middle expression **at the point** ``w`` (``L_F² → σ_max(J(w))²``,
``β_F → ‖D²F(w)‖``), which is what the inequality at ``w`` needs, and reports whether it
holds and whether the Gauss–Newton part ``c·σ_max(J)²`` alone would already bound
``λ_max`` (it does not when the residual term adds curvature: the ``β_F`` term is needed).

Numerics: ``λ_max`` and ``σ_max(J)²`` are Lanczos Ritz values (accurate to ``tol``
relative), ``β`` is the lower bound of :func:`~lossgeometry.model_hessian_norm`, started from
``u = r/‖r‖`` so that ``β ≥ ‖M_r‖/‖r‖`` (to ``tol``) and the computed check is not fooled by
a poor local maximum. The check allows a relative ``margin`` (default ``10·tol``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from lossgeometry._plotting import axes_or_new
from lossgeometry.curvature.model_hessian import model_hessian_norm
from lossgeometry.curvature.spectrum import default_tol
from lossgeometry.linalg.lanczos import lanczos_extremes
from lossgeometry.operators.hessian import hessian_operator, reference_problem
from lossgeometry.problem import Problem
from lossgeometry.results import Result


@dataclasses.dataclass(frozen=True)
class HessianBound(Result):
    """``λ_max(∇²L(w))`` against ``c (σ_max(J)² + ‖D²F(w)‖ ‖F(w) − Y‖)`` at one point.

    Attributes:
        lambda_max: ``λ_max(∇²L(w))`` (the Problem's normalization).
        lf_squared: ``σ_max(DF(w))² = λ_max(K(w))`` (the local ``L_F²``; no loss scale).
        beta: ``‖D²F(w)‖`` (the local ``β_F``; a lower bound, see
            :func:`~lossgeometry.model_hessian_norm`).
        residual_norm: ``‖F(w) − Y‖``.
        loss_scale: ``c`` with ``L = c·½‖F − Y‖²``.
        bound: ``c (lf_squared + beta · residual_norm)``.
        gauss_newton: ``c · lf_squared``, the bound without the model-Hessian term.
        holds: ``lambda_max ≤ bound · (1 + margin)``.
        gauss_newton_suffices: ``lambda_max ≤ gauss_newton · (1 + margin)``; ``False`` means
            the ``β_F`` term is needed at this point.
        margin: relative slack allowed for the iterative solvers' tolerance.
        matvecs: Hessian/GGN/model-Hessian products used in all.
    """

    lambda_max: float
    lf_squared: float
    beta: float
    residual_norm: float
    loss_scale: float
    bound: float
    gauss_newton: float
    holds: bool
    gauss_newton_suffices: bool
    margin: float
    matvecs: int

    @property
    def ratio(self) -> float:
        """``lambda_max / bound`` (at most ``1 + margin`` when the bound holds)."""
        return self.lambda_max / self.bound if self.bound > 0 else float("inf")

    @property
    def model_hessian_term(self) -> float:
        """``c · beta · residual_norm``, the bound's part beyond the Gauss–Newton one."""
        return self.loss_scale * self.beta * self.residual_norm

    def summary(self) -> dict[str, Any]:
        """Headline scalars: ``λ_max``, the bound and its two terms, the verdicts."""
        return {
            "lambda_max": self.lambda_max,
            "bound": self.bound,
            "ratio": self.ratio,
            "holds": self.holds,
            "gauss_newton": self.gauss_newton,
            "model_hessian_term": self.model_hessian_term,
            "gauss_newton_suffices": self.gauss_newton_suffices,
            "lf_squared": self.lf_squared,
            "beta": self.beta,
            "residual_norm": self.residual_norm,
            "loss_scale": self.loss_scale,
            "margin": self.margin,
            "matvecs": self.matvecs,
        }

    def plot(self, ax: Any = None) -> Any:
        """``λ_max`` beside the bound, drawn as its two stacked terms; returns the Axes.

        Bars, in order: ``λ_max``; the Gauss–Newton term ``c σ_max(J)²``; on top of it the
        model-Hessian term ``c ‖D²F‖ ‖F − Y‖`` (together: the bound).
        """
        ax = axes_or_new(ax, (5, 3.5))
        gn, mh = self.gauss_newton, self.model_hessian_term
        ax.bar([0], [self.lambda_max], color="C0", label="λ_max(∇²L)")
        ax.bar([1], [gn], color="C1", label="c σ_max(J)²  (Gauss–Newton)")
        ax.bar([1], [mh], bottom=[gn], color="C2", label="c ‖D²F‖ ‖F − Y‖")
        ax.set_xticks([0, 1], ["λ_max", "bound"])
        ax.set_ylabel("curvature (the Problem's normalization)")
        verdict = "holds" if self.holds else "FAILS"
        ax.set_title(f"bound {verdict}: λ_max / bound = {self.ratio:.3g}")
        ax.legend(fontsize=8)
        return ax


def hessian_bound(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    tol: float | None = None,
    margin: float | None = None,
    seed: int = 0,
    restarts: int = 1,
    dtype: torch.dtype | None = None,
    progress: bool | None = None,
) -> HessianBound:
    """Check ``λ_max(∇²L(w)) ≤ c (σ_max(J)² + ‖D²F(w)‖ ‖F(w) − Y‖)`` numerically at ``w``.

    See the module docstring for the derivation and the normalization ``c = loss_scale``.

    Args:
        problem: a Problem with the square loss (``loss="mse"``).
        w: the point (default: the model's current parameters).
        tol: solver tolerance (default ``1e-4`` in float32, ``1e-8`` in float64).
        margin: relative slack of the check (default ``10·tol``).
        seed: seed of the random starts.
        restarts: random restarts of the model-Hessian norm (besides the start at ``r``).
        dtype: ``torch.float64`` for a reference computation.
        progress: progress bars.

    Returns:
        A :class:`HessianBound`.

    Raises:
        ValueError: the loss is not the built-in square loss.
    """
    if not problem.is_mse:
        raise ValueError(
            "the bound λ_max(∇²L) ≤ c(L_F² + β_F‖F − y‖) is stated for the square loss; this "
            f"Problem uses {problem.loss_name!r}. Build the Problem with loss='mse'"
        )
    prob = reference_problem(problem, dtype)
    w = prob.check_w(w).detach()
    tol = default_tol(prob.dtype) if tol is None else float(tol)
    margin = 10 * tol if margin is None else float(margin)
    c = prob.loss_scale
    H = hessian_operator(prob, w, of="loss")
    lam = lanczos_extremes(H, top=1, tol=tol, seed=seed, progress=progress)
    G = hessian_operator(prob, w, of="ggn")
    gn = lanczos_extremes(G, top=1, tol=tol, seed=seed + 1, progress=progress)
    lf2 = float(gn.top[0]) / c
    r = prob.residual(w)
    rnorm = float(r.norm())
    if rnorm > 0:
        mh = model_hessian_norm(
            prob, w, seed=seed, tol=tol, restarts=restarts, u0=r, progress=progress
        )
    else:
        mh = model_hessian_norm(prob, w, seed=seed, tol=tol, restarts=restarts, progress=progress)
    lam_max = float(lam.top[0])
    bound = c * (lf2 + mh.norm * rnorm)
    return HessianBound(
        lambda_max=lam_max,
        lf_squared=lf2,
        beta=mh.norm,
        residual_norm=rnorm,
        loss_scale=c,
        bound=bound,
        gauss_newton=c * lf2,
        holds=bool(lam_max <= bound * (1 + margin)),
        gauss_newton_suffices=bool(lam_max <= c * lf2 * (1 + margin)),
        margin=margin,
        matvecs=H.matvecs + G.matvecs + mh.matvecs + mh.second_derivatives,
    )
