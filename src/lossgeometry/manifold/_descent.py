"""First-order routes to an interpolant: L-BFGS (strong Wolfe) and gradient descent (Armijo).

The alternatives to Gauss–Newton offered by :func:`~lossgeometry.find_interpolant`
(``solver="lbfgs"`` and ``"gd"``). Each returns the :class:`~.gauss_newton.LMState` of its run:
success when ``‖F(w) − Y‖ < tol``, otherwise the reason in words.
"""

from __future__ import annotations

import math

import torch

from lossgeometry._progress import progress_bar
from lossgeometry.manifold._linalg import residual_vector
from lossgeometry.manifold.gauss_newton import LMState
from lossgeometry.problem import Problem

__all__ = ["run_gd", "run_lbfgs"]


def run_lbfgs(
    problem: Problem, w0: torch.Tensor, tol: float, max_iter: int, progress: bool | None
) -> LMState:
    """``torch.optim.LBFGS`` on the loss in rounds of 20 iterations; stops after 3 stalls."""
    wp = w0.detach().clone().requires_grad_(True)
    r = residual_vector(problem, wp.detach())
    st = LMState(w=wp.detach().clone(), r=r, history=[float(r.norm())])
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
            f"(‖F − Y‖ = {st.history[-1]:.3e}); try solver='gauss-newton'"
        )
    return st


def run_gd(
    problem: Problem, w0: torch.Tensor, tol: float, max_iter: int, progress: bool | None
) -> LMState:
    """Gradient descent with Armijo backtracking ``L(w − ηg) ≤ L(w) − ½η‖g‖²``."""
    w = w0.detach().clone()
    r = residual_vector(problem, w)
    st = LMState(w=w, r=r, history=[float(r.norm())])
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
            "kernel is ill-conditioned); try solver='gauss-newton'"
        )
    return st
