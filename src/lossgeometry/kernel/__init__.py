"""Tangent kernels (empirical NTK), matrix-free NTK-vector products and kernel spectra.

* :func:`tangent_kernel` — ``K(w) = DF DFᵀ`` (dense), by per-layer structured rules,
  per-sample Jacobians or matrix-free products (:class:`KernelMethod`);
* :func:`ntk_operator` — ``v ↦ J(Jᵀv)`` as a SciPy ``LinearOperator``;
* :func:`kernel_spectrum` — ``λ_min``, ``λ_max``, condition number and eigenvalues
  (:class:`KernelSpectrum`), dense or matrix-free;
* :func:`kernel_rows` — this rank's rows of the kernel on a data-parallel Problem
  (:class:`KernelRows`), for kernels too large for one process.

``K`` is defined on the model outputs and does not depend on the loss reduction.
"""

from lossgeometry.kernel.memory import set_max_memory
from lossgeometry.kernel.ntvp import NTKOperator, ntk_operator
from lossgeometry.kernel.rows import KernelRows, kernel_rows
from lossgeometry.kernel.spectrum import KernelSpectrum, kernel_spectrum
from lossgeometry.kernel.tangent import KernelMethod, tangent_kernel

__all__ = [
    "KernelMethod",
    "KernelRows",
    "KernelSpectrum",
    "NTKOperator",
    "kernel_rows",
    "kernel_spectrum",
    "ntk_operator",
    "set_max_memory",
    "tangent_kernel",
]
