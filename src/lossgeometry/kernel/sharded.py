r"""The dense tangent kernel across the ranks of a data-parallel Problem, and its row blocks.

A data-parallel Problem holds rank ``r``'s samples ``S_r`` on rank ``r`` only. The kernel's
block ``K[S_r, S_q] = Σ_layers K_layer(F_r, F_q)`` needs the per-layer factors ``F`` (layer
inputs and output gradients, :mod:`~lossgeometry.kernel.rules.base`) of both ranks' samples.
:func:`factor_rows` exchanges them: in turn, each rank broadcasts its factors, one chunk of
samples at a time (:func:`~lossgeometry.kernel.exchange.broadcast_factors`), and every rank
that needs them contracts them with its own. A rank holds its own factors (or, beyond half
its memory budget, one chunk of them, recomputed per block) and one chunk of another rank's.

* ``gather=True`` (the whole kernel on every rank, what ``lg.tangent_kernel`` returns): rank
  ``r`` computes the blocks ``(r, q)`` of :func:`~lossgeometry.kernel.exchange.pair_schedule`
  (each pair of ranks once, balanced) and writes each with its mirror image, into a zero
  kernel; the ranks' kernels are summed (each entry comes from one rank: exact), so every
  rank holds the same tensor, its blocks between two ranks exact mirror images. Memory per
  rank: the ``N × N`` kernel.
* ``gather=False`` (this rank's rows, ``lg.kernel.kernel_rows``): rank ``r`` computes
  ``K[S_r, :]`` against every rank's samples; memory per rank ``|S_r|·ks × N``.

:class:`RowShardedKernel` is the kernel held as row blocks as a linear operator,
``K v = [K_{S_0,:} v; K_{S_1,:} v; …]`` (each rank its own rows, gathered): the matrix-free
eigen-solvers reach ``λ_min`` with it when the whole kernel does not fit one process.
"""

from __future__ import annotations

import numpy as np
import torch

from lossgeometry._progress import progress_bar
from lossgeometry.kernel.blocks import (
    KernelMethod,
    chunk_size_for,
    factor_bytes,
    kernel_block,
    kernel_factors,
)
from lossgeometry.kernel.exchange import broadcast_factors, pair_schedule, sum_in_place
from lossgeometry.kernel.rules.base import Factors
from lossgeometry.operators.base import TorchLinearOperator
from lossgeometry.problem import Problem


def positions_by_rank(problem: Problem, idx: torch.Tensor) -> list[torch.Tensor]:
    """For each rank, the positions in ``idx`` (global sample indices) of the samples it holds.

    On one process: every position, in order.
    """
    info = problem.shard
    i = idx.cpu()
    if info is None:
        return [torch.arange(i.numel())]
    out = []
    for q in range(info.world_size):
        lo, hi = info.offsets[q], info.offsets[q] + info.counts[q]
        out.append(torch.nonzero((i >= lo) & (i < hi)).reshape(-1))
    return out


def _rows_of(samples: torch.Tensor, ks: int) -> torch.Tensor:
    """Kernel rows ``i·ks + a`` of the samples ``i`` (``ks = 1``: the samples themselves)."""
    return samples if ks == 1 else (samples[:, None] * ks + torch.arange(ks)).reshape(-1)


def factor_rows(
    problem: Problem,
    w: torch.Tensor,
    plan: object,
    sel: torch.Tensor | None,
    trace: bool,
    diagonal_only: bool,
    idx: torch.Tensor,
    chunk_size: int | None,
    budget: int,
    progress: bool | None,
    *,
    gather: bool,
) -> torch.Tensor:
    """The kernel on the samples ``idx`` of a data-parallel Problem, from exchanged factors.

    Args:
        problem: a data-parallel Problem.
        w: the point.
        plan: the structured plan (``None``: per-sample Jacobians).
        sel: output indices (``None``: all).
        trace: sum over the outputs (``outputs="trace"``).
        diagonal_only: only the per-sample blocks (no exchange: each rank its own samples).
        idx: global sample indices of the kernel's samples (CPU).
        chunk_size: samples per chunk (default: from ``budget``, the same on every rank).
        budget: bytes for one chunk's work (the same on every rank).
        progress: progress bar (rank 0 only).
        gather: the whole kernel on every rank (else this rank's rows, see the module doc).

    Returns:
        ``gather``: the kernel (shape as ``lg.tangent_kernel``). Else this rank's rows, in
        the order of its positions in ``idx``: ``(|S_r|·ks, m·ks)``, ``(|S_r|, m)`` with
        ``trace``, ``(|S_r|, ks, ks)`` / ``(|S_r|,)`` with ``diagonal_only``.
    """
    info = problem.shard
    assert info is not None
    W, me = info.world_size, info.rank
    dev, dtype = problem.device, problem.dtype
    pos = positions_by_rank(problem, idx)
    m = idx.numel()
    ks = problem.k if sel is None else sel.numel()
    meth = KernelMethod.JACOBIAN if plan is None else KernelMethod.STRUCTURED
    largest = max(p.numel() for p in pos)
    b = chunk_size_for(problem, meth, ks, largest, chunk_size, budget, plan)
    mine = pos[me]
    chunks = [mine[s : s + b] for s in range(0, mine.numel(), b)]
    cache: dict[int, list[Factors]] | None = None
    if factor_bytes(problem, plan, ks) * mine.numel() <= budget // 2:
        cache = {}

    def own(i: int) -> list[Factors]:
        if cache is None:
            return kernel_factors(problem, plan, w, sel, idx[chunks[i]])
        if i not in cache:
            cache[i] = kernel_factors(problem, plan, w, sel, idx[chunks[i]])
        return cache[i]

    show = progress if me == 0 else False
    if diagonal_only:
        mode = "diag_trace" if trace else "diag"
        tail = () if trace else (ks, ks)
        parts = [kernel_block(own(i), own(i), mode) for i in range(len(chunks))]
        local = torch.cat(parts) if parts else torch.zeros((0, *tail), device=dev, dtype=dtype)
        if not gather:
            return local
        out = torch.zeros((m, *tail), device=dev, dtype=dtype)
        out[mine.to(dev)] = local
        return sum_in_place(out, problem)

    per = 1 if trace else ks
    mode = "trace" if trace else "full"
    if gather:
        K = torch.zeros(m * per, m * per, device=dev, dtype=dtype)
        needs = pair_schedule(W)
    else:
        K = torch.zeros(mine.numel() * per, m * per, device=dev, dtype=dtype)
        needs = {(r, q) for r in range(W) for q in range(W)}
    # rows of K for our chunk i: global kernel rows (gather) or our local rows
    starts = [i * b for i in range(len(chunks))]

    def krows(i: int) -> torch.Tensor:
        if gather:
            return _rows_of(chunks[i], per)
        return _rows_of(torch.arange(starts[i], starts[i] + chunks[i].numel()), per)

    def put(rows: torch.Tensor, cols: torch.Tensor, blk: torch.Tensor) -> None:
        r, c = rows.to(dev), cols.to(dev)
        K[r[:, None], c[None, :]] = blk.reshape(r.numel(), c.numel())

    steps = [(q, j) for q in range(W) for j in range(0, pos[q].numel(), b)]
    for q, s in progress_bar(steps, show, desc="kernel"):
        J = s // b
        cols = pos[q][s : s + b]
        FJ = own(J) if q == me else None
        if any((r, q) in needs for r in range(W) if r != q):  # another rank needs them
            FJ = broadcast_factors(FJ, q, problem)
        if (me, q) not in needs:
            continue
        assert FJ is not None
        for i in range(len(chunks)):
            if q == me and i > J:
                continue  # our own diagonal region: blocks i ≤ J and their mirror images
            FI = FJ if q == me and i == J else own(i)
            blk = kernel_block(FI, FJ, mode)
            blk = blk.reshape(chunks[i].numel() * per, cols.numel() * per)
            put(krows(i), _rows_of(cols, per), blk)
            if q == me and i != J:  # mirror inside our own rows
                put(krows(J), _rows_of(chunks[i], per), blk.T)
            elif q != me and gather:  # mirror into rank q's rows
                put(_rows_of(cols, per), _rows_of(chunks[i], per), blk.T)
    return sum_in_place(K, problem) if gather else K


class RowShardedKernel(TorchLinearOperator):
    """The tangent kernel held as row blocks, ``K v = gathered K_{S_r,:} v`` (symmetric).

    Every rank holds its rows ``K_{S_r,:}`` (from ``lg.kernel.kernel_rows``); a product
    multiplies them locally (``|S_r|·ks × N`` times ``N × c``) and gathers the rows from every
    rank, so every rank gets the same ``K V`` (exact: each row comes from one rank). On one
    process the block is the whole kernel. SciPy-facing products are float64.

    Args:
        problem: the Problem the rows belong to (its ranks gather the products).
        block: this rank's rows, ``(R, N)``.
        rows: their indices in the whole kernel, ``(R,)``.
    """

    def __init__(self, problem: Problem, block: torch.Tensor, rows: torch.Tensor) -> None:
        if block.ndim != 2 or block.shape[0] != rows.numel():
            raise ValueError(
                f"block must be (len(rows), N), got {tuple(block.shape)} for {rows.numel()} rows"
            )
        N = int(block.shape[1])
        super().__init__(
            N, block.dtype, block.device, max_vectors=None, scipy_dtype=np.float64
        )  # fmt: skip
        self.problem, self.block, self.rows = problem, block, rows.to(block.device)

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        part = self.block @ V.to(self.block.dtype)
        return self.problem.gather_rows(
            [(self.rows, part)], self.shape[0], (V.shape[1],), self.block.dtype
        )
