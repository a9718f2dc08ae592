"""Aiming and (relaxed) PL along a recorded run, with the last iterate as the minimizer proxy.

Both read the full-data records of a :class:`~lossgeometry.conditions.ConditionTrace`
(``f(x_k)``, ``∇f(x_k)``, ``x_k − x^K``); ``f`` is the *mean* of the per-sample losses (see
the trace's docstring for the normalization).

* **Aiming** (Liu, Zhu & Belkin; Islamov et al. Table 1): ``⟨∇f(x), x − Proj(x, S)⟩ ≥ θ f(x)``
  (``f* = 0``). With ``x^K`` standing in for ``Proj(x_k, S)`` we report the angle
  ``∠(∇f(x_k), x_k − x^K)`` (aiming needs ``cos ∠ > 0``, i.e. an angle below 90°) and the
  aiming coefficient ``θ_k = ⟨∇f(x_k), x_k − x^K⟩ / (f(x_k) − f̄*)``; the run supports Aiming
  with ``θ = min_k θ_k`` when that is positive.
* **Relaxed PL**: ``‖∇f(x)‖² ≥ µ (f(x) − f*)^{2/δ}`` (``δ = 2``: the PL inequality). On the run
  ``log µ_k(δ) = 2 log‖∇f(x_k)‖ − (2/δ) log(f(x_k) − f(x^K))`` and the largest constant the
  run allows is ``µ(δ) = min_k µ_k(δ)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lossgeometry.results import Result

__all__ = ["AimingProfile", "RelaxedPL"]


@dataclasses.dataclass(frozen=True)
class AimingProfile(Result):
    """The Aiming quantities along a run (one entry per full-data record).

    ``x^K`` (the run's last iterate) stands in for the projection onto the minimizer set.
    """

    run: np.ndarray
    """Index of the run (seed) of each record."""
    step: np.ndarray
    """Optimizer step ``k`` of each record."""
    cos: np.ndarray
    """``cos ∠(g_k, x_k − x^K) = ⟨g_k, x_k − x^K⟩ / (‖g_k‖ ‖x_k − x^K‖)``; Aiming needs ``> 0``.
    ``g_k`` is ``∇f(x_k)`` (``source="full"``) or the mini-batch gradient (``"batch"``)."""
    angle_deg: np.ndarray
    """The angle in degrees, in ``[0, 180]`` (Aiming needs ``< 90``)."""
    coefficient: np.ndarray
    """``θ_k = ⟨g_k, x_k − x^K⟩ / (f(x_k) − f̄*)`` (``nan``-free: ``±inf`` where the loss
    equals ``f̄*``)."""
    loss: np.ndarray
    """``f(x_k)`` (mean per-sample loss; the mini-batch loss for ``source="batch"``)."""
    source: str
    """``"full"`` (full-data gradient) or ``"batch"`` (the optimizer's mini-batch gradient)."""

    @property
    def negative_fraction(self) -> float:
        """Fraction of records where ``cos ∠ ≤ 0`` (Aiming fails there)."""
        return float(np.mean(self.cos <= 0)) if self.cos.size else 0.0

    @property
    def min_coefficient(self) -> float:
        """``min_k θ_k``: the run supports Aiming with this θ when it is positive."""
        finite = self.coefficient[np.isfinite(self.coefficient)]
        return float(finite.min()) if finite.size else float("nan")

    @property
    def holds(self) -> bool:
        """Whether ``cos ∠ > 0`` at every record."""
        return bool(np.all(self.cos > 0))

    def summary(self) -> dict[str, Any]:
        """JSON-able headline numbers."""
        return {
            "source": self.source,
            "records": int(self.cos.size),
            "aiming_holds": self.holds,
            "negative_fraction": self.negative_fraction,
            "min_coefficient": self.min_coefficient,
            "min_cos": float(self.cos.min()) if self.cos.size else float("nan"),
        }

    def plot(self, ax: Any = None) -> Any:
        """``cos ∠(g_k, x_k − x^K)`` against the step, one line per run; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.4))
        for r in np.unique(self.run):
            m = self.run == r
            ax.plot(self.step[m], self.cos[m], lw=1.4, label=f"run {int(r)}")
        ax.axhline(0.0, color="k", lw=0.8, ls="--")
        ax.set_xlabel("step k")
        ax.set_ylabel(r"$\cos\angle(\nabla f(x_k),\, x_k - x^K)$")
        ax.set_title("Aiming: positive where it holds")
        if np.unique(self.run).size > 1:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        return ax


@dataclasses.dataclass(frozen=True)
class RelaxedPL(Result):
    """``log µ_k(δ) = 2 log‖∇f(x_k)‖ − (2/δ) log(f(x_k) − f(x^K))`` along a run.

    ``µ_k(δ)`` is the largest ``µ`` with ``‖∇f(x_k)‖² ≥ µ (f(x_k) − f(x^K))^{2/δ}`` at step k;
    ``δ = 2`` is the PL inequality with ``f* ≈ f(x^K)``. Records where ``f(x_k) ≤ f(x^K)``
    constrain nothing and hold ``+inf``.
    """

    deltas: np.ndarray
    """The exponents δ (rows of :attr:`log_mu`)."""
    run: np.ndarray
    """Index of the run of each record."""
    step: np.ndarray
    """Optimizer step of each record."""
    log_mu: np.ndarray
    """``(len(deltas), records)`` natural logarithms ``log µ_k(δ)``."""
    log_mu_min: np.ndarray
    """``min_k log µ_k(δ)`` per δ: ``log`` of the largest constant valid along the run."""

    @property
    def mu(self) -> np.ndarray:
        """``µ(δ) = exp(log_mu_min)``: the largest relaxed-PL constant the run allows."""
        return np.exp(self.log_mu_min)

    def summary(self) -> dict[str, Any]:
        """JSON-able ``{δ: µ(δ)}``."""
        return {f"delta={d:g}": float(m) for d, m in zip(self.deltas, self.mu, strict=True)}

    def plot(self, ax: Any = None) -> Any:
        """``log µ_k(δ)`` against the step for each δ, and its minimum ``log µ(δ)``.

        Every finite record is drawn with a marker (records between ``+inf`` ones, e.g. a
        full loss every few steps, would otherwise be invisible line pieces), and the minimum
        over the run, the headline ``µ(δ)``, as a dotted line. Returns the axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.4))
        for j, d in enumerate(self.deltas):
            y = np.where(np.isfinite(self.log_mu[j]), self.log_mu[j], np.nan)
            for r in np.unique(self.run):
                m = self.run == r
                ax.plot(
                    self.step[m],
                    y[m],
                    lw=1.3,
                    marker="o",
                    ms=2.5,
                    color=f"C{j}",
                    label=f"δ={d:g}" if r == self.run.min() else None,
                )
            low = float(self.log_mu_min[j])
            if np.isfinite(low):
                ax.axhline(
                    low, color=f"C{j}", lw=0.9, ls=":", label=f"µ(δ={d:g}) = {np.exp(low):.4g}"
                )
        ax.set_xlabel("step k")
        ax.set_ylabel(r"$\log \mu_k(\delta)$")
        ax.set_title("relaxed PL along the run")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        return ax


def aiming_profile(
    run: np.ndarray,
    step: np.ndarray,
    inner: np.ndarray,
    grad_norm: np.ndarray,
    distance: np.ndarray,
    loss: np.ndarray,
    f_star: np.ndarray | float,
    source: str,
) -> AimingProfile:
    """Build an :class:`AimingProfile` from recorded scalars (records at ``x^K`` dropped)."""
    keep = (distance > 0) & (grad_norm > 0)
    denom = grad_norm[keep] * distance[keep]
    cos = np.clip(inner[keep] / denom, -1.0, 1.0)
    excess = (loss - f_star)[keep] if np.ndim(f_star) else loss[keep] - f_star
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where(excess != 0, inner[keep] / np.where(excess != 0, excess, 1.0), np.inf)
    return AimingProfile(
        run=run[keep].astype(int),
        step=step[keep].astype(int),
        cos=cos,
        angle_deg=np.degrees(np.arccos(cos)),
        coefficient=coef,
        loss=loss[keep],
        source=source,
    )


def relaxed_pl(
    run: np.ndarray,
    step: np.ndarray,
    grad_norm: np.ndarray,
    excess: np.ndarray,
    deltas: np.ndarray | list[float] | tuple[float, ...],
) -> RelaxedPL:
    """Build a :class:`RelaxedPL` from ``‖∇f(x_k)‖`` and ``f(x_k) − f(x^K)``."""
    d = np.asarray(deltas, dtype=float).reshape(-1)
    if d.size == 0 or np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise ValueError(f"deltas must be positive finite numbers, got {deltas!r}")
    active = excess > 0
    with np.errstate(divide="ignore"):
        lg = 2.0 * np.log(grad_norm)
        le = np.log(np.where(active, excess, 1.0))
    log_mu = np.where(active[None, :], lg[None, :] - (2.0 / d[:, None]) * le[None, :], np.inf)
    mins = log_mu.min(axis=1) if log_mu.shape[1] else np.full(d.size, np.inf)
    return RelaxedPL(
        deltas=d, run=run.astype(int), step=step.astype(int), log_mu=log_mu, log_mu_min=mins
    )
