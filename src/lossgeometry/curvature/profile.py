r"""The curvature profile of one point: both spectrum ends, density, trace and the λ_max bound.

:func:`curvature_profile` is the one function the CLI (``lossgeometry hessian``) and the
report's curvature section call at each point; :class:`CurvatureOptions` holds the only copy
of each of their defaults.

At ``w`` it measures, for ``H = ∇²L(w)`` (or its Gauss–Newton part, ``of="ggn"``) in the
Problem's normalization (``L = c·½‖F − Y‖²`` for MSE, ``c = problem.loss_scale``):

* the ``top`` largest and ``bottom`` smallest eigenvalues
  (:func:`~lossgeometry.hessian_spectrum`, accurate to ``tol·‖H‖``);
* the spectral density by stochastic Lanczos quadrature (``probes`` start vectors, ``steps``
  Lanczos steps each; :func:`~lossgeometry.hessian_density`);
* ``tr H`` by Hutch++ with ``trace_samples`` products and a 95 % confidence interval
  (:func:`~lossgeometry.hessian_trace`);
* for the square loss, the check ``λ_max(∇²L) ≤ c(σ_max(J)² + ‖D²F‖·‖F − Y‖)``
  (:func:`~lossgeometry.hessian_bound`, ``restarts`` random restarts of ``‖D²F‖``);
* optionally ``‖D²F(w)‖`` alone from random starts (:func:`~lossgeometry.model_hessian_norm`,
  any loss).

Every part is seeded with ``seed``, so a profile is reproducible.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from lossgeometry._progress import CostEstimate, announce_cost
from lossgeometry.curvature.bound import HessianBound, hessian_bound
from lossgeometry.curvature.density import HessianDensity, hessian_density
from lossgeometry.curvature.model_hessian import ModelHessianNorm, model_hessian_norm
from lossgeometry.curvature.spectrum import HessianSpectrum, hessian_spectrum
from lossgeometry.curvature.trace import HessianTrace, hessian_trace
from lossgeometry.linalg.dense import DENSE_MAX_ORDER
from lossgeometry.operators.hessian import hessian_operator
from lossgeometry.options import Options, OptionsError, renamed_options
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["CurvatureOptions", "CurvatureProfile", "curvature_profile"]


@renamed_options({"method": "solver"})
@dataclasses.dataclass(frozen=True)
class CurvatureOptions(Options):
    """Options of :func:`curvature_profile` (``[report.curvature]``, ``lossgeometry hessian``)."""

    top: int = 3
    """Number of largest eigenvalues."""
    bottom: int = 3
    """Number of smallest (most negative) eigenvalues."""
    tol: float | None = 1e-3
    """Eigen-tolerance relative to ``‖H‖`` (also of the bound); ``None``: by dtype (``1e-4``
    in float32, ``1e-8`` in float64)."""
    criterion: Literal["eigenvalue", "residual"] = "eigenvalue"
    """Lanczos acceptance test: each eigenvalue's error bound, or each pair's residual."""
    solver: Literal["auto", "lanczos", "arpack", "dense"] = "auto"
    """Eigen-solver of the spectrum ends (``"auto"``: dense for small ``p``, else Lanczos)."""
    of: Literal["loss", "ggn"] = "loss"
    """``"loss"`` (``∇²L``) or ``"ggn"`` (its Gauss–Newton part)."""
    density: bool = True
    """Estimate the spectral density (SLQ)."""
    probes: int = 4
    """SLQ start vectors."""
    steps: int = 30
    """SLQ Lanczos steps per start vector."""
    trace: bool = True
    """Estimate the trace (Hutch++)."""
    trace_samples: int = 30
    """Hutch++ product budget."""
    bound: bool = True
    """Check ``λ_max ≤ c(L_F² + β_F‖F − Y‖)`` (square loss only; skipped otherwise)."""
    restarts: int = 1
    """Random restarts of the model-Hessian norm (besides its start at the residual)."""
    model_hessian: bool = False
    """Also ``‖D²F(w)‖`` from random starts alone (any loss)."""
    seed: int = 0
    """Seed of every random start."""

    def check(self) -> None:
        """Counts are non-negative; at least one eigenvalue; positive ``tol``."""
        for name in ("top", "bottom", "restarts"):
            if getattr(self, name) < 0:
                raise OptionsError(f"{name} = {getattr(self, name)}: must be non-negative")
        if self.top + self.bottom < 1:
            raise OptionsError("top + bottom = 0: ask for at least one eigenvalue")
        for name in ("probes", "steps", "trace_samples"):
            if getattr(self, name) < 1:
                raise OptionsError(f"{name} = {getattr(self, name)}: must be at least 1")
        if self.tol is not None and not self.tol > 0:
            raise OptionsError(f"tol = {self.tol}: must be positive")


_PARTS: dict[str, type[Result]] = {
    "spectrum": HessianSpectrum,
    "density": HessianDensity,
    "trace": HessianTrace,
    "bound": HessianBound,
    "model_hessian": ModelHessianNorm,
}


@dataclasses.dataclass(frozen=True)
class CurvatureProfile(Result):
    """The curvature of the loss at one point.

    Attributes:
        spectrum: both ends of the Hessian's spectrum.
        density: the SLQ spectral density (``None`` if not asked).
        trace: the Hutch++ trace with its confidence interval (``None`` if not asked).
        bound: the ``λ_max`` bound check (``None`` if not asked or the loss is not MSE).
        model_hessian: ``‖D²F(w)‖`` from random starts (``None`` if not asked).
        options: the :class:`CurvatureOptions` used, as a dict.
        notes: what was skipped and why.
    """

    spectrum: HessianSpectrum
    density: HessianDensity | None
    trace: HessianTrace | None
    bound: HessianBound | None
    model_hessian: ModelHessianNorm | None
    options: dict[str, Any]
    notes: list[str]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CurvatureProfile:
        """Rebuild, including the nested results."""
        d = dict(d)
        for name, typ in _PARTS.items():
            if isinstance(d.get(name), dict):
                d[name] = typ.from_dict(d[name])
        return super().from_dict(d)

    @property
    def matvecs(self) -> int:
        """Hessian(-like) products used by all parts together."""
        parts = (self.spectrum, self.density, self.trace, self.bound, self.model_hessian)
        return int(sum(p.matvecs for p in parts if p is not None))

    def summary(self) -> dict[str, Any]:
        """Headline scalars: λ_max, λ_min, the trace and its interval, the bound, products."""
        s = self.spectrum
        out: dict[str, Any] = {
            "lambda_max": s.lambda_max,
            "lambda_min": s.lambda_min,
            "converged": s.converged,
        }
        if self.trace is not None:
            out.update(
                trace=self.trace.estimate,
                trace_ci_low=self.trace.ci_low,
                trace_ci_high=self.trace.ci_high,
            )
        if self.bound is not None:
            out.update(
                bound=self.bound.bound,
                bound_holds=self.bound.holds,
                model_hessian_norm_at_residual=self.bound.beta,
                gauss_newton_suffices=self.bound.gauss_newton_suffices,
            )
        if self.model_hessian is not None:
            out["model_hessian_norm"] = self.model_hessian.norm
        out["matvecs"] = self.matvecs
        return out

    def plot(self, ax: Any = None) -> Any:
        """The spectral density (log scale) if measured, else the computed eigenvalues."""
        if self.density is not None:
            label = f"λ_max {self.spectrum.lambda_max:.3g}, λ_min {self.spectrum.lambda_min:.3g}"
            return self.density.plot(ax, label=label)
        return self.spectrum.plot(ax)


def curvature_profile(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    options: CurvatureOptions | None = None,
    progress: bool | None = None,
) -> CurvatureProfile:
    """Both ends of the Hessian spectrum at ``w``, its density, trace and the λ_max bound.

    Example (small budgets for a 50-parameter problem):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(8, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)   # p = 50
        >>> o = lg.CurvatureOptions(probes=4, steps=20, trace_samples=30)
        >>> prof = lg.curvature_profile(problem, options=o)
        >>> s = prof.summary()
        >>> s["lambda_max"] == prof.spectrum.lambda_max, s["bound_holds"], s["converged"]
        (True, True, True)
        >>> s["trace_ci_low"] < s["trace"] < s["trace_ci_high"]
        True

    Args:
        problem: the problem.
        w: the point (default: the model's current parameters).
        options: :class:`CurvatureOptions` (default: its defaults).
        progress: progress bars, and the estimated cost printed first when it is long
            (:func:`profile_cost`); ``False``: neither.

    Returns:
        A :class:`CurvatureProfile`.

    Raises:
        ValueError: from the estimators (e.g. ``top + bottom`` larger than ``p``).
    """
    o = options if options is not None else CurvatureOptions()
    profile_cost(problem, w, options=o, progress=progress)
    notes: list[str] = []
    spec = hessian_spectrum(
        problem,
        w,
        top=o.top,
        bottom=o.bottom,
        tol=o.tol,
        of=o.of,
        solver=o.solver,
        seed=o.seed,
        progress=progress,
        criterion=o.criterion,
    )
    dens = None
    if o.density:
        dens = hessian_density(
            problem, w, probes=o.probes, steps=o.steps, of=o.of, seed=o.seed, progress=progress
        )
    tr = None
    if o.trace:
        tr = hessian_trace(
            problem, w, samples=o.trace_samples, of=o.of, seed=o.seed, progress=progress
        )
    bound = None
    if o.bound and problem.is_mse:
        bound = hessian_bound(
            problem, w, tol=o.tol, seed=o.seed, restarts=o.restarts, progress=progress
        )
    elif o.bound:
        notes.append(
            f"the λ_max bound is stated for the square loss; skipped for {problem.loss_name!r}"
        )
    mh = None
    if o.model_hessian:
        kw: dict[str, Any] = {} if o.tol is None else {"tol": o.tol}
        mh = model_hessian_norm(
            problem, w, seed=o.seed, restarts=max(o.restarts, 1), progress=progress, **kw
        )
    return CurvatureProfile(
        spectrum=spec,
        density=dens,
        trace=tr,
        bound=bound,
        model_hessian=mh,
        options=o.to_dict(),
        notes=notes,
    )


def profile_products(p: int, o: CurvatureOptions, is_mse: bool) -> int:
    """Hessian-vector products a profile needs, the iterative parts counted at one basis.

    Spectrum: ``p`` (dense: ``solver="dense"``, or ``"auto"`` with ``p ≤ DENSE_MAX_ORDER``)
    or one Lanczos basis ``max(20, 2(top + bottom) + 10)``; density ``probes · steps``; trace
    ``trace_samples``; the bound (square loss) two Lanczos bases of 20 and
    ``4(restarts + 1)`` model-Hessian products; the model-Hessian norm ``4·max(restarts, 1)``.
    Iterative parts that restart need more, so this is a typical figure, not a bound.
    """
    dense = o.solver == "dense" or (o.solver == "auto" and p <= DENSE_MAX_ORDER)
    count = p if dense else min(p, max(20, 2 * (o.top + o.bottom) + 10))
    count += o.probes * o.steps if o.density else 0
    count += o.trace_samples if o.trace else 0
    count += 2 * 20 + 4 * (o.restarts + 1) if (o.bound and is_mse) else 0
    count += 4 * max(o.restarts, 1) if o.model_hessian else 0
    return count


def profile_cost(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    options: CurvatureOptions,
    progress: bool | None = None,
) -> CostEstimate | None:
    """Print a curvature profile's estimated cost before it starts (when long).

    :func:`profile_products` times the measured seconds of one Hessian-vector product at
    ``w`` (the faster of two: the first builds the gradient graph). Nothing is measured with
    ``progress=False``; no random generator is touched.
    """
    if progress is False:
        return None
    o = options
    H = hessian_operator(problem, w, of=o.of)
    probe = torch.ones(H.p, dtype=H.torch_dtype, device=H.device) / H.p**0.5
    return announce_cost(
        "curvature profile",
        [("Hessian-vector products", profile_products(H.p, o, problem.is_mse), lambda: H @ probe)],
        progress,
        note="iterative parts counted at one Krylov basis",
    )
