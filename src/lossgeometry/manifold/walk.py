"""Walking along the manifold of global minima: tangent step, then Gauss–Newton retraction.

From ``w_t ∈ M = {F = Y}``: pick a unit tangent direction ``v ∈ ker DF(w_t)``, step
``w' = w_t + h v`` (the loss rises to ``O(h⁴)``, see :mod:`.growth`), then retract onto ``M``
by minimum-norm Gauss–Newton steps ``δ = −J⁺ r`` until ``‖F − Y‖ < tol`` (each correction is
normal to the level sets, so the retraction moves ``O(h²)``). Recording the loss before and
after each retraction, the distance travelled and the displacement shows that ``M`` extends
in every tangent direction; PCA of the walk recovers its local dimension.

PCA: the walk's steps ``Δ_t = w_{t+1} − w_t`` (differences of consecutive visited points)
span ``T_{w*}M`` up to ``O(κ h)`` (``κ`` the curvature of ``M``): their singular values split
into ``min(steps, p − nk)`` of size ``≈ h`` and the rest of size ``O(κ h²)``, and the
numerical rank across that gap is the local dimension. (The visited points themselves, being
a random walk, have a PCA spectrum decaying like ``1/j`` that buries the gap.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import panels, renamed_axes
from lossgeometry._progress import progress_bar
from lossgeometry.linalg.rank import Rank, numerical_rank
from lossgeometry.manifold._linalg import as_float64, flat_w, require_mse, residual_vector
from lossgeometry.manifold.gauss_newton import levenberg_marquardt
from lossgeometry.manifold.tangent import TangentSpace
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["ManifoldWalk", "walk_manifold"]

PCA_MAX_P = 20000
"""Largest ``p`` for which :func:`walk_manifold` keeps the steps for PCA by default."""


@dataclasses.dataclass(frozen=True)
class ManifoldWalk(Result):
    """A walk on ``M = {F = Y}``: per step, the loss before/after retraction and distances.

    Attributes:
        steps: the number of steps taken (fewer than asked if a retraction failed).
        step_size: ``h``, the length of each tangent step.
        direction: ``"random"`` (a fresh random tangent direction each step) or
            ``"persistent"`` (the previous direction projected onto the new tangent space).
        retract: whether the walk retracted onto ``M`` after each step.
        loss_before: ``L(w_t + h v_t)`` right after each tangent step (before retraction).
        loss: ``L`` after each retraction (equal to ``loss_before`` without retraction).
        residual_norm: ``‖F − Y‖`` after each retraction.
        retraction_iterations: Gauss–Newton iterations per retraction.
        retraction_distance: ``‖w_{t+1} − (w_t + h v_t)‖``, the length of each correction.
        step_length: ``‖w_{t+1} − w_t‖``.
        distance_travelled: cumulative sum of ``step_length``.
        displacement: ``‖w_{t+1} − w*‖``.
        expected_dimension: ``max(p − nk, 0)``.
        local_dimension: numerical rank of the steps' PCA (``None`` when skipped); at most
            ``min(steps, p − nk)``.
        pca_singular_values: singular values of the ``steps × p`` matrix of steps (``None``
            when skipped).
        pca_rank: the :class:`Rank` behind ``local_dimension``.
        success: whether every retraction converged.
        reason: why the walk stopped early (empty on success).
        w_end: the last point.
    """

    steps: int
    step_size: float
    direction: str
    retract: bool
    loss_before: np.ndarray
    loss: np.ndarray
    residual_norm: np.ndarray
    retraction_iterations: np.ndarray
    retraction_distance: np.ndarray
    step_length: np.ndarray
    distance_travelled: np.ndarray
    displacement: np.ndarray
    expected_dimension: int
    local_dimension: int | None
    pca_singular_values: np.ndarray | None
    pca_rank: Rank | None
    success: bool
    reason: str
    w_end: torch.Tensor

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ManifoldWalk:
        """Rebuild, including the nested :class:`Rank`."""
        d = dict(d)
        if isinstance(d.get("pca_rank"), dict):
            d["pca_rank"] = Rank.from_dict(d["pca_rank"])
        return super().from_dict(d)

    def summary(self) -> dict[str, Any]:
        """Headline scalars: how far it went, how high the loss rose, the PCA dimension."""
        done = self.steps > 0

        def last(a: np.ndarray) -> float:
            return float(np.asarray(a)[-1]) if done else 0.0

        def top(a: np.ndarray) -> float | None:
            return float(np.max(a)) if done else None

        return {
            "steps": self.steps,
            "success": self.success,
            "step_size": self.step_size,
            "direction": self.direction,
            "retract": self.retract,
            "distance_travelled": last(self.distance_travelled),
            "displacement": last(self.displacement),
            "max_loss_before_retraction": top(self.loss_before),
            "max_loss": top(self.loss),
            "max_residual_norm": top(self.residual_norm),
            "mean_retraction_iterations": (
                float(np.mean(self.retraction_iterations)) if done else None
            ),
            "local_dimension": self.local_dimension,
            "expected_dimension": self.expected_dimension,
        }

    def plot(self, ax: Any = None, *, axes: Any = None) -> Any:
        """Two panels: the loss per step before/after retraction (log), and the distances.

        ``ax``: two Axes (or ``None``: a new 1 × 2 figure); ``axes=`` is the deprecated name
        of ``ax``. Left, lines in order: ``loss_before``, then ``loss`` (with retraction).
        Right: ``distance_travelled``, then ``displacement``. Returns the Figure.
        """
        ax = renamed_axes(ax, axes, "ManifoldWalk")
        fig, (left, right), _ = panels(ax, 2, (10, 3.6), owner="ManifoldWalk.plot")
        s = np.arange(1, self.steps + 1)
        tiny = 1e-300
        ax = left
        ax.semilogy(s, np.maximum(self.loss_before, tiny), "o-", ms=3, label="after tangent step")
        if self.retract:
            ax.semilogy(s, np.maximum(self.loss, tiny), "s-", ms=3, label="after retraction")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
        ax = right
        ax.plot(s, self.distance_travelled, label="distance travelled")
        ax.plot(s, self.displacement, label="‖w_t − w*‖")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        title = f"h = {self.step_size:g}"
        if self.local_dimension is not None:
            title += f", PCA dim {self.local_dimension} (p − nk = {self.expected_dimension})"
        ax.set_title(title)
        return fig


@deprecated_call_style(renamed={"w_star": "w"}, positional=("steps", "step_size", "seed"))
def walk_manifold(
    problem: Problem,
    w: torch.Tensor,
    *,
    steps: int,
    step_size: float,
    seed: int = 0,
    direction: str = "random",
    retract: bool = True,
    tol: float = 1e-10,
    max_retraction_iter: int = 20,
    pca: bool | None = None,
    jacobian: str = "auto",
    min_gap: float = 1e3,
    progress: bool | None = None,
) -> ManifoldWalk:
    """Walk along the manifold of global minima from ``w*``.

    Args:
        problem: an MSE Problem (float64 copy used).
        w: an interpolating start point ``w*`` (``lg.find_interpolant(...).w``).
        steps: number of tangent steps.
        step_size: ``h``, the length of each tangent step.
        seed: seed of the random tangent directions.
        direction: ``"random"`` (fresh each step; good for PCA) or ``"persistent"`` (keep
            going the same way, projected onto each new tangent space; travels far, good for
            far-apart minima).
        retract: retract onto ``F = Y`` after each step (``False``: a straight tangent walk,
            which stays at zero loss only when the solution set is affine, e.g. a linear
            model).
        tol: retraction target ``‖F − Y‖ < tol``.
        max_retraction_iter: Gauss–Newton iterations allowed per retraction.
        pca: keep the steps and estimate the local dimension (default: ``p ≤ 20000``).
        jacobian: ``"auto"``, ``"dense"`` or ``"matrix-free"`` for tangent spaces and
            retractions.
        min_gap: relative gap for the PCA rank.
        progress: progress bar.

    Returns:
        A :class:`ManifoldWalk`. If a retraction fails, the walk stops there with
        ``success=False`` and the reason.

    The former call style (``w_star=``; ``steps``, ``step_size``, ``seed`` by position)
    works for one release, with a :class:`DeprecationWarning`.
    """
    require_mse(problem, "walk_manifold")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    if direction not in ("random", "persistent"):
        raise ValueError(f"direction must be 'random' or 'persistent', got {direction!r}")
    p64 = as_float64(problem)
    w0 = flat_w(p64, w.to(torch.float64))
    nk = p64.n * p64.k
    if p64.p <= nk:
        raise ValueError(
            f"p = {p64.p} ≤ nk = {nk}: there is no manifold of interpolants to walk on "
            "(under-parameterized); use more parameters or fewer samples"
        )
    keep = pca if pca is not None else p64.p <= PCA_MAX_P
    w = w0.clone()
    space = TangentSpace(p64, w, jacobian=jacobian)
    jac = space.method
    rec: dict[str, list[float]] = {
        k: [] for k in ("before", "loss", "res", "iters", "corr", "len", "disp")
    }
    deltas: list[torch.Tensor] = []
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    v_prev: torch.Tensor | None = None
    success, reason = True, ""
    for _ in progress_bar(range(steps), progress, desc="walk"):
        if direction == "persistent" and v_prev is not None:
            v = space.project_tangent(v_prev)
        else:
            z = torch.randn(p64.p, generator=g, dtype=torch.float64).to(p64.device)
            v = space.project_tangent(z)
        nv = float(v.norm())
        if nv == 0.0:
            success, reason = False, "the tangent space collapsed (rank J = p)"
            break
        v = v / nv
        w_step = w + step_size * v
        rec["before"].append(float(p64.loss(w_step)))
        if retract:
            st = levenberg_marquardt(
                p64, w_step, tol=tol, max_iter=max_retraction_iter, jacobian=jac
            )
            if not st.success:
                success = False
                reason = f"retraction failed after {len(rec['before'])} steps: {st.reason}"
                rec["before"].pop()
                break
            w_new = st.w
            iters = st.iterations
        else:
            w_new, iters = w_step, 0
        r = residual_vector(p64, w_new)
        rec["loss"].append(float(p64.loss(w_new)))
        rec["res"].append(float(r.norm()))
        rec["iters"].append(iters)
        rec["corr"].append(float((w_new - w_step).norm()))
        d = w_new - w
        rec["len"].append(float(d.norm()))
        rec["disp"].append(float((w_new - w0).norm()))
        if keep:
            deltas.append(d.cpu())
        w, v_prev = w_new, v
        space = TangentSpace(p64, w, jacobian=jac) if retract else space
    done = len(rec["loss"])
    local_dim, pca_sv, pca_rank = None, None, None
    if keep and done >= 2:
        D = torch.stack(deltas)
        pca_sv = torch.linalg.svdvals(D).numpy()
        pca_rank = numerical_rank(pca_sv, min_gap=min_gap, dim=max(D.shape))
        local_dim = pca_rank.rank
    return ManifoldWalk(
        steps=done,
        step_size=float(step_size),
        direction=direction,
        retract=retract,
        loss_before=np.asarray(rec["before"], dtype=float),
        loss=np.asarray(rec["loss"], dtype=float),
        residual_norm=np.asarray(rec["res"], dtype=float),
        retraction_iterations=np.asarray(rec["iters"], dtype=float),
        retraction_distance=np.asarray(rec["corr"], dtype=float),
        step_length=np.asarray(rec["len"], dtype=float),
        distance_travelled=np.cumsum(np.asarray(rec["len"], dtype=float)),
        displacement=np.asarray(rec["disp"], dtype=float),
        expected_dimension=max(p64.p - nk, 0),
        local_dimension=local_dim,
        pca_singular_values=pca_sv,
        pca_rank=pca_rank,
        success=success,
        reason=reason,
        w_end=w.detach(),
    )
