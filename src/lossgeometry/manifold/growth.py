"""How fast the loss grows away from a global minimum, along tangent and normal directions.

At ``w*`` with ``F(w*) = Y``, Taylor-expand ``F`` along a unit direction ``v``:
``F(w* + t v) − Y = t J v + ½ t² D²F[v, v] + O(t³)``. Hence (``c`` = loss_scale)

* **normal** directions (``v ∈ range Jᵀ``, so ``J v ≠ 0``):
  ``L(w* + t v) = ½ c t² ‖J v‖² + O(t³)``: exponent **2**;
* **tangent** directions (``v ∈ ker J``): ``L(w* + t v) = ⅛ c t⁴ ‖D²F[v, v]‖² + O(t⁵)``:
  exponent **4** (higher still if ``D²F[v, v] = 0``, e.g. exactly flat for a linear model).

:func:`loss_growth` measures ``L(w* + t v)`` over a log-spaced range of ``t`` and fits the
exponent as the least-squares slope of ``log L`` against ``log t``. Points whose loss is
within a factor ``1e3`` of the floor ``L(w*)`` (the leftover residual, which adds a term
``c t ⟨r*, …⟩``) are left out of the fit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.manifold._linalg import as_float64, flat_w, require_mse
from lossgeometry.manifold.tangent import TangentSpace
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["LossGrowth", "loss_growth"]


@dataclasses.dataclass(frozen=True)
class LossGrowth(Result):
    """``L(w* + t v)`` along unit tangent and normal directions ``v``, with fitted exponents.

    Attributes:
        t: the step lengths (``‖t v‖ = t``).
        tangent_loss: ``(m, len(t))`` losses along ``m`` orthonormal tangent directions.
        normal_loss: ``(m, len(t))`` losses along ``m`` orthonormal normal directions.
        tangent_exponents: fitted slope of ``log L`` vs ``log t`` per tangent direction;
            ``None`` for a direction whose loss never rises above the floor (flat: e.g. a
            linear model, where the solution set is affine).
        normal_exponents: the same for normal directions (≈ 2).
        floor: ``L(w*)``, the loss at the base point.
        tangent_exponent: median of the measured tangent exponents (``None`` if all flat).
        normal_exponent: median of the normal exponents.
        tangent_flat: whether every tangent direction stayed at the floor (up to 1e3 ×).
    """

    t: np.ndarray
    tangent_loss: np.ndarray
    normal_loss: np.ndarray
    tangent_exponents: list[float | None]
    normal_exponents: list[float | None]
    floor: float
    tangent_exponent: float | None
    normal_exponent: float | None
    tangent_flat: bool

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the fitted exponents (≈ 2 normal, ≈ 4 tangent), the floor."""
        return {
            "normal_exponent": self.normal_exponent,
            "tangent_exponent": self.tangent_exponent,
            "tangent_flat": self.tangent_flat,
            "floor": self.floor,
            "directions": len(self.normal_exponents),
            "t_min": float(np.min(self.t)),
            "t_max": float(np.max(self.t)),
        }

    def plot(self, ax: Any = None) -> Any:
        """Log–log plot of the loss along tangent and normal directions, with t² and t⁴ guides.

        Lines, in order: one per normal direction, one per tangent direction (losses floored at
        ``1e-300``), then the guides. Returns the Axes.
        """
        ax = axes_or_new(ax, (5, 3.8))
        t = np.asarray(self.t, dtype=float)
        tiny = 1e-300
        for i, row in enumerate(np.asarray(self.normal_loss)):
            ax.loglog(
                t, np.maximum(row, tiny), "-o", ms=3, color="C0", label="normal" if i == 0 else None
            )
        for i, row in enumerate(np.asarray(self.tangent_loss)):
            ax.loglog(
                t,
                np.maximum(row, tiny),
                "-s",
                ms=3,
                color="C1",
                label="tangent" if i == 0 else None,
            )
        ref_n = np.asarray(self.normal_loss)[:, -1].max()
        ax.loglog(t, ref_n * (t / t[-1]) ** 2, "k:", lw=1, label="∝ t²")
        ref_t = np.asarray(self.tangent_loss)[:, -1].max()
        if ref_t > self.floor:
            ax.loglog(t, ref_t * (t / t[-1]) ** 4, "k--", lw=1, label="∝ t⁴")
        ax.set_xlabel("t")
        ax.set_ylabel("L(w* + t v)")
        te = "flat" if self.tangent_exponent is None else f"{self.tangent_exponent:.2f}"
        ne = "—" if self.normal_exponent is None else f"{self.normal_exponent:.2f}"
        ax.set_title(f"exponents: normal {ne}, tangent {te}")
        ax.legend(fontsize=8)
        return ax


def _fit_exponent(t: np.ndarray, L: np.ndarray, floor: float) -> float | None:
    keep = L > max(1e3 * floor, 1e-300)
    if keep.sum() < 3:
        return None
    slope = np.polyfit(np.log(t[keep]), np.log(L[keep]), 1)[0]
    return float(slope)


def _median(vals: list[float | None]) -> float | None:
    xs = [v for v in vals if v is not None]
    return float(np.median(xs)) if xs else None


@deprecated_call_style(renamed={"w_star": "w"})
def loss_growth(
    problem: Problem,
    w: torch.Tensor,
    *,
    t: np.ndarray | list[float] | None = None,
    num_directions: int = 3,
    seed: int = 0,
    space: TangentSpace | None = None,
    jacobian: str = "auto",
) -> LossGrowth:
    """Loss along tangent and normal directions at an interpolant, with fitted exponents.

    Args:
        problem: an MSE Problem (float64 copy used).
        w: an interpolating point ``w*`` (``‖F(w*) − Y‖`` ≲ 1e-10 for clean exponents;
            ``w_star=`` is its former name, kept for one release with a
            :class:`DeprecationWarning`).
        t: step lengths (default ``logspace(-3, -1, 9)``).
        num_directions: how many orthonormal directions of each kind.
        seed: seed of the random directions.
        space: a :class:`TangentSpace` at ``w*`` to reuse (else one is built).
        jacobian: ``"auto"``, ``"dense"`` or ``"matrix-free"`` when building the space.

    Returns:
        A :class:`LossGrowth`: exponents ≈ 2 (normal) and ≈ 4 (tangent) at a regular
        interpolant of a non-linear model; tangent losses stay at the floor for a linear one.
    """
    require_mse(problem, "loss_growth")
    p64 = as_float64(problem)
    w = flat_w(p64, w.to(torch.float64))
    ts = np.asarray(t if t is not None else np.logspace(-3, -1, 9), dtype=float)
    if ts.ndim != 1 or ts.size < 3 or np.any(ts <= 0):
        raise ValueError("t must be at least 3 positive step lengths")
    if space is None:
        space = TangentSpace(p64, w, jacobian=jacobian)
    T = space.sample_tangent(num_directions, seed=seed)
    N = space.sample_normal(num_directions, seed=seed + 1)
    floor = float(p64.loss(w))

    def along(V: torch.Tensor) -> np.ndarray:
        out = np.empty((V.shape[1], ts.size))
        for i in range(V.shape[1]):
            for j, tj in enumerate(ts):
                out[i, j] = float(p64.loss(w + float(tj) * V[:, i]))
        return out

    tl, nl = along(T), along(N)
    te = [_fit_exponent(ts, row, floor) for row in tl]
    ne = [_fit_exponent(ts, row, floor) for row in nl]
    return LossGrowth(
        t=ts,
        tangent_loss=tl,
        normal_loss=nl,
        tangent_exponents=te,
        normal_exponents=ne,
        floor=floor,
        tangent_exponent=_median(te),
        normal_exponent=_median(ne),
        tangent_flat=all(v is None for v in te),
    )
