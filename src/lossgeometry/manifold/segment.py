"""The loss on the segment between two points (e.g. two global minima).

Measurement (a) of :mod:`lossgeometry.manifold.nonconvexity`: a convex loss lies below its
chord, so between two global minima it stays at the minimum; a curved manifold of minima
makes the loss rise between them (``midpoint_loss > 0``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.manifold._linalg import as_float64, flat_w
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["SegmentLoss", "segment_loss"]


@dataclasses.dataclass(frozen=True)
class SegmentLoss(Result):
    """The loss on the segment ``w(s) = (1 − s) w_a + s w_b``, ``s ∈ [0, 1]``.

    Attributes:
        s: the positions.
        loss: ``L(w(s))`` (the Problem's normalization).
        distance: ``‖w_b − w_a‖``.
        midpoint_loss: ``L((w_a + w_b)/2)``.
        convexity_gap: ``max_s [L(w(s)) − ((1 − s) L(w_a) + s L(w_b))]``: positive means the
            loss lies above its chord, so it is not convex on the segment.
        convex_on_segment: ``convexity_gap ≤ tol`` with ``tol = 1e-12 · (1 + max L)`` plus
            the rounding of L.
    """

    s: np.ndarray
    loss: np.ndarray
    distance: float
    midpoint_loss: float
    convexity_gap: float
    convex_on_segment: bool

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the midpoint loss, the gap above the chord, the verdict."""
        L = np.asarray(self.loss, dtype=float)
        return {
            "midpoint_loss": self.midpoint_loss,
            "max_loss": float(L.max()),
            "convexity_gap": self.convexity_gap,
            "convex_on_segment": self.convex_on_segment,
            "distance": self.distance,
            "points": int(L.size),
        }

    def plot(self, ax: Any = None) -> Any:
        """The loss along the segment with its chord."""
        ax = axes_or_new(ax, (5, 3.5))
        s = np.asarray(self.s)
        L = np.asarray(self.loss)
        ax.plot(s, L, "o-", ms=3, label="L((1−s) w_a + s w_b)")
        ax.plot([s[0], s[-1]], [L[0], L[-1]], "k--", lw=1, label="chord")
        ax.set_xlabel("s")
        ax.set_ylabel("loss")
        ax.set_title(f"midpoint loss {self.midpoint_loss:.3g} (‖w_b − w_a‖ = {self.distance:.3g})")
        ax.legend(fontsize=8)
        return ax


@deprecated_call_style(positional=("num",))
def segment_loss(
    problem: Problem, w_a: torch.Tensor, w_b: torch.Tensor, *, num: int = 21
) -> SegmentLoss:
    """The loss on the straight segment between two points (e.g. two global minima).

    Between two interpolants a convex loss would stay at 0; ``midpoint_loss > 0`` shows the
    set of minima is not convex. ``num`` is odd so that ``s = ½`` is sampled. Passing ``num``
    by position (the former call style) works for one release, with a
    :class:`DeprecationWarning`.
    """
    if num < 3:
        raise ValueError(f"num must be >= 3, got {num}")
    num = num + 1 if num % 2 == 0 else num
    p64 = as_float64(problem)
    a = flat_w(p64, w_a.to(torch.float64))
    b = flat_w(p64, w_b.to(torch.float64))
    s = np.linspace(0.0, 1.0, num)
    L = np.array([float(p64.loss((1 - si) * a + si * b)) for si in s])
    chord = (1 - s) * L[0] + s * L[-1]
    gap = float(np.max(L - chord))
    tol = 1e-12 * (1.0 + float(np.max(np.abs(L))))
    return SegmentLoss(
        s=s,
        loss=L,
        distance=float((b - a).norm()),
        midpoint_loss=float(L[num // 2]),
        convexity_gap=gap,
        convex_on_segment=gap <= tol,
    )
