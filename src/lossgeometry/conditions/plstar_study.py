r"""The PL* study: a certificate from ``w0``, checked against the training run and CertifiedGD.

:func:`plstar_study` is the one function the CLI (``lossgeometry certify``) and the report's
PL* section call; :class:`PLStarOptions` holds the only copy of each of their defaults. It

1. estimates the certificate (:func:`~lossgeometry.certify_plstar`): ``µ = min λ_min(K)``,
   ``L_F``, ``β_F`` over sampled points of ``B(w0, ρ)``, the radius
   ``R = 2 L_F ‖F(w0) − y‖/µ``, the step ``η = 1/(c(L_F² + β_F‖F(w0) − y‖))`` and the bound
   ``L(w_t) ≤ (1 − η c µ)^t L(w0)`` (``c = problem.loss_scale``, ``docs/theory.md`` §3);
2. compares a given training run from ``w0`` with that bound
   (:func:`~lossgeometry.compare_with_certificate`);
3. when certified, runs ``CertifiedGD`` for ``certified_gd_steps`` steps at the certified
   step and compares it with the bound too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry.conditions.plstar import PLStarCertificate, certify_plstar
from lossgeometry.conditions.plstar_check import CertificateCheck, compare_with_certificate
from lossgeometry.options import Options, OptionsError
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["PLStarOptions", "PLStarStudy", "plstar_study"]


@dataclasses.dataclass(frozen=True)
class PLStarOptions(Options):
    """Options of :func:`plstar_study` (``[report.plstar]``, ``lossgeometry certify``)."""

    samples: int = 0
    """Random points per round in ``B(w0, ρ)`` besides ``w0`` and the run's points (each
    costs a kernel spectrum and a model-Hessian norm)."""
    radius: float | None = None
    """Sample in this ball instead of the self-consistent radius ``R``."""
    max_rounds: int = 1
    """How often the sampling radius may grow to the needed ``R``."""
    radii: tuple[float, ...] = (0.25, 0.5, 1.0)
    """Fractions of the sampling radius at which the random points are placed."""
    margin: float = 0.1
    """The sampling radius is ``(1 + margin)`` times the needed ``R``."""
    trajectory_points: int = 2
    """At most this many iterates of the training run are evaluated."""
    hessian_restarts: int = 0
    """Random restarts of the model-Hessian norm besides its start at the residual."""
    certified_gd_steps: int = 100
    """When certified, run CertifiedGD this many steps and compare (0: skip)."""
    seed: int = 0
    """Seed of the random directions and of the Hessian-norm estimator."""

    def check(self) -> None:
        """Counts non-negative, ``max_rounds ≥ 1``, positive ``radius``."""
        for name in ("samples", "trajectory_points", "hessian_restarts", "certified_gd_steps"):
            if getattr(self, name) < 0:
                raise OptionsError(f"{name} = {getattr(self, name)}: must be non-negative")
        if self.max_rounds < 1:
            raise OptionsError(f"max_rounds = {self.max_rounds}: must be at least 1")
        if self.radius is not None and not self.radius > 0:
            raise OptionsError(f"radius = {self.radius}: must be positive")


@dataclasses.dataclass(frozen=True)
class PLStarStudy(Result):
    """A PL* certificate and the runs checked against it.

    Attributes:
        certificate: the :class:`~lossgeometry.PLStarCertificate`.
        training_run: the given training run against the bound at its own step (``None``
            without a run or when the run records no step).
        certified_gd: CertifiedGD against the bound (``None`` unless certified and
            ``certified_gd_steps > 0``).
        options: the :class:`PLStarOptions` used, as a dict.
    """

    certificate: PLStarCertificate
    training_run: CertificateCheck | None
    certified_gd: CertificateCheck | None
    options: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PLStarStudy:
        """Rebuild, including the nested results."""
        d = dict(d)
        if isinstance(d.get("certificate"), dict):
            d["certificate"] = PLStarCertificate.from_dict(d["certificate"])
        for name in ("training_run", "certified_gd"):
            if isinstance(d.get(name), dict):
                d[name] = CertificateCheck.from_dict(d[name])
        return super().from_dict(d)

    def summary(self) -> dict[str, Any]:
        """Headline scalars: certified, µ, L_F, β_F, R, the step, and whether the runs held."""
        c = self.certificate
        out: dict[str, Any] = {
            "certified": c.certified,
            "mu": c.mu,
            "lambda0": c.lambda0,
            "lipschitz_F": c.lipschitz_F,
            "smoothness_F": c.smoothness_F,
            "residual_norm": c.residual_norm,
            "radius": c.radius,
            "sampled_radius": c.sampled_radius,
            "step_size": c.step_size,
            "rate": c.rate,
            "points_sampled": len(c.sample_source),
        }
        for name in ("training_run", "certified_gd"):
            check = getattr(self, name)
            if check is not None:
                out[f"{name}_loss_holds"] = check.loss_holds
                out[f"{name}_distance_holds"] = check.distance_holds
                out[f"{name}_max_excess"] = check.max_excess
        return out

    def plot(self, ax: Any = None) -> Any:
        """λ_min(K) at the sampled points against ‖w − w0‖, with µ and R (returns the Axes)."""
        import matplotlib.pyplot as plt
        import numpy as np

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.4))
        c = self.certificate
        d = np.asarray(c.sample_distance, dtype=float)
        src = np.asarray(c.sample_source)
        for s, marker in (("w0", "*"), ("sphere", "o"), ("trajectory", "^")):
            m = src == s
            if m.any():
                ax.scatter(d[m], np.asarray(c.sample_lambda_min)[m], marker=marker, label=s)
        if c.mu > 0:
            ax.axhline(c.mu, color="k", lw=1, ls="--", label="µ")
        if np.isfinite(c.radius):
            ax.axvline(c.radius, color="C3", lw=1, label="R needed")
        ax.set_xlabel("‖w − w0‖")
        ax.set_ylabel("λ_min(K(w))")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        return ax


@deprecated_call_style(renamed={"w0": "w"})
def plstar_study(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    trajectory: Any = None,
    options: PLStarOptions | None = None,
    progress: bool | None = None,
) -> PLStarStudy:
    """Certify GD from ``w`` (PL*) and check a training run and CertifiedGD against it.

    Example (a wide NTK network whose targets sit near its outputs: certified, and
    CertifiedGD stays under the bound):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(4, 3, generator=g, dtype=torch.float64)
        >>> model = lg.models.mlp(3, 64, 1, 1, parameterization="ntk", seed=0).double()
        >>> Y = model(X).detach() + 0.05 * torch.randn(4, 1, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(model, X, Y)
        >>> o = lg.PLStarOptions(samples=2, certified_gd_steps=10)
        >>> st = lg.plstar_study(problem, options=o)              # at the model's parameters
        >>> s = st.summary()
        >>> s["certified"], s["mu"] == st.certificate.mu > 0, s["certified_gd_loss_holds"]
        (True, True, True)
        >>> len(st.certified_gd.steps)                            # steps 0, ..., 10
        11

    Args:
        problem: a Problem with the square loss.
        w: the start point ``w0`` of gradient descent and centre of the ball (default: the
            model's parameters); ``w0=`` is its former name, kept for one release with a
            :class:`DeprecationWarning`.
        trajectory: an ``lg.Trajectory`` from ``w`` (its iterates enter the certificate and
            it is checked against the bound when it records its step).
        options: :class:`PLStarOptions` (default: its defaults).
        progress: progress bars.

    Returns:
        A :class:`PLStarStudy`.

    Raises:
        ValueError: a non-MSE loss, or from :func:`~lossgeometry.certify_plstar`.
    """
    from lossgeometry.conditions.plstar_gd import run_certified_gd

    o = options if options is not None else PLStarOptions()
    cert = certify_plstar(
        problem,
        w,
        radius=o.radius,
        samples=o.samples,
        trajectory=trajectory,
        seed=o.seed,
        progress=progress,
        radii=o.radii,
        max_rounds=o.max_rounds,
        margin=o.margin,
        trajectory_points=o.trajectory_points,
        hessian_options={"restarts": o.hessian_restarts},
    )
    training = None
    if trajectory is not None and getattr(trajectory, "lr", None) is not None:
        training = compare_with_certificate(trajectory, cert)
    gd = None
    if cert.certified and o.certified_gd_steps > 0:
        run = run_certified_gd(problem, cert, o.certified_gd_steps, progress=progress)
        gd = compare_with_certificate(run, cert)
    return PLStarStudy(
        certificate=cert, training_run=training, certified_gd=gd, options=o.to_dict()
    )
