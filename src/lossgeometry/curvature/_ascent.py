"""The alternating maximization behind :func:`~lossgeometry.model_hessian_norm`.

One run from a start ``u`` (or a random ``v``) alternates the *v-step* (a few Lanczos steps on
``M_u = Σ_j u_j ∇²F_j(w)`` started from the current ``v``; ``v`` becomes the Ritz vector of
largest ``|θ|``) and the *u-step* (``u = g(v)/‖g(v)‖`` with ``g_j(v) = vᵀ∇²F_j(w) v``). The
objective ``‖g(v)‖`` never decreases; see :mod:`lossgeometry.curvature.model_hessian` for the
derivation and the stopping rule.
"""

from __future__ import annotations

import math

import torch

from lossgeometry.linalg.lanczos import lanczos_extremes
from lossgeometry.operators.base import require_finite
from lossgeometry.operators.model_hessian import (
    ModelHessianOperator,
    ModelInputs,
    second_derivatives,
)
from lossgeometry.problem import Problem

__all__ = ["alternate"]


def alternate(
    prob: Problem,
    w: torch.Tensor,
    op: ModelHessianOperator,
    inp: ModelInputs,
    u_start: torch.Tensor | None,
    gen: torch.Generator,
    tol: float,
    maxiter: int,
    inner_steps: int,
    counters: dict[str, int],
) -> tuple[float, torch.Tensor, float, bool, list[float]]:
    """One alternating-maximization run from ``u_start`` (a random ``v`` if ``None``).

    Returns:
        ``(value, u, eigen_residual, converged, history)``: the best ``‖g(v)‖`` reached, the
        output weights ``u`` at the end, ``‖M_u v − θ v‖/|θ|``, whether the stopping rule was
        met, and ``‖g(v)‖`` at the start and after each iteration (``value`` is its maximum).
    """
    p, dt, dev = prob.p, prob.dtype, prob.device
    shape = (inp.n, prob.k)

    def rand_unit(numel: int) -> torch.Tensor:
        x = torch.randn(numel, generator=gen, dtype=torch.float64).to(device=dev, dtype=dt)
        return x / x.norm()

    def g_of(v: torch.Tensor) -> torch.Tensor:
        counters["g"] += 1
        g = second_derivatives(prob, w, v, inp).reshape(-1)
        return require_finite(g, "the second directional derivatives of the outputs are")

    def v_step(
        u: torch.Tensor, v0: torch.Tensor | None, steps: int | None
    ) -> tuple[torch.Tensor, float, float]:
        """Top-|θ| Ritz pair of M_u: ``steps`` Lanczos steps, or converged if ``None``."""
        op.set_u(u.reshape(shape))
        ncv, most = (min(steps, p), min(steps, p)) if steps else (None, None)
        res = lanczos_extremes(
            op,
            top=1,
            bottom=1,
            tol=tol,
            ncv=ncv,
            maxiter=most,
            v0=v0,
            seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)),
            warn=False,
        )
        if float(res.top[0].abs()) >= float(res.bottom[0].abs()):
            theta, vec, r = float(res.top[0]), res.top_vectors[:, 0], float(res.top_residuals[0])
        else:
            theta, vec, r = (
                float(res.bottom[0]),
                res.bottom_vectors[:, 0],
                float(res.bottom_residuals[0]),
            )
        return vec / vec.norm(), abs(theta), r

    if u_start is not None:
        u = u_start.reshape(-1)
        nu = float(u.norm())
        if nu == 0:
            raise ValueError("u0 must be non-zero")
        u = u / nu
        v, _, _ = v_step(u, None, None)  # the top eigenvector of M_u0, converged
    else:
        v = rand_unit(p)
    gv = g_of(v)
    value = float(gv.norm())
    history = [value]
    if value == 0.0 and u_start is None:
        u = rand_unit(inp.n * prob.k)
    elif value > 0:
        u = gv / value
    eres, converged = math.inf, False
    for _ in range(maxiter):
        counters["it"] += 1
        v, theta, r = v_step(u, v, inner_steps)
        gv = g_of(v)
        new = float(gv.norm())
        history.append(new)
        eres = r / theta if theta > 0 else 0.0
        if new == 0.0:
            # g(v) = 0 forces θ = vᵀM_u v = ⟨u, g(v)⟩ = 0: the model Hessian vanishes on this
            # Krylov space (a linear model); nothing larger can be found from here
            converged = True
            break
        change = new - value
        u = gv / new
        value = max(value, new)
        if change <= tol * new and eres <= tol:
            converged = True
            break
    return value, u.detach(), float(eres), converged, history
