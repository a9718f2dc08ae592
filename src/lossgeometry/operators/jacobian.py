r"""The Jacobian ``J = DF(w)`` as a matrix-free operator, its Gram matrices, and the dense ``J``.

``J ∈ R^{N × p}`` with ``N = m·ks`` rows for ``m`` samples and ``ks`` outputs per sample,
ordered sample-major (row ``i·ks + a`` is output ``a`` of sample ``i``), matching
``problem.residual(w).reshape(-1)``. :class:`JacobianOperator` never forms it:

* ``J G`` (``G ∈ R^{p×c}``) is one forward-mode pass over the data, a JVP per chunk vmapped
  over the columns; models without forward-mode AD support fall back to the double-VJP
  identity ``J g = ∂/∂u ⟨Jᵀ u, g⟩`` automatically;
* ``Jᵀ U`` (``U ∈ R^{N×c}``) is one reverse pass, a VJP per chunk vmapped over the columns.

Columns go through ``vmap`` at most 32 at a time, so memory is ``O(p·c)`` plus 32 copies of
one chunk's activations, independent of ``N``. :class:`GramOperator` composes them into
``J Jᵀ`` (``N × N``, the tangent kernel) or ``Jᵀ J`` (``p × p``). :func:`dense_jacobian`
builds ``J`` itself by per-sample ``jacrev`` when it fits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from torch.func import jvp, vjp, vmap

from lossgeometry._attention import with_differentiable_attention
from lossgeometry.operators.base import TorchLinearOperator, require_finite
from lossgeometry.problem import Problem, input_count, map_inputs

_MAX_COLS = 32
"""Columns per vmapped JVP/VJP."""

_CHUNK_BYTES = 64 * 1024**2
"""Memory per chunk of per-sample Jacobians in :func:`dense_jacobian`."""


class JacobianOperator(TorchLinearOperator):
    """``J = DF(w)`` (``N × p``, ``N = m·ks``): ``J G`` by vmapped JVPs, ``Jᵀ U`` by VJPs.

    Not symmetric: ``J.T`` (or ``J.H``) is the operator ``Jᵀ``; SciPy's ``lsqr`` takes ``J``
    as it is.

    Args:
        problem: the Problem.
        w: the point (default: the model's current parameters).
        sel: indices of the outputs to keep (``None``: all ``k``).
        indices: the samples (default: all, in order).
        chunk_size: samples per pass (default: the Problem's).
        scipy_dtype: NumPy dtype of SciPy-facing products (default: the Problem's dtype).

    Attributes:
        m: number of samples; ``ks``: outputs per sample.
    """

    def __init__(
        self,
        problem: Problem,
        w: torch.Tensor | None = None,
        *,
        sel: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
        chunk_size: int | None = None,
        scipy_dtype: Any = None,
    ) -> None:
        self.problem = problem
        self.w = problem.check_w(w).detach()
        self.sel = sel
        self.indices = torch.arange(problem.n) if indices is None else indices
        self.chunk_size = chunk_size or problem.chunk_size
        self.m = self.indices.numel()
        self.ks = problem.k if sel is None else sel.numel()
        self._forward_ad = True
        super().__init__(
            (self.m * self.ks, problem.p),
            self.w.dtype,
            self.w.device,
            symmetric=False,
            max_vectors=None,
            scipy_dtype=scipy_dtype,
        )

    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(rows, x)``: this rank's selected samples (all on one process), chunked."""
        for rows, x, _ in self.problem.local_chunks(self.indices, self.chunk_size):
            yield rows.to(self.w.device), x

    def _f(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        sel, problem = self.sel, self.problem

        def f(w_: torch.Tensor) -> torch.Tensor:
            out = problem.forward(w_, x)
            return out if sel is None else out[:, sel]

        return f

    def jt(self, U: torch.Tensor) -> torch.Tensor:
        """``Jᵀ U``: ``U`` of shape ``(m·ks, c)`` → ``(p, c)`` (not counted)."""
        c = U.shape[1]
        U = U.reshape(self.m, self.ks, c)
        G = torch.zeros(self.problem.p, c, device=self.w.device, dtype=self.w.dtype)
        for rows, x in self._chunks():
            _, pull = vjp(self._f(x), self.w)
            for c0 in range(0, c, _MAX_COLS):
                u = U[rows, :, c0 : c0 + _MAX_COLS].permute(2, 0, 1)
                G[:, c0 : c0 + _MAX_COLS] += vmap(pull)(u)[0].T
        return self.problem.all_sum(G)

    @with_differentiable_attention
    def j(self, G: torch.Tensor) -> torch.Tensor:
        """``J G``: ``G`` of shape ``(p, c)`` → ``(m·ks, c)`` (not counted).

        Forward-mode AD (or a double VJP), with attention on its math backend.
        """
        c = G.shape[1]
        out = torch.zeros(self.m, self.ks, c, device=self.w.device, dtype=self.w.dtype)
        for rows, x in self._chunks():
            f = self._f(x)
            for c0 in range(0, c, _MAX_COLS):
                g = G[:, c0 : c0 + _MAX_COLS].T.contiguous()
                jg = self._jvp_cols(f, g, rows.numel()).permute(1, 2, 0)
                out[rows, :, c0 : c0 + _MAX_COLS] = jg
        # rows of other ranks are zero here: the sum over ranks fills them (exact)
        return self.problem.all_sum(out).reshape(self.m * self.ks, c)

    def _jvp_cols(self, f: Callable, g: torch.Tensor, b: int) -> torch.Tensor:
        """``J_chunk g_r`` for the rows ``g_r`` of ``g`` → ``(r, b, ks)``."""
        w = self.w
        if self._forward_ad:
            try:
                return vmap(lambda t: jvp(f, (w,), (t,))[1])(g)
            except (RuntimeError, NotImplementedError) as e:
                if "forward" not in str(e).lower() and "jvp" not in str(e).lower():
                    raise
                self._forward_ad = False
        # double-VJP: J t = d/du <Jᵀ u, t>, exact since Jᵀ u is linear in u
        u0 = torch.zeros(b, self.ks, device=w.device, dtype=w.dtype)

        def jt_fn(u: torch.Tensor) -> torch.Tensor:
            return vjp(f, w)[1](u)[0]

        _, pull2 = vjp(jt_fn, u0)
        return torch.stack([pull2(t)[0] for t in g])

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        return self.j(V).detach()

    def _adjoint_matmat(self, U: torch.Tensor) -> torch.Tensor:
        return self.jt(U).detach()


class GramOperator(TorchLinearOperator):
    """A Gram matrix of a Jacobian: ``J Jᵀ`` (``side="outer"``, ``N × N``) or ``Jᵀ J``.

    Symmetric positive semi-definite; one JVP pass and one VJP pass per block of columns.

    Args:
        J: the :class:`JacobianOperator`.
        side: ``"outer"`` (``J Jᵀ``), ``"inner"`` (``Jᵀ J``) or ``"auto"`` (the smaller one:
            ``J Jᵀ`` when ``p ≥ N``).
        scipy_dtype: NumPy dtype of SciPy-facing products (default: ``J``'s).
    """

    def __init__(
        self,
        J: JacobianOperator,
        side: Literal["outer", "inner", "auto"] = "auto",
        *,
        scipy_dtype: Any = None,
    ) -> None:
        N, p = J.shape
        if side == "auto":
            side = "outer" if p >= N else "inner"
        if side not in ("outer", "inner"):
            raise ValueError(f"side must be 'outer', 'inner' or 'auto', got {side!r}")
        self.jacobian = J
        self.side = side
        super().__init__(
            N if side == "outer" else p,
            J.torch_dtype,
            J.device,
            max_vectors=None,
            scipy_dtype=J.dtype if scipy_dtype is None else scipy_dtype,
        )

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        J = self.jacobian
        return (J.j(J.jt(V)) if self.side == "outer" else J.jt(J.j(V))).detach()


def gram_operator(J: JacobianOperator) -> GramOperator:
    """The smaller Gram matrix of ``J``: ``J Jᵀ`` (``N × N``) when ``p ≥ N``, else ``Jᵀ J``."""
    return GramOperator(J, "auto")


def jacobian_bytes(problem: Problem) -> int:
    """Bytes a dense ``J`` (all samples and outputs) takes in the Problem's dtype."""
    item = torch.empty((), dtype=problem.dtype).element_size()
    return problem.n * problem.k * problem.p * item


def dense_jacobian(problem: Problem, w: torch.Tensor, max_bytes: int | None = None) -> torch.Tensor:
    """``J = DF(w)`` as a dense ``(nk, p)`` tensor, per-sample Jacobians vmapped over chunks.

    Each chunk is ``vmap(jacrev(f))`` over its samples (``k`` reverse passes per sample),
    differentiated with respect to the model's parameter tensors and concatenated in the flat
    order; a model that cannot be vmapped over single samples falls back to ``jacrev`` of the
    chunk.

    Raises:
        ValueError: ``J`` would exceed ``max_bytes`` (use the matrix-free route).
    """
    need = jacobian_bytes(problem)
    if max_bytes is not None and need > max_bytes:
        raise ValueError(
            f"the dense Jacobian ({problem.n * problem.k} × {problem.p}) needs "
            f"{need / 1024**2:.0f} MiB, more than the limit {max_bytes / 1024**2:.0f} MiB: use "
            "jacobian='matrix-free' or interpolate a subset of the data"
        )
    k, p = problem.k, problem.p
    item = torch.empty((), dtype=problem.dtype).element_size()
    cs = max(1, min(problem.chunk_size, _CHUNK_BYTES // max(1, k * p * item)))
    # Differentiate with respect to the parameter tensors, not the flat vector: the backward
    # of slicing a flat w would materialize a p-sized zero gradient per tensor and row.
    pdict = {name: t.detach() for name, t in problem.param_dict(w.detach()).items()}
    names = [spec.name for spec in problem.param_specs]

    def single(pd: dict[str, torch.Tensor], x_: torch.Tensor) -> torch.Tensor:
        return problem.forward_with(pd, map_inputs(lambda t: t.unsqueeze(0), x_)).reshape(-1)

    def batch(pd: dict[str, torch.Tensor], x_: torch.Tensor) -> torch.Tensor:
        return problem.forward_with(pd, x_).reshape(-1)

    per_sample = torch.func.vmap(torch.func.jacrev(single), in_dims=(None, 0))
    blocks = []
    problem.require_single_process("the dense Jacobian")
    for _, x, _ in problem.iter_chunks(chunk_size=cs):
        rows = input_count(x) * k
        try:
            jd = per_sample(pdict, x)
        except RuntimeError:
            jd = torch.func.jacrev(batch)(pdict, x)
        blocks.append(torch.cat([jd[nm].reshape(rows, -1) for nm in names], dim=1).detach())
    return require_finite(torch.cat(blocks), "the Jacobian DF(w) has")
