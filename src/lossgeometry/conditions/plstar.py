"""PL* certificates: estimate µ, L_F and β_F in a ball and certify linear convergence of GD.

The theorem (Liu, Zhu & Belkin, arXiv:2003.00307, Theorem 6; derivation with exact constants in
``docs/theory.md`` section 3). Write ``L(w) = c · ½‖F(w) − y‖²`` with ``c = problem.loss_scale``
(1 for ``reduction="sum"``, ``2/(nk)`` for ``"mean"``) and ``K(w) = DF DFᵀ`` the tangent kernel.
If on the ball ``B(w0, R)``

* ``λ_min(K(w)) ≥ µ > 0`` (uniform conditioning),
* ``λ_max(K(w)) ≤ L_F²`` (``L_F`` the Lipschitz constant of ``F``),
* ``‖D²F(w)‖ ≤ β_F`` (the model-Hessian norm),

with ``R = 2 L_F ‖F(w0) − y‖ / µ``, then a global minimizer lies in the ball and gradient descent
with step ``η ≤ 1 / (c (L_F² + β_F ‖F(w0) − y‖))`` stays in it and converges linearly:
``L(w_t) ≤ (1 − η c µ)^t L(w0)``.

:func:`certify_plstar` estimates the three constants from points sampled in the ball (random
directions at several radii) and from a training trajectory, and computes ``R``, the step, the
rate and the predicted loss curve. The sup and inf over a ball cannot be computed, only
sampled; a sampled minimum of ``λ_min(K)`` is an estimate, not a proof, and the certificate's
:attr:`~PLStarCertificate.verdict` says so in plain words. When ``µ`` is zero (``p < nk`` or a
numerically singular kernel) or the radius the theorem needs exceeds the radius that was
sampled, it declines and says why.

The certificate Result is :mod:`lossgeometry.conditions.plstar_certificate`, the points and the
ball they are sampled in :mod:`lossgeometry.conditions.plstar_ball`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry.conditions.plstar_ball import (
    BallPoints,
    default_zero_tol,
    evaluate_point,
    grow_ball,
    needed_radius,
    points_of_run,
)
from lossgeometry.conditions.plstar_ball import PointConstants as PointConstants  # as before
from lossgeometry.conditions.plstar_certificate import PLStarCertificate
from lossgeometry.problem import Problem

__all__ = ["PLStarCertificate", "certify_plstar", "evaluate_point"]


@deprecated_call_style(
    renamed={"w0": "w"}, positional=("radius", "samples", "trajectory", "seed", "progress")
)
def certify_plstar(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    radius: float | None = None,
    samples: int = 8,
    trajectory: Any = None,
    seed: int = 0,
    progress: bool | None = None,
    radii: Sequence[float] = (0.25, 0.5, 1.0),
    max_rounds: int = 3,
    margin: float = 0.1,
    trajectory_points: int = 8,
    zero_tol: float | None = None,
    kernel_options: dict[str, Any] | None = None,
    hessian_options: dict[str, Any] | None = None,
) -> PLStarCertificate:
    """Estimate a PL* certificate for gradient descent from the point ``w`` (``w0`` below).

    Procedure (all constants in kernel units; ``c = problem.loss_scale``):

    1. At ``w0``: ``λ0 = λ_min(K(w0))``, ``λ_max(K(w0))``, ``‖D²F(w0)‖``, ``r0 = F(w0) − y``.
       If ``p < nk`` the kernel is singular everywhere and the certificate declines at once.
    2. Sample ``samples`` points ``w0 + f · ρ · d_j`` with unit random directions ``d_j``
       (seeded) and ``f`` cycling through ``radii`` (fractions of the sampling radius ``ρ``),
       plus up to ``trajectory_points`` iterates of ``trajectory`` (or its end point).
    3. ``µ = min λ_min(K)``, ``L_F = max √λ_max(K)``, ``β_F = max ‖D²F‖`` over the points in
       ``B(w0, ρ)``, and ``R = 2 L_F ‖r0‖ / µ``.
    4. With ``radius=None``: start from ``ρ = (1 + margin) R`` with ``R`` computed at ``w0``
       (and the trajectory) and repeat 2–3 with ``ρ ← (1 + margin) R`` while ``R > ρ``, at
       most ``max_rounds`` times; certify when ``R ≤ ρ``. The margin makes the fixed-point
       iteration stop when ``R`` only creeps up (sampling a larger ball is conservative).
       With a given ``radius``: sample once in ``B(w0, radius)`` and certify iff
       ``R ≤ radius``.

    The step is ``η = 1/(c (L_F² + β_F ‖r0‖))`` and the bound ``L(w_t) ≤ (1 − η c µ)^t L(w0)``
    (``docs/theory.md``, section 3). A certificate is still returned when it declines: its
    constants describe what was measured, ``certified`` is ``False`` and ``reasons`` says why.

    Args:
        problem: a Problem with the square loss (``loss="mse"``).
        w: the start point ``w0`` of gradient descent and centre of the ball (default: the
            model's parameters). ``w0=`` is accepted for one release (deprecated).
        radius: sample in this ball instead of the self-consistent radius.
        samples: random points per round.
        trajectory: an ``lg.Trajectory`` from ``w0``; its iterates (``record_iterates=True``)
            or its end point are evaluated too (those inside the ball enter the estimates).
        seed: seeds the random directions and the Hessian-norm estimator.
        progress: progress bar over the evaluated points.
        radii: fractions of the sampling radius at which random points are placed.
        max_rounds: how many times the sampling radius may grow to the needed ``R``.
        margin: the sampling radius is ``(1 + margin)`` times the needed ``R``.
        trajectory_points: at most this many trajectory iterates are evaluated.
        zero_tol: ``λ_min ≤ zero_tol · λ_max(K(w0))`` counts as zero (default
            ``100 · eps(dtype)``).
        kernel_options: extra keyword arguments for ``lg.kernel_spectrum``.
        hessian_options: extra keyword arguments for ``lg.model_hessian_norm``.

    Returns:
        A :class:`PLStarCertificate`.

    Raises:
        ValueError: a non-MSE loss, invalid sampling arguments, or non-finite measurements.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an lg.Problem, got {type(problem).__name__}")
    if not problem.is_mse:
        raise ValueError(
            "PL* certificates are derived for the square loss L = c·½‖F − y‖²; build the "
            f"Problem with loss='mse' (got loss={problem.loss_name!r})"
        )
    if not isinstance(samples, int) or samples < 0:
        raise ValueError(f"samples must be a non-negative integer, got {samples!r}")
    if radius is not None and not (radius > 0 and math.isfinite(radius)):
        raise ValueError(f"radius must be a positive finite number or None, got {radius!r}")
    radii = tuple(float(f) for f in radii)
    if not radii or any(not (0 < f <= 1) for f in radii):
        raise ValueError(f"radii are fractions of the sampling radius in (0, 1], got {radii}")
    if not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"max_rounds must be a positive integer, got {max_rounds!r}")
    if not 0 <= margin < 10:
        raise ValueError(f"margin must lie in [0, 10), got {margin!r}")
    w0 = problem.check_w(w).detach().clone()
    c = problem.loss_scale
    nk = problem.n * problem.k
    tol = default_zero_tol(problem.dtype) if zero_tol is None else float(zero_tol)
    ball = BallPoints(
        problem,
        w0,
        progress=progress,
        seed=seed,
        kernel_options=kernel_options,
        hessian_options=hessian_options,
    )
    consts, sources = ball.constants, ball.sources

    ball.add([w0], "w0", "PL* at w0")
    at0 = consts[0]
    reasons: list[str] = []
    if at0.lambda_max <= 0:
        raise ValueError(
            "the tangent kernel is zero at w0 (the outputs do not depend on the parameters): "
            "there is nothing to certify"
        )
    floor = tol * at0.lambda_max
    if trajectory is not None:
        ball.add(points_of_run(trajectory, trajectory_points), "trajectory", "PL* on the run")

    r0 = at0.residual_norm
    under = problem.p < nk

    if under:
        reasons.append(
            f"under-parameterized: p = {problem.p} < nk = {nk}, so K = DF·DFᵀ ({nk}×{nk}) has "
            f"rank at most {problem.p} and λ_min(K) = 0 at every point; no PL* constant exists "
            "and GD can stall at a non-zero loss"
        )
        rho, rounds_done = ball.max_distance(), 0
    else:
        rho, rounds_done = grow_ball(
            ball,
            radius=radius,
            samples=samples,
            radii=radii,
            max_rounds=max_rounds,
            margin=margin,
            seed=seed,
            r0=r0,
            floor=floor,
        )

    n_sphere = sum(s == "sphere" for s in sources)
    n_traj = sum(s == "trajectory" for s in sources)
    mu, lf, beta, inside = ball.estimate(rho)
    if mu <= floor:
        mu_report = 0.0
    else:
        mu_report = mu
    R = needed_radius(mu, lf, r0, floor)
    eta = 1.0 / (c * (lf**2 + beta * r0))
    eta_strict = 1.0 / (c * (lf**2 + 2.0 * beta * r0))
    rate = max(0.0, 1.0 - eta * c * mu_report)
    kappa = 1.0 / (eta * c * mu_report) if mu_report > 0 else math.inf
    lam0 = at0.lambda_min
    cond_bound = max(math.sqrt(lam0) - R * beta, 0.0) ** 2 if math.isfinite(R) else 0.0
    denom = 27.0 * beta * lf * r0
    margin = (2.0 * lam0**1.5 / denom if denom > 0 else math.inf) if lam0 > floor else 0.0

    if not under and mu <= floor:
        worst = min(
            (pc for pc, ok in zip(consts, inside, strict=True) if ok), key=lambda q: q.lambda_min
        )
        where = "at w0" if worst.distance == 0 else f"at distance {worst.distance:.4g} from w0"
        reasons.append(
            f"λ_min(K) is numerically zero {where} ({worst.lambda_min:.3g} ≤ {floor:.3g} = "
            f"{tol:.1e}·λ_max(K(w0))): the kernel is singular there, so no PL* constant holds "
            "in the ball"
        )
    if not reasons and R > rho * (1 + 1e-9):
        if radius is not None:
            reasons.append(
                f"the radius the theorem needs, R = 2·L_F·‖F(w0) − y‖/µ = {R:.4g}, exceeds the "
                f"given radius {rho:.4g}: the constants sampled there do not cover a large "
                "enough ball (try radius=None to let the radius grow)"
            )
        elif n_sphere == 0:
            reasons.append(
                f"the radius the theorem needs, R = 2·L_F·‖F(w0) − y‖/µ = {R:.4g}, exceeds the "
                f"distance covered by the evaluated points ({rho:.4g}: only w0 and the training "
                "run were evaluated); sample the ball (samples > 0) to test a larger radius"
            )
        else:
            reasons.append(
                f"the radius the theorem needs, R = 2·L_F·‖F(w0) − y‖/µ = {R:.4g}, still "
                f"exceeds the sampled radius {rho:.4g} after {max_rounds} round(s): the kernel "
                "degrades faster than the ball grows (µ falls or L_F rises with the radius)"
            )
    if not reasons and samples == 0 and trajectory is None:
        reasons.append("nothing was sampled besides w0 (samples=0 and no trajectory)")
    certified = not reasons
    verdict = _verdict(
        certified,
        reasons,
        mu_report,
        R,
        rho,
        eta,
        rate,
        c,
        r0,
        cond_bound,
        n_sphere,
        n_traj,
        radii,
        at0.loss,
        rounds_done,
    )
    return PLStarCertificate(
        certified=certified,
        verdict=verdict,
        reasons=reasons,
        mu=mu_report,
        lambda0=lam0,
        lambda_max0=at0.lambda_max,
        lipschitz_F=lf,
        smoothness_F=beta,
        residual_norm=r0,
        loss0=at0.loss,
        loss_scale=c,
        reduction=problem.reduction,
        radius=R,
        sampled_radius=rho,
        step_size=eta,
        step_size_strict=eta_strict,
        rate=rate,
        pl_constant=2.0 * c * mu_report,
        condition_number=kappa,
        conditioning_bound=cond_bound,
        analytic_margin=margin,
        p=problem.p,
        n=problem.n,
        k=problem.k,
        dtype=str(problem.dtype).replace("torch.", ""),
        seed=seed,
        sample_distance=np.array([pc.distance for pc in consts]),
        sample_lambda_min=np.array([pc.lambda_min for pc in consts]),
        sample_lambda_max=np.array([pc.lambda_max for pc in consts]),
        sample_hessian_norm=np.array([pc.hessian_norm for pc in consts]),
        sample_residual_norm=np.array([pc.residual_norm for pc in consts]),
        sample_loss=np.array([pc.loss for pc in consts]),
        sample_source=sources,
        sample_in_ball=[bool(x) for x in inside],
        points=torch.stack(ball.points),
    )


def _verdict(
    certified: bool,
    reasons: list[str],
    mu: float,
    R: float,
    rho: float,
    eta: float,
    rate: float,
    c: float,
    r0: float,
    cond_bound: float,
    n_sphere: int,
    n_traj: int,
    radii: Sequence[float],
    loss0: float,
    n_rounds: int,
) -> str:
    where = (
        f"{n_sphere} random point(s) at {', '.join(f'{100 * f:g}%' for f in radii)} of the "
        f"sampling radius ({n_rounds} round(s), final radius {rho:.4g})"
    )
    if n_traj:
        where += f" and {n_traj} point(s) of the training run"
    if not certified:
        return "Cannot certify PL* from w0: " + "; ".join(reasons) + "."
    backed = (
        f"The Hessian-based bound (√λ0 − R·β_F)² = {cond_bound:.4g} is at least µ, so the "
        "sampled β_F alone already implies the conditioning in the ball."
        if cond_bound >= mu
        else f"The Hessian-based bound (√λ0 − R·β_F)₊² = {cond_bound:.4g} is below µ, so the "
        "conditioning in the ball rests on the sampled λ_min alone."
    )
    return (
        f"Estimated, not proven: over {where} (plus w0), the smallest λ_min(K) found is "
        f"µ = {mu:.4g}, and the radius the theorem needs, R = 2·L_F·‖F(w0) − y‖/µ = {R:.4g}, "
        "lies inside the sampled ball. If no point of the ball is worse than the sampled ones "
        "(sampling can miss them), a global minimum lies within distance R of w0 and gradient "
        f"descent with step η ≤ {eta:.4g} stays in that ball and converges linearly: "
        f"L(w_t) ≤ {loss0:.4g}·{rate:.6g}^t. {backed}"
    )
