"""Reaching a global minimum: solve ``F(w) = Y`` to float64 precision, or say why not.

For the squared loss the global minima of an over-parameterized model (``p ≥ nk``) are the
solutions of the ``nk`` equations ``F(w) = Y`` (loss exactly 0). :func:`find_interpolant`
solves them by

* ``"gauss-newton"`` (default): Levenberg–Marquardt on the residual ``r(w) = F(w) − Y``. The
  step is the minimum-norm solution of the damped linearized system,
  ``δ = argmin ‖J δ + r‖² + λ‖δ‖² = −Jᵀ (J Jᵀ + λ I)⁻¹ r`` (``J = DF(w)``). With ``λ = 0``
  this is the Gauss–Newton minimum-norm step ``δ = −J⁺ r``, which converges quadratically
  near a solution where ``J`` has full row rank; ``λ`` grows tenfold whenever a step fails to
  reduce ``‖r‖`` and shrinks tenfold after a success. Dense route: thin SVD of ``J`` (for
  large wide ``J`` through ``J Jᵀ``), ``δ = −V diag(s/(s² + λ)) Uᵀ r``. Matrix-free route:
  LSQR on ``J`` with damping ``√λ`` (one JVP and one VJP per iteration; LSQR started at 0
  returns the minimum-norm solution). :func:`find_interpolant` adds one undamped polishing
  step after reaching ``tol`` (kept only if it lowers ``‖r‖``).
* ``"lbfgs"``: ``torch.optim.LBFGS`` with a strong-Wolfe line search on the loss.
* ``"gd"``: gradient descent with an Armijo backtracking step.

All run in float64 (:meth:`Problem.to`). Success means ``‖F(w) − Y‖₂ < tol``; otherwise the
result says why (under-parameterized, a non-interpolating stationary point, stagnation,
iteration budget).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.manifold._descent import run_gd, run_lbfgs
from lossgeometry.manifold._linalg import (
    DENSE_JACOBIAN_MAX_BYTES,
    as_float64,
    choose_jacobian,
    flat_w,
    require_mse,
    residual_vector,
)
from lossgeometry.manifold.gauss_newton import LMState, levenberg_marquardt, spectral_norm
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = [
    "Interpolant",
    "find_interpolant",
    "least_squares_minimum",
    "levenberg_marquardt",
    "spectral_norm",
]

SOLVERS = ("gauss-newton", "lbfgs", "gd")
"""The solvers of :func:`find_interpolant` (its ``solver=``)."""
METHODS = SOLVERS
"""Former name of :data:`SOLVERS` (kept for one release)."""


@dataclasses.dataclass(frozen=True)
class Interpolant(Result):
    """The outcome of :func:`find_interpolant` (or :func:`least_squares_minimum`).

    Attributes:
        success: whether the target was reached (``residual_norm < tol`` for an interpolant;
            a stationary point for a least-squares minimum).
        reason: why not (empty on success).
        method: the solver used: ``"gauss-newton"``, ``"lbfgs"`` or ``"gd"``.
        residual_norm: ``‖F(w) − Y‖₂`` at the returned point (Euclidean norm over all ``nk``
            entries, no normalization), computed in float64.
        loss: ``L(w)`` in the Problem's normalization (``loss_scale · ½‖F − Y‖²``).
        grad_norm: ``‖∇L(w)‖`` (same normalization).
        relative_grad: ``‖Jᵀ r‖ / (σ_max(J) ‖r‖)``, the cosine-like stationarity measure used
            for least-squares minima (``nan`` where not computed).
        iterations: outer iterations done.
        history: ``‖F − Y‖₂`` before the first and after each iteration.
        tol: the residual tolerance asked for.
        p: parameters; ``n``, ``k``: samples and outputs per sample.
        jacobian: ``"dense"`` / ``"matrix-free"`` (Gauss–Newton) or ``"none"``.
        wall_time: seconds.
        w: the final point (flat float64 parameters).
    """

    success: bool
    reason: str
    method: str
    residual_norm: float
    loss: float
    grad_norm: float
    relative_grad: float
    iterations: int
    history: np.ndarray
    tol: float
    p: int
    n: int
    k: int
    jacobian: str
    wall_time: float
    w: torch.Tensor

    def __bool__(self) -> bool:
        return bool(self.success)

    def summary(self) -> dict[str, Any]:
        """Headline scalars: success, the residual reached, the iterations, the cost.

        (The ``reason`` of a failure is a sentence, not a table entry: read it on the result.)
        """
        return {
            "success": self.success,
            "residual_norm": self.residual_norm,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "relative_grad": self.relative_grad,
            "iterations": self.iterations,
            "tol": self.tol,
            "method": self.method,
            "jacobian": self.jacobian,
            "p": self.p,
            "nk": self.n * self.k,
            "wall_time": self.wall_time,
        }

    def plot(self, ax: Any = None) -> Any:
        """The residual norm per iteration (log scale) with the tolerance; returns the Axes."""
        ax = axes_or_new(ax, (5, 3.5))
        h = np.maximum(np.asarray(self.history, dtype=float), 1e-300)
        ax.semilogy(np.arange(len(h)), h, "o-", ms=3)
        ax.axhline(self.tol, color="C3", ls="--", label=f"tol {self.tol:g}")
        ax.set_xlabel("iteration")
        ax.set_ylabel("‖F(w) − Y‖")
        ax.set_title(f"{self.method}: {'converged' if self.success else 'not converged'}")
        ax.legend()
        return ax

    def raise_if_failed(self) -> Interpolant:
        """Return ``self`` on success, raise ``ValueError`` with the reason otherwise."""
        if not self.success:
            raise ValueError(f"no interpolant found: {self.reason}")
        return self


def _finish(
    problem: Problem, st: LMState, method: str, tol: float, jac: str, t0: float
) -> Interpolant:
    L, g = problem.loss_and_grad(st.w)
    return Interpolant(
        success=bool(st.success),
        reason="" if st.success else st.reason,
        method=method,
        residual_norm=float(st.r.norm()),
        loss=float(L),
        grad_norm=float(g.norm()),
        relative_grad=float(st.relative_grad),
        iterations=int(st.iterations),
        history=np.asarray(st.history, dtype=float),
        tol=float(tol),
        p=problem.p,
        n=problem.n,
        k=problem.k,
        jacobian=jac,
        wall_time=time.perf_counter() - t0,
        w=st.w.detach(),
    )


@deprecated_call_style(renamed={"w0": "w", "method": "solver"}, positional=("solver", "tol"))
def find_interpolant(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    solver: str = "gauss-newton",
    tol: float = 1e-10,
    max_iter: int | None = None,
    jacobian: str = "auto",
    max_dense_bytes: int = DENSE_JACOBIAN_MAX_BYTES,
    progress: bool | None = None,
) -> Interpolant:
    """Find a global minimum ``w*`` with ``F(w*) = Y`` to float64 precision, or say why not.

    Args:
        problem: an MSE Problem (float32 or float64; the solve runs on a float64 copy).
        w: the start point of the solve (default: the model's current parameters), e.g. a
            trained point.
        solver: ``"gauss-newton"`` (Levenberg–Marquardt, minimum-norm steps; see the module
            docstring), ``"lbfgs"`` or ``"gd"``.
        tol: success when ``‖F(w) − Y‖₂ < tol`` (Euclidean norm of all ``nk`` residuals).
        max_iter: iteration budget (default 100 for Gauss–Newton, 5000 for L-BFGS,
            20000 for GD).
        jacobian: Gauss–Newton only: ``"dense"``, ``"matrix-free"`` or ``"auto"`` (dense
            when ``J`` fits in ``max_dense_bytes``).
        max_dense_bytes: memory limit of the dense Jacobian.
        progress: progress bar (default: on a terminal).

    Returns:
        An :class:`Interpolant` (``success``, ``reason``, ``residual_norm``, ``w`` in float64).
        It never raises for a problem that cannot be solved: ``success=False`` and ``reason``
        say why (``p < nk``: under-parameterized; a non-interpolating stationary point;
        stagnation; budget).

    Raises:
        ValueError: a non-MSE Problem, an unknown solver or a non-positive tol.

    The former call style (``w0=``; ``method``, ``tol`` by position; ``method=`` for the
    solver) works for one release, with a :class:`DeprecationWarning`.

    Example (``p = 41`` parameters, ``nk = 6`` equations; from a trained point, pass
    ``run.w_final`` as ``w``):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(6, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(6, 1, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 1, seed=0).double(), X, Y)
        >>> sol = lg.find_interpolant(problem, progress=False)
        >>> sol.success, sol.residual_norm < 1e-10, sol.iterations < 20
        (True, True, True)
        >>> X50, Y50 = torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 1).double()
        >>> under = lg.Problem(problem.model, X50, Y50)         # p = 41 < nk = 50
        >>> res = lg.find_interpolant(under, progress=False)
        >>> res.success, res.reason.split(":")[0]
        (False, 'under-parameterized')
    """
    require_mse(problem, "find_interpolant")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    t0 = time.perf_counter()
    p64 = as_float64(problem)
    w = flat_w(p64, w.to(torch.float64) if w is not None else problem.params().to(torch.float64))
    nk = p64.n * p64.k
    jac = choose_jacobian(p64, jacobian, max_dense_bytes) if solver == "gauss-newton" else "none"
    if p64.p < nk:
        r = residual_vector(p64, w)
        st = LMState(w=w, r=r, history=[float(r.norm())])
        if float(r.norm()) < tol:
            st.success = True
        else:
            st.reason = (
                f"under-parameterized: p = {p64.p} < nk = {nk}, so F(w) = Y is an overdetermined "
                "system with generically no solution (the minimum of the loss is positive). Use "
                "lg.least_squares_minimum for its minimum, or more parameters / fewer samples"
            )
        return _finish(p64, st, solver, tol, jac, t0)
    if solver == "gauss-newton":
        st = levenberg_marquardt(
            p64,
            w,
            tol=tol,
            max_iter=max_iter or 100,
            jacobian=jac,
            progress=progress,
            polish=True,
        )
    elif solver == "lbfgs":
        st = run_lbfgs(p64, w, tol, max_iter or 5000, progress)
    else:
        st = run_gd(p64, w, tol, max_iter or 20000, progress)
    return _finish(p64, st, solver, tol, jac, t0)


@deprecated_call_style(renamed={"w0": "w"})
def least_squares_minimum(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    grad_tol: float = 1e-10,
    max_iter: int = 200,
    jacobian: str = "auto",
    max_dense_bytes: int = DENSE_JACOBIAN_MAX_BYTES,
    progress: bool | None = None,
) -> Interpolant:
    """A (local) minimum of ``½‖F(w) − Y‖²`` for any ``p``, by Levenberg–Marquardt in float64.

    Stops at a stationary point, ``‖Jᵀ r‖ ≤ grad_tol · σ_max(J) ‖r‖`` (the relative gradient,
    scale-free), or at an interpolant (``‖r‖ < 1e-12 ‖Y‖``). For under-parameterized models
    (``p < nk``) the minimum is generically isolated and positive, the contrast to the
    manifold of interpolating minima; check convexity around it with
    :func:`~lossgeometry.manifold.local_convexity`.

    ``w`` is the start point of the solve (default: the model's current parameters); ``w0=``
    is its former name, kept for one release with a :class:`DeprecationWarning`.

    Returns:
        An :class:`Interpolant` whose ``success`` means "stationary point reached" (its
        ``residual_norm`` is then the minimal residual, usually > 0).
    """
    require_mse(problem, "least_squares_minimum")
    t0 = time.perf_counter()
    p64 = as_float64(problem)
    w = flat_w(p64, w.to(torch.float64) if w is not None else problem.params().to(torch.float64))
    jac = choose_jacobian(p64, jacobian, max_dense_bytes)
    tol = 1e-12 * max(1.0, float(p64.targets().norm()))
    st = levenberg_marquardt(
        p64,
        w,
        tol=tol,
        max_iter=max_iter,
        mode="least_squares",
        grad_tol=grad_tol,
        jacobian=jac,
        progress=progress,
        desc="Levenberg-Marquardt",
    )
    return _finish(p64, st, "gauss-newton", tol, jac, t0)
