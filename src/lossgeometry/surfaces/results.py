"""The Results of the loss-surface studies: :class:`LossSurface` (2D) and :class:`LossPath` (1D).

Both hold the grid, the loss on it (the Problem's normalization) and optionally the accuracy;
``summary()`` gives headline numbers, ``plot(ax=None, *, ...)`` draws them, ``save``/``load``
round-trip through JSON (the directions themselves, ``p`` numbers each, are not stored).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import numpy as np

from lossgeometry._plotting import axes_or_new
from lossgeometry.results import Result

__all__ = ["LossPath", "LossSurface"]


@dataclasses.dataclass(frozen=True)
class LossSurface(Result):
    """The loss on a plane ``w + x d₁ + y d₂`` through the point ``w``.

    Attributes:
        x, y: the grid coordinates along ``d₁`` and ``d₂``.
        loss: ``L(w + x_j d₁ + y_i d₂)`` at row ``i``, column ``j`` (shape ``(len(y), len(x))``).
        accuracy: the same grid of accuracies (cross-entropy problems), or ``None``.
        directions: ``"random"`` (filter-normalized), ``"hessian"`` (top-2 eigenvectors),
            ``"pca"`` (of a trajectory) or ``"given"``.
        center_loss: ``L(w)``.
        direction_norms: ``‖d₁‖``, ``‖d₂‖``.
        cosine: ``cos ∠(d₁, d₂)``.
        trajectory: ``(T, 2)`` coordinates of a training run projected on the plane, or ``None``.
        explained_variance: PCA's explained variance ratios of the two directions, or ``None``.
        eigenvalues: the Hessian eigenvalues of the two directions, or ``None``.
        evaluation: ``"vmap"`` or ``"chunks"`` (how the grid was evaluated).
        evaluated_points: grid points evaluated by this call (the rest came from a checkpoint).
        resumed_rows: rows read from the checkpoint.
        wall_time: seconds of the call.
        p, loss_name, reduction: of the Problem.
        options: the :class:`~lossgeometry.surfaces.study.SurfaceOptions` used, as a dict.
    """

    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    directions: str
    center_loss: float
    direction_norms: list[float]
    cosine: float
    trajectory: np.ndarray | None
    explained_variance: np.ndarray | None
    eigenvalues: np.ndarray | None
    evaluation: str
    evaluated_points: int
    resumed_rows: int
    wall_time: float
    p: int
    loss_name: str
    reduction: str
    options: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Grid size, the loss at the centre, its minimum (and where) and maximum."""
        L = np.asarray(self.loss, dtype=float)
        i, j = np.unravel_index(int(np.nanargmin(L)), L.shape)
        out: dict[str, Any] = {
            "directions": self.directions,
            "grid": f"{L.shape[1]}x{L.shape[0]}",
            "center_loss": self.center_loss,
            "loss_min": float(L[i, j]),
            "loss_max": float(np.nanmax(L)),
            "argmin_x": float(self.x[j]),
            "argmin_y": float(self.y[i]),
            "evaluation": self.evaluation,
            "wall_time": self.wall_time,
        }
        if self.accuracy is not None:
            A = np.asarray(self.accuracy, dtype=float)
            out["accuracy_max"] = float(np.nanmax(A))
            out["accuracy_min"] = float(np.nanmin(A))
        if self.explained_variance is not None:
            out["explained_variance"] = float(np.sum(self.explained_variance))
        return out

    def plot(
        self,
        ax: Any = None,
        *,
        kind: Literal["contour", "surface3d"] = "contour",
        levels: int = 15,
        log: bool = False,
    ) -> Any:
        """Draw the surface; return the Axes.

        ``kind="contour"``: filled contours with labelled level lines, the centre ``w`` (a
        star) and the projected trajectory (start ○, end ×) when present. ``"surface3d"``: a
        3D surface (``ax`` must then be a 3D Axes, or ``None``). ``log``: plot ``log₁₀ L``.
        """
        X, Y = np.meshgrid(np.asarray(self.x, float), np.asarray(self.y, float))
        Z = np.asarray(self.loss, dtype=float)
        label = "loss"
        if log:
            Z = np.log10(np.maximum(Z, np.finfo(float).tiny))
            label = "log10 loss"
        if kind == "surface3d":
            if ax is None:
                import matplotlib.pyplot as plt

                fig = plt.figure(figsize=(6, 4.8))
                ax = fig.add_subplot(projection="3d")
            elif not hasattr(ax, "plot_surface"):
                raise TypeError("kind='surface3d' needs a 3D Axes (projection='3d') or ax=None")
            ax.plot_surface(X, Y, Z, cmap="viridis", linewidth=0, antialiased=True)
            ax.set_zlabel(label)
        elif kind == "contour":
            ax = axes_or_new(ax, (5.6, 4.8))
            filled = ax.contourf(X, Y, Z, levels=levels, cmap="viridis")
            lines = ax.contour(X, Y, Z, levels=filled.levels, colors="k", linewidths=0.5)
            ax.clabel(lines, inline=True, fontsize=7, fmt="%.3g")
            ax.figure.colorbar(filled, ax=ax, label=label)
            ax.plot([0.0], [0.0], "*", color="w", ms=12, mec="k", label="w")
            if self.trajectory is not None:
                T = np.asarray(self.trajectory, dtype=float)
                ax.plot(T[:, 0], T[:, 1], "-", color="C3", lw=1.5, label="trajectory")
                ax.plot(T[:1, 0], T[:1, 1], "o", color="C3", mec="k", label="start")
                ax.plot(T[-1:, 0], T[-1:, 1], "x", color="k", ms=8, label="end")
            ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
        else:
            raise ValueError(f"kind must be 'contour' or 'surface3d', got {kind!r}")
        names = {"pca": "PCA", "hessian": "Hessian eigvec", "random": "filter-norm. dir."}
        name = names.get(self.directions, "direction")
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
        return ax


@dataclasses.dataclass(frozen=True)
class LossPath(Result):
    """The loss along a line ``w + t d``: an interpolation (``d = w_end − w``) or a slice.

    Attributes:
        t: the coordinates along ``d`` (``t = 0`` is ``w``; ``t = 1`` is ``w_end`` for an
            interpolation).
        loss: ``L(w + t d)``.
        accuracy: accuracies along the line (cross-entropy problems), or ``None``.
        direction: ``"interpolation"``, ``"random"`` (filter-normalized), ``"hessian"`` (top
            eigenvector), ``"hessian_bottom"`` (most negative), ``"gradient"`` or ``"given"``.
        direction_norm: ``‖d‖`` (for an interpolation: the distance of the two ends).
        loss_start: ``L(w)`` (``t = 0``).
        loss_end: ``L(w_end)`` (``t = 1``) of an interpolation, else ``None``.
        eigenvalue: the Hessian eigenvalue of the direction, or ``None``.
        evaluation, wall_time, p, loss_name, reduction, options: as in :class:`LossSurface`.
    """

    t: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    direction: str
    direction_norm: float
    loss_start: float
    loss_end: float | None
    eigenvalue: float | None
    evaluation: str
    wall_time: float
    p: int
    loss_name: str
    reduction: str
    options: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Loss at both ends (``t = 0`` and ``t = 1``), its extremes and the barrier."""
        L = np.asarray(self.loss, dtype=float)
        t = np.asarray(self.t, dtype=float)
        start = self.loss_start
        end = self.loss_end if self.loss_end is not None else math.nan
        inside = (t >= 0) & (t <= 1)
        barrier = math.nan
        if self.direction == "interpolation" and inside.any():
            chord = (1 - t[inside]) * start + t[inside] * end
            barrier = float(np.max(L[inside] - chord))
        return {
            "direction": self.direction,
            "points": len(t),
            "loss_start": start,
            "loss_end": end,
            "loss_min": float(np.nanmin(L)),
            "loss_max": float(np.nanmax(L)),
            "barrier": barrier,
            "direction_norm": self.direction_norm,
            "evaluation": self.evaluation,
        }

    def plot(self, ax: Any = None, *, log: bool = False, accuracy: bool = True) -> Any:
        """Draw the loss along the line; return the Axes.

        Both ends are marked (``t = 0`` ○ and ``t = 1`` ×; a slice marks ``w`` at ``t = 0``);
        the accuracy is drawn on a twin axis when present (``accuracy=True``).
        """
        ax = axes_or_new(ax, (6, 3.6))
        t = np.asarray(self.t, dtype=float)
        L = np.asarray(self.loss, dtype=float)
        ax.plot(t, L, "-", color="C0", label="loss")
        ax.plot([0.0], [self.loss_start], "o", color="C0", mec="k", label="t = 0 (w)")
        if self.loss_end is not None:
            ax.plot([1.0], [self.loss_end], "X", color="C3", mec="k", ms=9, label="t = 1 (end)")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("t" if self.direction != "interpolation" else "t  (w + t (w_end − w))")
        ax.set_ylabel("loss")
        if accuracy and self.accuracy is not None:
            twin = ax.twinx()
            twin.plot(t, np.asarray(self.accuracy, float), "--", color="C2", label="accuracy")
            twin.set_ylabel("accuracy")
        ax.legend(loc="best", fontsize=7)
        return ax
