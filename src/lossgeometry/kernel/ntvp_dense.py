r"""The dense tangent kernel from matrix-free products ``K E = J (Jᵀ E)`` (``method="ntvp"``).

:func:`ntvp_kernel` builds ``K`` (or its per-sample diagonal blocks) column block by column
block from :class:`~lossgeometry.operators.NTKOperator` products, ``E`` a block of at most 64
unit vectors, and symmetrizes it, ``K ← ½(K + Kᵀ)``. On a data-parallel Problem the operator
computes each rank's rows of ``K E`` and gathers them (``J`` is row-sharded, ``Jᵀ E`` summed
over the ranks), so every rank builds the same kernel. :func:`ntvp_rows` keeps only this
rank's rows, ``½(K[R, :] + K[:, R]ᵀ)``, equal to the rows ``R`` of :func:`ntvp_kernel`'s
symmetrized kernel bit for bit (``½a + ½b = ½(a + b)`` in floating point), holding one block
of columns and the ``|R| × N`` rows instead of ``N × N``.
"""

from __future__ import annotations

import torch

from lossgeometry._progress import progress_bar
from lossgeometry.kernel.ntvp import ntk_operator
from lossgeometry.problem import Problem

_COLS = 64
"""Columns of ``K`` per product block."""


def ntvp_kernel(
    problem: Problem,
    w: torch.Tensor,
    sel: torch.Tensor | None,
    trace: bool,
    diagonal_only: bool,
    idx: torch.Tensor,
    chunk_size: int | None,
    budget: int,
    progress: bool | None,
) -> torch.Tensor:
    """Build K (or its diagonal blocks) column block by column block from ``J(Jᵀ E)``."""
    op = ntk_operator(
        problem, w, chunk_size=chunk_size, outputs=sel if sel is not None else "full", indices=idx
    )
    m = idx.numel()
    ks = op.ks
    N = m * ks
    cols = max(1, min(N, _COLS))
    if diagonal_only:
        # per-sample blocks: probe all samples' output a at once, k products in total
        blocks = torch.zeros(m, ks, ks, device=problem.device, dtype=problem.dtype)
        for a in progress_bar(range(ks), progress, desc="kernel"):
            # E: output a of every sample; J(JᵀE) mixes samples, so do one sample per column
            for s0 in range(0, m, cols):
                ss = torch.arange(s0, min(s0 + cols, m))
                E = torch.zeros(N, ss.numel(), device=problem.device, dtype=problem.dtype)
                E[ss * ks + a, torch.arange(ss.numel())] = 1
                KE = op.apply(E)  # (N, c)
                blocks[ss, :, a] = KE.reshape(m, ks, -1)[ss, :, torch.arange(ss.numel())]
        if trace:
            return torch.diagonal(blocks, dim1=1, dim2=2).sum(-1)
        return blocks
    K = torch.zeros(N, N, device=problem.device, dtype=problem.dtype)
    for c0 in progress_bar(range(0, N, cols), progress, desc="kernel"):
        c1 = min(c0 + cols, N)
        E = torch.zeros(N, c1 - c0, device=problem.device, dtype=problem.dtype)
        E[torch.arange(c0, c1), torch.arange(c1 - c0)] = 1
        K[:, c0:c1] = op.apply(E)
    K = 0.5 * (K + K.T)
    if trace:
        return torch.diagonal(K.reshape(m, ks, m, ks), dim1=1, dim2=3).sum(-1)
    return K


def ntvp_rows(
    problem: Problem,
    w: torch.Tensor,
    sel: torch.Tensor | None,
    trace: bool,
    diagonal_only: bool,
    idx: torch.Tensor,
    samples: torch.Tensor,
    chunk_size: int | None,
    progress: bool | None,
) -> torch.Tensor:
    """The rows of the samples at positions ``samples`` of :func:`ntvp_kernel`'s result.

    Full: ``(|samples|·ks, m·ks)``; ``trace``: ``(|samples|, m)``; ``diagonal_only``: the
    per-sample blocks of those samples. Memory: the rows and one ``N × 64`` product block.
    """
    m = idx.numel()
    if diagonal_only:
        blocks = ntvp_kernel(problem, w, sel, trace, True, idx, chunk_size, 0, progress)
        return blocks[samples.to(blocks.device)]
    op = ntk_operator(
        problem, w, chunk_size=chunk_size, outputs=sel if sel is not None else "full", indices=idx
    )
    ks = op.ks
    N = m * ks
    R = (samples[:, None] * ks + torch.arange(ks)).reshape(-1)
    where = torch.full((N,), -1, dtype=torch.long)
    where[R] = torch.arange(R.numel())
    dev = problem.device
    Rd = R.to(dev)
    rows = torch.zeros(R.numel(), N, device=dev, dtype=problem.dtype)
    cols = max(1, min(N, _COLS))
    for c0 in progress_bar(range(0, N, cols), progress, desc="kernel rows"):
        c1 = min(c0 + cols, N)
        E = torch.zeros(N, c1 - c0, device=dev, dtype=problem.dtype)
        E[torch.arange(c0, c1), torch.arange(c1 - c0)] = 1
        KE = op.apply(E)
        rows[:, c0:c1] += 0.5 * KE[Rd]  # ½ K[R, C]
        at = where[c0:c1]
        mine = torch.nonzero(at >= 0).reshape(-1)
        if mine.numel():  # ½ K[C ∩ R, :]ᵀ: the columns of our own rows
            rows[at[mine].to(dev)] += 0.5 * KE[:, mine.to(dev)].T
    if trace:
        return torch.diagonal(rows.reshape(samples.numel(), ks, m, ks), dim1=1, dim2=3).sum(-1)
    return rows
