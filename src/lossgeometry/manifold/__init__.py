"""The manifold of global minima: interpolate, measure it, walk it, show the non-convexity.

References: Cooper (arXiv:1804.10200); Liu, Zhu & Belkin (arXiv:2003.00307).

A two-layer network with ``p = 41`` parameters fitting ``n = 6`` targets: its global minima
form a manifold of dimension ``p − nk = 35``, measured twice (the rank of ``J = DF(w*)`` and
the zero eigenvalues of ``∇²L(w*)``):

>>> import torch
>>> import lossgeometry as lg
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(6, 3, generator=g, dtype=torch.float64)
>>> Y = torch.randn(6, 1, generator=g, dtype=torch.float64)
>>> problem = lg.Problem(lg.models.mlp(3, 8, 1, 1, seed=0).double(), X, Y)
>>> sol = lg.find_interpolant(problem, progress=False)           # Gauss–Newton to F(w) = Y
>>> sol.success, sol.residual_norm < 1e-10
(True, True)
>>> rep = lg.solution_manifold(problem, sol.w)
>>> rep.dimension, rep.expected_dimension, rep.hessian_nullity
(35, 35, 35)

Modules: :mod:`.interpolant` (Gauss–Newton / L-BFGS / GD to ``F(w) = Y``; the
Levenberg–Marquardt core in :mod:`.gauss_newton`), :mod:`.tangent` (``ker J`` and its
complement, matrix-free projections), :mod:`.report` (rank, dimension; Hessian nullity in
:mod:`.nullity`), :mod:`.growth` (loss growth exponents), :mod:`.walk` (walks with
retraction), :mod:`.nonconvexity` (midpoints in :mod:`.segment`, negative curvature in
:mod:`.curvature_near`, the convex contrast in :mod:`.convexity`), :mod:`.degenerate`
(degenerate critical points), :mod:`.analysis` (all of it in one call).
"""

from lossgeometry.manifold.analysis import ManifoldAnalysis, analyze_manifold
from lossgeometry.manifold.growth import LossGrowth, loss_growth
from lossgeometry.manifold.interpolant import Interpolant, find_interpolant, least_squares_minimum
from lossgeometry.manifold.nonconvexity import (
    LocalConvexity,
    NegativeCurvature,
    SegmentLoss,
    local_convexity,
    negative_curvature_near,
    segment_loss,
)
from lossgeometry.manifold.report import (
    HessianNullity,
    ManifoldReport,
    hessian_nullity,
    solution_manifold,
)
from lossgeometry.manifold.tangent import TangentSpace, tangent_space
from lossgeometry.manifold.walk import ManifoldWalk, walk_manifold

__all__ = [
    "HessianNullity",
    "Interpolant",
    "LocalConvexity",
    "LossGrowth",
    "ManifoldAnalysis",
    "ManifoldReport",
    "ManifoldWalk",
    "NegativeCurvature",
    "SegmentLoss",
    "TangentSpace",
    "analyze_manifold",
    "find_interpolant",
    "hessian_nullity",
    "least_squares_minimum",
    "local_convexity",
    "loss_growth",
    "negative_curvature_near",
    "segment_loss",
    "solution_manifold",
    "tangent_space",
    "walk_manifold",
]
