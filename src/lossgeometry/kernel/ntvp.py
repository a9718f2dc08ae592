r"""The matrix-free tangent-kernel operator ``v ↦ K v = J (Jᵀ v)``: :func:`ntk_operator`.

The operator itself is :class:`~lossgeometry.operators.NTKOperator` (one VJP and one JVP pass
over the data per block of columns; see :mod:`lossgeometry.operators.ntk`); this factory
checks the output selection and the model first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry.kernel.outputs import check_no_train_batchnorm, resolve_outputs
from lossgeometry.operators.ntk import NTKOperator
from lossgeometry.problem import Problem

__all__ = ["NTKOperator", "ntk_operator"]


@deprecated_call_style(positional=("chunk_size",))
def ntk_operator(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
    outputs: str | int | Sequence[int] | torch.Tensor = "full",
    indices: Sequence[int] | torch.Tensor | None = None,
) -> NTKOperator:
    r"""The tangent kernel ``K(w) = DF DFᵀ`` as a matrix-free operator (a SciPy ``LinearOperator``).

    ``op @ v`` computes ``J (Jᵀ v)`` with one VJP and one JVP pass over the data; ``op`` is
    symmetric PSD with shape ``(n·ks, n·ks)`` (rows ``i·ks + a``), so
    ``scipy.sparse.linalg.eigsh(op, k=1, which="LA")`` gives ``λ_max(K)``. The kernel is
    defined on the outputs, independent of the loss reduction (see
    :func:`~lossgeometry.kernel.tangent.tangent_kernel`).

    Args:
        problem: the problem.
        w: flat parameters (default: the model's current ones).
        chunk_size: samples per pass (default: the problem's ``chunk_size``); each pass
            holds ``min(c, 32)`` copies of one chunk's activations for ``c`` columns.
        outputs: ``"full"`` or output indices (``"trace"`` has no operator form).
        indices: restrict to these samples.

    Passing ``chunk_size`` by position (the former call style) works for one release, with
    a :class:`DeprecationWarning`.
    """
    check_no_train_batchnorm(problem)
    w = problem.check_w(w).detach()
    if isinstance(outputs, torch.Tensor):
        sel: torch.Tensor | None = outputs.long().to(problem.device)
    else:
        sel, trace = resolve_outputs(problem, outputs)
        if trace:
            raise ValueError(
                "outputs='trace' has no matrix-free operator (it is not J Jᵀ of one "
                "function); use outputs='full' or a list of output indices"
            )
    idx = torch.arange(problem.n) if indices is None else problem.check_indices(indices).cpu()
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return NTKOperator(
        problem, w, sel=sel, indices=idx, chunk_size=chunk_size or problem.chunk_size
    )
