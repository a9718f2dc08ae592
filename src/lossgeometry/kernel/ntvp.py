r"""Matrix-free NTK-vector products ``v ↦ K v = J (Jᵀ v)``, as a SciPy ``LinearOperator``.

``J = DF(w)`` is never formed: ``Jᵀ V`` is one reverse pass over the data (a VJP per chunk,
vmapped over the columns of ``V``) and ``J U`` one forward-mode pass (a JVP per chunk,
vmapped over the columns). Memory is ``O(p · c)`` for ``c`` columns plus one chunk's
activations, independent of ``nk``; cost two passes over the data per block of columns.
Models without forward-mode AD support fall back to the double-VJP identity
``J g = ∂/∂u ⟨Jᵀ u, g⟩`` automatically.

The operator acts on vectors indexed like the flattened outputs (``i·ks + a``); it is
symmetric positive semi-definite, so it composes with ``scipy.sparse.linalg.eigsh`` and
``lobpcg`` (and with curvlinops-style code).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch.func import jvp, vjp, vmap

from lossgeometry.kernel.outputs import check_no_train_batchnorm, resolve_outputs
from lossgeometry.problem import Problem

_MAX_COLS = 32


class NTKOperator(LinearOperator):
    """The tangent kernel ``K(w) = J Jᵀ`` as a matrix-free, symmetric ``LinearOperator``.

    Shape ``(m·ks, m·ks)`` for ``m`` samples and ``ks`` outputs per sample; SciPy-facing
    products take and return float64 NumPy arrays (computed in the problem's dtype on its
    device). :meth:`apply` works on torch tensors directly (no host copies on CUDA).

    Attributes:
        problem: the problem.
        w: the point.
        ks: outputs per sample.
        m: number of samples.
        matvecs: number of single-vector products applied so far (a block of ``c`` columns
            counts ``c``).
    """

    def __init__(
        self,
        problem: Problem,
        w: torch.Tensor,
        sel: torch.Tensor | None,
        indices: torch.Tensor,
        chunk_size: int,
    ) -> None:
        self.problem = problem
        self.w = w
        self.sel = sel
        self.indices = indices
        self.chunk_size = chunk_size
        self.m = indices.numel()
        self.ks = problem.k if sel is None else sel.numel()
        self.matvecs = 0
        self._forward_ad = True
        N = self.m * self.ks
        super().__init__(dtype=np.dtype(np.float64), shape=(N, N))

    # ----------------------------------------------------------------- torch interface
    def _chunks(self):
        for s in range(0, self.m, self.chunk_size):
            idx = self.indices[s : s + self.chunk_size]
            x, _ = self.problem.batch(self.problem.check_indices(idx))
            yield s, idx.numel(), x

    def _f(self, x: torch.Tensor):
        sel, problem = self.sel, self.problem

        def f(w_: torch.Tensor) -> torch.Tensor:
            out = problem.forward(w_, x)
            return out if sel is None else out[:, sel]

        return f

    def jt(self, U: torch.Tensor) -> torch.Tensor:
        """``Jᵀ U``: ``U`` of shape ``(m·ks, c)`` → ``(p, c)``."""
        c = U.shape[1]
        U = U.reshape(self.m, self.ks, c)
        G = torch.zeros(self.problem.p, c, device=self.w.device, dtype=self.w.dtype)
        for s, b, x in self._chunks():
            _, pull = vjp(self._f(x), self.w)
            for c0 in range(0, c, _MAX_COLS):
                u = U[s : s + b, :, c0 : c0 + _MAX_COLS].permute(2, 0, 1)
                G[:, c0 : c0 + _MAX_COLS] += vmap(pull)(u)[0].T
        return G

    def j(self, G: torch.Tensor) -> torch.Tensor:
        """``J G``: ``G`` of shape ``(p, c)`` → ``(m·ks, c)``."""
        c = G.shape[1]
        out = torch.zeros(self.m, self.ks, c, device=self.w.device, dtype=self.w.dtype)
        for s, b, x in self._chunks():
            f = self._f(x)
            for c0 in range(0, c, _MAX_COLS):
                g = G[:, c0 : c0 + _MAX_COLS].T.contiguous()
                out[s : s + b, :, c0 : c0 + _MAX_COLS] = self._jvp_cols(f, g, b).permute(1, 2, 0)
        return out.reshape(self.m * self.ks, c)

    def _jvp_cols(self, f, g: torch.Tensor, b: int) -> torch.Tensor:
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

    def apply(self, V: torch.Tensor) -> torch.Tensor:
        """``K V`` for ``V`` of shape ``(m·ks,)`` or ``(m·ks, c)`` (torch tensors)."""
        vec = V.ndim == 1
        V = V.reshape(self.shape[0], -1).to(device=self.w.device, dtype=self.w.dtype)
        self.matvecs += V.shape[1]
        out = self.j(self.jt(V)).detach()
        return out.reshape(-1) if vec else out

    # ----------------------------------------------------------------- SciPy interface
    def _matmat(self, X: np.ndarray) -> np.ndarray:
        V = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))
        return self.apply(V).cpu().to(torch.float64).numpy().reshape(X.shape)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._matmat(np.asarray(x).reshape(-1, 1)).reshape(np.shape(x))

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self._matmat(X)

    def _adjoint(self) -> NTKOperator:
        return self

    def _transpose(self) -> NTKOperator:
        return self


def ntk_operator(
    problem: Problem,
    w: torch.Tensor | None = None,
    chunk_size: int | None = None,
    *,
    outputs: str | int | Sequence[int] | torch.Tensor = "full",
    indices: Sequence[int] | torch.Tensor | None = None,
) -> NTKOperator:
    r"""The tangent kernel ``K(w) = DF DFᵀ`` as a matrix-free SciPy ``LinearOperator``.

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
    return NTKOperator(problem, w, sel, idx, chunk_size or problem.chunk_size)
