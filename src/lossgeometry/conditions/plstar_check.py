"""Observed training runs against a PL* certificate: loss versus the bound, distance versus R."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import panels
from lossgeometry.conditions.plstar_certificate import PLStarCertificate
from lossgeometry.results import Result

__all__ = ["CertificateCheck", "compare_with_certificate"]


@dataclasses.dataclass(frozen=True)
class CertificateCheck(Result):
    """A recorded run beside the certificate's predictions.

    For GD the prediction is the theorem's bound ``L(w0) (1 − η c µ)^t`` at the run's step
    ``η`` (covered by the theorem only for ``η ≤ step_size``); for SGD
    (:func:`lossgeometry.conditions.certified_sgd`) it is the bound on the *expected* loss,
    ``L(w0) rate(b)^t``, so a single run may cross it.
    """

    steps: np.ndarray
    observed: np.ndarray
    """``L(w_t)`` recorded on the full data."""
    predicted: np.ndarray
    """The bound at the same steps."""
    distance: np.ndarray
    """``‖w_t − w0‖``."""
    distance_bound: np.ndarray
    """The bound on ``‖w_t − w0‖`` (GD: partial sums of (3.4) in docs/theory.md; SGD: the
    expected path-length bound divided by ``δ``, i.e. ``R_δ`` at every step)."""
    radius: float
    """``R`` (GD) or ``R_δ`` (SGD)."""
    lr: float
    """The step the run used."""
    rate: float
    """The per-step contraction factor the prediction uses."""
    method: str
    """``"gd"`` or ``"sgd"``."""
    covered: bool
    """Whether the certificate covers this run (certified, and ``lr`` not above its step)."""
    loss_holds: bool
    """``observed ≤ predicted`` at every record above the round-off floor."""
    distance_holds: bool
    """``distance ≤ distance_bound`` at every record."""
    max_excess: float
    """``max observed/predicted`` over the checked records (``≤ 1`` when the bound holds)."""
    loss_floor: float
    """Records whose prediction is below this loss are not checked (round-off level)."""
    note: str

    def summary(self) -> dict[str, Any]:
        """Headline numbers: coverage, whether both bounds held, the worst excess, the step."""
        obs = np.asarray(self.observed, dtype=float)
        dist = np.asarray(self.distance, dtype=float)
        return {
            "method": self.method,
            "covered": self.covered,
            "loss_holds": self.loss_holds,
            "distance_holds": self.distance_holds,
            "max_excess": self.max_excess,
            "lr": self.lr,
            "rate": self.rate,
            "radius": self.radius,
            "records": int(obs.size),
            "final_loss": float(obs[-1]) if obs.size else math.nan,
            "max_distance": float(dist.max()) if dist.size else math.nan,
        }

    @property
    def contraction(self) -> float:
        """``1 − rate``: ``η c µ`` for GD (the bound's relative decrease per step)."""
        return 1.0 - float(self.rate)

    @property
    def bound_remark(self) -> str:
        """A sentence when the bound falls by less than 1 % over the recorded steps, else ``""``.

        With a tiny ``η c µ`` (e.g. 1.6e-5) ``L(w0)(1 − η c µ)^t`` is drawn as a flat line at
        ``L(w0)``; the remark says why (the figure shows it too).
        """
        pred = np.asarray(self.predicted, dtype=float)
        if pred.size < 2 or not np.all(np.isfinite(pred)) or pred[0] <= 0:
            return ""
        drop = 1.0 - float(pred[-1] / pred[0])
        if drop >= 0.01:
            return ""
        name = "η c µ" if self.method == "gd" else "1 − rate"
        last = int(np.asarray(self.steps)[-1])
        return (
            f"The bound decreases by the factor 1 − {name} per step with {name} = "
            f"{self.contraction:.2g}: over these {last} steps it falls by "
            f"{100 * drop:.2g} % of L(w0), so it is drawn as a flat line at L(w0)."
        )

    def plot(self, ax: Any = None, *, fig: Any = None) -> Any:
        """Observed loss against the bound, and the distance from w0 against its bound and R.

        A bound that falls by less than 1 % over the plotted steps is marked on the loss panel
        with its per-step decrease (``η c µ = …``; :attr:`bound_remark`).

        Args:
            ax: a sequence of two matplotlib Axes, or ``None`` for a new figure.
            fig: deprecated: a Figure to add the two panels to (use ``ax=``).

        Returns:
            The Figure.
        """
        fig, (ax1, ax2), own = panels(
            ax, 2, (9.5, 3.4), fig=fig, owner=f"{type(self).__name__}.plot"
        )
        pos = lambda a: np.where(np.asarray(a) > 0, a, np.nan)  # noqa: E731
        ax1.semilogy(self.steps, pos(self.observed), lw=1.8, label="observed L(w_t)")
        lab = "E[L] bound" if self.method == "sgd" else "predicted bound"
        ax1.semilogy(self.steps, pos(self.predicted), lw=1.5, ls="--", label=lab)
        obs = np.asarray(self.observed)
        if self.loss_floor > 0 and obs.size and np.nanmin(obs) < 100 * self.loss_floor:
            ax1.axhline(self.loss_floor, color="C7", lw=0.8, ls=":", label="round-off floor")
        if self.bound_remark:
            name = "η c µ" if self.method == "gd" else "1 − rate"
            ax1.text(
                0.02,
                0.04,
                f"bound flat on this scale: {name} = {self.contraction:.2g} per step",
                transform=ax1.transAxes,
                fontsize=7,
                color="C1",
            )
        ax1.set_xlabel("step")
        ax1.set_ylabel("loss")
        ax1.legend(fontsize=8)
        ax1.grid(alpha=0.3, which="both")
        ax2.plot(self.steps, self.distance, lw=1.8, label="‖w_t − w0‖")
        ax2.plot(self.steps, self.distance_bound, lw=1.5, ls="--", label="bound")
        if math.isfinite(self.radius):
            ax2.axhline(self.radius, color="C3", lw=1, label="R_δ" if self.method == "sgd" else "R")
        ax2.set_xlabel("step")
        ax2.set_ylabel("distance from w0")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
        if own:
            fig.tight_layout()
        return fig


def compare_with_certificate(
    trajectory: Any,
    certificate: PLStarCertificate,
    sgd_step: Any = None,
    *,
    lr: float | None = None,
    rtol: float = 1e-6,
    loss_floor: float | None = None,
) -> CertificateCheck:
    """Compare a recorded run with the certificate's loss and distance predictions.

    Args:
        trajectory: an ``lg.Trajectory`` started at the certificate's ``w0``.
        certificate: the :class:`~lossgeometry.conditions.plstar.PLStarCertificate`.
        sgd_step: for SGD runs, the ``lg.SGDStep`` the run used (its expected-loss bound
            and ``R_δ`` are used); ``None`` for GD.
        lr: GD's step (default: ``trajectory.lr``; runs of ``lg.train`` with an optimizer
            factory record none, so pass it, or use ``lg.run_certified_gd``).
        rtol: relative slack of the loss comparison.
        loss_floor: losses below this are round-off (default
            ``(100 · eps(dtype))² · L(w0)`` relative to the residual, i.e. the loss of a residual
            at 100·eps of ``‖F(w0) − y‖``).

    Raises:
        ValueError: no step known for a GD run (pass ``lr=``).
    """
    steps = np.asarray(trajectory.steps, dtype=float)
    observed = np.asarray(trajectory.loss, dtype=float)
    distance = np.asarray(trajectory.distance, dtype=float)
    if loss_floor is None:
        eps = torch.finfo(getattr(torch, certificate.dtype)).eps
        loss_floor = (100.0 * eps) ** 2 * certificate.loss0
    if sgd_step is not None:
        lr = float(sgd_step.step_size)
        rate = float(sgd_step.rate)
        predicted = certificate.loss0 * rate**steps
        radius = float(sgd_step.radius_delta)
        dist_bound = np.full_like(steps, radius)
        method = "sgd"
        covered = certificate.certified
        note = (
            "SGD: the bound is on the expected loss E[L(w_t)] (a single run may cross it), and "
            f"the path stays within R_δ = {radius:.4g} with probability ≥ 1 − δ = "
            f"{1 - sgd_step.delta:.3g}."
        )
    else:
        lr = lr if lr is not None else getattr(trajectory, "lr", None)
        if lr is None:
            raise ValueError(
                "the trajectory has no learning rate recorded: pass lr= (GD) or sgd_step= (SGD)"
            )
        lr = float(lr)
        rate = certificate.rate_for(lr)
        predicted = np.asarray(certificate.predicted(steps, lr=lr))
        dist_bound = np.asarray(certificate.distance_bound(steps, lr=lr))
        radius = certificate.radius
        method = "gd"
        covered = certificate.certified and lr <= certificate.step_size * (1 + 1e-9)
        if not certificate.certified:
            note = "The certificate declined, so the prediction is not covered by the theorem."
        elif not covered:
            note = (
                f"The run's step {lr:.4g} exceeds the certified step {certificate.step_size:.4g}: "
                "the theorem does not cover this run."
            )
        else:
            note = "GD with a step the certificate covers."
    check = predicted >= loss_floor
    ratio = observed[check] / predicted[check] if check.any() else np.zeros(0)
    max_excess = float(np.max(ratio)) if ratio.size else 0.0
    return CertificateCheck(
        steps=steps.astype(int),
        observed=observed,
        predicted=predicted,
        distance=distance,
        distance_bound=dist_bound,
        radius=radius,
        lr=lr,
        rate=rate,
        method=method,
        covered=bool(covered),
        loss_holds=bool(max_excess <= 1 + rtol),
        distance_holds=bool(np.all(distance <= dist_bound * (1 + rtol) + 1e-12)),
        max_excess=max_excess,
        loss_floor=float(loss_floor),
        note=note,
    )
