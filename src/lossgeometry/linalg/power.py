"""Power iteration: the dominant eigenvalue of an operator from repeated products.

From a Gaussian unit start vector ``v₀`` (drawn on the CPU from ``seed``), iterate
``v_{t+1} = A v_t / ‖A v_t‖``. For a symmetric ``A`` whose largest-magnitude eigenvalue
``λ₁`` is separated (``|λ₂| < |λ₁|``), ``v_t`` converges to its eigenvector at the rate
``|λ₂/λ₁|^t``; then the Rayleigh quotient ``v_tᵀ A v_t → λ₁`` and ``‖A v_t‖ → |λ₁|``.
Cheap and dependable for a rough ``λ_max`` (step sizes, spectral norms); use
:func:`~lossgeometry.linalg.lanczos_extremes` for accuracy.
"""

from __future__ import annotations

import dataclasses

import torch

from lossgeometry.operators.base import square_operator

__all__ = ["PowerIteration", "power_iteration"]


@dataclasses.dataclass(frozen=True)
class PowerIteration:
    """Output of :func:`power_iteration`.

    Attributes:
        value: the Rayleigh quotient ``vᵀ A v`` of the last unit iterate ``v`` (0 if none).
        norm: ``‖A v‖`` of the last product (0 when ``A v = 0``: the iteration stops there).
        vector: the last unit iterate: ``A v / ‖A v‖``, or ``v`` if ``A v = 0``.
        iterations: products computed.
    """

    value: float
    norm: float
    vector: torch.Tensor
    iterations: int


def power_iteration(A: object, iters: int = 30, seed: int = 0) -> PowerIteration:
    """Run ``iters`` steps of power iteration on the square operator ``A``.

    The start vector is ``randn(p)`` from a CPU generator seeded with ``seed``, in the
    operator's dtype, moved to its device and normalized; the iteration stops early when a
    product vanishes.

    Args:
        A: a square operator (see :func:`~lossgeometry.operators.as_torch_operator`).
        iters: the number of products.
        seed: seed of the start vector.

    Returns:
        A :class:`PowerIteration`.
    """
    A = square_operator(A, "power_iteration")
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(A.shape[0], generator=g, dtype=A.torch_dtype).to(A.device)
    v /= v.norm()
    lam = torch.tensor(0.0)
    nv = torch.tensor(0.0)
    done = 0
    for _ in range(iters):
        av = A.matvec_torch(v)
        done += 1
        lam = v @ av
        nv = av.norm()
        if nv == 0:
            break
        v = av / nv
    return PowerIteration(value=float(lam), norm=float(nv), vector=v, iterations=done)
