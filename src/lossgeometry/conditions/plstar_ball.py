"""The points of a PL* certificate: the constants at one point, and the ball they are sampled in.

:func:`evaluate_point` measures ``λ_min(K)``, ``λ_max(K)``, ``‖D²F‖``, ``‖F − y‖`` and ``L`` at a
point. :class:`BallPoints` holds every evaluated point of a certificate (``w0``, the training
run, random points in the ball) and takes the estimates over a ball ``B(w0, ρ)``;
:func:`grow_ball` chooses the sampling radius ``ρ``: a given one, or the self-consistent one
``ρ = (1 + margin) R`` with ``R = 2 L_F ‖F(w0) − y‖ / µ`` (``docs/theory.md`` section 3).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._progress import progress_bar
from lossgeometry.problem import Problem

__all__ = [
    "BallPoints",
    "PointConstants",
    "default_zero_tol",
    "evaluate_point",
    "grow_ball",
    "needed_radius",
    "points_of_run",
]


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


@deprecated_call_style(positional=("w0",))
def evaluate_point(
    problem: Problem,
    w: torch.Tensor,
    *,
    w0: torch.Tensor,
    seed: int = 0,
    kernel_options: dict[str, Any] | None = None,
    hessian_options: dict[str, Any] | None = None,
) -> PointConstants:
    """Measure ``λ_min(K)``, ``λ_max(K)``, ``‖D²F‖``, ``‖F − y‖`` and ``L`` at ``w``.

    The kernel spectrum comes from ``lg.kernel_spectrum`` and the model-Hessian norm from
    ``lg.model_hessian_norm`` (alternating maximization: a lower bound of the sup, started
    also from the residual direction ``u0 = F(w) − y``); ``kernel_options`` /
    ``hessian_options`` are passed to them. ``w0`` (keyword-only: the centre of the ball, a
    second point with its own role) only enters :attr:`PointConstants.distance` ``‖w − w0‖``.
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


def _unit_directions(p: int, count: int, seed: int, like: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed))
    d = torch.randn(count, p, generator=g, dtype=torch.float64)
    d /= d.norm(dim=1, keepdim=True)
    return d.to(device=like.device, dtype=like.dtype)


def points_of_run(trajectory: Any, count: int) -> list[torch.Tensor]:
    """Up to ``count`` evenly spaced iterates of a run (or its end point without iterates)."""
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


def default_zero_tol(dtype: torch.dtype) -> float:
    """``100 · eps(dtype)``: ``λ_min ≤ tol · λ_max(K(w0))`` counts as zero."""
    return 100.0 * torch.finfo(dtype).eps


class BallPoints:
    """Every point evaluated for a certificate, in evaluation order, with its constants.

    Args:
        problem: the Problem (square loss).
        w0: the centre of the ball (the start point of gradient descent).
        progress: progress bars over the evaluated points.
        seed, kernel_options, hessian_options: passed to :func:`evaluate_point`.
    """

    def __init__(
        self,
        problem: Problem,
        w0: torch.Tensor,
        *,
        progress: bool | None,
        seed: int,
        kernel_options: dict[str, Any] | None,
        hessian_options: dict[str, Any] | None,
    ) -> None:
        self.problem, self.w0, self.progress = problem, w0, progress
        self.opts = {
            "seed": seed,
            "kernel_options": kernel_options,
            "hessian_options": hessian_options,
        }
        self.points: list[torch.Tensor] = []
        self.constants: list[PointConstants] = []
        self.sources: list[str] = []

    def add(self, ws: list[torch.Tensor], source: str, desc: str) -> None:
        """Evaluate the points ``ws``, tagged ``source``: "w0", "sphere" or "trajectory"."""
        for w in progress_bar(ws, self.progress, desc=desc, unit="point"):
            w = self.problem.check_w(w).detach()
            self.constants.append(evaluate_point(self.problem, w, w0=self.w0, **self.opts))
            self.points.append(w.clone())
            self.sources.append(source)

    def max_distance(self) -> float:
        """``max ‖w − w0‖`` over the evaluated points (0 with none)."""
        return max([pc.distance for pc in self.constants] + [0.0])

    def estimate(self, rho: float) -> tuple[float, float, float, list[bool]]:
        """``(µ, L_F, β_F, inside)`` over the points in ``B(w0, ρ)``.

        ``µ = min λ_min(K)``, ``L_F = max √λ_max(K)``, ``β_F = max ‖D²F‖``; ``inside`` flags the
        points in the ball (``‖w − w0‖ ≤ ρ (1 + 10⁻⁹)``).
        """
        inside = [pc.distance <= rho * (1 + 1e-9) for pc in self.constants]
        sel = [pc for pc, ok in zip(self.constants, inside, strict=True) if ok]
        mu = min(pc.lambda_min for pc in sel)
        lf = math.sqrt(max(pc.lambda_max for pc in sel))
        beta = max(pc.hessian_norm for pc in sel)
        return mu, lf, beta, inside

    def sphere(
        self, rho: float, samples: int, radii: Sequence[float], seed: int, desc: str
    ) -> None:
        """Add ``samples`` points ``w0 + f ρ d_j``; seeded unit ``d_j``, ``f`` cycles ``radii``."""
        fracs = [radii[j % len(radii)] for j in range(samples)]
        dirs = _unit_directions(self.problem.p, samples, seed, self.w0)
        self.add([self.w0 + f * rho * d for f, d in zip(fracs, dirs, strict=True)], "sphere", desc)


def needed_radius(mu: float, lf: float, r0: float, floor: float) -> float:
    """``R = 2 L_F ‖r0‖ / µ``, the radius the theorem needs (``inf`` when ``µ ≤ floor``)."""
    return 2.0 * lf * r0 / mu if mu > floor else math.inf


def grow_ball(
    ball: BallPoints,
    *,
    radius: float | None,
    samples: int,
    radii: Sequence[float],
    max_rounds: int,
    margin: float,
    seed: int,
    r0: float,
    floor: float,
) -> tuple[float, int]:
    """Sample the ball and return ``(ρ, rounds)``: the sampling radius and the rounds sampled.

    With a given ``radius``: one round of ``samples`` points in ``B(w0, radius)``. Otherwise
    ``ρ = (1 + margin) R`` from the points evaluated so far, then rounds of ``samples`` points
    with ``ρ ← (1 + margin) R`` while ``R > ρ``, at most ``max_rounds`` (round ``j`` seeded with
    ``seed + 1000 j``). With nothing to grow (``samples = 0`` or ``R = inf``) the ball is what
    the evaluated points cover.
    """
    if radius is not None:
        rho = float(radius)
        ball.sphere(rho, samples, radii, seed, "PL* ball")
        return rho, 1 if samples else 0
    traj_d = ball.max_distance()
    mu, lf, _, _ = ball.estimate(traj_d)
    rho = (1.0 + margin) * needed_radius(mu, lf, r0, floor)
    if samples == 0 or not math.isfinite(rho):
        return traj_d, 0  # nothing to grow: the ball is what the run covered
    rounds_done = 0
    for rnd in range(max_rounds):
        ball.sphere(rho, samples, radii, seed + 1000 * rnd, f"PL* ball (round {rnd + 1})")
        rounds_done = rnd + 1
        mu, lf, _, _ = ball.estimate(rho)
        r_need = needed_radius(mu, lf, r0, floor)
        if r_need <= rho * (1 + 1e-9) or not math.isfinite(r_need):
            break
        if rnd < max_rounds - 1:
            rho = (1.0 + margin) * r_need
    return rho, rounds_done
