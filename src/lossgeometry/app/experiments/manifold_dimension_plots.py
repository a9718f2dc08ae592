"""Figures of the ``manifold_dimension`` experiment: dimension vs ``p − nk``, degenerate points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lossgeometry.app.figures import save_figure

__all__ = ["plot_degenerate", "plot_main"]


def plot_main(rows: list[dict[str, Any]], path: Path) -> None:
    """``dimension.png``: measured dimension, excess dimension and residual against ``p/nk``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    markers = {"digits": "o", "synthetic-regression": "s"}
    for c_i, (ds, mk) in enumerate(markers.items()):
        color = f"C{c_i}"
        ok = [r for r in rows if r["dataset"] == ds and r.get("interpolated")]
        bad = [r for r in rows if r["dataset"] == ds and not r.get("interpolated")]
        if ok:
            x = [r["expected_dimension"] for r in ok]
            axes[0].scatter(
                x, [r["dimension"] for r in ok], marker=mk, color=color, label=f"{ds}: p − rank J"
            )
            hx = [r["expected_dimension"] for r in ok if r.get("hessian_nullity") is not None]
            hy = [r["hessian_nullity"] for r in ok if r.get("hessian_nullity") is not None]
            axes[0].scatter(
                hx,
                hy,
                marker="x",
                s=60,
                color="k",
                lw=0.8,
                label="Hessian nullity" if c_i == 0 else None,
            )
            px = [r["expected_dimension"] for r in ok if r.get("pca_dimension") is not None]
            py = [r["pca_dimension"] for r in ok if r.get("pca_dimension") is not None]
            if px:
                axes[0].scatter(px, py, marker="+", s=120, color="C3", label="walk PCA")
            axes[1].scatter(
                [r["p"] / r["nk"] for r in ok],
                [r["dimension"] - r["expected_dimension"] for r in ok],
                marker=mk,
                color=color,
                label=ds,
            )
            for r in ok:
                if r["dimension"] != r["expected_dimension"]:
                    axes[1].annotate(
                        f"w={r['width']}, n={r['n']}",
                        (r["p"] / r["nk"], r["dimension"] - r["expected_dimension"]),
                        fontsize=7,
                        xytext=(4, 4),
                        textcoords="offset points",
                    )
            axes[2].scatter(
                [r["p"] / r["nk"] for r in ok],
                [r["residual_norm"] for r in ok],
                marker=mk,
                facecolors="none",
                edgecolors=color,
                label=f"{ds}: interpolated",
            )
        if bad:
            axes[2].scatter(
                [r["p"] / r["nk"] for r in bad],
                [r["residual_norm"] for r in bad],
                marker=mk,
                color=color,
                label=f"{ds}: no interpolant",
            )
    lim = max([r["expected_dimension"] for r in rows] + [1])
    axes[0].plot([1, lim], [1, lim], "k--", lw=0.8, label="dimension = p − nk")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("p − nk")
    axes[0].set_ylabel("measured dimension")
    axes[0].set_title("dimension of the manifold of global minima")
    axes[0].legend(fontsize=8)
    axes[1].axhline(0.0, color="k", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("p / nk")
    axes[1].set_ylabel("measured − (p − nk) = nk − rank J")
    axes[1].set_title("excess dimension (0: Y is a regular value)")
    axes[1].legend(fontsize=8)
    axes[2].axvline(1.0, color="k", lw=0.8)
    axes[2].set_xscale("log")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("p / nk")
    axes[2].set_ylabel("final ‖F − Y‖ (Gauss–Newton)")
    axes[2].set_title("interpolation needs p ≥ nk")
    axes[2].legend(fontsize=8)
    save_figure(fig, path.parent, path.name)


def plot_degenerate(rows: list[dict[str, Any]], path: Path) -> None:
    """``degenerate.png``: predicted against measured nullity; non-zero eigenvalues vs ``p``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    pred = [r["predicted_nullity"] for r in rows]
    meas = [r["measured_nullity"] if r["measured_nullity"] is not None else np.nan for r in rows]
    axes[0].scatter(pred, meas)
    lim = max([*pred, 1])
    axes[0].plot([0, lim], [0, lim], "k--", lw=0.8)
    axes[0].set_xlabel("predicted nullity p − 2 rank(Q) rank(GP)")
    axes[0].set_ylabel("measured nullity of ∇²L")
    axes[0].set_title("zero Hessian eigenvalues at zero-layer critical points")
    for depth in sorted({r["depth"] for r in rows}):
        sub = [
            r
            for r in rows
            if r["depth"] == depth and r["layers"] == [0, 1] and r["measured_nullity"] is not None
        ]
        if sub:
            axes[1].loglog(
                [r["p"] for r in sub],
                [r["p"] - r["measured_nullity"] for r in sub],
                "o-",
                label=f"depth {depth}, W1 = W2 = 0",
            )
    axes[1].set_xlabel("p (width grows along each line)")
    axes[1].set_ylabel("non-zero eigenvalues of ∇²L")
    axes[1].set_title("non-zero eigenvalues 2 rank(Q) rank(GP) ≤ 2 · width · k")
    axes[1].legend(fontsize=8)
    save_figure(fig, path.parent, path.name)
