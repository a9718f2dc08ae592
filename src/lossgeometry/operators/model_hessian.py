r"""The model Hessian ``D²F`` as operators: ``M_u = Σ_i u_i ∇²F_i`` and ``g(v) = D²F[v, v]``.

The model Hessian of ``F: R^p → R^{N}`` (``N = n·k`` outputs: ``n`` inputs, ``k`` outputs
each, flat index ``i·k + a``) is the symmetric 3-tensor ``T_{j,s,t} = ∂²F_j/∂w_s∂w_t``. Two
matrix-free views of it:

* :class:`ModelHessianOperator`: the symmetric ``p × p`` operator
  ``M_u = Σ_{i,a} u_{ia} ∇²F_{ia}(w)`` for fixed output weights ``u ∈ R^{n×k}``; its products
  are Hessian-vector products of the scalar ``w ↦ ⟨u, F(w)⟩`` (no loss, no reduction). For
  MSE with reduction ``"sum"`` and ``u = F − Y`` it is the second term of the loss Hessian,
  ``∇²L = JᵀJ + M_r``.
* :func:`second_directional_derivative`: ``g(v)_{ia} = vᵀ ∇²F_{ia}(w) v``, the second
  derivative of every output along ``v`` (one forward-over-forward ``jvp`` per chunk).

They meet in ``⟨u, g(v)⟩ = vᵀ M_u v``; :func:`lossgeometry.model_hessian_norm` alternates
between them to find ``‖D²F‖``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.func import jvp

from lossgeometry._attention import with_differentiable_attention
from lossgeometry.operators.base import TorchLinearOperator
from lossgeometry.operators.hessian import Backend, ChunkedHVP, reference_problem
from lossgeometry.problem import Problem


class ModelInputs:
    """The inputs whose outputs make up ``F``: the Problem's samples, a subset, or raw inputs."""

    def __init__(
        self,
        problem: Problem,
        inputs: torch.Tensor | None,
        indices: Sequence[int] | torch.Tensor | None,
        chunk_size: int | None,
    ) -> None:
        if inputs is not None and indices is not None:
            raise ValueError("pass either inputs (raw model inputs) or indices (samples), not both")
        self.problem = problem
        self.chunk_size = chunk_size or problem.chunk_size
        self.indices = indices
        self.single = False
        self.X: torch.Tensor | None = None
        if inputs is not None:
            if not isinstance(inputs, torch.Tensor):
                raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
            first = next(problem.local_chunks(chunk_size=1))[1]  # this rank's first sample
            sample_shape = tuple(first.shape[1:])
            X = inputs
            if tuple(X.shape) == sample_shape:
                X, self.single = X.unsqueeze(0), True
            elif tuple(X.shape[1:]) != sample_shape:
                raise ValueError(
                    f"inputs must be one model input of shape {sample_shape} or a batch of shape "
                    f"(b, *{sample_shape}), got {tuple(inputs.shape)}"
                )
            if X.shape[0] == 0:
                raise ValueError("inputs is empty")
            self.X = (
                X.to(device=problem.device, dtype=problem.dtype)
                if X.is_floating_point()
                else X.to(problem.device)
            )
            self.n = X.shape[0]
        else:
            self.n = problem.sample_count(indices)
            if indices is not None and self.n == 1:
                self.single = True

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(rows, x)``: chunks of inputs and their rows in ``u`` (this rank's samples)."""
        if self.X is not None:
            for s in range(0, self.n, self.chunk_size):
                x = self.X[s : s + self.chunk_size]
                yield torch.arange(s, s + x.shape[0]), x
            return
        for rows, x, _ in self.problem.local_chunks(self.indices, self.chunk_size):
            yield rows, x


class ModelHessianOperator(TorchLinearOperator):
    """``M_u = Σ_{i,a} u_{ia} ∇²F_{ia}(w)``, the model Hessian contracted with output weights.

    Products are Hessian-vector products of the scalar ``w ↦ ⟨u, F(w)⟩``, chunked over the
    inputs, with the backends of :class:`~lossgeometry.operators.HessianOperator`
    (default: reverse-over-reverse with the gradient graph cached until ``u`` changes). No
    loss and no reduction are involved.

    Args:
        problem: the Problem (its model; its data unless ``inputs`` is given).
        w: the point (default: the model's current parameters).
        u: output weights, shape ``(n, k)`` (``n`` = number of selected inputs).
        inputs: raw model inputs (one input, or a batch ``(b, ...)``) instead of the data.
        indices: a subset of the Problem's samples instead of all of them.
        dtype: compute in this dtype (the Problem is copied).
        chunk_size: inputs per chunk.
        max_vectors: vectors per vectorized product.
        backend: ``"revrev"`` (default) or ``"fwdrev"``.
        cache: keep the gradient graphs until ``u`` changes (default: a single chunk, or
            several whose graphs fit in 2 GiB, measured on the first).
    """

    def __init__(
        self,
        problem: Problem,
        w: torch.Tensor | None,
        u: torch.Tensor,
        *,
        inputs: torch.Tensor | None = None,
        indices: Sequence[int] | torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
        chunk_size: int | None = None,
        max_vectors: int | None = 16,
        backend: Backend = "revrev",
        cache: bool | None = None,
    ) -> None:
        prob = reference_problem(problem, dtype)
        super().__init__(prob.p, prob.dtype, prob.device, max_vectors=max_vectors)
        self.problem = prob
        self.w = prob.check_w(w).detach().clone() if w is not None else prob.params()
        self.inputs = ModelInputs(prob, inputs, indices, chunk_size)
        self.u = self.check_u(u)
        n_chunks = math.ceil(self.inputs.n / self.inputs.chunk_size)
        if cache is None and n_chunks <= 1:
            cache = True
        self._hvp = ChunkedHVP(  # cache=None: kept when all chunks' graphs fit the budget
            lambda w_, x, uc: (prob.forward(w_, x) * uc).sum(),
            self._chunks,
            self.w,
            backend,
            cache,
            n_chunks=n_chunks,
        )

    def check_u(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` checked to hold ``(n, k)`` numbers, as an ``(n, k)`` tensor of the operator."""
        n, k = self.inputs.n, self.problem.k
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"u must be a torch.Tensor of shape ({n}, {k}), got {type(u).__name__}")
        if u.numel() != n * k or (u.ndim == 2 and u.shape != (n, k)):
            raise ValueError(
                f"u must have shape ({n}, {k}) (inputs × outputs), got {tuple(u.shape)}"
            )
        return u.reshape(n, k).to(device=self.device, dtype=self.torch_dtype)

    def set_u(self, u: torch.Tensor) -> None:
        """Replace the output weights ``u`` (shape ``(n, k)``)."""
        self.u = self.check_u(u)
        self._hvp.invalidate()

    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for rows, x in self.inputs.chunks():
            yield x, self.u[rows.to(self.u.device)]

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        out = self._hvp.matmat(V).detach()
        # raw inputs are this process's own; the Problem's samples are summed over the ranks
        return out if self.inputs.X is not None else self.problem.all_sum(out)


def model_hessian_operator(
    problem: Problem,
    w: torch.Tensor | None,
    u: torch.Tensor,
    *,
    inputs: torch.Tensor | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    max_vectors: int | None = 16,
    backend: Backend = "revrev",
    cache: bool | None = None,
) -> ModelHessianOperator:
    """``M_u = Σ_{i,a} u_{ia} ∇²F_{ia}(w)`` as a symmetric matrix-free operator.

    For MSE with reduction ``"sum"`` and ``u = F(w) − Y`` this is the second term of the loss
    Hessian, ``∇²L = JᵀJ + M_r``.

    Args:
        problem: the Problem.
        w: the point (``None``: the model's current parameters).
        u: output weights of shape ``(n, k)``.
        inputs: raw model inputs instead of the Problem's data.
        indices: a subset of the Problem's samples.
        dtype: e.g. ``torch.float64`` for a reference copy.
        chunk_size: inputs per chunk.
        max_vectors: vectors per vectorized product.
        backend: ``"revrev"`` (default) or ``"fwdrev"``.
        cache: keep the gradient graphs until ``u`` changes (default: single chunk).

    Returns:
        A :class:`ModelHessianOperator`.
    """
    return ModelHessianOperator(
        problem,
        w,
        u,
        inputs=inputs,
        indices=indices,
        dtype=dtype,
        chunk_size=chunk_size,
        max_vectors=max_vectors,
        backend=backend,
        cache=cache,
    )


def second_directional_derivative(
    problem: Problem,
    w: torch.Tensor,
    v: torch.Tensor,
    *,
    inputs: torch.Tensor | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """``g(v)_{ia} = vᵀ ∇²F_{ia}(w) v = d²/dt² F_{ia}(w + t v)|_{t=0}``, shape ``(n, k)``.

    One forward-over-forward ``jvp`` per chunk of inputs.
    """
    w = problem.check_w(w).detach()
    v = problem.check_v(v)
    return second_derivatives(problem, w, v, ModelInputs(problem, inputs, indices, chunk_size))


@with_differentiable_attention
def second_derivatives(
    problem: Problem, w: torch.Tensor, v: torch.Tensor, inp: ModelInputs
) -> torch.Tensor:
    """:func:`second_directional_derivative` for checked ``w``, ``v`` and inputs ``inp``."""
    parts = []
    for rows, x in inp.chunks():

        def f(w_: torch.Tensor, x: torch.Tensor = x) -> torch.Tensor:
            return problem.forward(w_, x)

        def df(w_: torch.Tensor, f=f) -> torch.Tensor:
            return jvp(f, (w_,), (v,))[1]

        parts.append((rows, jvp(df, (w,), (v,))[1].detach()))
    if inp.X is not None:  # raw inputs: this process's own
        return torch.cat([t for _, t in parts])
    return problem.gather_rows(parts, inp.n, (problem.k,), problem.dtype)
