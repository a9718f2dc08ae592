"""Gradient descent with the step of a PL* certificate, tracking the distance from the start.

The PL* theorem (``docs/theory.md`` section 3) says that GD with step
``η ≤ 1/(c (L_F² + β_F ‖F(w0) − y‖))`` started at ``w0`` stays in ``B(w0, R)``,
``R = 2 L_F ‖F(w0) − y‖/µ``, and satisfies ``L(w_t) ≤ (1 − η c µ)^t L(w0)``.
:class:`CertifiedGD` takes that step from a
:class:`~lossgeometry.conditions.plstar.PLStarCertificate` and records how far the iterates
travel, warning once if they leave the certified ball (which would mean the sampled constants
were wrong).

>>> import torch
>>> import lossgeometry as lg
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(4, 3, generator=g, dtype=torch.float64)
>>> model = lg.models.mlp(3, 64, 1, 1, parameterization="ntk", seed=0).double()
>>> Y = model(X).detach() + 0.05 * torch.randn(4, 1, generator=g, dtype=torch.float64)
>>> problem = lg.Problem(model, X, Y)          # a wide network, targets near its outputs
>>> cert = lg.certify_plstar(problem, samples=2)
>>> cert.certified
True
>>> run = lg.run_certified_gd(problem, cert, steps=20, progress=False)
>>> check = lg.compare_with_certificate(run, cert)
>>> check.loss_holds, check.distance_holds     # L(w_t) under the bound, w_t inside B(w0, R)
(True, True)

By name, ``lg.train(problem, "certified_gd", steps)`` certifies the Problem at the start point
and runs CertifiedGD with the certified step (:func:`build_certified_gd`, the registry's
builder).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["CertifiedGD", "build_certified_gd", "run_certified_gd"]


class CertifiedGD(torch.optim.Optimizer):
    """Plain gradient descent ``w ← w − η ∇L`` with ``η`` from a PL* certificate.

    Args:
        params: the parameters (or parameter groups) to optimize; they must start at the
            certificate's ``w0`` for the guarantee to apply.
        certificate: a ``PLStarCertificate`` computed for the same Problem (the step is in that
            Problem's loss normalization).
        strict: use ``step_size_strict = 1/(c (L_F² + 2 β_F ‖r0‖))``, which also controls the
            residual between iterates (see docs/theory.md), instead of the paper's step.
        scale: multiply the step by this factor in ``(0, 1]`` (smaller steps stay covered).
        allow_uncertified: run with the estimated step even if the certificate declined
            (the bound is then not covered by the theorem).

    Attributes:
        lr: the step in use.
        radius: the certificate's ``R``.
        distance: ``‖w_t − w0‖`` after the last step (over all parameter groups).
        max_distance: the largest distance seen.
        left_ball: whether an iterate left ``B(w0, R)``.

    Raises:
        ValueError: the certificate declined (and ``allow_uncertified`` is false), or ``scale``
            is outside ``(0, 1]``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        certificate: Any,
        *,
        strict: bool = False,
        scale: float = 1.0,
        allow_uncertified: bool = False,
    ) -> None:
        if not 0 < scale <= 1:
            raise ValueError(
                f"scale must lie in (0, 1] (the certificate covers steps up to its step_size), "
                f"got {scale}"
            )
        if not certificate.certified and not allow_uncertified:
            raise ValueError(
                "the PL* certificate declined, so its step carries no guarantee: "
                + "; ".join(certificate.reasons)
                + ". Pass allow_uncertified=True to run with the estimated step anyway"
            )
        lr = scale * (certificate.step_size_strict if strict else certificate.step_size)
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"the certificate's step is {lr}; it must be positive and finite")
        super().__init__(params, {"lr": lr})
        self.certificate = certificate
        self.lr = lr
        self.radius = float(certificate.radius)
        self.distance = 0.0
        self.max_distance = 0.0
        self.left_ball = False
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["start"] = p.detach().clone()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One GD step; ``closure`` (optional) re-evaluates the loss and sets the gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sq = 0.0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
                sq += float((p - self.state[p]["start"]).pow(2).sum())
        self.distance = math.sqrt(sq)
        self.max_distance = max(self.max_distance, self.distance)
        if self.distance > self.radius and not self.left_ball:
            self.left_ball = True
            warnings.warn(
                f"CertifiedGD left the certified ball: ‖w_t − w0‖ = {self.distance:.4g} > "
                f"R = {self.radius:.4g}. The sampled constants of the certificate do not hold "
                "along this run (or the parameters did not start at the certificate's w0).",
                RuntimeWarning,
                stacklevel=2,
            )
        return loss


def build_certified_gd(
    params: Iterable[Any],
    lr: float | None,
    problem: Any,
    *,
    certificate: Any = None,
    certify: dict[str, Any] | None = None,
    strict: bool = False,
    scale: float = 1.0,
    allow_uncertified: bool = False,
) -> CertifiedGD:
    """The optimizer registry's builder for ``"certified_gd"``: CertifiedGD on ``problem``.

    ``params`` must be the flat parameter vector of ``problem`` (one tensor of shape ``(p,)``,
    as :func:`lossgeometry.train` passes it); its current value is the start point ``w0``.
    Without ``certificate``, one is computed there:
    ``lg.certify_plstar(problem, w0, **certify)``. The step is the certificate's (times
    ``scale``), so ``lr`` must be left unset.

    Raises:
        ValueError: ``lr`` is given; no Problem (and no certificate); ``params`` is not the
            Problem's flat vector; or the certificate declined (see :class:`CertifiedGD`).
    """
    if lr is not None:
        raise ValueError(
            f"certified_gd takes its step from the PL* certificate, not from lr={lr}: leave lr "
            "unset (scale=... among the optimizer's keyword arguments takes a fraction of it)"
        )
    params = list(params)
    if certificate is None:
        if problem is None:
            raise ValueError(
                "certified_gd needs the Problem to certify: use lg.train(problem, "
                "'certified_gd', ...) or pass certificate=..."
            )
        if (
            len(params) != 1
            or not isinstance(params[0], torch.Tensor)
            or params[0].shape != (problem.p,)
        ):
            raise ValueError(
                "certified_gd certifies the start point, so params must be the Problem's flat "
                f"parameter vector (one tensor of shape ({problem.p},)), as lg.train passes it"
            )
        from lossgeometry.conditions.plstar import certify_plstar

        w0 = problem.check_w(params[0].detach()).clone()
        certificate = certify_plstar(problem, w0, **(certify or {}))
    return CertifiedGD(
        params, certificate, strict=strict, scale=scale, allow_uncertified=allow_uncertified
    )


def run_certified_gd(
    problem: Any,
    certificate: Any,
    steps: int,
    *,
    strict: bool = False,
    scale: float = 1.0,
    allow_uncertified: bool = False,
    record_every: int = 1,
    record_iterates: bool = False,
    progress: bool | None = None,
) -> Any:
    """Run :class:`CertifiedGD` from the certificate's ``w0`` with :func:`lossgeometry.train`.

    The start point is the certificate's first sampled point (its ``w0``) when the certificate
    holds its points, else the model's parameters. Returns an ``lg.Trajectory`` whose ``lr`` is
    the certified step and ``optimizer`` is ``"CertifiedGD"`` (ready for
    ``lg.compare_with_certificate``).
    """
    import dataclasses

    from lossgeometry.train import train

    made: list[CertifiedGD] = []

    def factory(params: Any) -> CertifiedGD:
        opt = CertifiedGD(
            params, certificate, strict=strict, scale=scale, allow_uncertified=allow_uncertified
        )
        made.append(opt)
        return opt

    w0 = certificate.points[0] if getattr(certificate, "points", None) is not None else None
    run = train(
        problem,
        factory,
        steps=steps,
        w0=w0,
        record_every=record_every,
        record_iterates=record_iterates,
        progress=progress,
    )
    return dataclasses.replace(run, lr=made[0].lr, optimizer="CertifiedGD")
