"""Matrix-free solvers and estimators in torch; each takes an operator.

The operators are :class:`~lossgeometry.operators.TorchLinearOperator` s (re-exported here);
every function below also takes a dense matrix or a SciPy ``LinearOperator``
(:func:`as_torch_operator`), and counts its products on the operator.

* :mod:`~lossgeometry.linalg.lanczos`: thick-restart Lanczos for both ends of a symmetric
  spectrum (:func:`lanczos_extremes`); its acceptance tests (residuals, eigenvalue error
  bounds) are in :mod:`~lossgeometry.linalg.ritz`.
* :mod:`~lossgeometry.linalg.tridiagonal`: Lanczos tridiagonalizations from many start
  vectors at once (:func:`lanczos_tridiag`).
* :mod:`~lossgeometry.linalg.arpack`: adapters to ARPACK (:func:`eigsh_end`) and LOBPCG
  (:func:`lobpcg_end`).
* :mod:`~lossgeometry.linalg.power`: power iteration (:func:`power_iteration`).
* :mod:`~lossgeometry.linalg.hutchinson`: Hutchinson and Hutch++ trace estimates with
  confidence intervals.
* :mod:`~lossgeometry.linalg.slq`: stochastic Lanczos quadrature for spectral densities.
* :mod:`~lossgeometry.linalg.rank`: numerical rank by a gap or a tolerance.
* :mod:`~lossgeometry.linalg.dense`: :data:`DENSE_MAX_ORDER`, the one dense-when-small
  threshold, and :func:`symmetric_dense`.
"""

from lossgeometry.linalg.arpack import eigsh_end, lobpcg_end
from lossgeometry.linalg.dense import DENSE_MAX_ORDER, symmetric_dense
from lossgeometry.linalg.hutchinson import TraceEstimate, hutchinson, hutchpp
from lossgeometry.linalg.lanczos import LanczosResult, lanczos_extremes
from lossgeometry.linalg.power import PowerIteration, power_iteration
from lossgeometry.linalg.rank import Rank, numerical_rank
from lossgeometry.linalg.slq import gaussian_density, slq_nodes
from lossgeometry.linalg.tridiagonal import Tridiagonal, lanczos_tridiag
from lossgeometry.operators.base import CallableOperator, TorchLinearOperator, as_torch_operator

__all__ = [
    "DENSE_MAX_ORDER",
    "CallableOperator",
    "LanczosResult",
    "PowerIteration",
    "Rank",
    "TorchLinearOperator",
    "TraceEstimate",
    "Tridiagonal",
    "as_torch_operator",
    "eigsh_end",
    "gaussian_density",
    "hutchinson",
    "hutchpp",
    "lanczos_extremes",
    "lanczos_tridiag",
    "lobpcg_end",
    "numerical_rank",
    "power_iteration",
    "slq_nodes",
    "symmetric_dense",
]
