r"""The tangent kernel ``K(w) = J Jᵀ`` as a matrix-free operator (NTK-vector products).

``K v = J (Jᵀ v)``: one reverse pass (``Jᵀ v``) and one forward-mode pass over the data per
block of columns, ``J = DF(w)`` never formed (see :mod:`lossgeometry.operators.jacobian`).
Memory is ``O(p · c)`` for ``c`` columns plus one chunk's activations, independent of ``nk``.

The operator acts on vectors indexed like the flattened outputs (``i·ks + a``); it is
symmetric positive semi-definite, so it composes with ``scipy.sparse.linalg.eigsh`` and
``lobpcg`` and with lossgeometry's own solvers. It is defined on the outputs, independent of
the loss and its reduction. Build it with :func:`lossgeometry.ntk_operator`, which checks
the output selection and the model.
"""

from __future__ import annotations

import numpy as np
import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry.operators.jacobian import GramOperator, JacobianOperator
from lossgeometry.problem import Problem


class NTKOperator(GramOperator):
    """The tangent kernel ``K(w) = J Jᵀ`` as a matrix-free, symmetric operator.

    Shape ``(m·ks, m·ks)`` for ``m`` samples and ``ks`` outputs per sample. Products are
    computed in the Problem's dtype on its device; SciPy-facing products take and return
    float64 NumPy arrays; ``K @ V`` (or :meth:`apply`) works on torch tensors directly.

    Args:
        problem: the Problem.
        w: the point.
        sel: indices of the outputs to keep (``None``: all).
        indices: the samples (default: all).
        chunk_size: samples per pass (default: the Problem's).

    Attributes:
        problem: the Problem; ``w``: the point.
        ks: outputs per sample; ``m``: number of samples.
        matvecs: number of single-vector products applied so far (a block of ``c`` columns
            counts ``c``).
    """

    @deprecated_call_style(positional=("sel", "indices", "chunk_size"))
    def __init__(
        self,
        problem: Problem,
        w: torch.Tensor | None = None,
        *,
        sel: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
        chunk_size: int | None = None,
    ) -> None:
        J = JacobianOperator(problem, w, sel=sel, indices=indices, chunk_size=chunk_size)
        super().__init__(J, "outer", scipy_dtype=np.float64)
        self.problem, self.w, self.sel = problem, J.w, sel
        self.indices, self.chunk_size = J.indices, J.chunk_size
        self.m, self.ks = J.m, J.ks

    @property
    def _forward_ad(self) -> bool:
        """Whether the JVPs use forward-mode AD (else the double-VJP fallback)."""
        return self.jacobian._forward_ad

    @_forward_ad.setter
    def _forward_ad(self, value: bool) -> None:
        self.jacobian._forward_ad = value

    def jt(self, U: torch.Tensor) -> torch.Tensor:
        """``Jᵀ U``: ``U`` of shape ``(m·ks, c)`` → ``(p, c)``."""
        return self.jacobian.jt(U)

    def j(self, G: torch.Tensor) -> torch.Tensor:
        """``J G``: ``G`` of shape ``(p, c)`` → ``(m·ks, c)``."""
        return self.jacobian.j(G)

    def apply(self, V: torch.Tensor) -> torch.Tensor:
        """``K V`` for a torch tensor ``V`` of shape ``(m·ks,)`` or ``(m·ks, c)`` (``K @ V``)."""
        return self @ V
