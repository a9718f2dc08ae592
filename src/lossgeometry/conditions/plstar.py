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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry._progress import progress_bar
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["PLStarCertificate", "certify_plstar", "evaluate_point"]


@dataclasses.dataclass(frozen=True)
class PointConstants:
    """The local constants at one point ``w`` (all in kernel units, reduction-independent)."""

    distance: float
    """``‖w − w0‖``."""
    lambda_min: float
    """``λ_min(K(w))``; 0 when it is within the kernel's rounding error (``error_estimate`` of
    ``lg.kernel_spectrum``) of zero."""
    lambda_max: float
    """``λ_max(K(w)) = ‖DF(w)‖²``."""
    hessian_norm: float
    """``‖D²F(w)‖ = sup_{|u|=|v|=1} |Σ_j u_j vᵀ∇²F_j(w) v|``."""
    residual_norm: float
    """``‖F(w) − y‖``."""
    loss: float
    """``L(w)`` in the Problem's normalization."""


def evaluate_point(
    problem: Problem,
    w: torch.Tensor,
    w0: torch.Tensor,
    *,
    seed: int = 0,
    kernel_options: dict[str, Any] | None = None,
    hessian_options: dict[str, Any] | None = None,
) -> PointConstants:
    """Measure ``λ_min(K)``, ``λ_max(K)``, ``‖D²F‖``, ``‖F − y‖`` and ``L`` at ``w``.

    The kernel spectrum comes from ``lg.kernel_spectrum`` and the model-Hessian norm from
    ``lg.model_hessian_norm`` (alternating maximization: a lower bound of the sup, started
    also from the residual direction ``u0 = F(w) − y``); ``kernel_options`` /
    ``hessian_options`` are passed to them.
    """
    from lossgeometry import curvature, kernel

    spec = kernel.kernel_spectrum(problem, w=w, **(kernel_options or {}))
    r = problem.residual(w)
    hopts = dict(hessian_options or {})
    if float(r.norm()) > 0:
        # the residual direction is the one the loss Hessian sees: start there too
        hopts.setdefault("u0", r)
    elif hopts.get("restarts", 1) < 1:
        hopts["restarts"] = 1  # no residual to start from (F(w) = y): one random start
    hess = curvature.model_hessian_norm(problem, w=w, seed=seed, **hopts)
    lam_min = float(spec.lambda_min)
    lam_max = float(spec.lambda_max)
    # an eigenvalue within the kernel's own rounding error of zero is zero
    err = float(getattr(spec, "error_estimate", 0.0) or 0.0)
    beta = float(hess.norm)
    for name, val in (("lambda_min", lam_min), ("lambda_max", lam_max), ("hessian norm", beta)):
        if not math.isfinite(val):
            raise ValueError(
                f"the {name} at a sampled point is {val}: the model produces non-finite "
                "outputs or derivatives there; use a smaller radius or check the model"
            )
    return PointConstants(
        distance=float((w - w0).norm()),
        lambda_min=lam_min if lam_min > err else 0.0,
        lambda_max=lam_max,
        hessian_norm=abs(beta),
        residual_norm=float(r.norm()),
        loss=float(problem.loss(w)),
    )


@dataclasses.dataclass(frozen=True)
class PLStarCertificate(Result):
    """An (estimated) PL* certificate for gradient descent from ``w0``.

    Kernel quantities (``mu``, ``lambda0``, ``lipschitz_F``, ``smoothness_F``) do not depend on
    the loss reduction; the step size is in the Problem's normalization
    (``L = loss_scale · ½‖F − y‖²``), so ``step_size · loss_scale`` and ``rate`` are
    reduction-independent. See ``docs/theory.md`` for every formula.
    """

    certified: bool
    """Whether the sampled constants satisfy the theorem's hypotheses (an estimate, not a
    proof: see :attr:`verdict`)."""
    verdict: str
    """Plain-words conclusion: what was checked, what follows, what is only estimated."""
    reasons: list[str]
    """Why the certificate declined (empty when certified)."""
    mu: float
    """``µ = min λ_min(K(w))`` over the sampled points in the ball (kernel units)."""
    lambda0: float
    """``λ_min(K(w0))``."""
    lambda_max0: float
    """``λ_max(K(w0))``."""
    lipschitz_F: float
    """``L_F = max √λ_max(K(w))`` over the sampled points in the ball."""
    smoothness_F: float
    """``β_F = max ‖D²F(w)‖`` over the sampled points in the ball."""
    residual_norm: float
    """``‖F(w0) − y‖``."""
    loss0: float
    """``L(w0)`` (Problem's normalization)."""
    loss_scale: float
    """``c`` with ``L = c · ½‖F − y‖²``."""
    reduction: str
    radius: float
    """``R = 2 L_F ‖F(w0) − y‖ / µ`` (``inf`` when ``µ = 0``)."""
    sampled_radius: float
    """The radius of the ball the constants were sampled in."""
    step_size: float
    """``η = 1 / (c (L_F² + β_F ‖F(w0) − y‖))`` (the paper's step)."""
    step_size_strict: float
    """``1 / (c (L_F² + 2 β_F ‖F(w0) − y‖))``: also bounds the residual between iterates."""
    rate: float
    """Per-step contraction of the loss bound at ``step_size``: ``1 − η c µ``."""
    pl_constant: float
    """``2 c µ``: the PL* constant in the convention ``‖∇L‖² ≥ pl_constant · L``."""
    condition_number: float
    """``κ = 1 / (η c µ)``."""
    conditioning_bound: float
    """``(√λ0 − R β_F)₊²``: the Hessian-based lower bound on ``λ_min(K)`` in ``B(w0, R)``."""
    analytic_margin: float
    """``2 λ0^{3/2} / (27 β_F L_F ‖F(w0) − y‖)``; ``≥ 1`` means the Hessian bound alone gives
    PL* in the needed ball with ``µ = 4λ0/9`` (``inf`` when ``β_F = 0``)."""
    p: int
    n: int
    k: int
    dtype: str
    seed: int
    sample_distance: np.ndarray
    """``‖w − w0‖`` of every evaluated point (``w0`` first)."""
    sample_lambda_min: np.ndarray
    sample_lambda_max: np.ndarray
    sample_hessian_norm: np.ndarray
    sample_residual_norm: np.ndarray
    sample_loss: np.ndarray
    sample_source: list[str]
    """``"w0"``, ``"sphere"`` (random direction) or ``"trajectory"`` for every point."""
    sample_in_ball: list[bool]
    """Whether the point lies in the sampled ball (only those enter the estimates)."""
    points: torch.Tensor | None = dataclasses.field(default=None, repr=False, compare=False)
    """``(m, p)`` evaluated points (kept in memory, not written to JSON)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (without the sampled parameter vectors)."""
        d = super().to_dict()
        d.pop("points", None)
        return d

    # ------------------------------------------------------------------ predictions
    def _eta(self, lr: float | None) -> float:
        eta = self.step_size if lr is None else float(lr)
        if not eta > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        return eta

    def rate_for(self, lr: float | None = None) -> float:
        """Contraction factor ``1 − η c µ`` for a step ``lr`` (default: :attr:`step_size`).

        The bound is only covered by the theorem for ``lr ≤ step_size``.
        """
        return max(0.0, 1.0 - self._eta(lr) * self.loss_scale * self.mu)

    def predicted(self, t: Any, lr: float | None = None) -> Any:
        """The predicted loss bound ``L(w0) (1 − η c µ)^t`` at step(s) ``t``."""
        t_arr = np.asarray(t, dtype=float)
        out = self.loss0 * self.rate_for(lr) ** t_arr
        return float(out) if out.ndim == 0 else out

    def distance_bound(self, t: Any, lr: float | None = None) -> Any:
        """Bound on ``‖w_t − w0‖``: ``η c L_F ‖r0‖ Σ_{s<t} (1 − η c µ)^{s/2}`` (``< R``)."""
        eta = self._eta(lr)
        t_arr = np.asarray(t, dtype=float)
        q = math.sqrt(self.rate_for(lr))
        scale = eta * self.loss_scale * self.lipschitz_F * self.residual_norm
        out = scale * t_arr if q == 1.0 else scale * (1.0 - q**t_arr) / (1.0 - q)
        return float(out) if out.ndim == 0 else out

    def steps_to(self, loss: float, lr: float | None = None) -> float:
        """Steps after which the bound falls below ``loss`` (``inf`` if it never does)."""
        rate = self.rate_for(lr)
        if loss >= self.loss0:
            return 0.0
        if rate >= 1.0:
            return math.inf
        if rate <= 0.0:
            return 1.0
        return math.ceil(math.log(loss / self.loss0) / math.log(rate))

    def summary(self) -> dict[str, Any]:
        """The headline numbers as a flat dict (for tables)."""
        return {
            "certified": self.certified,
            "mu = min λ_min(K)": self.mu,
            "λ_min(K(w0))": self.lambda0,
            "L_F = max √λ_max(K)": self.lipschitz_F,
            "β_F = max ‖D²F‖": self.smoothness_F,
            "‖F(w0) − y‖": self.residual_norm,
            "R = 2 L_F ‖F(w0)−y‖/µ": self.radius,
            "sampled radius": self.sampled_radius,
            "step η": self.step_size,
            "ηcµ (loss bound: × (1 − ηcµ) per step)": self.step_size * self.loss_scale * self.mu,
            "κ = 1/(ηcµ)": self.condition_number,
            "(√λ0 − Rβ_F)₊²": self.conditioning_bound,
            "points sampled": len(self.sample_source),
        }

    def plot(self, fig: Any = None) -> Any:
        """λ_min(K), λ_max(K) and ‖D²F‖ at the sampled points against the distance from w0."""
        import matplotlib.pyplot as plt

        if fig is None:
            fig = plt.figure(figsize=(9.5, 3.4))
        ax1, ax2 = fig.subplots(1, 2)
        d = np.asarray(self.sample_distance, dtype=float)
        src = np.asarray(self.sample_source)
        for s, marker in (("w0", "*"), ("sphere", "o"), ("trajectory", "^")):
            m = src == s
            if m.any():
                ax1.scatter(d[m], np.asarray(self.sample_lambda_min)[m], marker=marker, label=s)
                ax2.scatter(d[m], np.asarray(self.sample_hessian_norm)[m], marker=marker, label=s)
        if self.mu > 0:
            ax1.axhline(self.mu, color="k", lw=1, ls="--", label="µ")
        for ax in (ax1, ax2):
            if math.isfinite(self.radius):
                ax.axvline(self.radius, color="C3", lw=1, label="R needed")
            ax.axvline(self.sampled_radius, color="C7", lw=1, ls=":", label="sampled radius")
            ax.set_xlabel("‖w − w0‖")
            ax.grid(alpha=0.3)
        ax1.set_ylabel("λ_min(K(w))")
        ax2.set_ylabel("‖D²F(w)‖")
        ax1.legend(fontsize=7)
        fig.tight_layout()
        return fig


def _unit_directions(p: int, count: int, seed: int, like: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed))
    d = torch.randn(count, p, generator=g, dtype=torch.float64)
    d /= d.norm(dim=1, keepdim=True)
    return d.to(device=like.device, dtype=like.dtype)


def _trajectory_points(trajectory: Any, count: int) -> list[torch.Tensor]:
    its = getattr(trajectory, "iterates", None)
    if its is not None and len(its) > 0:
        idx = np.unique(np.linspace(0, len(its) - 1, min(count, len(its))).round().astype(int))
        return [torch.as_tensor(its[i]) for i in idx]
    w_final = getattr(trajectory, "w_final", None)
    if w_final is None:
        raise ValueError(
            "the trajectory holds neither iterates nor a final point; pass a Trajectory from "
            "lg.train (record_iterates=True gives the most points)"
        )
    return [torch.as_tensor(w_final)]


def _default_zero_tol(dtype: torch.dtype) -> float:
    return 100.0 * torch.finfo(dtype).eps


def certify_plstar(
    problem: Problem,
    w0: torch.Tensor | None = None,
    radius: float | None = None,
    samples: int = 8,
    trajectory: Any = None,
    seed: int = 0,
    progress: bool | None = None,
    *,
    radii: Sequence[float] = (0.25, 0.5, 1.0),
    max_rounds: int = 3,
    margin: float = 0.1,
    trajectory_points: int = 8,
    zero_tol: float | None = None,
    kernel_options: dict[str, Any] | None = None,
    hessian_options: dict[str, Any] | None = None,
) -> PLStarCertificate:
    """Estimate a PL* certificate for gradient descent from ``w0``.

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
        w0: start point (default: the model's parameters).
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
    w0 = problem.check_w(w0).detach().clone()
    c = problem.loss_scale
    nk = problem.n * problem.k
    tol = _default_zero_tol(problem.dtype) if zero_tol is None else float(zero_tol)
    opts = {"seed": seed, "kernel_options": kernel_options, "hessian_options": hessian_options}

    pts: list[torch.Tensor] = []
    consts: list[PointConstants] = []
    sources: list[str] = []
    rounds_done = 0

    def add(ws: list[torch.Tensor], source: str, desc: str) -> None:
        for w in progress_bar(ws, progress, desc=desc, unit="point"):
            w = problem.check_w(w).detach()
            consts.append(evaluate_point(problem, w, w0, **opts))
            pts.append(w.clone())
            sources.append(source)

    add([w0], "w0", "PL* at w0")
    at0 = consts[0]
    reasons: list[str] = []
    if at0.lambda_max <= 0:
        raise ValueError(
            "the tangent kernel is zero at w0 (the outputs do not depend on the parameters): "
            "there is nothing to certify"
        )
    floor = tol * at0.lambda_max
    if trajectory is not None:
        add(_trajectory_points(trajectory, trajectory_points), "trajectory", "PL* on the run")

    def estimate(rho: float) -> tuple[float, float, float, list[bool]]:
        inside = [pc.distance <= rho * (1 + 1e-9) for pc in consts]
        sel = [pc for pc, ok in zip(consts, inside, strict=True) if ok]
        mu = min(pc.lambda_min for pc in sel)
        lf = math.sqrt(max(pc.lambda_max for pc in sel))
        beta = max(pc.hessian_norm for pc in sel)
        return mu, lf, beta, inside

    r0 = at0.residual_norm
    under = problem.p < nk

    def needed(mu: float, lf: float) -> float:
        return 2.0 * lf * r0 / mu if mu > floor else math.inf

    if under:
        reasons.append(
            f"under-parameterized: p = {problem.p} < nk = {nk}, so K = DF·DFᵀ ({nk}×{nk}) has "
            f"rank at most {problem.p} and λ_min(K) = 0 at every point; no PL* constant exists "
            "and GD can stall at a non-zero loss"
        )
        rho = max([pc.distance for pc in consts] + [0.0])
    elif radius is not None:
        rho = float(radius)
        fracs = [radii[j % len(radii)] for j in range(samples)]
        dirs = _unit_directions(problem.p, samples, seed, w0)
        add([w0 + f * rho * d for f, d in zip(fracs, dirs, strict=True)], "sphere", "PL* ball")
        rounds_done = 1 if samples else 0
    else:
        traj_d = max([pc.distance for pc in consts] + [0.0])
        mu, lf, _, _ = estimate(traj_d)
        rho = (1.0 + margin) * needed(mu, lf)
        if samples == 0 or not math.isfinite(rho):
            rho = traj_d  # nothing to grow: the ball is what the run covered
        else:
            for rnd in range(max_rounds):
                fracs = [radii[j % len(radii)] for j in range(samples)]
                dirs = _unit_directions(problem.p, samples, seed + 1000 * rnd, w0)
                add(
                    [w0 + f * rho * d for f, d in zip(fracs, dirs, strict=True)],
                    "sphere",
                    f"PL* ball (round {rnd + 1})",
                )
                rounds_done = rnd + 1
                mu, lf, _, _ = estimate(rho)
                r_need = needed(mu, lf)
                if r_need <= rho * (1 + 1e-9) or not math.isfinite(r_need):
                    break
                if rnd < max_rounds - 1:
                    rho = (1.0 + margin) * r_need

    def n_sphere_total() -> int:
        return sum(src == "sphere" for src in sources)

    mu, lf, beta, inside = estimate(rho)
    if mu <= floor:
        mu_report = 0.0
    else:
        mu_report = mu
    R = needed(mu, lf)
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
        elif n_sphere_total() == 0:
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

    n_sphere = sum(s == "sphere" for s in sources)
    n_traj = sum(s == "trajectory" for s in sources)
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
        points=torch.stack(pts),
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
