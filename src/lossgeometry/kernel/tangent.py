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

import enum
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from lossgeometry._compat import deprecated_call_style
from lossgeometry._progress import announce_cost, progress_bar
from lossgeometry.kernel import memory as _mem
from lossgeometry.kernel.outputs import OutputsSpec, check_no_train_batchnorm, resolve_outputs
from lossgeometry.kernel.rules.base import Factors, Materialized
from lossgeometry.operators.base import require_finite
from lossgeometry.problem import Problem


class KernelMethod(str, enum.Enum):
    """How a tangent kernel is computed; the value is the ``method=`` string.

    * ``STRUCTURED``: per-layer factorized rules (Linear, Conv1d/2d, Embedding, LayerNorm)
      plus exact Jacobians for parameters without a rule. Fastest for the dense kernel;
      memory per chunk ``O(b · k · Σ layer widths)``.
    * ``JACOBIAN``: per-sample Jacobians of all parameters (``vmap(jacrev)``) and their
      contraction — the PyTorch-tutorial approach, chunked. Memory ``O(b · k · p)``.
    * ``NTVP``: matrix-free NTK-vector products ``v ↦ J(Jᵀv)``; memory ``O(p + activations)``
      independent of ``nk``; building the dense kernel costs ``nk/m`` passes.
    * ``AUTO``: ``STRUCTURED`` or ``JACOBIAN``, whichever :mod:`~lossgeometry.kernel.cost`
      predicts faster; ``NTVP`` only when neither fits in memory.
    """

    AUTO = "auto"
    STRUCTURED = "structured"
    JACOBIAN = "jacobian"
    NTVP = "ntvp"


_NOT_FINITE = "the tangent kernel has"


def resolve_method(method: str | KernelMethod) -> KernelMethod:
    """Parse ``method`` (a :class:`KernelMethod` or its string); ``AUTO`` reads as ``STRUCTURED``.

    ``tangent_kernel`` itself resolves ``AUTO`` by the cost model, once it knows the request.
    """
    try:
        m = KernelMethod(method)
    except ValueError:
        raise ValueError(
            f"unknown kernel method {method!r}: use one of {[m.value for m in KernelMethod]}"
        ) from None
    return KernelMethod.STRUCTURED if m is KernelMethod.AUTO else m


def _sample_index(problem: Problem, indices: Sequence[int] | torch.Tensor | None) -> torch.Tensor:
    if indices is None:
        return torch.arange(problem.n)
    return problem.check_indices(indices).cpu()


def _chunk_size(
    problem: Problem,
    method: KernelMethod,
    ks: int,
    m: int,
    chunk_size: int | None,
    budget: int,
    plan: Any,
) -> int:
    """Samples per chunk so that one chunk's working memory stays within ``budget`` bytes."""
    item = torch.empty((), dtype=problem.dtype).element_size()
    if method is KernelMethod.STRUCTURED:
        per_sample = ks * (3 * plan.activation_elements + 2 * plan.fallback_size)
        per_sample += sum(e.per_sample_elements for e in plan.entries) * ks // max(problem.k, 1)
    else:  # jacobian
        per_sample = 3 * ks * problem.p
    per_sample *= item
    per_pair = 4 * ks * ks * item
    if chunk_size is not None:
        need = chunk_size * per_sample + chunk_size**2 * per_pair
        _mem.check_memory(
            need,
            f"a chunk of {chunk_size} samples (method={method.value!r})",
            budget,
            problem.device,
            "pass a smaller chunk_size, or method='ntvp'",
        )
        return int(chunk_size)
    b = m
    while b > 1 and b * per_sample + b * b * per_pair > budget:
        b = max(1, b // 2)
    if b * per_sample + b * b * per_pair > budget:
        _mem.check_memory(
            per_sample + per_pair,
            f"one sample's factors (method={method.value!r})",
            budget,
            problem.device,
            "use method='ntvp' (matrix-free) or a subset of outputs",
        )
    return b


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
                _chunk_size(problem, KernelMethod(name), ks, 1, None, budget, plan)
            except ValueError:
                return False
            return True

        how = dict(m=m, ks=ks, trace=trace, diagonal_only=diagonal_only)
        meth = KernelMethod(choose_method(problem, fits=fits, **how))
    if meth is KernelMethod.NTVP:
        return require_finite(
            _ntvp_kernel(problem, w, sel, trace, diagonal_only, idx, chunk_size, budget, progress),
            _NOT_FINITE,
        )

    from lossgeometry.kernel.rules.fallback import jacobian_factors
    from lossgeometry.kernel.structured import Plan, build_plan, chunk_factors

    plan: Plan | None = build_plan(problem) if meth is KernelMethod.STRUCTURED else None
    b = _chunk_size(problem, meth, ks, m, chunk_size, budget, plan)
    chunks = [idx[s : s + b] for s in range(0, m, b)]

    def factors_of(ci: torch.Tensor) -> list[Factors]:
        x, _ = problem.batch(problem.check_indices(ci))
        if plan is None:
            pdict = problem.param_dict(w)
            return [jacobian_factors(problem, pdict, problem.param_names, x, sel)]
        fs, fb = chunk_factors(problem, plan, w, x, sel)
        fs = fs + ([fb] if fb is not None else [])
        # one GEMM for all per-sample gradients instead of one per layer
        mats = [f.P for f in fs if isinstance(f, Materialized)]
        rest = [f for f in fs if not isinstance(f, Materialized)]
        return rest + ([Materialized(torch.cat(mats, dim=-1))] if mats else [])

    def block(FI: list[Factors], FJ: list[Factors], mode: str) -> torch.Tensor:
        total = None  # the first layer's block, then every other layer added in place
        for fi, fj in zip(FI, FJ, strict=True):
            total = fi.block(fj, mode, out=total)  # type: ignore[arg-type]
        assert total is not None
        return total

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
    factor_bytes = _factor_bytes(problem, meth, plan, ks) * m
    cache: dict[int, list[Factors]] | None = {} if factor_bytes <= budget // 2 else None
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


def _factor_bytes(problem: Problem, meth: KernelMethod, plan: Any, ks: int) -> int:
    """Estimated bytes of one sample's cached factors."""
    item = torch.empty((), dtype=problem.dtype).element_size()
    if plan is None:
        return ks * problem.p * item
    per = sum(e.per_sample_elements for e in plan.entries) * ks // max(problem.k, 1)
    return (per + ks * plan.fallback_size) * item


def _ntvp_kernel(
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
    from lossgeometry.kernel.ntvp import ntk_operator

    op = ntk_operator(
        problem, w, chunk_size=chunk_size, outputs=sel if sel is not None else "full", indices=idx
    )
    m = idx.numel()
    ks = op.ks
    N = m * ks
    cols = max(1, min(N, 64))
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
