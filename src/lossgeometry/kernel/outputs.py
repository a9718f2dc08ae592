"""Which outputs a kernel covers, and the check every kernel route makes on the model.

Shared by the dense kernel (:mod:`~lossgeometry.kernel.tangent`) and the matrix-free NTK
operator (:mod:`~lossgeometry.kernel.ntvp`), so neither imports the other for them.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from lossgeometry.problem import Problem

OutputsSpec = str | int | Sequence[int]


def resolve_outputs(problem: Problem, outputs: OutputsSpec) -> tuple[torch.Tensor | None, bool]:
    """``(selected output indices or None for all, trace?)`` from the ``outputs`` argument."""
    if isinstance(outputs, str):
        if outputs == "full":
            return None, False
        if outputs == "trace":
            return None, True
        raise ValueError(
            f"outputs must be 'full', 'trace', an output index or a list of output indices; "
            f"got {outputs!r}"
        )
    if torch.is_tensor(outputs):
        items = outputs.reshape(-1).tolist()
    elif isinstance(outputs, numbers.Integral):
        items = [outputs]
    else:
        try:
            items = list(outputs)
        except TypeError:
            items = [None]
    if not items or not all(
        isinstance(o, numbers.Integral) and not isinstance(o, bool) for o in items
    ):
        raise ValueError(
            "outputs must be 'full', 'trace', an output index or a non-empty list of integer "
            f"output indices; got {outputs!r}"
        )
    idx = torch.as_tensor([int(o) for o in items], dtype=torch.long)
    if int(idx.min()) < 0 or int(idx.max()) >= problem.k:
        raise ValueError(f"output indices must lie in [0, {problem.k - 1}], got {outputs!r}")
    if torch.unique(idx).numel() != idx.numel():
        raise ValueError(f"output indices must be distinct, got {outputs!r}")
    return idx.long().to(problem.device), False


def check_no_train_batchnorm(problem: Problem) -> None:
    """Refuse a model with BatchNorm in train mode: its per-sample Jacobians are undefined."""
    for name, m in problem.model.named_modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training:
            raise ValueError(
                f"BatchNorm layer {name!r} is in train mode: batch statistics couple the "
                "samples, so per-sample Jacobians (and the tangent kernel) depend on how the "
                "data are chunked. Call model.eval() before computing the kernel"
            )
