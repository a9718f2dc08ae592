"""The base of every matrix-free operator: torch products, SciPy's protocol on top.

:class:`TorchLinearOperator` is a :class:`scipy.sparse.linalg.LinearOperator` (``shape``,
``dtype``, ``@``, ``matvec``, ``matmat``, ``rmatvec``, ``.T``, ``.H``; so ``eigsh``,
``lobpcg``, ``lsqr`` and ``cg`` take it as it is) whose products are computed by torch. As in
curvlinops, a subclass implements one method,

    ``_matmat(V: Tensor[n_in, m]) -> Tensor[n_out, m]``  (``A V`` on the operator's device
    and dtype),

and, only if it is not symmetric, ``_adjoint_matmat(U: Tensor[n_out, m]) -> Tensor[n_in, m]``
(``Aᵀ U``). The base class adds

* torch in, torch out: ``A @ v`` for a tensor ``v`` of shape ``(n_in,)`` or ``(n_in, m)``,
  :meth:`~TorchLinearOperator.matvec_torch`, :meth:`~TorchLinearOperator.matmat_torch` and
  their adjoints (no NumPy round trip; what lossgeometry's own solvers use); inputs are moved
  to the operator's device and dtype;
* blocking: a product with many columns is split into blocks of at most ``max_vectors``
  columns (each block one vectorized product; memory grows with it);
* a product counter :attr:`~TorchLinearOperator.matvecs` (one per column, forward or adjoint);
* :meth:`~TorchLinearOperator.to_dense`, built from the identity's columns in blocks, with a
  memory check;
* NumPy in, NumPy out for SciPy, in :attr:`dtype` (by default the NumPy twin of the torch
  dtype; an operator may declare another, e.g. float64 for a float32 model);
* a finiteness check of every product (:func:`require_finite`): a model or loss that is NaN
  or infinite at the point gives one clear error in every solver and estimator (Lanczos,
  ARPACK, LOBPCG, dense, Hutchinson/Hutch++, SLQ), never a NaN result that claims success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse.linalg as sla
import torch

_NP_DTYPES = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: np.dtype(np.float32),
}

DENSE_LIMIT_BYTES = 2 * 1024**3
"""Largest dense matrix :meth:`TorchLinearOperator.to_dense` builds without ``force=True``."""

_DENSE_BLOCK = 256
"""Identity columns per product in :meth:`TorchLinearOperator.to_dense` when the operator
sets no ``max_vectors``."""


NOT_FINITE = "NaN/Inf: the model or loss is not finite at this point"
"""The core of the one error every measurement gives for non-finite values."""


def require_finite(t: torch.Tensor, what: str = "the operator returned") -> torch.Tensor:
    """Return ``t`` if every entry is finite; else raise the shared non-finite error.

    The message is ``"{what} NaN/Inf: the model or loss is not finite at this point"`` plus
    what to check. Every solver and estimator reaches it through the operator products
    (:meth:`TorchLinearOperator.matmat_torch`); the dense kernel path calls it on the kernel.

    Raises:
        ValueError: ``t`` holds NaN or Inf.
    """
    # A NaN/Inf entry makes the sum NaN/Inf, so a finite sum proves every entry finite (one
    # cheap reduction); only a non-finite sum (or an overflow) needs the elementwise test.
    if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"{what} {NOT_FINITE} (check the parameters w, the model's buffers and the data "
            "for NaN/Inf, e.g. after a diverged training step)"
        )
    return t


class TorchLinearOperator(sla.LinearOperator):
    """A matrix-free operator ``A ∈ R^{n_out × n_in}`` whose products are computed by torch.

    Args:
        shape: ``(n_out, n_in)``, or one integer ``p`` for a square ``p × p`` operator.
        dtype: torch dtype of the products.
        device: torch device of the products.
        symmetric: whether ``A = Aᵀ`` (then ``A.H is A.T is A``; square operators only).
        max_vectors: at most this many columns per call of ``_matmat`` (bounds memory;
            ``None``: all at once).
        scipy_dtype: NumPy dtype of the SciPy-facing products (default: the torch dtype's).

    Attributes:
        p: ``n_in``, the dimension of the input (the order of a square operator).
        torch_dtype: the torch dtype; ``device``: the torch device.
        matvecs: number of operator-vector products computed so far (a ``(n, m)`` product
            counts ``m``; adjoint products count too). Reset with :meth:`reset_matvecs`.
    """

    def __init__(
        self,
        shape: int | tuple[int, int],
        dtype: torch.dtype,
        device: torch.device | str,
        *,
        symmetric: bool = True,
        max_vectors: int | None = 16,
        scipy_dtype: Any = None,
    ) -> None:
        if dtype not in _NP_DTYPES:
            raise TypeError(f"unsupported dtype {dtype}; use torch.float32 or torch.float64")
        if max_vectors is not None and (not isinstance(max_vectors, int) or max_vectors < 1):
            raise ValueError(f"max_vectors must be a positive integer or None, got {max_vectors!r}")
        n_out, n_in = (shape, shape) if isinstance(shape, int) else shape
        if symmetric and n_out != n_in:
            raise ValueError(f"a symmetric operator must be square, got shape {(n_out, n_in)}")
        np_dtype = _NP_DTYPES[dtype] if scipy_dtype is None else np.dtype(scipy_dtype)
        super().__init__(dtype=np_dtype, shape=(int(n_out), int(n_in)))
        self.p = int(n_in)
        self.torch_dtype = dtype
        self.device = torch.device(device)
        self.symmetric = symmetric
        self.max_vectors = max_vectors
        self.matvecs = 0

    # ------------------------------------------------------------------ to implement
    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        """Return ``A V`` for ``V`` of shape ``(n_in, m)`` (operator's device and dtype)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _matmat")

    def _adjoint_matmat(self, U: torch.Tensor) -> torch.Tensor:
        """Return ``Aᵀ U`` for ``U`` of shape ``(n_out, m)`` (symmetric: ``_matmat``)."""
        if self.symmetric:
            return self._matmat(U)
        raise NotImplementedError(f"{type(self).__name__} has no adjoint product")

    # ------------------------------------------------------------------ torch interface
    def _apply(
        self, fn: Callable[[torch.Tensor], torch.Tensor], V: torch.Tensor, rows: int, name: str
    ) -> torch.Tensor:
        if not isinstance(V, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(V).__name__}")
        if V.ndim != 2 or V.shape[0] != rows:
            raise ValueError(f"expected a tensor of shape ({rows}, m), got {tuple(V.shape)}")
        V = V.to(device=self.device, dtype=self.torch_dtype)
        m = V.shape[1]
        if m == 0:
            return V.new_zeros(self.shape[0] + self.shape[1] - rows, 0)
        block = self.max_vectors or m
        outs = []
        for s in range(0, m, block):
            outs.append(require_finite(fn(V[:, s : s + block])))
            self.matvecs += min(block, m - s)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)

    def matmat_torch(self, V: torch.Tensor) -> torch.Tensor:
        """``A V`` for a torch tensor ``V`` of shape ``(n_in, m)``; returns ``(n_out, m)``.

        ``V`` is moved to the operator's device and dtype; columns go in blocks of
        ``max_vectors``.
        """
        return self._apply(self._matmat, V, self.shape[1], "matmat_torch")

    def rmatmat_torch(self, U: torch.Tensor) -> torch.Tensor:
        """``Aᵀ U`` for a torch tensor ``U`` of shape ``(n_out, m)``; returns ``(n_in, m)``."""
        return self._apply(self._adjoint_matmat, U, self.shape[0], "rmatmat_torch")

    def matvec_torch(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` for a torch vector ``v`` of shape ``(n_in,)``."""
        _check_vector(v, self.shape[1])
        return self.matmat_torch(v[:, None])[:, 0]

    def rmatvec_torch(self, u: torch.Tensor) -> torch.Tensor:
        """``Aᵀ u`` for a torch vector ``u`` of shape ``(n_out,)``."""
        _check_vector(u, self.shape[0])
        return self.rmatmat_torch(u[:, None])[:, 0]

    def dot(self, x: Any) -> Any:
        """``A @ x``: torch for a tensor (``(n_in,)`` or ``(n_in, m)``), else SciPy's rules."""
        if isinstance(x, torch.Tensor):
            return self.matvec_torch(x) if x.ndim == 1 else self.matmat_torch(x)
        return super().dot(x)

    def reset_matvecs(self) -> None:
        """Set the product counter :attr:`matvecs` back to zero."""
        self.matvecs = 0

    def to_dense(self, *, force: bool = False) -> torch.Tensor:
        """The ``n_out × n_in`` matrix from ``n_in`` products with the identity's columns.

        The columns go in blocks of ``max_vectors`` (256 when unset). Costs ``n_in`` operator
        products; meant for small operators (dense oracles, exact spectra).

        Raises:
            ValueError: the matrix would take more than 2 GiB (pass ``force=True``).
        """
        n_out, n_in = self.shape
        itemsize = torch.empty((), dtype=self.torch_dtype).element_size()
        need = n_out * n_in * itemsize
        if need > DENSE_LIMIT_BYTES and not force:
            raise ValueError(
                f"a dense {n_out}×{n_in} operator needs {need / 1024**3:.1f} GiB: use the "
                "matrix-free methods (Lanczos, Hutchinson, SLQ) or pass force=True"
            )
        out = torch.empty(n_out, n_in, dtype=self.torch_dtype, device=self.device)
        block = self.max_vectors or _DENSE_BLOCK
        for s in range(0, n_in, block):
            e = min(s + block, n_in)
            eye = torch.zeros(n_in, e - s, dtype=self.torch_dtype, device=self.device)
            eye[torch.arange(s, e), torch.arange(e - s)] = 1
            out[:, s:e] = self.matmat_torch(eye)
        return out

    # ------------------------------------------------------------------ SciPy protocol
    def _to_torch(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x)).to(
            device=self.device, dtype=self.torch_dtype
        )

    def _to_numpy(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(self.dtype, copy=False)

    def _numpy_matmat(self, fn: Callable[[torch.Tensor], torch.Tensor], X: Any, rows: int) -> Any:
        """``fn`` (a torch product) on a NumPy ``(rows, m)`` matrix; torch input passes as is."""
        if isinstance(X, torch.Tensor):
            return fn(X)
        X = np.asanyarray(X)
        if X.ndim != 2 or X.shape[0] != rows:
            raise ValueError(f"dimension mismatch: {self.shape}, {X.shape}")
        return self._to_numpy(fn(self._to_torch(X)))

    def matmat(self, X: Any) -> Any:
        """``A X``: NumPy in and out (SciPy's protocol), or torch in and out."""
        return self._numpy_matmat(self.matmat_torch, X, self.shape[1])

    def rmatmat(self, X: Any) -> Any:
        """``Aᵀ X``: NumPy in and out (SciPy's protocol), or torch in and out."""
        return self._numpy_matmat(self.rmatmat_torch, X, self.shape[0])

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self.matmat(np.reshape(x, (-1, 1))).reshape(-1, *np.shape(x)[1:])

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self.rmatmat(np.reshape(x, (-1, 1))).reshape(-1, *np.shape(x)[1:])

    def _adjoint(self) -> TorchLinearOperator:
        if self.symmetric:
            return self
        if getattr(self, "_adjoint_operator", None) is None:
            self._adjoint_operator = AdjointOperator(self)
        return self._adjoint_operator

    def _transpose(self) -> TorchLinearOperator:
        return self._adjoint()  # real operators: the transpose is the adjoint

    def __repr__(self) -> str:
        dt = str(self.torch_dtype).replace("torch.", "")
        return f"<{type(self).__name__} {self.shape[0]}×{self.shape[1]}, {dt}, {self.device}>"


def _check_vector(v: Any, n: int) -> None:
    if not isinstance(v, torch.Tensor) or v.shape != (n,):
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"expected a tensor of shape ({n},), got {shape}")


class AdjointOperator(TorchLinearOperator):
    """``Aᵀ`` of a non-symmetric :class:`TorchLinearOperator` ``A`` (what ``A.T``/``A.H`` give).

    Its products are ``A``'s adjoint products and the other way round; it counts its own.
    ``A.T`` returns the same instance every time, and ``A.T.T is A``.
    """

    def __init__(self, A: TorchLinearOperator) -> None:
        super().__init__(
            (A.shape[1], A.shape[0]),
            A.torch_dtype,
            A.device,
            symmetric=False,
            max_vectors=A.max_vectors,
            scipy_dtype=A.dtype,
        )
        self.A = A

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        return self.A._adjoint_matmat(V)

    def _adjoint_matmat(self, U: torch.Tensor) -> torch.Tensor:
        return self.A._matmat(U)

    def _adjoint(self) -> TorchLinearOperator:
        return self.A


class CallableOperator(TorchLinearOperator):
    """A :class:`TorchLinearOperator` from a function ``V (n_in, m) -> A V (n_out, m)``.

    Args:
        matmat: the product, torch in and out.
        p: the dimension ``p`` of a square operator, or its shape ``(n_out, n_in)``.
        dtype: torch dtype; ``device``: torch device.
        symmetric: whether the operator is symmetric.
        max_vectors: columns per call of ``matmat``.
        rmatmat: the adjoint product ``U (n_out, m) -> Aᵀ U`` (non-symmetric operators).
    """

    def __init__(
        self,
        matmat: Callable[[torch.Tensor], torch.Tensor],
        p: int | tuple[int, int],
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        *,
        symmetric: bool = True,
        max_vectors: int | None = None,
        rmatmat: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(p, dtype, device, symmetric=symmetric, max_vectors=max_vectors)
        self._fn = matmat
        self._rfn = rmatmat

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        return self._fn(V)

    def _adjoint_matmat(self, U: torch.Tensor) -> torch.Tensor:
        if self.symmetric or self._rfn is None:
            return super()._adjoint_matmat(U)
        return self._rfn(U)


def as_torch_operator(
    A: object, *, device: torch.device | str | None = None
) -> TorchLinearOperator:
    """``A`` as a :class:`TorchLinearOperator`: itself, a dense matrix, or a SciPy operator.

    Lets the solvers in :mod:`lossgeometry.linalg` run on explicit matrices (tests, small
    problems) and on other SciPy ``LinearOperator`` s (e.g. curvlinops'; their products go
    through NumPy). Symmetry is checked for square dense input; other SciPy operators are
    taken as symmetric when square (the solvers that need symmetry say so).
    """
    if isinstance(A, TorchLinearOperator):
        return A
    if isinstance(A, np.ndarray):
        A = torch.from_numpy(A)
    if isinstance(A, torch.Tensor):
        if A.ndim != 2:
            raise ValueError(f"expected a matrix, got shape {tuple(A.shape)}")
        M = A.to(device=device) if device is not None else A
        if not M.is_floating_point():
            M = M.double()
        require_finite(M, "the matrix has")
        sym = M.shape[0] == M.shape[1] and bool(
            torch.allclose(M, M.T, rtol=1e-6, atol=1e-8 * float(M.abs().max() + 1e-300))
        )
        return CallableOperator(
            lambda V: M @ V,
            tuple(M.shape),
            M.dtype,
            M.device,
            symmetric=sym,
            rmatmat=lambda U: M.T @ U,
        )
    if isinstance(A, sla.LinearOperator):
        S = A
        dt = torch.float32 if np.dtype(S.dtype) == np.float32 else torch.float64

        def through_numpy(fn: Callable[[np.ndarray], np.ndarray]) -> Callable:
            return lambda V: torch.as_tensor(np.asarray(fn(V.cpu().numpy()))).to(V)

        return CallableOperator(
            through_numpy(S.matmat),
            tuple(S.shape),
            dt,
            device or "cpu",
            symmetric=S.shape[0] == S.shape[1],
            rmatmat=through_numpy(S.rmatmat),
        )
    raise TypeError(
        "expected a TorchLinearOperator, a SciPy LinearOperator, a torch.Tensor or a "
        f"numpy.ndarray, got {type(A).__name__}"
    )


def square_operator(A: object, what: str) -> TorchLinearOperator:
    """``A`` as a :class:`TorchLinearOperator` (:func:`as_torch_operator`), checked to be square.

    ``what`` names the caller in the error message.
    """
    op = as_torch_operator(A)
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"{what} needs a square (symmetric) operator, got shape {op.shape}")
    return op
