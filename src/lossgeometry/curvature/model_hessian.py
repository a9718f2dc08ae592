r"""The spectral norm of the model Hessian ``D²F`` (operators: :mod:`lossgeometry.operators`).

The model Hessian of ``F: R^p → R^{N}`` (``N = n·k`` outputs: ``n`` inputs, ``k`` outputs
each, flat index ``i·k + a``) is the symmetric 3-tensor ``T_{j,s,t} = ∂²F_j/∂w_s∂w_t``. Its
spectral norm, the ``β_F`` of Liu, Zhu & Belkin (smoothness of the model), is

    ‖D²F(w)‖ = sup_{‖u‖=‖v‖=‖v'‖=1} |Σ_j u_j vᵀ∇²F_j(w) v'|
             = sup_{‖u‖=1} ‖M_u‖₂,      M_u = Σ_j u_j ∇²F_j(w)  (a symmetric p×p matrix),
             = sup_{‖v‖=1} ‖g(v)‖,      g_j(v) = vᵀ∇²F_j(w) v  (the second derivative of F_j
                                                                 along v).

The three forms agree: for fixed ``u`` the bilinear form ``vᵀ M_u v'`` of a symmetric matrix
has norm ``max|eig(M_u)| = sup_v |vᵀ M_u v|``, and for fixed ``v`` the best ``u`` is
``g(v)/‖g(v)‖`` (Cauchy–Schwarz). For ``k = 1`` and a single input it is the spectral norm
of the ``p × p`` Hessian ``∇²f(w; x)``, the quantity of the transition-to-linearity paper
(Liu, Zhu & Belkin, 2020), which shrinks like ``1/√width`` for wide networks with a linear
output layer. Over ``n`` inputs with per-input norms ``β_i``:
``max_i β_i ≤ ‖D²F‖ ≤ (Σ_i β_i²)^{1/2}`` (take ``u`` supported on one input; for the upper
bound ``‖g(v)‖² = Σ_i ‖g_i(v)‖²``).

Computing it is a non-convex maximization (NP-hard for general tensors), so
:func:`model_hessian_norm` returns a **lower bound** found by alternating maximization, which
is exact at a global maximizer and in practice there:

1. *v-step*: for fixed ``u``, a few Lanczos steps on ``M_u`` (Hessian-vector products of
   ``w ↦ ⟨u, F(w)⟩``) started from the current ``v``; ``v`` becomes the Ritz vector of largest
   ``|θ|``. The Krylov space contains the old ``v``, so ``|vᵀ M_u v|`` cannot decrease.
2. *u-step*: ``u = g(v)/‖g(v)‖``, with ``g(v)`` computed for all outputs at once by a
   forward-over-forward ``jvp`` (the second directional derivative). The objective becomes
   ``‖g(v)‖ ≥ |⟨u_old, g(v)⟩|``.

The value never decreases; it stops when it changed by less than ``tol`` (relative) and ``v``
is an eigenvector of ``M_u`` up to ``tol`` — a stationary point (a local maximum in practice).
Several ``restarts`` from random ``v`` (and from given ``u0``) guard against poor local maxima;
the best value is returned. Tested against dense computations on tiny models.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry._progress import progress_bar
from lossgeometry.curvature._ascent import alternate
from lossgeometry.operators.hessian import Backend, reference_problem
from lossgeometry.operators.model_hessian import ModelHessianOperator, ModelInputs
from lossgeometry.problem import Problem
from lossgeometry.results import Result


@dataclasses.dataclass(frozen=True)
class ModelHessianNorm(Result):
    """The spectral norm of the model Hessian, ``sup_{‖u‖=‖v‖=1} |Σ_j u_j vᵀ∇²F_j(w) v|``.

    Attributes:
        norm: the value found (a lower bound of the supremum, attained at ``(u, v)``; see
            :mod:`lossgeometry.curvature.model_hessian`). No loss normalization is involved:
            it is a property of the model on the selected inputs.
        per_sample: ``True`` when the inputs are a single input: then ``norm`` is the
            per-sample norm ``‖∇²f(w; x)‖`` over that input's ``k`` outputs (for ``k = 1`` the
            spectral norm of the ``p×p`` Hessian, as in the transition-to-linearity paper).
        n_inputs: number of inputs whose outputs make up ``F``.
        k: outputs per input.
        p: number of parameters.
        iterations: alternating iterations, summed over restarts.
        matvecs: Hessian-vector products of ``⟨u, F⟩`` used.
        second_derivatives: forward-over-forward evaluations of ``g(v)`` used.
        converged: whether the best restart met the stopping rule (relative change and
            eigen-residual ``≤ tol``).
        restart_values: the value each restart reached (their spread shows local maxima).
        tol: the tolerance.
        u: the maximizing output weights, shape ``(n_inputs, k)``.
        eigen_residual: ``‖M_u v − θ v‖ / |θ|`` at the returned pair.
        per_sample_norms: each input's own norm ``β_i`` (only with ``per_sample=True``);
            ``max β_i ≤ norm ≤ (Σ β_i²)^{1/2}``.
        history: per restart (in the order of ``restart_values``), the objective ``‖g(v)‖``
            at the start and after each alternating iteration; its maximum is that restart's
            value (``None`` in results saved before it was recorded).
    """

    norm: float
    per_sample: bool
    n_inputs: int
    k: int
    p: int
    iterations: int
    matvecs: int
    second_derivatives: int
    converged: bool
    restart_values: list[float]
    tol: float
    u: np.ndarray | None = None
    eigen_residual: float = math.nan
    per_sample_norms: np.ndarray | None = None
    history: list[list[float]] | None = None

    @property
    def best_restart(self) -> int:
        """Index of the restart that reached ``norm`` (the first one, on ties)."""
        return int(np.argmax(self.restart_values))

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the norm, convergence, the restarts' spread and the costs."""
        out: dict[str, Any] = {
            "norm": self.norm,
            "per_sample": self.per_sample,
            "converged": self.converged,
            "eigen_residual": self.eigen_residual,
            "restarts": len(self.restart_values),
            "restart_min": float(min(self.restart_values)),
            "n_inputs": self.n_inputs,
            "k": self.k,
            "p": self.p,
            "iterations": self.iterations,
            "matvecs": self.matvecs,
            "second_derivatives": self.second_derivatives,
            "tol": self.tol,
        }
        if self.per_sample_norms is not None:
            b = np.asarray(self.per_sample_norms, dtype=float)
            out["per_sample_max"] = float(b.max())
            out["per_sample_root_sum_squares"] = float(np.sqrt((b**2).sum()))
        return out

    def plot(self, ax: Any = None) -> Any:
        """The objective ``‖g(v)‖`` per alternating iteration, one line per restart.

        The best restart is drawn in colour, the others in grey, and the value returned as a
        dashed line; without a recorded history, each restart's final value. Returns the Axes.
        """
        ax = axes_or_new(ax, (5, 3.5))
        if self.history:
            best = self.best_restart
            for j, h in enumerate(self.history):
                style = {"color": "C0", "marker": "o", "ms": 3} if j == best else {"color": "0.6"}
                label = "best restart" if j == best else None
                ax.plot(np.arange(len(h)), np.asarray(h, dtype=float), label=label, **style)
            ax.set_xlabel("alternating iteration")
        else:
            vals = np.asarray(self.restart_values, dtype=float)
            ax.plot(np.arange(len(vals)), vals, "o", color="C0", label="restarts")
            ax.set_xlabel("restart")
        ax.axhline(self.norm, color="C3", ls="--", lw=1, label=f"‖D²F‖ ≥ {self.norm:.4g}")
        ax.set_ylabel("‖g(v)‖,  g_j(v) = vᵀ∇²F_j v")
        ax.set_title("model Hessian norm: " + ("converged" if self.converged else "not converged"))
        ax.legend(fontsize=8)
        return ax


@deprecated_call_style(positional=("inputs", "seed", "tol", "maxiter"))
def model_hessian_norm(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    inputs: torch.Tensor | None = None,
    seed: int = 0,
    tol: float = 1e-4,
    maxiter: int = 50,
    indices: Sequence[int] | torch.Tensor | None = None,
    restarts: int = 2,
    inner_steps: int = 4,
    u0: torch.Tensor | Sequence[torch.Tensor] | None = None,
    per_sample: bool = False,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    max_vectors: int | None = 16,
    backend: Backend = "revrev",
    progress: bool | None = None,
) -> ModelHessianNorm:
    """Spectral norm of the model Hessian ``‖D²F(w)‖`` by alternating maximization.

    Computes ``sup_{‖u‖=‖v‖=1} |Σ_{ia} u_{ia} vᵀ∇²F_{ia}(w) v|`` over the ``n·k`` outputs of
    the selected inputs (all of the Problem's samples by default). The returned value is a
    lower bound of the supremum, attained at the returned ``u`` (and some ``v``); see the
    module docstring for the method and why it cannot decrease.

    Example (all outputs; one input; a linear model, whose model Hessian vanishes):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(8, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)   # p = 50
        >>> m = lg.model_hessian_norm(problem)
        >>> m.converged, m.norm > 0, len(m.restart_values)
        (True, True, 2)
        >>> one = lg.model_hessian_norm(problem, inputs=X[0])    # ‖∇²f(w; x_0)‖ over k outputs
        >>> one.per_sample, one.n_inputs
        (True, 1)
        >>> lg.model_hessian_norm(lg.Problem(torch.nn.Linear(3, 2).double(), X, Y)).norm
        0.0

    Args:
        problem: the Problem.
        w: the point (default: the model's current parameters).
        inputs: raw model inputs: one input (shape of a sample: the per-sample norm) or a
            batch ``(b, ...)``; default: the Problem's data.
        seed: seed of the random starts.
        tol: relative stopping tolerance.
        maxiter: at most this many alternating iterations per restart.
        indices: use these samples of the Problem (instead of ``inputs``).
        restarts: random restarts (at least 1); the best value is kept.
        inner_steps: Lanczos steps of each v-step.
        u0: extra start(s) for ``u`` (shape ``(n, k)``), each run as one more restart; e.g. the
            residual ``F − Y``, which guarantees ``norm ≥ ‖M_{u0}‖/‖u0‖``.
        per_sample: also compute every input's own norm (``per_sample_norms``; ``n`` more runs).
        dtype: e.g. ``torch.float64`` for a reference copy.
        chunk_size: inputs per chunk.
        max_vectors: vectors per vectorized product.
        backend: Hessian-vector products by ``"revrev"`` (default) or ``"fwdrev"``.
        progress: a progress bar over restarts.

    Returns:
        A :class:`ModelHessianNorm`.

    Raises:
        ValueError: bad sizes or options.

    Passing ``inputs``, ``seed``, ``tol`` or ``maxiter`` by position (the former call style)
    works for one release, with a :class:`DeprecationWarning`.
    """
    if restarts < 0 or (restarts == 0 and u0 is None):
        raise ValueError(f"restarts must be >= 1 (or >= 0 with u0 given), got {restarts}")
    if not tol > 0 or maxiter < 1 or inner_steps < 2:
        raise ValueError("need tol > 0, maxiter >= 1 and inner_steps >= 2")
    prob = reference_problem(problem, dtype)
    w = prob.check_w(w).detach()
    op = ModelHessianOperator(
        prob,
        w,
        torch.zeros(ModelInputs(prob, inputs, indices, chunk_size).n, prob.k),
        inputs=inputs,
        indices=indices,
        chunk_size=chunk_size,
        max_vectors=max_vectors,
        backend=backend,
    )
    inp = op.inputs
    n, k = inp.n, prob.k
    starts: list[torch.Tensor | None] = []
    if u0 is not None:
        for u in [u0] if isinstance(u0, torch.Tensor) else list(u0):
            starts.append(op.check_u(u))
    starts += [None] * restarts
    gen = torch.Generator().manual_seed(seed)
    counters = {"g": 0, "it": 0}
    best: tuple[float, torch.Tensor, float, bool] | None = None
    values: list[float] = []
    histories: list[list[float]] = []
    bar = progress_bar(range(len(starts)), progress, desc="‖D²F‖", unit="restart")
    for r in bar:
        val, u, eres, conv, hist = alternate(
            prob, w, op, inp, starts[r], gen, tol, maxiter, inner_steps, counters
        )
        values.append(val)
        histories.append(hist)
        if best is None or val > best[0]:
            best = (val, u, eres, conv)
    assert best is not None
    norms = None
    if per_sample:
        norms = np.zeros(n)
        for i in range(n):
            xi = inp.X[i] if inp.X is not None else None
            idx = None
            if inp.X is None:
                all_idx = (
                    torch.arange(prob.n)
                    if indices is None
                    else torch.as_tensor(indices, dtype=torch.long).reshape(-1)
                )
                idx = all_idx[i : i + 1]
            sub = model_hessian_norm(
                prob,
                w,
                inputs=xi,
                seed=seed + 1 + i,
                tol=tol,
                maxiter=maxiter,
                indices=idx,
                restarts=restarts,
                inner_steps=inner_steps,
                chunk_size=chunk_size,
                max_vectors=max_vectors,
                backend=backend,
            )
            norms[i] = sub.norm
    return ModelHessianNorm(
        norm=best[0],
        per_sample=inp.single,
        n_inputs=n,
        k=k,
        p=prob.p,
        iterations=counters["it"],
        matvecs=op.matvecs,
        second_derivatives=counters["g"],
        converged=best[3],
        restart_values=values,
        tol=tol,
        u=best[1].reshape(n, k).cpu().double().numpy(),
        eigen_residual=best[2],
        per_sample_norms=norms,
        history=histories,
    )
