"""Matrix-free operators on one base: loss Hessian and GGN, model Hessian, NTK, Jacobian.

Every operator is a :class:`TorchLinearOperator` (:mod:`~lossgeometry.operators.base`): a
SciPy ``LinearOperator`` whose products are computed by torch; a subclass implements only
the product ``_matmat`` (and ``_adjoint_matmat`` when it is not symmetric). The solvers and
estimators of :mod:`lossgeometry.linalg` take these operators.

* :mod:`~lossgeometry.operators.hessian`: :class:`HessianOperator` (``∇²L`` or the GGN).
* :mod:`~lossgeometry.operators.model_hessian`: :class:`ModelHessianOperator`
  (``Σ u_i ∇²F_i``) and :func:`second_directional_derivative` (``D²F[v, v]``).
* :mod:`~lossgeometry.operators.jacobian`: :class:`JacobianOperator` (``DF``) and
  :class:`GramOperator` (``J Jᵀ`` or ``Jᵀ J``).
* :mod:`~lossgeometry.operators.ntk`: :class:`NTKOperator` (the tangent kernel ``J Jᵀ``;
  build it with :func:`lossgeometry.ntk_operator`).
"""

from lossgeometry.operators.base import (
    AdjointOperator,
    CallableOperator,
    TorchLinearOperator,
    as_torch_operator,
)
from lossgeometry.operators.hessian import HessianOperator, hessian_operator
from lossgeometry.operators.jacobian import GramOperator, JacobianOperator, gram_operator
from lossgeometry.operators.model_hessian import (
    ModelHessianOperator,
    model_hessian_operator,
    second_directional_derivative,
)
from lossgeometry.operators.ntk import NTKOperator

__all__ = [
    "AdjointOperator",
    "CallableOperator",
    "GramOperator",
    "HessianOperator",
    "JacobianOperator",
    "ModelHessianOperator",
    "NTKOperator",
    "TorchLinearOperator",
    "as_torch_operator",
    "gram_operator",
    "hessian_operator",
    "model_hessian_operator",
    "second_directional_derivative",
]
