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
import math
import time
from typing import Any

import numpy as np
import scipy.sparse.linalg as sla
import torch

from lossgeometry._plotting import new_or_given
from lossgeometry._progress import progress_bar
from lossgeometry.linalg.power import power_iteration
from lossgeometry.manifold._linalg import (
    DENSE_JACOBIAN_MAX_BYTES,
    as_float64,
    choose_jacobian,
    flat_w,
    require_mse,
    residual_vector,
    thin_factor,
)
from lossgeometry.operators.jacobian import GramOperator, JacobianOperator, dense_jacobian
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["Interpolant", "find_interpolant", "least_squares_minimum"]

METHODS = ("gauss-newton", "lbfgs", "gd")


@dataclasses.dataclass(frozen=True)
class Interpolant(Result):
    """The outcome of :func:`find_interpolant` (or :func:`least_squares_minimum`).

    Attributes:
        success: whether the target was reached (``residual_norm < tol`` for an interpolant;
            a stationary point for a least-squares minimum).
        reason: why not (empty on success).
        method: ``"gauss-newton"``, ``"lbfgs"`` or ``"gd"``.
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
        ax = new_or_given(ax, (5, 3.5))
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


# ---------------------------------------------------------------------------- LM core
@dataclasses.dataclass
class _LMState:
    w: torch.Tensor
    r: torch.Tensor
    history: list[float]
    iterations: int = 0
    success: bool = False
    reason: str = ""
    smax: float = float("nan")
    relative_grad: float = float("nan")


def _lm_step_dense(r: torch.Tensor, lam: float, svd: Any) -> torch.Tensor:
    U, S, V, floor = svd
    if lam == 0.0:
        inv = torch.where(S > floor, 1.0 / torch.where(S > floor, S, 1.0), 0.0)
    else:
        inv = S / (S * S + lam)
    return -(V @ (inv * (U.T @ r)))


def _lm_step_free(op: JacobianOperator, r: torch.Tensor, lam: float, maxiter: int) -> torch.Tensor:
    res = sla.lsqr(
        op,
        -r.cpu().numpy(),
        damp=math.sqrt(lam),
        atol=1e-14,
        btol=1e-14,
        iter_lim=maxiter,
    )
    return torch.as_tensor(res[0]).to(device=r.device, dtype=r.dtype)


def spectral_norm(op: JacobianOperator, iters: int = 30, seed: int = 0) -> float:
    """``σ_max(J) = √‖Jᵀ J v‖`` after ``iters`` steps of power iteration on ``Jᵀ J``."""
    return math.sqrt(power_iteration(GramOperator(op, "inner"), iters, seed).norm)


def levenberg_marquardt(
    problem: Problem,
    w0: torch.Tensor,
    *,
    tol: float,
    max_iter: int,
    mode: str = "interpolate",
    grad_tol: float = 1e-10,
    jacobian: str = "dense",
    lsqr_maxiter: int | None = None,
    progress: bool | None = False,
    desc: str = "Gauss-Newton",
    polish: bool = False,
) -> _LMState:
    """Levenberg–Marquardt on ``r(w) = F(w) − Y`` (``problem`` float64, MSE).

    ``mode="interpolate"`` stops when ``‖r‖ < tol``; ``mode="least_squares"`` also stops at a
    stationary point, ``‖Jᵀ r‖ ≤ grad_tol · σ_max(J) ‖r‖``. ``polish``: after reaching
    ``tol``, try one more step (quadratic convergence usually takes ``1e-11`` to ``1e-15``),
    kept only if it lowers ``‖r‖``.
    """
    w = w0.detach().clone()
    r = residual_vector(problem, w)
    st = _LMState(w=w, r=r, history=[float(r.norm())])
    lam = 0.0
    nk, p = r.numel(), problem.p
    lsqr_maxiter = lsqr_maxiter or max(100, 4 * min(nk, p))
    polished = not polish
    for it in progress_bar(range(max_iter), progress, desc=desc):
        rn = float(st.r.norm())
        if rn < tol:
            st.success = True
            if polished or rn == 0.0:
                return st
            polished = True  # one more pure Gauss-Newton step, kept only if it helps
        if jacobian == "dense":
            J = dense_jacobian(problem, st.w)
            svd = thin_factor(J)
            smax = float(svd[1].max()) if svd[1].numel() else 0.0
            g = J.T @ st.r
            op = None
        else:
            op = JacobianOperator(problem, st.w)
            g = op.rmatvec_torch(st.r)
            smax = st.smax if math.isfinite(st.smax) else spectral_norm(op)
            svd = None
        if smax == 0.0:
            st.reason = "the Jacobian DF(w) is zero here (a degenerate critical point): no step"
            return st
        rel = float(g.norm()) / (smax * rn)
        st.relative_grad = rel
        if st.success:  # polishing: one undamped step, kept only if it lowers the residual
            if jacobian == "dense":
                delta = _lm_step_dense(st.r, 0.0, svd)
            else:
                delta = _lm_step_free(op, st.r, 0.0, lsqr_maxiter)
            r_new = residual_vector(problem, st.w + delta)
            if float(r_new.norm()) < rn:
                st.w, st.r = st.w + delta, r_new
                st.iterations = it + 1
                st.history.append(float(r_new.norm()))
            return st
        if mode == "least_squares" and rel <= grad_tol:
            st.success = True
            return st
        accepted = False
        for _ in range(40):
            if jacobian == "dense":
                delta = _lm_step_dense(st.r, lam, svd)
            else:
                delta = _lm_step_free(op, st.r, lam, lsqr_maxiter)
            w_new = st.w + delta
            r_new = residual_vector(problem, w_new)
            rn_new = float(r_new.norm())
            if math.isfinite(rn_new) and rn_new < rn:
                st.w, st.r = w_new, r_new
                lam = 0.0 if lam <= 1e-9 * smax**2 else lam / 10.0
                accepted = True
                break
            lam = max(10.0 * lam, 1e-6 * smax**2)
            if lam > 1e12 * smax**2:
                break
        st.iterations = it + 1
        st.history.append(float(st.r.norm()))
        st.smax = smax
        if not accepted:
            if mode == "least_squares" and rel <= 1e3 * grad_tol:
                st.success = True
                return st
            if rel <= 1e-6:
                st.reason = (
                    f"reached a stationary point of the loss that does not interpolate "
                    f"(‖F − Y‖ = {rn:.3e}, relative gradient {rel:.1e}): a local minimum or "
                    "a saddle of the loss; try another start point w0 or a wider model"
                )
            else:
                st.reason = (
                    f"stagnated at ‖F − Y‖ = {rn:.3e}: no damped Gauss-Newton step reduces the "
                    "residual (the Jacobian is nearly singular along the residual)"
                )
            return st
    st.iterations = max_iter
    if float(st.r.norm()) < tol:
        st.success = True
        return st
    what = "‖F − Y‖" if mode == "interpolate" else "a stationary point"
    st.reason = (
        f"did not reach {what} < tol within max_iter={max_iter} iterations "
        f"(‖F − Y‖ = {float(st.r.norm()):.3e}); raise max_iter or start closer"
    )
    return st


# ---------------------------------------------------------------------------- other methods
def _run_lbfgs(
    problem: Problem, w0: torch.Tensor, tol: float, max_iter: int, progress: bool | None
) -> _LMState:
    wp = w0.detach().clone().requires_grad_(True)
    r = residual_vector(problem, wp.detach())
    st = _LMState(w=wp.detach().clone(), r=r, history=[float(r.norm())])
    opt = torch.optim.LBFGS(
        [wp],
        lr=1.0,
        max_iter=20,
        history_size=100,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-300,
        tolerance_change=1e-300,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        L, g = problem.loss_and_grad(wp.detach())
        wp.grad = g
        return L

    rounds = max(1, max_iter // 20)
    stall = 0
    for it in progress_bar(range(rounds), progress, desc="L-BFGS"):
        if st.history[-1] < tol:
            st.success = True
            return st
        opt.step(closure)
        w = wp.detach().clone()
        r = residual_vector(problem, w)
        rn = float(r.norm())
        if not math.isfinite(rn):
            st.reason = "L-BFGS diverged (non-finite residual)"
            return st
        stall = stall + 1 if rn > 0.999 * st.history[-1] else 0
        st.w, st.r = w, r
        st.history.append(rn)
        st.iterations = (it + 1) * 20
        if stall >= 3:
            st.reason = f"L-BFGS stalled at ‖F − Y‖ = {rn:.3e} (no progress over 60 iterations)"
            return st
    st.success = st.history[-1] < tol
    if not st.success:
        st.reason = (
            f"L-BFGS did not reach ‖F − Y‖ < tol within max_iter={max_iter} iterations "
            f"(‖F − Y‖ = {st.history[-1]:.3e}); try method='gauss-newton'"
        )
    return st


def _run_gd(
    problem: Problem, w0: torch.Tensor, tol: float, max_iter: int, progress: bool | None
) -> _LMState:
    w = w0.detach().clone()
    r = residual_vector(problem, w)
    st = _LMState(w=w, r=r, history=[float(r.norm())])
    L, g = problem.loss_and_grad(w)
    lr = 1.0
    for it in progress_bar(range(max_iter), progress, desc="GD"):
        if st.history[-1] < tol:
            st.success = True
            return st
        gg = float(g @ g)
        if gg == 0.0:
            st.reason = (
                f"the gradient vanished at ‖F − Y‖ = {st.history[-1]:.3e} (a stationary point)"
            )
            return st
        lr *= 2.0
        for _ in range(60):  # Armijo backtracking: L(w − ηg) ≤ L(w) − ½ η ‖g‖²
            w_new = w - lr * g
            L_new = problem.loss(w_new)
            if torch.isfinite(L_new) and float(L_new) <= float(L) - 0.5 * lr * gg:
                break
            lr *= 0.5
        else:
            st.reason = "GD line search failed (no decrease along −∇L)"
            return st
        w = w_new
        L, g = problem.loss_and_grad(w)
        st.w = w
        st.r = residual_vector(problem, w)
        st.history.append(float(st.r.norm()))
        st.iterations = it + 1
    st.success = st.history[-1] < tol
    if not st.success:
        st.reason = (
            f"GD did not reach ‖F − Y‖ < tol within max_iter={max_iter} steps "
            f"(‖F − Y‖ = {st.history[-1]:.3e}, linear convergence is slow when the tangent "
            "kernel is ill-conditioned); try method='gauss-newton'"
        )
    return st


# ---------------------------------------------------------------------------- public API
def _finish(
    problem: Problem, st: _LMState, method: str, tol: float, jac: str, t0: float
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


def find_interpolant(
    problem: Problem,
    w0: torch.Tensor | None = None,
    method: str = "gauss-newton",
    tol: float = 1e-10,
    *,
    max_iter: int | None = None,
    jacobian: str = "auto",
    max_dense_bytes: int = DENSE_JACOBIAN_MAX_BYTES,
    progress: bool | None = None,
) -> Interpolant:
    """Find a global minimum ``w*`` with ``F(w*) = Y`` to float64 precision, or say why not.

    Args:
        problem: an MSE Problem (float32 or float64; the solve runs on a float64 copy).
        w0: start point (default: the model's current parameters), e.g. a trained point.
        method: ``"gauss-newton"`` (Levenberg–Marquardt, minimum-norm steps; see the module
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
        ValueError: a non-MSE Problem, an unknown method or a non-positive tol.

    Example:
        >>> sol = lg.find_interpolant(problem, w0=run.w_final)   # doctest: +SKIP
        >>> sol.success, sol.residual_norm                        # doctest: +SKIP
        (True, 3.1e-15)
    """
    require_mse(problem, "find_interpolant")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    t0 = time.perf_counter()
    p64 = as_float64(problem)
    w = flat_w(p64, w0.to(torch.float64) if w0 is not None else problem.params().to(torch.float64))
    nk = p64.n * p64.k
    jac = choose_jacobian(p64, jacobian, max_dense_bytes) if method == "gauss-newton" else "none"
    if p64.p < nk:
        r = residual_vector(p64, w)
        st = _LMState(w=w, r=r, history=[float(r.norm())])
        if float(r.norm()) < tol:
            st.success = True
        else:
            st.reason = (
                f"under-parameterized: p = {p64.p} < nk = {nk}, so F(w) = Y is an overdetermined "
                "system with generically no solution (the minimum of the loss is positive). Use "
                "lg.least_squares_minimum for its minimum, or more parameters / fewer samples"
            )
        return _finish(p64, st, method, tol, jac, t0)
    if method == "gauss-newton":
        st = levenberg_marquardt(
            p64,
            w,
            tol=tol,
            max_iter=max_iter or 100,
            jacobian=jac,
            progress=progress,
            polish=True,
        )
    elif method == "lbfgs":
        st = _run_lbfgs(p64, w, tol, max_iter or 5000, progress)
    else:
        st = _run_gd(p64, w, tol, max_iter or 20000, progress)
    return _finish(p64, st, method, tol, jac, t0)


def least_squares_minimum(
    problem: Problem,
    w0: torch.Tensor | None = None,
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

    Returns:
        An :class:`Interpolant` whose ``success`` means "stationary point reached" (its
        ``residual_norm`` is then the minimal residual, usually > 0).
    """
    require_mse(problem, "least_squares_minimum")
    t0 = time.perf_counter()
    p64 = as_float64(problem)
    w = flat_w(p64, w0.to(torch.float64) if w0 is not None else problem.params().to(torch.float64))
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
