"""The empirical PL* ratio along a run, its kernel lower bound, and the PL*_ε analysis.

For the square loss ``L = c · ½‖F − y‖²`` (``c = problem.loss_scale``), ``∇L = c DFᵀ r`` and

    ‖∇L(w)‖² / L(w) = 2 c · rᵀK r / ‖r‖²  ≥  2 c λ_min(K(w)),

so the PL ratio that :func:`lossgeometry.train` records is never below ``2 c λ_min(K)``
(``docs/theory.md`` section 1). :func:`pl_ratio_profile` puts the two side by side along a
recorded run.

PL*_ε (Liu, Zhu & Belkin, section 6): for "almost over-parameterized" systems the inequality
``‖∇L‖² ≥ µ L`` only holds while ``L ≥ ε``; GD then converges linearly down to ``ε`` and
nothing is promised below. :func:`plstar_epsilon` reads a run and reports, for a PL constant
``µ``, the level ``ε(µ)`` above which the recorded ratio never falls below ``µ``, the plateau
the run converges to, and the step at which linear convergence of the loss ends.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import axes_or_new, panels
from lossgeometry._progress import progress_bar
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["PLRatioProfile", "PLStarEpsilon", "pl_ratio_profile", "plstar_epsilon"]


@dataclasses.dataclass(frozen=True)
class PLRatioProfile(Result):
    """The PL ratio ``‖∇L‖²/L`` along a run, beside its lower bound ``2 c λ_min(K(w_t))``."""

    steps: np.ndarray
    """Optimizer step of each evaluated record."""
    loss: np.ndarray
    """``L(w_t)`` (Problem's normalization)."""
    pl_ratio: np.ndarray
    """``‖∇L(w_t)‖² / L(w_t)``."""
    lambda_min: np.ndarray
    """``λ_min(K(w_t))`` (kernel units)."""
    bound: np.ndarray
    """``2 c λ_min(K(w_t))``, with ``c = loss_scale``."""
    loss_scale: float
    holds: bool
    """Whether ``pl_ratio ≥ bound`` at every evaluated record (up to ``rtol``)."""
    min_margin: float
    """``min (pl_ratio / bound)`` over the records with ``bound > 0`` (``inf`` if none)."""

    def summary(self) -> dict[str, Any]:
        """Headline numbers: whether the bound holds, the smallest margin, the range covered."""
        return {
            "holds": self.holds,
            "min_margin": self.min_margin,
            "records": int(np.asarray(self.steps).size),
            "min_pl_ratio": _min_or_nan(self.pl_ratio),
            "min_bound": _min_or_nan(self.bound),
            "min_lambda_min": _min_or_nan(self.lambda_min),
            "loss_scale": self.loss_scale,
        }

    def plot(self, ax: Any = None) -> Any:
        """The PL ratio and its kernel bound against the step (log scale); returns the Axes.

        Args:
            ax: the matplotlib Axes to draw on (default: a new figure).
        """
        ax = axes_or_new(ax, (5, 3.4))
        ax.semilogy(self.steps, self.pl_ratio, lw=1.8, label="‖∇L‖²/L (observed)")
        b = np.where(self.bound > 0, self.bound, np.nan)
        ax.semilogy(self.steps, b, lw=1.5, ls="--", label="2c·λ_min(K(w_t))")
        ax.set_xlabel("step")
        ax.set_ylabel("PL ratio")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        return ax


def pl_ratio_profile(
    problem: Problem,
    trajectory: Any,
    *,
    max_points: int | None = 20,
    rtol: float = 1e-4,
    kernel_options: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> PLRatioProfile:
    """Evaluate ``λ_min(K)`` at the iterates of a run and compare ``2 c λ_min`` with the ratio.

    Args:
        problem: the Problem the run trained (square loss).
        trajectory: an ``lg.Trajectory`` recorded with ``record_iterates=True``.
        max_points: evaluate at most this many evenly spaced records (``None``: all).
        rtol: relative slack for ``holds`` (round-off in the recorded ratio).
        kernel_options: extra keyword arguments for ``lg.kernel_spectrum``.
        progress: progress bar.

    Raises:
        ValueError: a non-MSE problem or a trajectory without iterates.
    """
    from lossgeometry.kernel import kernel_spectrum

    if not problem.is_mse:
        raise ValueError("the kernel bound on the PL ratio holds for the square loss only")
    its = getattr(trajectory, "iterates", None)
    if its is None:
        raise ValueError(
            "the trajectory has no iterates: train with lg.train(..., record_iterates=True) "
            "so that λ_min(K(w_t)) can be evaluated along the run"
        )
    m = len(its)
    idx = np.arange(m)
    if max_points is not None and m > max_points:
        idx = np.unique(np.linspace(0, m - 1, max_points).round().astype(int))
    c = problem.loss_scale
    lam = []
    for i in progress_bar(idx, progress, desc="λ_min(K) along the run", unit="point"):
        spec = kernel_spectrum(problem, w=torch.as_tensor(its[i]), **(kernel_options or {}))
        lam.append(max(float(spec.lambda_min), 0.0))
    lam_a = np.asarray(lam)
    ratio = np.asarray(trajectory.pl_ratio, dtype=float)[idx]
    bound = 2.0 * c * lam_a
    pos = bound > 0
    margin = float(np.min(ratio[pos] / bound[pos])) if pos.any() else math.inf
    return PLRatioProfile(
        steps=np.asarray(trajectory.steps)[idx],
        loss=np.asarray(trajectory.loss, dtype=float)[idx],
        pl_ratio=ratio,
        lambda_min=lam_a,
        bound=bound,
        loss_scale=c,
        holds=bool(np.all(ratio >= bound * (1 - rtol))),
        min_margin=margin,
    )


@dataclasses.dataclass(frozen=True)
class PLStarEpsilon(Result):
    """Where PL* holds along a run (only while ``L ≥ ε``) and where linear convergence ends."""

    steps: np.ndarray
    loss: np.ndarray
    pl_ratio: np.ndarray
    """``‖∇L‖²/L`` (convention ``‖∇L‖² ≥ µ L``)."""
    mu: float
    """The PL constant analysed: given, or the smallest ratio over the linear phase."""
    epsilon: float
    """``ε(µ)``: the largest recorded loss at which the ratio is below ``µ`` (0 if never);
    ``‖∇L‖² ≥ µ L`` holds at every recorded point with ``L > ε``."""
    plateau: float
    """``L_∞``: the loss the run converges to, extrapolated from its last part by Aitken's
    Δ² (exact for ``L_t = L_∞ + A ρ^t``); 0 when no plateau is in sight."""
    linear_until_step: int
    """Where the final stretch of collapsing PL ratio begins (the run's last step when it did
    not stall)."""
    linear_rate: float
    """Asymptotic rate ``−Δ log(L_t − L_∞) / Δt`` per step over the last half of the run."""
    loss_at_break: float
    """``L`` at :attr:`linear_until_step`."""
    stalled: bool
    """Whether the PL ratio collapses at the end of the run (the loss levels off above 0)."""
    mu_grid: np.ndarray
    """PL constants at which :attr:`epsilon_grid` is evaluated (quantiles of the ratio)."""
    epsilon_grid: np.ndarray
    """``ε(µ)`` for each ``µ`` of :attr:`mu_grid`."""
    verdict: str

    def summary(self) -> dict[str, Any]:
        """Headline numbers: ``µ``, ``ε(µ)``, the plateau and where linear convergence ends."""
        return {
            "mu": self.mu,
            "epsilon": self.epsilon,
            "plateau": self.plateau,
            "stalled": self.stalled,
            "linear_until_step": self.linear_until_step,
            "loss_at_break": self.loss_at_break,
            "linear_rate": self.linear_rate,
            "records": int(np.asarray(self.steps).size),
        }

    def plot(self, ax: Any = None, *, fig: Any = None) -> Any:
        """Loss with the end of the linear phase; the ratio against the loss with ``µ``, ``ε``.

        Args:
            ax: a sequence of two matplotlib Axes, or ``None`` for a new figure.
            fig: deprecated: a Figure to add the two panels to (use ``ax=``).

        Returns:
            The Figure.
        """
        fig, (ax1, ax2), own = panels(
            ax, 2, (9.5, 3.4), fig=fig, owner=f"{type(self).__name__}.plot"
        )
        ax1.semilogy(self.steps, np.where(self.loss > 0, self.loss, np.nan), lw=1.8)
        if self.stalled:
            ax1.axvline(
                self.linear_until_step, color="C3", ls="--", lw=1, label="linear phase ends"
            )
            ax1.legend(fontsize=8)
        ax1.set_xlabel("step")
        ax1.set_ylabel("loss")
        ax1.grid(alpha=0.3, which="both")
        ok = (self.loss > 0) & np.isfinite(self.pl_ratio) & (self.pl_ratio > 0)
        ax2.loglog(self.loss[ok], self.pl_ratio[ok], ".", ms=3)
        ax2.axhline(self.mu, color="k", ls="--", lw=1, label=f"µ = {self.mu:.3g}")
        if self.epsilon > 0:
            ax2.axvline(self.epsilon, color="C3", lw=1, label=f"ε = {self.epsilon:.3g}")
        ax2.set_xlabel("loss L(w_t)")
        ax2.set_ylabel("‖∇L‖²/L")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3, which="both")
        if own:
            fig.tight_layout()
        return fig


def _min_or_nan(a: Any) -> float:
    arr = np.asarray(a, dtype=float)
    return float(arr.min()) if arr.size else math.nan


def epsilon_for(loss: np.ndarray, ratio: np.ndarray, mu: float) -> float:
    """``ε(µ) = max{L_t : ratio_t < µ}`` (0 when the ratio never falls below ``µ``)."""
    bad = ratio < mu
    return float(np.max(loss[bad])) if bad.any() else 0.0


def _interp_log_loss(steps: np.ndarray, loss: np.ndarray, t: float) -> float:
    logl = np.log(np.maximum(loss, np.finfo(float).tiny))
    return float(np.exp(np.interp(t, steps, logl)))


def plateau_estimate(steps: np.ndarray, loss: np.ndarray) -> float:
    """Aitken's Δ² extrapolation of ``lim L_t`` from the last third of the run.

    Three equally spaced points (log-interpolated) give ``L_∞ = (L_a L_c − L_b²)/(L_a − 2L_b +
    L_c)``.

    Exact when ``L_t = L_∞ + A ρ^t``. Returns ``L_T`` when the tail is flat (relative change
    ``≤ 1e-6``: the plateau is reached), and 0 when ``L_T ≤ 1e-12 · L_0`` (converged to zero
    up to round-off) or when the points are not decreasing and convex (no plateau in sight).
    """
    T = float(steps[-1])
    h = (T - float(steps[0])) / 6.0
    if h <= 0:
        return 0.0
    La, Lb, Lc = (_interp_log_loss(steps, loss, t) for t in (T - 2 * h, T - h, T))
    if Lc <= 1e-12 * float(loss[0]):
        return 0.0  # converged to zero up to round-off
    if max(La, Lb, Lc) - min(La, Lb, Lc) <= 1e-6 * max(La, Lb, Lc):
        return float(Lc)  # the loss no longer moves: the plateau is reached
    den = La - 2.0 * Lb + Lc
    if not (La > Lb > Lc) or den <= 0:
        return 0.0
    est = (La * Lc - Lb**2) / den
    return float(min(max(est, 0.0), Lc))


def _gradient_collapse(loss: np.ndarray, ratio: np.ndarray, w: int) -> np.ndarray:
    """Per record ``j``: does the PL ratio collapse over the next ``w`` records?

    True when ``‖∇L‖²`` falls at least twice as fast (in log) as ``L``, or ``L`` stopped moving.
    The last ``w`` records repeat the last window's answer.
    """
    tiny = np.finfo(float).tiny
    logL = np.log(np.maximum(loss, tiny))
    g2 = np.where(np.isfinite(ratio), ratio * loss, 0.0)
    logG = np.log(np.maximum(g2, tiny))
    m = len(loss)
    out = np.zeros(m, dtype=bool)
    for j in range(m):
        a, b = (j, j + w) if j + w < m else (max(0, m - 1 - w), m - 1)
        dL, dG = logL[b] - logL[a], logG[b] - logG[a]
        if abs(dL) <= 1e-12:
            out[j] = True  # the loss no longer moves
        else:
            out[j] = dG <= 2.0 * dL if dL < 0 else dG < 0
    return out


def plstar_epsilon(
    trajectory: Any,
    mu: float | None = None,
    *,
    window: int | None = None,
) -> PLStarEpsilon:
    """Analyse a run for PL*_ε: where ``‖∇L‖² ≥ µ L`` holds, and where linear convergence ends.

    Linear convergence of ``L`` needs the PL ratio ``‖∇L‖²/L`` to stay bounded below. A run
    *stalls* when, at its end, the squared gradient falls at least twice as fast in log as the
    loss (``Δ log‖∇L‖² ≤ 2 Δ log L`` over ``window`` records), i.e. the ratio collapses while
    the loss levels off; the linear phase ends where that final stretch begins. For a loss
    ``L = L_∞ + e`` with ``e ∝ ‖∇L‖²`` this happens exactly when ``e < L_∞``, i.e. ``L < 2L_∞``.
    The plateau ``L_∞`` is extrapolated by :func:`plateau_estimate`. ``ε(µ)`` is the largest
    recorded loss at which the ratio falls below ``µ``: PL* with ``µ`` holds at every recorded
    point above it. With ``mu=None`` the analysed constant is the smallest ratio over the
    linear phase.

    For linear least squares with ``p < n`` the closed form is
    ``ε(µ) = L*/(1 − µ/(2cλ⁺))`` (``docs/theory.md`` section 7).

    Args:
        trajectory: an ``lg.Trajectory`` (or anything with ``steps``, ``loss``, ``pl_ratio``).
        mu: the PL constant (convention ``‖∇L‖² ≥ µ L``); default: see above.
        window: records per comparison window (default 1: consecutive records; larger
            windows smooth noisy, e.g. stochastic, runs).

    Raises:
        ValueError: fewer than 3 records, or a zero loss at the start.
    """
    steps = np.asarray(trajectory.steps, dtype=float)
    loss = np.asarray(trajectory.loss, dtype=float)
    ratio = np.asarray(trajectory.pl_ratio, dtype=float)
    if len(loss) < 3:
        raise ValueError("the run has fewer than 3 records: record more points (record_every)")
    if not loss[0] > 0:
        raise ValueError("the run starts at zero loss: there is nothing to analyse")
    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be a positive integer, got {window!r}")
    L_inf = plateau_estimate(steps, loss)
    collapse = _gradient_collapse(loss, ratio, window or 1)
    converged = loss[-1] <= 1e-12 * loss[0]
    stalled = bool(collapse[-1]) and not converged
    if stalled:
        j_break = len(collapse) - 1
        while j_break > 0 and collapse[j_break - 1]:
            j_break -= 1
        if L_inf == 0.0:
            L_inf = float(loss[-1])  # no extrapolation available: the last loss bounds it
    else:
        j_break = len(loss) - 1
    half = steps >= steps[-1] / 2
    excess = loss[half] - (L_inf if stalled else 0.0)
    ok = excess > 0
    rate = math.nan
    if ok.sum() >= 2:
        slope = np.polyfit(steps[half][ok], np.log(excess[ok]), 1)[0]
        rate = float(-slope)
    finite = np.isfinite(ratio)
    if mu is None:
        seg = ratio[: j_break + 1][finite[: j_break + 1]]
        mu = float(np.min(seg)) if seg.size else 0.0
    elif not mu >= 0:
        raise ValueError(f"mu must be non-negative, got {mu}")
    eps = epsilon_for(loss[finite], ratio[finite], mu)
    qs = np.quantile(ratio[finite], np.linspace(0.05, 0.95, 10)) if finite.any() else np.zeros(0)
    grid = np.unique(qs)
    eps_grid = np.array([epsilon_for(loss[finite], ratio[finite], m) for m in grid])
    if stalled:
        verdict = (
            f"The run stalls at a plateau L_∞ ≈ {L_inf:.4g} (not zero): from step "
            f"{int(steps[j_break])} (L = {loss[j_break]:.4g}) on, ‖∇L‖² vanishes faster than L, "
            f"so the loss no longer converges linearly. ‖∇L‖² ≥ µL with µ = {mu:.4g} holds at "
            f"every recorded point with L > ε = {eps:.4g} (PL*_ε), not below: the problem "
            "behaves as almost over-parameterized."
        )
    else:
        target = "zero" if L_inf == 0 else f"L_∞ ≈ {L_inf:.4g} (extrapolated, not reached)"
        verdict = (
            f"The loss converges linearly towards {target} over the whole run (final rate "
            f"{rate:.3g} per step in log of the excess). ‖∇L‖² ≥ µL with µ = {mu:.4g} holds at "
            f"every recorded point with L > ε = {eps:.4g}."
        )
    return PLStarEpsilon(
        steps=steps.astype(int),
        loss=loss,
        pl_ratio=ratio,
        mu=float(mu),
        epsilon=eps,
        plateau=float(L_inf),
        linear_until_step=int(steps[j_break]),
        linear_rate=rate,
        loss_at_break=float(loss[j_break]),
        stalled=bool(stalled),
        mu_grid=grid,
        epsilon_grid=eps_grid,
        verdict=verdict,
    )
