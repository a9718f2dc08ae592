"""Shared helpers of the PL* experiments (width sweep, over-parameterization, kernel change).

* :func:`cached_point`: compute one grid point or load it from ``out/points/NAME.json`` if an
  earlier run finished it with the same settings and inputs (resume); points are written
  atomically.
* :func:`loglog_slope`: least-squares slope of ``log y`` against ``log x`` with its standard
  error.
* :func:`ntk_mlp_problem`: the square-loss Problem of an NTK-parameterized MLP (the model all
  three experiments sweep), in one of the variants the theory contrasts.

The configs themselves are typed (:mod:`lossgeometry.app.experiments.options`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossgeometry.app.outdir import load_point, save_point, versions
from lossgeometry.problem import Problem

MLP_VARIANTS = {
    "linear": "linear output",
    "tanh_output": "tanh output",
    "bottleneck": "narrow bottleneck layer",
}
"""The MLP variants: a linear output (the theory's case: the Hessian norm falls as 1/√m), a
``tanh`` output (keeps Θ(1) curvature), a fixed-width bottleneck (not wide everywhere)."""


def ntk_mlp_problem(
    X: torch.Tensor,
    Y: torch.Tensor,
    *,
    width: int,
    depth: int,
    activation: str,
    dtype: torch.dtype,
    seed: int,
    variant: str = "linear",
    bottleneck: int | None = None,
) -> Problem:
    """The square-loss Problem (``reduction="sum"``) of an NTK-parameterized MLP on ``(X, Y)``.

    ``variant`` is a key of :data:`MLP_VARIANTS`; ``"bottleneck"`` needs ``bottleneck``, the
    width of the narrow layer. The model is initialized with ``seed`` and cast to ``dtype``.
    """
    from lossgeometry import models

    kwargs: dict[str, Any] = {}
    if variant == "tanh_output":
        kwargs["output_activation"] = "tanh"
    elif variant == "bottleneck":
        kwargs["bottleneck"] = bottleneck
    elif variant != "linear":
        raise ValueError(f"unknown variant {variant!r}; use one of {sorted(MLP_VARIANTS)}")
    model = models.mlp(
        X.shape[1],
        width,
        depth,
        Y.shape[1],
        activation=activation,
        parameterization="ntk",
        seed=seed,
        **kwargs,
    ).to(dtype)
    return Problem(model, X.to(dtype), Y.to(dtype))


def cached_point(
    out: Path,
    name: str,
    key: dict[str, Any],
    compute: Callable[[], dict[str, Any]],
    *,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the grid point ``name``, computed once and then reused.

    It is loaded from ``out/points/NAME.json`` if an earlier run computed it with the same
    ``key`` (every setting the point depends on: pass the experiment's whole config, less
    the grid lists, plus the point's coordinates) and the same ``inputs`` (what the settings
    only name: :func:`lossgeometry.app.outdir.inputs` of the config; default: the versions
    of lossgeometry and torch); else computed with ``compute()`` and saved atomically.

    Raises:
        CorruptCacheError: the point's file does not parse (``--fresh`` recomputes it).
    """
    path = Path(out) / "points" / f"{name}.json"
    env = versions() if inputs is None else inputs
    saved = load_point(path, key, env)
    if saved is not None:
        return saved
    return save_point(path, key, env, compute())


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """Fit ``log y = slope · log x + intercept`` by least squares.

    Returns:
        ``(slope, intercept, stderr)``: ``stderr`` is the slope's standard error
        ``sqrt(SSR/(N − 2) / Σ(log x − mean)²)`` (``inf`` with only two points).

    Raises:
        ValueError: fewer than two points, non-positive values, or all ``x`` equal.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-d of the same length, got {xa.shape} and {ya.shape}")
    if xa.size < 2:
        raise ValueError("a slope needs at least two points")
    if np.any(xa <= 0) or np.any(ya <= 0) or not np.all(np.isfinite(ya)):
        raise ValueError("log-log fit needs positive finite x and y")
    lx, ly = np.log(xa), np.log(ya)
    sxx = float(np.sum((lx - lx.mean()) ** 2))
    if sxx == 0:
        raise ValueError("all x are equal: the slope is undefined")
    slope = float(np.sum((lx - lx.mean()) * (ly - ly.mean())) / sxx)
    intercept = float(ly.mean() - slope * lx.mean())
    if xa.size == 2:
        return slope, intercept, math.inf
    ssr = float(np.sum((ly - (slope * lx + intercept)) ** 2))
    return slope, intercept, math.sqrt(ssr / (xa.size - 2) / sxx)
