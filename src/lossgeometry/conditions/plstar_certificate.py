"""The PL* certificate: the estimated constants, the theorem's radius, step and rate.

:class:`PLStarCertificate` is what :func:`lossgeometry.certify_plstar` returns; it predicts
the loss bound ``L(w0) (1 − η c µ)^t`` and the distance bound of gradient descent from ``w0``
(``docs/theory.md`` section 3). Kernel quantities are reduction-independent; the step is in
the Problem's normalization ``L = c · ½‖F − y‖²``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import panels
from lossgeometry.results import Result

__all__ = ["PLStarCertificate"]


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

    def plot(self, ax: Any = None, *, fig: Any = None) -> Any:
        """λ_min(K) and ‖D²F‖ at the sampled points against the distance from w0 (two panels).

        Args:
            ax: a sequence of two matplotlib Axes, or ``None`` for a new figure.
            fig: deprecated: a Figure to add the two panels to (use ``ax=``).

        Returns:
            The Figure.
        """
        fig, (ax1, ax2), own = panels(
            ax, 2, (9.5, 3.4), fig=fig, owner=f"{type(self).__name__}.plot"
        )
        d = np.asarray(self.sample_distance, dtype=float)
        src = np.asarray(self.sample_source)
        for s, marker in (("w0", "*"), ("sphere", "o"), ("trajectory", "^")):
            m = src == s
            if m.any():
                ax1.scatter(d[m], np.asarray(self.sample_lambda_min)[m], marker=marker, label=s)
                ax2.scatter(d[m], np.asarray(self.sample_hessian_norm)[m], marker=marker, label=s)
        if self.mu > 0:
            ax1.axhline(self.mu, color="k", lw=1, ls="--", label="µ")
        for a in (ax1, ax2):
            if math.isfinite(self.radius):
                a.axvline(self.radius, color="C3", lw=1, label="R needed")
            a.axvline(self.sampled_radius, color="C7", lw=1, ls=":", label="sampled radius")
            a.set_xlabel("‖w − w0‖")
            a.grid(alpha=0.3)
        ax1.set_ylabel("λ_min(K(w))")
        ax2.set_ylabel("‖D²F(w)‖")
        ax1.legend(fontsize=7)
        if own:
            fig.tight_layout()
        return fig
