"""Curvature: the loss Hessian, its Gauss–Newton part, and the model Hessian.

The operators (:func:`hessian_operator`: ``∇²L`` or the GGN; :func:`model_hessian_operator`:
``Σ u_i ∇²F_i``) live in :mod:`lossgeometry.operators` and are re-exported here.

* :mod:`~lossgeometry.curvature.model_hessian`: :func:`model_hessian_norm` (``‖D²F‖``).
* :mod:`~lossgeometry.curvature.spectrum`: :func:`hessian_spectrum` (both ends).
* :mod:`~lossgeometry.curvature.trace`: :func:`hessian_trace` (Hutchinson / Hutch++).
* :mod:`~lossgeometry.curvature.density`: :func:`hessian_density` (SLQ).
* :mod:`~lossgeometry.curvature.bound`: :func:`hessian_bound`, the check
  ``λ_max(∇²L) ≤ c(‖DF‖² + ‖D²F‖·‖F − Y‖)``.
"""

from lossgeometry.curvature.bound import HessianBound, hessian_bound
from lossgeometry.curvature.density import HessianDensity, hessian_density
from lossgeometry.curvature.model_hessian import ModelHessianNorm, model_hessian_norm
from lossgeometry.curvature.spectrum import HessianSpectrum, hessian_spectrum
from lossgeometry.curvature.trace import HessianTrace, hessian_trace
from lossgeometry.operators.hessian import HessianOperator, hessian_operator
from lossgeometry.operators.model_hessian import (
    ModelHessianOperator,
    model_hessian_operator,
    second_directional_derivative,
)

__all__ = [
    "HessianBound",
    "HessianDensity",
    "HessianOperator",
    "HessianSpectrum",
    "HessianTrace",
    "ModelHessianNorm",
    "ModelHessianOperator",
    "hessian_bound",
    "hessian_density",
    "hessian_operator",
    "hessian_spectrum",
    "hessian_trace",
    "model_hessian_norm",
    "model_hessian_operator",
    "second_directional_derivative",
]
