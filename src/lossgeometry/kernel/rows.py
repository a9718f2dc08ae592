r"""Each rank's rows of the tangent kernel (:func:`kernel_rows`): kernels too large for one process.

On a data-parallel Problem rank ``r`` holds the samples ``S_r``; :func:`kernel_rows` returns
the rows ``K[S_r, :]`` of ``K(w) = DF DFᵀ`` against *all* samples (computed by exchanging the
per-layer factors, :mod:`~lossgeometry.kernel.sharded`, or from NTK-vector products), so the
whole ``N × N`` kernel never sits in one process: memory per rank ``|S_r|·ks × N``. With
:class:`~lossgeometry.kernel.sharded.RowShardedKernel` the rows are an operator whose
products are gathered over the ranks, and ``lg.kernel_spectrum(..., solver="sharded")``
runs Lanczos on it. On one process the rows are the whole kernel.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from lossgeometry.kernel import memory as _mem
from lossgeometry.kernel.blocks import NOT_FINITE, KernelMethod, resolve_method
from lossgeometry.kernel.ntvp_dense import ntvp_rows
from lossgeometry.kernel.outputs import OutputsSpec, check_no_train_batchnorm, resolve_outputs
from lossgeometry.kernel.sharded import RowShardedKernel, factor_rows, positions_by_rank
from lossgeometry.kernel.tangent import tangent_kernel
from lossgeometry.problem import Problem

__all__ = ["KernelRows", "kernel_rows"]


@dataclasses.dataclass(frozen=True)
class KernelRows:
    """The rows of the tangent kernel (on ``m`` samples) that belong to this rank's samples.

    Attributes:
        K: the rows: ``(|samples|·ks, m·ks)`` (``outputs="full"`` or a list of outputs),
            ``(|samples|, m)`` (``"trace"``); with ``diagonal_only`` the per-sample blocks
            ``(|samples|, ks, ks)`` (``(|samples|,)`` with ``"trace"``).
        samples: positions of this rank's samples among the kernel's ``m`` samples (the
            global sample indices when the kernel covers all samples; positions in
            ``indices`` otherwise), in the order of the rows.
        m: samples of the whole kernel; ``ks``: outputs per sample (1 with ``"trace"``).
        diagonal_only: whether ``K`` holds the per-sample blocks only.
    """

    K: torch.Tensor
    samples: torch.Tensor
    m: int
    ks: int
    diagonal_only: bool = False

    @property
    def rows(self) -> torch.Tensor:
        """Indices of ``K``'s rows in the whole kernel (``i·ks + a`` for sample position ``i``)."""
        if self.ks == 1 or self.diagonal_only:
            return self.samples
        return (self.samples[:, None] * self.ks + torch.arange(self.ks)).reshape(-1)

    def operator(self, problem: Problem) -> RowShardedKernel:
        """The whole kernel as an operator on these rows (products gathered over the ranks)."""
        if self.diagonal_only:
            raise ValueError("the diagonal blocks are not the kernel: pass diagonal_only=False")
        return RowShardedKernel(problem, self.K, self.rows)


def row_block_bytes(problem: Problem, m: int, ks: int, indices: object = None) -> int:
    """Bytes of the largest rank's rows of an ``m·ks × m·ks`` kernel (the whole one alone)."""
    idx = torch.arange(problem.n) if indices is None else problem.check_indices(indices).cpu()
    largest = max(p.numel() for p in positions_by_rank(problem, idx))
    item = torch.empty((), dtype=problem.dtype).element_size()
    return largest * ks * m * ks * item


def rows_fit(
    problem: Problem, m: int, N: int, indices: object, max_memory: int | str | None
) -> bool:
    """Whether the largest rank's rows of the ``N × N`` kernel on ``m`` samples fit the limit."""
    try:
        need = row_block_bytes(problem, m, N // m, indices)
        _mem.check_memory(need, "the kernel's rows", max_memory, problem.device)
    except ValueError:
        return False
    return True


def kernel_rows(
    problem: Problem,
    w: torch.Tensor | None = None,
    *,
    method: str | KernelMethod = "auto",
    outputs: OutputsSpec = "full",
    diagonal_only: bool = False,
    chunk_size: int | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
    max_memory: int | str | None = None,
    progress: bool | None = None,
) -> KernelRows:
    r"""The rows ``K[S_r, :]`` of this rank's samples in the tangent kernel ``K(w) = DF DFᵀ``.

    The same kernel as :func:`~lossgeometry.kernel.tangent.tangent_kernel` (arguments and
    normalization alike), restricted to the rows of the samples this rank holds; the rows of
    all ranks together are the whole kernel (up to the rounding of sums taken in another
    order). Every rank calls it, with the same arguments. Memory per rank: the rows
    (``|S_r|·ks × N``), this rank's factors and one chunk of another rank's (``"structured"``,
    ``"jacobian"``) or one ``N × 64`` block of products (``"ntvp"``); the memory limit is
    checked against the largest rank's rows, the same on every rank. On one process the rows
    are the whole kernel.

    Returns:
        A :class:`KernelRows` (``.K``, ``.samples``, ``.rows``, ``.operator(problem)``).

    Raises:
        ValueError: as ``tangent_kernel`` (on every rank alike).
    """
    meth = resolve_method(method)
    check_no_train_batchnorm(problem)
    w = problem.check_w(w).detach()
    sel, trace = resolve_outputs(problem, outputs)
    idx = torch.arange(problem.n) if indices is None else problem.check_indices(indices).cpu()
    m = idx.numel()
    ks = problem.k if sel is None else sel.numel()
    per = 1 if trace else ks
    if not problem.is_data_parallel:
        K = tangent_kernel(
            problem, w, method=meth, outputs=outputs, diagonal_only=diagonal_only,
            chunk_size=chunk_size, indices=indices, max_memory=max_memory, progress=progress,
        )  # fmt: skip
        return KernelRows(K, torch.arange(m), m, per, diagonal_only)
    max_memory = _mem.agreed_limit(problem, max_memory)
    pos = positions_by_rank(problem, idx)
    largest = max(p.numel() for p in pos)
    if diagonal_only:
        shape: tuple[int, ...] = (largest,) if trace else (largest, ks, ks)
    else:
        shape = (largest * per, m * per)
    item = torch.empty((), dtype=problem.dtype).element_size()
    out_bytes = math.prod(shape) * item
    limit = _mem.check_memory(
        out_bytes,
        f"this rank's {' × '.join(map(str, shape))} rows of the kernel",
        max_memory,
        problem.device,
        "use more ranks, kernel_spectrum(..., solver='lanczos') (matrix-free), "
        "outputs='trace', or a subset of samples (indices=...)",
    )
    mine = pos[problem.rank]
    if meth is KernelMethod.NTVP:
        K = ntvp_rows(problem, w, sel, trace, diagonal_only, idx, mine, chunk_size, progress)
    else:
        from lossgeometry.kernel.structured import agreed_plan

        plan = agreed_plan(problem) if meth is KernelMethod.STRUCTURED else None
        K = factor_rows(
            problem, w, plan, sel, trace, diagonal_only, idx, chunk_size,
            max(limit - out_bytes, 1), progress, gather=False,
        )  # fmt: skip
    flag = torch.tensor([float(not bool(torch.isfinite(K).all()))], device=problem.device)
    bad = problem.all_sum(flag)
    if float(bad) > 0:  # on every rank alike (a rank alone raising would leave the others)
        raise ValueError(
            f"{NOT_FINITE} NaN/Inf entries in the rows of {int(bad)} rank(s): the model is "
            "not finite at w"
        )
    return KernelRows(K, mine, m, per, diagonal_only)
