r"""The empirical tangent kernel ``K(w) = DF(w) DF(w)ᵀ`` (the empirical NTK).

Normalization. ``K`` is defined on the model *outputs* ``F(w) ∈ R^{n×k}`` (flattened
row-major: row ``i·k + a`` is output ``a`` of sample ``i``), so it does not depend on the
loss or its reduction. With ``L = c · ½‖F − Y‖²`` (``c = problem.loss_scale``: 1 for
``reduction="sum"``, ``2/(nk)`` for ``"mean"``) one has ``∇L = c DFᵀ r`` and
``‖∇L‖² = c² rᵀ K r ≥ 2 c λ_min(K) L``.

Methods (:class:`KernelMethod`):

* ``"structured"`` — per-layer factors (:mod:`~lossgeometry.kernel.structured`): for a dense
  layer ``K = (A Aᵀ) ⊙ (B Bᵀ)`` costs ``O(n²(d_in + k² d_out))`` instead of
  ``O(n² k² d_in d_out)``; exact Jacobians only for parameters without a rule.
* ``"jacobian"`` — per-sample Jacobians ``vmap(jacrev)`` of all parameters, contracted
  (``O(n k · backward + n² k² p)``, memory ``chunk · k · p``): the generic reference.
* ``"ntvp"`` — columns of ``K`` from matrix-free products ``J(Jᵀ V)`` (one VJP and one JVP
  pass per block of columns); never holds a Jacobian, slowest for the dense matrix.
* ``"auto"`` — the route a cost model predicts to be fastest (:mod:`~lossgeometry.kernel.cost`):
  ``"structured"`` or ``"jacobian"``; ``"ntvp"`` only when neither fits in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._progress import announce_cost, progress_bar
from lossgeometry.kernel import memory as _mem
from lossgeometry.kernel.blocks import NOT_FINITE as _NOT_FINITE
from lossgeometry.kernel.blocks import (
    KernelMethod,
    chunk_size_for,
    factor_bytes,
    kernel_block,
    kernel_factors,
    resolve_method,
)
from lossgeometry.kernel.ntvp_dense import ntvp_kernel
from lossgeometry.kernel.outputs import OutputsSpec, check_no_train_batchnorm, resolve_outputs
from lossgeometry.kernel.rules.base import Factors
from lossgeometry.operators.base import require_finite
from lossgeometry.problem import Problem

__all__ = ["KernelMethod", "resolve_method", "tangent_kernel"]


def _sample_index(problem: Problem, indices: Sequence[int] | torch.Tensor | None) -> torch.Tensor:
    if indices is None:
        return torch.arange(problem.n)
    return problem.check_indices(indices).cpu()


@deprecated_call_style(positional=("method", "outputs", "diagonal_only", "chunk_size"))
def tangent_kernel(
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
) -> torch.Tensor:
    r"""The empirical tangent kernel ``K(w) = DF(w) DF(w)ᵀ`` of a problem's outputs.

    ``K[(i,a),(j,b)] = ⟨∂f_a(w; x_i)/∂w, ∂f_b(w; x_j)/∂w⟩`` over the counted parameters
    (those of ``problem.param_names``; fixed ones do not contribute). It is defined on the
    outputs, independent of the loss and its reduction (see the module docstring for the
    relation to ``∇L``).

    Args:
        problem: the problem.
        w: flat parameters (default: the model's current ones).
        method: ``"auto"``, ``"structured"``, ``"jacobian"`` or ``"ntvp"``
            (:class:`KernelMethod`).
        outputs: ``"full"`` — all ``k`` outputs, ``K`` of shape ``(n k, n k)`` with row
            ``i·k + a``; ``"trace"`` — ``Σ_a K[(i,a),(j,a)]``, shape ``(n, n)``
            (neural-tangents' ``trace_axes=(-1,)``); an index or a list of output indices
            ``S`` — the kernel of those outputs only, ``(n |S|, n |S|)``.
        diagonal_only: return only the per-sample blocks ``K[(i,·),(i,·)]``: shape
            ``(n, ks, ks)`` (``(n,)`` with ``"trace"``); ``diag(K)`` is
            ``torch.diagonal(blocks, dim1=1, dim2=2).reshape(-1)``. Cost linear in ``n``.
        chunk_size: samples per block (default: as many as the memory limit allows).
        indices: compute the kernel on these samples only (default: all ``n``).
        max_memory: memory limit in bytes or e.g. ``"4GiB"`` (default: see
            :mod:`lossgeometry.kernel.memory`).
        progress: progress bar over blocks (default: on a terminal).

    Returns:
        The kernel (or its diagonal blocks) as a tensor on the problem's device and dtype.

    On a data-parallel Problem (:mod:`lossgeometry.distributed`) every rank calls it with the
    same arguments and gets the same, whole kernel: each rank computes the blocks of its own
    samples against the others' by exchanging the per-layer factors one chunk at a time
    (``"structured"``, ``"jacobian"``; :mod:`~lossgeometry.kernel.sharded`) or from the
    data-parallel NTK operator (``"ntvp"``), and the blocks are gathered. The memory limit is
    the smallest of the ranks'. For kernels that must not sit whole in one process,
    :func:`~lossgeometry.kernel.rows.kernel_rows` returns this rank's rows only.

    Raises:
        ValueError: an unknown method or outputs spec, a BatchNorm layer in train mode, a
            request that would exceed the memory limit (the message gives the size and
            suggests ``method="ntvp"`` or a smaller ``chunk_size``), or a kernel with NaN/Inf
            entries (a model that is not finite at ``w``).

    Passing ``method``, ``outputs``, ``diagonal_only`` or ``chunk_size`` by position (the
    former call style) works for one release, with a :class:`DeprecationWarning`.
    """
    meth = resolve_method(method)
    check_no_train_batchnorm(problem)
    w = problem.check_w(w).detach()
    sel, trace = resolve_outputs(problem, outputs)
    idx = _sample_index(problem, indices)
    m = idx.numel()
    ks = problem.k if sel is None else sel.numel()
    item = torch.empty((), dtype=problem.dtype).element_size()
    if diagonal_only:
        shape: tuple[int, ...] = (m,) if trace else (m, ks, ks)
    else:
        shape = (m, m) if trace else (m * ks, m * ks)
    out_bytes = math.prod(shape) * item
    if problem.is_data_parallel:  # one limit for every rank: the same decisions everywhere
        max_memory = _mem.agreed_limit(problem, max_memory)
    limit = _mem.check_memory(
        out_bytes,
        f"the {' × '.join(map(str, shape))} kernel",
        max_memory,
        problem.device,
        "use kernel_spectrum(..., solver='lanczos') or ntk_operator(...) (matrix-free), "
        "diagonal_only=True, outputs='trace', or a subset of samples (indices=...)",
    )
    budget = max(limit - out_bytes, 1)
    if KernelMethod(method) is KernelMethod.AUTO:  # the cheaper route by the cost model
        from lossgeometry.kernel.cost import choose_method

        def fits(name: str) -> bool:  # one sample's factors within the budget
            from lossgeometry.kernel.structured import build_plan

            plan = build_plan(problem) if name == "structured" else None
            try:
                chunk_size_for(problem, KernelMethod(name), ks, 1, None, budget, plan)
            except ValueError:
                return False
            return True

        how = dict(m=m, ks=ks, trace=trace, diagonal_only=diagonal_only)
        meth = KernelMethod(choose_method(problem, fits=fits, **how))
        if problem.is_data_parallel:  # rank 0's choice on every rank (rates are per machine)
            routes = list(KernelMethod)
            pick = torch.zeros(len(routes), dtype=torch.float64, device=problem.device)
            if problem.rank == 0:
                pick[routes.index(meth)] = 1.0
            meth = routes[int(problem.all_sum(pick).argmax())]
    if meth is KernelMethod.NTVP:
        return require_finite(
            ntvp_kernel(problem, w, sel, trace, diagonal_only, idx, chunk_size, budget, progress),
            _NOT_FINITE,
        )

    from lossgeometry.kernel.structured import Plan, agreed_plan

    plan: Plan | None = agreed_plan(problem) if meth is KernelMethod.STRUCTURED else None
    if problem.is_data_parallel:
        from lossgeometry.kernel.sharded import factor_rows

        K = factor_rows(
            problem, w, plan, sel, trace, diagonal_only, idx, chunk_size, budget, progress,
            gather=True,
        )  # fmt: skip
        return require_finite(K, _NOT_FINITE)
    b = chunk_size_for(problem, meth, ks, m, chunk_size, budget, plan)
    chunks = [idx[s : s + b] for s in range(0, m, b)]

    def factors_of(ci: torch.Tensor) -> list[Factors]:
        return kernel_factors(problem, plan, w, sel, ci)

    block = kernel_block

    if diagonal_only:
        mode = "diag_trace" if trace else "diag"
        parts = [
            block(F, F, mode)
            for F in (factors_of(c) for c in progress_bar(chunks, progress, desc="kernel"))
        ]
        return require_finite(torch.cat(parts), _NOT_FINITE)

    # every entry is written below (blocks I ≤ J and their mirror images): no zero-fill
    K = torch.empty(shape, device=problem.device, dtype=problem.dtype)
    mode = "trace" if trace else "full"
    cached = factor_bytes(problem, plan, ks) * m
    cache: dict[int, list[Factors]] | None = {} if cached <= budget // 2 else None
    starts = [s for s in range(0, m, b)]
    pairs = [(I, J) for I in range(len(chunks)) for J in range(I, len(chunks))]
    row_factors: tuple[int, list[Factors]] | None = None
    announced = len(pairs) < 2
    for I, J in progress_bar(pairs, progress, desc="kernel"):
        t_start = time.perf_counter()
        if cache is not None:
            if I not in cache:
                cache[I] = factors_of(chunks[I])
            if J not in cache:
                cache[J] = factors_of(chunks[J])
            FI, FJ = cache[I], cache[J]
        else:
            if row_factors is None or row_factors[0] != I:
                row_factors = (I, factors_of(chunks[I]))
            FI = row_factors[1]
            FJ = FI if J == I else factors_of(chunks[J])
        t_factors = time.perf_counter()
        blk = block(FI, FJ, mode)
        if not announced:  # the first block measured: the rest costs about as much each
            announced = True
            passes = len(chunks) if cache is not None else len(pairs)
            announce_cost(
                "tangent kernel",
                [
                    ("factor passes over a chunk", passes - 1, t_factors - t_start),
                    ("kernel blocks", len(pairs) - 1, time.perf_counter() - t_factors),
                ],
                progress,
                note=f"{len(chunks)} chunks of at most {b} samples",
            )
        si, sj = starts[I], starts[J]
        bi, bj = chunks[I].numel(), chunks[J].numel()
        if trace:
            K[si : si + bi, sj : sj + bj] = blk
            if I != J:
                K[sj : sj + bj, si : si + bi] = blk.T
        else:
            blk = blk.reshape(bi * ks, bj * ks)
            K[si * ks : (si + bi) * ks, sj * ks : (sj + bj) * ks] = blk
            if I != J:
                K[sj * ks : (sj + bj) * ks, si * ks : (si + bi) * ks] = blk.T
    return require_finite(K, _NOT_FINITE)
