r"""Directions of loss surfaces and slices: random filter-normalized, Hessian, gradient, PCA.

Every function returns flat directions ``d ∈ R^p`` in the Problem's parameter order (the
order of ``problem.param_specs``), on the Problem's device and dtype.

**Filter normalization** (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the loss
landscape of neural nets", Sec. 4, and their code ``net_plotter.py``), exactly as defined
there: a Gaussian direction ``d ~ N(0, I)`` is drawn, parameter tensor by parameter tensor;
then, for every tensor with more than one dimension (the weight of a ``Linear`` layer, of a
convolution, of an embedding), each *filter* ``d_i`` (the slice along the first dimension: a
row of a ``Linear`` weight, an output channel of a convolution) is rescaled to the norm of the
matching filter ``w_i`` of the point:

    d_i ← d_i · ‖w_i‖ / (‖d_i‖ + 10⁻¹⁰).

Tensors with one dimension or none — biases and BatchNorm/LayerNorm weights and biases — are
set to zero in the direction (Li et al.'s default ``ignore='biasbn'``); with
``ignore="none"`` they are copied from ``w`` instead (Li et al.'s other choice). The
``10⁻¹⁰`` is theirs too. Since every filter of ``d`` scales with its filter of ``w``, a
reparameterization that multiplies a layer by ``c`` and the next by ``1/c`` (which leaves a
ReLU network's function unchanged) leaves the filter-normalized plot unchanged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from lossgeometry.problem import Problem

__all__ = [
    "Ignore",
    "filter_normalize",
    "filter_normalized_direction",
    "gradient_direction",
    "hessian_directions",
    "trajectory_pca",
]

Ignore = Literal["biasbn", "none"]
"""What filter normalization does with 1-d tensors: zero them (``"biasbn"``) or copy ``w``."""


def filter_normalize(
    problem: Problem, w: torch.Tensor | None, *, direction: torch.Tensor, ignore: Ignore = "biasbn"
) -> torch.Tensor:
    """Filter-normalize a flat ``direction`` ``d`` at the point ``w`` (Li et al. 2018).

    ``d_i ← d_i ‖w_i‖ / (‖d_i‖ + 1e-10)`` for every filter ``i`` (first-dimension slice) of
    every tensor with ``ndim ≥ 2``; tensors with ``ndim ≤ 1`` (biases, normalization layers)
    become zero (``ignore="biasbn"``) or a copy of ``w`` (``ignore="none"``). Returns a new
    tensor.
    """
    if ignore not in ("biasbn", "none"):
        raise ValueError(f"ignore must be 'biasbn' or 'none', got {ignore!r}")
    w = problem.check_w(w)
    d = problem.check_v(direction, "direction")
    if d.ndim != 1:
        raise ValueError(f"d must be one flat direction of shape ({problem.p},)")
    out = torch.empty_like(d)
    wp, dp, op = problem.param_dict(w), problem.param_dict(d), problem.param_dict(out)
    for s in problem.param_specs:
        wt, dt, ot = wp[s.name], dp[s.name], op[s.name]
        if len(s.shape) <= 1:
            ot.copy_(torch.zeros_like(wt) if ignore == "biasbn" else wt)
            continue
        wn = wt.reshape(wt.shape[0], -1).norm(dim=1)
        dn = dt.reshape(dt.shape[0], -1).norm(dim=1)
        scale = (wn / (dn + 1e-10)).reshape(-1, *([1] * (len(s.shape) - 1)))
        ot.copy_(dt * scale)
    return out


def filter_normalized_direction(
    problem: Problem, w: torch.Tensor | None = None, *, seed: int = 0, ignore: Ignore = "biasbn"
) -> torch.Tensor:
    """A random filter-normalized direction at ``w`` (see the module docstring).

    The Gaussian is drawn with a CPU ``torch.Generator`` seeded with ``seed``, tensor by tensor
    in the Problem's parameter order, then cast to the Problem's dtype: the same ``seed``
    gives the same direction for the same architecture whatever the point.
    """
    w = problem.check_w(w)
    g = torch.Generator().manual_seed(seed)
    raw = torch.cat(
        [torch.randn(s.numel, generator=g, dtype=torch.float64) for s in problem.param_specs]
    )
    return filter_normalize(problem, w, direction=raw, ignore=ignore)


def gradient_direction(problem: Problem, w: torch.Tensor | None = None) -> torch.Tensor:
    """The unit gradient ``∇L(w)/‖∇L(w)‖`` (the steepest-ascent direction).

    Raises:
        ValueError: the gradient is zero (no direction).
    """
    g = problem.grad(problem.check_w(w)).detach()
    norm = float(g.norm())
    if norm == 0.0:
        raise ValueError("the gradient is zero at w: it gives no direction")
    return g / norm


def hessian_directions(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    top: int = 2,
    bottom: int = 0,
    seed: int = 0,
    tol: float | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Unit eigenvectors of the loss Hessian ``∇²L(w)``: the ``top`` then the ``bottom`` ones.

    Computed by :func:`lossgeometry.hessian_spectrum` with ``return_vectors=True`` and the
    residual acceptance test (accurate vectors). Returns ``(vectors (p, top + bottom),
    eigenvalues)``; each vector's sign is fixed so that its entry of largest magnitude is
    positive (an eigenvector's sign is arbitrary; this makes plots reproducible).
    """
    from lossgeometry.curvature.spectrum import hessian_spectrum

    spec = hessian_spectrum(
        problem,
        problem.check_w(w),
        top=top,
        bottom=bottom,
        seed=seed,
        tol=tol,
        return_vectors=True,
        criterion="residual",
        progress=False,
    )
    assert spec.vectors is not None
    V = torch.as_tensor(np.asarray(spec.vectors), dtype=problem.dtype, device=problem.device)
    V = V / V.norm(dim=0, keepdim=True)
    sign = torch.sign(V.gather(0, V.abs().argmax(dim=0, keepdim=True)))
    values = np.concatenate([np.asarray(spec.top), np.asarray(spec.bottom)])
    return V * sign, values


def trajectory_pca(
    iterates: torch.Tensor, center: torch.Tensor, *, count: int = 2
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """PCA directions of a training trajectory and its coordinates in their plane.

    As Li et al. (Sec. 7): the matrix ``M`` of rows ``w_t − c`` (``c`` the centre, usually the
    final point) is centred column-wise (as scikit-learn's ``PCA`` does) and its top ``count``
    right singular vectors are the directions (unit norm, sign fixed so that the entry of
    largest magnitude is positive). The coordinates of ``w_t`` are ``(w_t − c) · d_j`` (the
    directions are orthonormal, so this is the orthogonal projection onto the plane through
    ``c``).

    Returns:
        ``(directions (p, count), coordinates (T, count), explained variance ratios (count,))``.
    """
    if iterates.ndim != 2 or iterates.shape[0] < 2:
        raise ValueError("iterates must have shape (T, p) with at least two records")
    M = (iterates - center.reshape(1, -1)).to(torch.float64)
    _, S, Vh = torch.linalg.svd(M - M.mean(dim=0, keepdim=True), full_matrices=False)
    if Vh.shape[0] < count:
        raise ValueError(f"the trajectory spans fewer than {count} directions")
    D = Vh[:count].T
    D = D * torch.sign(D.gather(0, D.abs().argmax(dim=0, keepdim=True)))
    var = S.pow(2)
    ratio = (var[:count] / var.sum()).cpu().numpy() if float(var.sum()) > 0 else np.zeros(count)
    coords = (M @ D).cpu().numpy()
    return D.to(dtype=iterates.dtype), coords, ratio
