"""Mini-batch SGD with the batch-size dependent step of the PL* SGD theorem.

The theorem (``docs/theory.md`` section 5; after Bassily, Belkin & Ma, arXiv:1811.02564, as
used in Liu, Zhu & Belkin, arXiv:2003.00307, Theorem 7). Write ``L = (1/n) Σ_i L_i`` with
``L_i = (c n/2)‖r_i‖²`` (so the Problem's mini-batch loss is ``(1/b) Σ_{i∈B} L_i``), and let
on the ball

* ``µ_c = c µ`` (PL: ``‖∇L‖² ≥ 2 µ_c L``, ``µ = min λ_min(K)``),
* ``β = c (L_F² + β_F r_max)`` (smoothness of ``L``; ``r_max`` the largest residual norm met),
* ``λ_g = c n κ_d`` with ``κ_d = max_i λ_max(K_ii)``, ``K_ii`` the ``k×k`` diagonal blocks of
  the kernel (so ``‖∇L_i‖² ≤ 2 λ_g L_i``).

SGD with batches of ``b`` distinct indices drawn uniformly and independently at every step and
step

    η*(b) = b µ_c / (β (λ_g + µ_c (b − 1)))

satisfies ``E L(w_t) ≤ (1 − µ_c η*(b))^t L(w0)``, and with probability ``≥ 1 − δ`` its path
stays within ``R_δ = 2 G √L(w0) / (µ_c δ)``, ``G² = 2c((1 − 1/b) L_F² + n κ_d / b)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import axes_or_new
from lossgeometry._progress import progress_bar
from lossgeometry.problem import Problem
from lossgeometry.recording import BatchSampler, Recorder, Trajectory
from lossgeometry.results import Result

__all__ = ["SGDStep", "certified_sgd", "per_sample_kernel_max", "sgd_step_size"]


def per_sample_kernel_max(problem: Problem, w: torch.Tensor | None = None) -> float:
    """``κ_d = max_i λ_max(K_ii(w))``: the largest eigenvalue of the ``k×k`` diagonal kernel blocks.

    ``K_ii = J_i J_iᵀ`` with ``J_i = ∂f(w; x_i)/∂w`` (``k × p``); the blocks come from
    ``lg.kernel.tangent_kernel(..., diagonal_only=True)`` (cost linear in ``n``).
    """
    from lossgeometry.kernel import tangent_kernel

    blocks = tangent_kernel(problem, w, diagonal_only=True)
    return float(torch.linalg.eigvalsh(blocks.to(torch.float64)).max())


@dataclasses.dataclass(frozen=True)
class SGDStep(Result):
    """The certified mini-batch SGD step for one batch size, and what it predicts."""

    batch_size: int
    step_size: float
    """``η*(b) = b µ_c / (β (λ_g + µ_c (b − 1)))`` (Problem's normalization)."""
    rate: float
    """``1 − µ_c η*(b)``: per-step contraction of the expected-loss bound."""
    mu_c: float
    """``c µ`` (PL: ``‖∇L‖² ≥ 2 µ_c L``)."""
    beta: float
    """``c (L_F² + β_F r_max)``: smoothness of ``L`` on the ball."""
    lambda_g: float
    """``c n κ_d``: gradient-noise constant, ``‖∇L_i‖² ≤ 2 λ_g L_i``."""
    kappa_d: float
    """``max_i λ_max(K_ii)`` over the evaluated points."""
    residual_max: float
    """``r_max``: largest ``‖F(w) − y‖`` over the evaluated points."""
    critical_batch_size: float
    """``b* = 1 + λ_g/µ_c``: up to it a larger batch buys almost proportionally fewer steps."""
    delta: float
    radius_delta: float
    """``R_δ = 2 G √L(w0) / (µ_c δ)``: the path stays in ``B(w0, R_δ)`` w.p. ``≥ 1 − δ``."""
    loss0: float
    n: int
    certified: bool
    """Whether the underlying GD certificate was certified (the constants are estimates)."""
    note: str

    def predicted(self, t: Any) -> Any:
        """Bound on the expected loss ``L(w0) rate^t`` at step(s) ``t``."""
        out = self.loss0 * self.rate ** np.asarray(t, dtype=float)
        return float(out) if out.ndim == 0 else out

    def horizon(self, factor: float = 1e-6) -> int:
        """Steps after which the bound has fallen by ``factor``: ``⌈log factor / log rate⌉``.

        1 when ``rate = 0``; 100 when the bound does not contract (``rate ≥ 1``); at most 10⁵.
        """
        if not 0 < factor < 1:
            raise ValueError(f"factor must lie in (0, 1), got {factor!r}")
        if self.rate <= 0:
            return 1
        if self.rate >= 1:
            return 100
        return int(min(100_000, max(1, math.ceil(math.log(factor) / math.log(self.rate)))))

    def summary(self) -> dict[str, Any]:
        """Headline numbers: the step, the rate, the constants and the ball ``R_δ``."""
        return {
            "batch_size": self.batch_size,
            "step_size": self.step_size,
            "rate": self.rate,
            "mu_c": self.mu_c,
            "beta": self.beta,
            "lambda_g": self.lambda_g,
            "kappa_d": self.kappa_d,
            "residual_max": self.residual_max,
            "critical_batch_size": self.critical_batch_size,
            "delta": self.delta,
            "radius_delta": self.radius_delta,
            "loss0": self.loss0,
            "certified": self.certified,
        }

    def plot(self, ax: Any = None, *, steps: int | None = None) -> Any:
        """The expected-loss bound ``L(w0) rate^t`` for ``t = 0 … steps`` (log scale).

        Args:
            ax: the matplotlib Axes to draw on (default: a new figure).
            steps: the last step drawn (default: :meth:`horizon`, a fall by 10⁶).

        Returns:
            The Axes.
        """
        horizon = self.horizon() if steps is None else int(steps)
        if horizon < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        t = np.arange(horizon + 1)
        ax = axes_or_new(ax, (5, 3.4))
        y = np.asarray(self.predicted(t), dtype=float)
        ax.semilogy(
            t,
            np.where(y > 0, y, np.nan),
            lw=1.8,
            label=f"E[L(w_t)] bound, b = {self.batch_size}, η* = {self.step_size:.3g}",
        )
        ax.set_xlabel("step t")
        ax.set_ylabel("loss bound")
        ax.set_title(f"certified SGD (critical batch b* ≈ {self.critical_batch_size:.3g})")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        return ax


def sgd_step_size(
    problem: Problem,
    certificate: Any,
    batch_size: int,
    *,
    delta: float = 0.1,
    points: torch.Tensor | None = None,
) -> SGDStep:
    """The batch-size dependent SGD step of the PL* SGD theorem, from a GD certificate.

    ``µ``, ``L_F`` and ``β_F`` come from the certificate; ``κ_d`` (diagonal kernel blocks) and
    ``r_max`` are evaluated at ``points`` (default: the certificate's sampled points inside its
    ball). See the module docstring and ``docs/theory.md`` section 5.

    Args:
        problem: the Problem the certificate was computed for.
        certificate: a ``PLStarCertificate``.
        batch_size: ``b`` in ``[1, n]``.
        delta: failure probability of the ball ``B(w0, R_δ)``.
        points: ``(m, p)`` points at which to evaluate ``κ_d`` and ``r_max``.

    Raises:
        ValueError: invalid batch size or delta, ``µ = 0``, or no points to evaluate.
    """
    n = problem.n
    if not isinstance(batch_size, int) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be an integer in [1, {n}], got {batch_size!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if not certificate.mu > 0:
        raise ValueError(
            "the certificate has µ = 0 (λ_min(K) vanishes): there is no PL constant, so no "
            "SGD step can be certified. " + "; ".join(certificate.reasons)
        )
    if points is None:
        if certificate.points is None:
            raise ValueError(
                "the certificate holds no sampled points (loaded from JSON?): pass points= "
                "(e.g. problem.params()[None])"
            )
        mask = torch.as_tensor(certificate.sample_in_ball, dtype=torch.bool)
        points = certificate.points[mask.to(certificate.points.device)]
    if points.ndim == 1:
        points = points[None]
    if len(points) == 0:
        raise ValueError("no points to evaluate κ_d at")
    c = problem.loss_scale
    kd = max(per_sample_kernel_max(problem, w) for w in points)
    r_max = max([float(problem.residual(w).norm()) for w in points] + [certificate.residual_norm])
    mu_c = c * certificate.mu
    lf2 = certificate.lipschitz_F**2
    beta = c * (lf2 + certificate.smoothness_F * r_max)
    lam_g = c * n * kd
    b = batch_size
    eta = b * mu_c / (beta * (lam_g + mu_c * (b - 1)))
    rate = max(0.0, 1.0 - mu_c * eta)
    G = math.sqrt(2.0 * c * ((1.0 - 1.0 / b) * lf2 + n * kd / b))
    r_delta = 2.0 * G * math.sqrt(certificate.loss0) / (mu_c * delta)
    note = (
        "Constants estimated from sampled points (see the GD certificate's verdict). The bound "
        "is on E[L(w_t)] for batches drawn independently at every step."
    )
    if not certificate.certified:
        note = "The GD certificate declined; this step is not covered. " + note
    return SGDStep(
        batch_size=b,
        step_size=eta,
        rate=rate,
        mu_c=mu_c,
        beta=beta,
        lambda_g=lam_g,
        kappa_d=kd,
        residual_max=r_max,
        critical_batch_size=1.0 + lam_g / mu_c,
        delta=delta,
        radius_delta=r_delta,
        loss0=certificate.loss0,
        n=n,
        certified=bool(certificate.certified),
        note=note,
    )


def certified_sgd(
    problem: Problem,
    step: SGDStep,
    steps: int,
    *,
    w0: torch.Tensor | None = None,
    seed: int = 0,
    record_every: int = 1,
    progress: bool | None = None,
) -> Trajectory:
    """Run mini-batch SGD with the certified step; batches are drawn independently per step.

    Each step draws ``b`` distinct indices uniformly at random (a fresh seeded draw every step,
    as the theorem assumes: ``BatchSampler(..., sampling="independent")``; ``lg.train``
    reshuffles per epoch instead) and moves ``w ← w − η*(b) g`` with ``g`` the Problem's
    unbiased mini-batch gradient. Records and the divergence check are those of ``lg.train``
    (:class:`~lossgeometry.recording.Recorder`).

    Returns:
        An ``lg.Trajectory`` (full-data loss, gradient norm, distance and PL ratio at every
        ``record_every`` steps and at the end; ``optimizer = "certified-sgd"``).

    Raises:
        TrainingDivergedError: a mini-batch or recorded loss became NaN or infinite.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    if step.n != problem.n:
        raise ValueError(
            f"the step was computed for n = {step.n} samples, the problem has {problem.n}"
        )
    start = problem.check_w(w0).detach().clone()
    w = start.clone()
    sampler = BatchSampler(problem.n, step.batch_size, seed, sampling="independent")
    rec = Recorder(problem, start, every=record_every, optimizer="certified-sgd", lr=step.step_size)
    for t in progress_bar(range(steps), progress, desc="certified SGD", unit="step"):
        if rec.due(t):
            rec.record(t, w)
        L, g = problem.loss_and_grad(w, sampler.next())
        rec.check(t, L)
        w = w - step.step_size * g
    if rec.last_step != steps:
        rec.record(steps, w)
    return rec.trajectory(w, num_steps=steps, batch_size=step.batch_size, seed=seed)
