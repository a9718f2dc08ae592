"""Levenberg–Marquardt on the residual ``r(w) = F(w) − Y``: minimum-norm damped steps.

The step is ``δ = argmin ‖J δ + r‖² + λ‖δ‖² = −Jᵀ (J Jᵀ + λ I)⁻¹ r`` (``J = DF(w)``); with
``λ = 0`` the Gauss–Newton minimum-norm step ``δ = −J⁺ r``, quadratically convergent near a
solution where ``J`` has full row rank. ``λ`` grows tenfold when a step fails to reduce ``‖r‖``
and shrinks tenfold after a success. Dense route: thin SVD of ``J``,
``δ = −V diag(s/(s² + λ)) Uᵀ r``. Matrix-free route: LSQR on ``J`` with damping ``√λ`` (LSQR
started at 0 returns the minimum-norm solution). Used by :func:`~lossgeometry.find_interpolant`,
:func:`~lossgeometry.least_squares_minimum` and the retractions of
:func:`~lossgeometry.walk_manifold`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import scipy.sparse.linalg as sla
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._progress import progress_bar
from lossgeometry.linalg.power import power_iteration
from lossgeometry.manifold._linalg import residual_vector, thin_factor
from lossgeometry.operators.jacobian import GramOperator, JacobianOperator, dense_jacobian
from lossgeometry.problem import Problem

__all__ = ["LMState", "levenberg_marquardt", "spectral_norm"]


@dataclasses.dataclass
class LMState:
    """The state of a run: the point, its residual, ``‖r‖`` per iteration, the outcome."""

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


@deprecated_call_style(renamed={"w0": "w"})
def levenberg_marquardt(
    problem: Problem,
    w: torch.Tensor,
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
) -> LMState:
    """Levenberg–Marquardt on ``r(w) = F(w) − Y`` (``problem`` float64, MSE).

    ``mode="interpolate"`` stops when ``‖r‖ < tol``; ``mode="least_squares"`` also stops at a
    stationary point, ``‖Jᵀ r‖ ≤ grad_tol · σ_max(J) ‖r‖``. ``polish``: after reaching
    ``tol``, try one more step (quadratic convergence usually takes ``1e-11`` to ``1e-15``),
    kept only if it lowers ``‖r‖``. ``w`` is the start of the iteration (``w0=`` is its
    former name, kept for one release with a :class:`DeprecationWarning`).
    """
    w = w.detach().clone()
    r = residual_vector(problem, w)
    st = LMState(w=w, r=r, history=[float(r.norm())])
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
