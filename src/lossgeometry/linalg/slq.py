"""Stochastic Lanczos quadrature (SLQ): the spectral density of a symmetric operator.

The spectral density of ``A ∈ R^{p×p}`` with eigenvalues ``λ_1..λ_p`` is
``φ(t) = (1/p) Σ_j δ(t − λ_j)``. For a unit vector ``v``, ``vᵀ g(A) v = Σ_j (q_jᵀv)² g(λ_j)``
and, for ``v`` uniformly random on the sphere (or a normalized Rademacher vector),
``E[(q_jᵀv)²] = 1/p``: the measure ``Σ_j (q_jᵀv)² δ(t − λ_j)`` is an unbiased estimate of
``φ``. ``m`` Lanczos steps from ``v`` give a tridiagonal ``T_m = U diag(θ) Uᵀ`` whose Gauss
quadrature ``Σ_k τ_k δ(t − θ_k)``, ``τ_k = U_{1k}²`` (the squared first components), matches
that measure's first ``2m − 1`` moments exactly (Golub & Meurant). Averaging over ``n_v``
start vectors and smoothing with a Gaussian of width ``σ``:

    φ̂(t) = (1/n_v) Σ_l Σ_k τ_k^(l) · exp(−(t − θ_k^(l))² / (2σ²)) / (σ √(2π)).

Each ``τ^(l)`` sums to one and the Gaussian integrates to one, so ``∫ φ̂ = 1``
(Ghorbani, Krishnan & Xiao, 2019; Lin, Saad & Yang, 2016). The same nodes and weights give
``tr(g(A)) ≈ p Σ τ_k g(θ_k)``, e.g. the trace (``g(t) = t``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lossgeometry.linalg.tridiagonal import lanczos_tridiag
from lossgeometry.operators.base import square_operator


def slq_nodes(
    A: object,
    *,
    probes: int = 8,
    steps: int = 80,
    seed: int = 0,
    reorthogonalize: bool = True,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Quadrature nodes and weights of SLQ from ``probes`` Rademacher start vectors.

    All probes run their Lanczos recurrences together (one vectorized product per step).

    Args:
        A: the symmetric ``p × p`` operator (see :func:`~lossgeometry.linalg.lanczos_extremes`);
            the vectors take its dtype and device.
        probes: number of random start vectors ``n_v``.
        steps: Lanczos steps ``m`` per start vector.
        seed: seed of the start vectors.
        reorthogonalize: full reorthogonalization (memory ``probes · steps · p``).
        progress: a progress bar over steps.

    Returns:
        ``(nodes, weights, matvecs)``: arrays of shape ``(probes, m)`` (a probe whose Krylov
        space closed early has zero weights past its size) and the number of products.
    """
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    A = square_operator(A, "slq_nodes")
    p, dtype, device = A.shape[0], A.torch_dtype, A.device
    gen = torch.Generator().manual_seed(seed)
    V0 = (2 * torch.randint(0, 2, (p, probes), generator=gen) - 1).to(device=device, dtype=dtype)
    tri = lanczos_tridiag(A, V0, steps, reorthogonalize=reorthogonalize, progress=progress)
    m = tri.alpha.shape[1]
    nodes = np.zeros((probes, m))
    weights = np.zeros((probes, m))
    for l, T in enumerate(tri.matrices()):
        theta, U = torch.linalg.eigh(T)
        s = theta.numel()
        nodes[l, :s] = theta.numpy()
        weights[l, :s] = (U[0, :] ** 2).numpy()
        if s < m:  # park unused slots at an existing node with zero weight
            nodes[l, s:] = theta[-1].item()
    return nodes, weights, tri.matvecs


def gaussian_density(
    nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float
) -> np.ndarray:
    """``φ̂(t) = mean_l Σ_k τ_k^(l) N(t; θ_k^(l), σ²)`` on ``grid`` (see the module docstring)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    th = nodes.reshape(-1)
    tw = weights.reshape(-1) / nodes.shape[0]
    out = np.zeros_like(grid, dtype=float)
    for s in range(0, th.size, 256):
        d = (grid[:, None] - th[None, s : s + 256]) / sigma
        out += (np.exp(-0.5 * d * d) * tw[None, s : s + 256]).sum(axis=1)
    return out / (sigma * math.sqrt(2 * math.pi))


def default_grid(nodes: np.ndarray, sigma: float, num: int = 1000, pad: float = 5.0) -> np.ndarray:
    """Return an even grid over ``[min θ − pad·σ, max θ + pad·σ]``."""
    lo, hi = float(nodes.min()) - pad * sigma, float(nodes.max()) + pad * sigma
    return np.linspace(lo, hi, num)
