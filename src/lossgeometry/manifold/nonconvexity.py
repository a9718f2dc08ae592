"""Essential non-convexity of over-parameterized losses, and the convex contrast.

Liu, Zhu & Belkin (arXiv:2003.00307, §3): the loss of an over-parameterized non-linear
system is not convex in *any* neighbourhood of a global minimum. Three measurements:

(a) :func:`segment_loss` — the loss on the segment between two global minima. A convex loss
    is ≤ 0 there; a curved solution manifold makes the midpoint loss positive.

(b) :func:`negative_curvature_near` — points with a negative Hessian eigenvalue at every
    radius ``ρ`` around ``w*``. Derivation: at ``w = w* + ρ n`` with ``n`` a unit normal
    direction, ``r(w) = ρ J n + O(ρ²)`` and (``c`` = loss_scale)

        ``∇²L(w) = c (J(w)ᵀ J(w) + Σ_i r_i(w) ∇²F_i(w))``.

    For a tangent vector ``u ∈ ker J(w*)`` the first term is ``O(ρ²)``, so
    ``uᵀ ∇²L(w) u = c ρ (J n)ᵀ D²F(w*)[u, u] + O(ρ²)`` (``Σ_i r_i uᵀ∇²F_i u`` with
    ``r = ρ J n``). This is linear in ``n``. With ``a = D²F(w*)[t, t]`` for a unit tangent
    ``t``, choose ``n = −Jᵀ a / ‖Jᵀ a‖`` (a unit vector in ``range Jᵀ``, the normal space):
    ``(J n)ᵀ a = −aᵀ J Jᵀ a / ‖Jᵀ a‖ = −‖Jᵀ a‖``, hence

        ``λ_min(∇²L(w* + ρ n)) ≤ tᵀ ∇²L(w* + ρ n) t = −c ρ ‖Jᵀ a‖ + O(ρ²) < 0``

    whenever ``Jᵀ D²F[t, t] ≠ 0`` (it vanishes for a linear model, whose loss is convex):
    negative curvature at distance ``ρ`` for every small ``ρ``, of size ``∝ ρ``, certified
    by one Hessian-vector product (the Rayleigh quotient bounds ``λ_min`` from above).

(c) :func:`local_convexity` — the smallest Hessian eigenvalue at random points on spheres of
    radius ``ρ``: all non-negative around an isolated minimum with a positive definite
    Hessian (e.g. an under-parameterized model's least-squares minimum), negative at some
    points for every ``ρ`` around an over-parameterized interpolant.

The three live in :mod:`.segment`, :mod:`.curvature_near` and :mod:`.convexity`; this module
gathers them.
"""

from lossgeometry.manifold.convexity import LocalConvexity, local_convexity
from lossgeometry.manifold.curvature_near import (
    DEFAULT_RADII,
    NegativeCurvature,
    negative_curvature_near,
)
from lossgeometry.manifold.segment import SegmentLoss, segment_loss

__all__ = [
    "DEFAULT_RADII",
    "LocalConvexity",
    "NegativeCurvature",
    "SegmentLoss",
    "local_convexity",
    "negative_curvature_near",
    "segment_loss",
]
