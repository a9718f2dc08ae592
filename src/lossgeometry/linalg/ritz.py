"""When a Ritz pair is good enough: residuals and eigenvalue error bounds.

A Ritz pair ``(θ, y)`` with residual ``r = A y − θ y`` has an eigenvalue within ``‖r‖`` of
``θ`` (Weyl), and within ``‖r‖²/δ`` when the rest of the spectrum is at least ``δ`` away
(Kato–Temple). :func:`error_bounds` estimates ``δ`` from the other Ritz values;
:func:`accepted` is the stopping test of :func:`~lossgeometry.linalg.lanczos_extremes` (see
:mod:`lossgeometry.linalg.lanczos` for why a test on the eigenvalue needs fewer products).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["Criterion", "accepted", "error_bounds"]

Criterion = Literal["residual", "eigenvalue"]
"""``"residual"``: accept on ``‖r‖``; ``"eigenvalue"``: accept on the error bound."""


def error_bounds(theta: torch.Tensor, res: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Eigenvalue error estimates ``min(‖r_i‖, ‖r_i‖²/δ̂_i)`` of the Ritz values ``theta[idx]``.

    ``δ̂_i = min_{j≠i} (|θ_i − θ_j| − ‖r_j‖)``: the distance from ``θ_i`` to the nearest other
    Ritz value, shrunk by that value's residual (it has an eigenvalue within ``‖r_j‖``). With
    ``δ̂_i ≤ 0`` (a cluster, or a single Ritz value) the bound is the residual itself (Weyl).
    """
    out = res[idx].clone()
    m = theta.numel()
    if m < 2:
        return out
    for a, i in enumerate(idx.tolist()):
        d = (theta[i] - theta).abs() - res
        d[i] = math.inf
        delta = float(d.min())
        r = float(res[i])
        if delta > 0:
            out[a] = min(r, r * r / delta)
    return out


def accepted(
    theta: torch.Tensor,
    res: torch.Tensor,
    want: torch.Tensor,
    tol: float,
    norm: float,
    criterion: str,
    relative_to: str = "norm",
) -> bool:
    """Whether every wanted Ritz value ``theta[want]`` passes the ``criterion`` at ``tol``.

    ``"residual"`` tests ``‖r_i‖``, ``"eigenvalue"`` the :func:`error_bounds`, against
    ``tol · norm`` (``relative_to="norm"``: the spectral norm estimate) or ``tol · |θ_i|``
    (``"value"``).
    """
    est = res[want] if criterion == "residual" else error_bounds(theta, res, want)
    scale = theta[want].abs() if relative_to == "value" else torch.tensor(norm)
    return bool((est <= tol * torch.clamp(scale, min=1e-300)).all())
