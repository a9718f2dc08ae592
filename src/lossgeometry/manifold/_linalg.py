"""Jacobians and loss Hessians of a Problem, dense (small problems) or matrix-free.

Internal helpers of :mod:`lossgeometry.manifold`. Conventions:

* ``J = DF(w) ∈ R^{nk × p}`` with rows ordered sample-major (row ``i*k + a`` is output ``a``
  of sample ``i``), matching ``problem.residual(w).reshape(-1)``.
* ``H = ∇²L(w) ∈ R^{p × p}`` is the Hessian of the Problem's loss, in its normalization
  (``L = c · ½‖F − Y‖²`` with ``c = problem.loss_scale`` for MSE).
* Reference computations run in float64 (:func:`as_float64`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse.linalg as sla
import torch

from lossgeometry.problem import Problem

DENSE_JACOBIAN_MAX_BYTES = 512 * 1024**2
"""Largest Jacobian ``J`` (``nk · p · 8`` bytes in float64) the ``"auto"`` choice stores."""

DENSE_HESSIAN_MAX_P = 3000
"""Largest ``p`` for which ``"auto"`` builds the dense ``p × p`` loss Hessian."""

_CHUNK_BYTES = 64 * 1024**2


def as_float64(problem: Problem) -> Problem:
    """The Problem itself if it is float64 already, else a float64 reference copy."""
    if not isinstance(problem, Problem):
        raise TypeError(f"expected a lossgeometry Problem, got {type(problem).__name__}")
    return problem if problem.dtype == torch.float64 else problem.to(dtype=torch.float64)


def flat_w(problem: Problem, w: torch.Tensor | None) -> torch.Tensor:
    """``w`` as a detached flat float vector on the Problem's device and dtype."""
    return problem.check_w(w).detach().clone()


def require_mse(problem: Problem, what: str) -> None:
    """Raise unless the Problem's loss is the built-in squared loss."""
    if not problem.is_mse:
        raise ValueError(
            f"{what} works with the squared loss, where the global minima are the solutions of "
            f"F(w) = Y; this Problem's loss is {problem.loss_name!r}. Build the Problem with "
            "loss='mse' (e.g. one-hot targets: lg.data.load(..., one_hot=True))"
        )


def subproblem(problem: Problem, indices: Sequence[int] | torch.Tensor) -> Problem:
    """A Problem with the same model, parameters and loss on the samples ``indices`` only.

    The model is deep-copied; counted parameters, reduction and chunk size are kept.
    """
    import copy

    idx = problem.check_indices(indices)
    xs, ys = [], []
    for _, x, y in problem.iter_chunks(idx):
        xs.append(x)
        ys.append(y)
    model = copy.deepcopy(problem.model)
    loss = problem.custom_loss if problem.custom_loss is not None else problem.loss_name
    return Problem(
        model,
        torch.cat(xs),
        torch.cat(ys),
        loss=loss,
        reduction=problem.reduction,
        params=problem.param_names,
        allow_batchnorm=problem.allow_batchnorm,
        allow_dropout=problem.allow_dropout,
    )


def residual_vector(problem: Problem, w: torch.Tensor) -> torch.Tensor:
    """``r(w) = F(w) − Y`` flattened to ``(nk,)``."""
    return problem.residual(w).reshape(-1)


# ---------------------------------------------------------------------------- Jacobian
def jacobian_bytes(problem: Problem) -> int:
    """Bytes a dense ``J`` takes in the Problem's dtype."""
    item = torch.empty((), dtype=problem.dtype).element_size()
    return problem.n * problem.k * problem.p * item


def choose_jacobian(problem: Problem, jacobian: str, max_bytes: int) -> str:
    """Resolve ``"auto"`` to ``"dense"`` (J fits in ``max_bytes``) or ``"matrix-free"``."""
    if jacobian not in ("auto", "dense", "matrix-free"):
        raise ValueError(f"jacobian must be 'auto', 'dense' or 'matrix-free', got {jacobian!r}")
    if jacobian == "auto":
        return "dense" if jacobian_bytes(problem) <= max_bytes else "matrix-free"
    return jacobian


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
        return problem.forward_with(pd, x_.unsqueeze(0)).reshape(-1)

    def batch(pd: dict[str, torch.Tensor], x_: torch.Tensor) -> torch.Tensor:
        return problem.forward_with(pd, x_).reshape(-1)

    per_sample = torch.func.vmap(torch.func.jacrev(single), in_dims=(None, 0))
    blocks = []
    for _, x, _ in problem.iter_chunks(chunk_size=cs):
        rows = x.shape[0] * k
        try:
            jd = per_sample(pdict, x)
        except RuntimeError:
            jd = torch.func.jacrev(batch)(pdict, x)
        blocks.append(torch.cat([jd[nm].reshape(rows, -1) for nm in names], dim=1).detach())
    return torch.cat(blocks)


GRAM_MIN_ENTRIES = 2_000_000
"""Wide Jacobians with more entries than this are factorized through ``J Jᵀ`` (see
:func:`thin_factor`)."""


def thin_factor(
    J: torch.Tensor, route: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """``J = U diag(s) Vᵀ`` (thin), by SVD or through the Gram matrix ``J Jᵀ``.

    ``route="svd"``: LAPACK SVD, accurate to ``ε σ_max``. ``route="gram"`` (wide ``J``
    only): ``J Jᵀ = U diag(s²) Uᵀ`` by ``eigh``, then ``V = Jᵀ U / s``; the matrix product
    costs ``nk² p`` like the SVD but runs at matrix-multiply speed (about 10-30 times faster
    for ``160 × 85 000``), and resolves singular values only down to ``≈ √(nk ε) σ_max`` (the
    Gram matrix squares the condition number). ``"auto"``: Gram for wide ``J`` with more
    than ``GRAM_MIN_ENTRIES`` entries.

    Returns:
        ``(U, s, V, floor)``: ``U (nk, m)``, ``s (m,)`` decreasing, ``V (p, m)`` (zero columns
        where ``s = 0``), ``m = min(nk, p)``, and the rounding floor of ``s``.
    """
    nk, p = J.shape
    eps = float(torch.finfo(J.dtype).eps)
    if route == "auto":
        route = "gram" if (p > nk and nk * p > GRAM_MIN_ENTRIES) else "svd"
    if route == "gram":
        if p < nk:
            raise ValueError("the Gram route is for wide Jacobians (p >= nk)")
        K = J @ J.T
        lam, U = torch.linalg.eigh(0.5 * (K + K.T))
        lam, U = lam.flip(0), U.flip(1)
        s = lam.clamp_min(0.0).sqrt()
        floor = float(s[0]) * (nk * eps) ** 0.5 if s.numel() else 0.0
        safe = torch.where(s > 0, s, 1.0)
        V = (J.T @ U) / safe
        V[:, s == 0] = 0.0
        return U, s, V, floor
    U, s, Vh = torch.linalg.svd(J, full_matrices=False)
    floor = float(s[0]) * max(nk, p) * eps if s.numel() else 0.0
    return U, s, Vh.T, floor


class JacobianOperator(sla.LinearOperator):
    """``J = DF(w)`` (``nk × p``) as a SciPy LinearOperator: ``J v`` by a JVP, ``Jᵀ u`` by a VJP.

    Each product is one pass over the data (chunked). :attr:`products` counts them.
    """

    def __init__(self, problem: Problem, w: torch.Tensor) -> None:
        self.problem = problem
        self.w = w.detach()
        self.products = 0
        nk = problem.n * problem.k
        super().__init__(dtype=np.float64, shape=(nk, problem.p))

    def _t(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x)).to(
            device=self.problem.device, dtype=self.problem.dtype
        )

    def jv(self, v: torch.Tensor) -> torch.Tensor:
        """``J v`` for a torch vector ``v (p,)``: returns ``(nk,)``."""
        self.products += 1
        return self.problem.jvp(self.w, v).reshape(-1)

    def jtu(self, u: torch.Tensor) -> torch.Tensor:
        """``Jᵀ u`` for a torch vector ``u (nk,)``: returns ``(p,)``."""
        self.products += 1
        return self.problem.vjp(self.w, u.reshape(self.problem.n, self.problem.k))

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self.jv(self._t(x).reshape(-1)).cpu().numpy().astype(np.float64)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self.jtu(self._t(x).reshape(-1)).cpu().numpy().astype(np.float64)


def gram_operator(J: JacobianOperator) -> sla.LinearOperator:
    """The smaller Gram matrix of ``J``: ``J Jᵀ`` (``nk × nk``) when ``p ≥ nk``, else ``Jᵀ J``."""
    nk, p = J.shape
    if p >= nk:
        return sla.LinearOperator(
            (nk, nk), matvec=lambda u: J.matvec(J.rmatvec(u)), dtype=np.float64
        )
    return sla.LinearOperator((p, p), matvec=lambda v: J.rmatvec(J.matvec(v)), dtype=np.float64)


# ---------------------------------------------------------------------------- Hessian
def dense_hessian(problem: Problem, w: torch.Tensor, block: int = 64) -> torch.Tensor:
    """The loss Hessian ``∇²L(w)`` (``p × p``) from ``p`` vmapped Hessian-vector products.

    Built by :func:`hvp_block`; symmetrized as ``(H + Hᵀ)/2`` (the products are exact up to
    rounding).
    """
    p = problem.p
    H = torch.empty(p, p, dtype=problem.dtype, device=problem.device)
    for s in range(0, p, block):
        e = min(s + block, p)
        eye = torch.zeros(p, e - s, dtype=problem.dtype, device=problem.device)
        eye[torch.arange(s, e), torch.arange(e - s)] = 1
        H[:, s:e] = hvp_block(problem, w, eye, block)
    return 0.5 * (H + H.T)


def hessian_operator(problem: Problem, w: torch.Tensor) -> sla.LinearOperator:
    """``∇²L(w)`` as a symmetric SciPy LinearOperator (one Hessian-vector product each)."""
    w = w.detach()

    def mv(x: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(np.ascontiguousarray(x).reshape(-1)).to(
            device=problem.device, dtype=problem.dtype
        )
        return problem.hvp(w, v).cpu().numpy().astype(np.float64)

    return sla.LinearOperator((problem.p, problem.p), matvec=mv, rmatvec=mv, dtype=np.float64)


def lambda_min(
    problem: Problem,
    w: torch.Tensor,
    *,
    method: str = "auto",
    restrict: sla.LinearOperator | None = None,
    maxiter: int = 300,
    seed: int = 0,
) -> tuple[float, str, float]:
    """The smallest eigenvalue of ``∇²L(w)`` and how it was obtained.

    ``method="dense"``: exact (``eigvalsh`` of the dense Hessian); ``"lanczos"``: ARPACK on
    the Hessian operator (or on ``P H P`` with ``restrict = P`` a projector), then the
    Rayleigh quotient ``uᵀ H u / uᵀu`` of the Ritz vector ``u``, which is an upper bound on
    ``λ_min(H)`` whatever the solver's accuracy (a negative value certifies a negative
    eigenvalue). ``"auto"``: dense when ``p ≤ DENSE_HESSIAN_MAX_P``.

    Returns:
        ``(value, kind, lambda_max_scale)`` where ``kind`` is ``"exact"`` or ``"rayleigh"``
        and ``lambda_max_scale`` is ``max |λ|`` (dense) or ``‖H u‖`` scale used for
        tolerances.
    """
    if method == "auto":
        method = "dense" if problem.p <= DENSE_HESSIAN_MAX_P else "lanczos"
    if method == "dense":
        ev = torch.linalg.eigvalsh(dense_hessian(problem, w))
        return float(ev[0]), "exact", float(ev.abs().max())
    if method != "lanczos":
        raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got {method!r}")
    H = hessian_operator(problem, w)
    A = H if restrict is None else restrict @ H @ restrict
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(problem.p)
    if restrict is not None:
        v0 = restrict.matvec(v0)
    try:
        _, vecs = sla.eigsh(A, k=1, which="SA", v0=v0, maxiter=maxiter, tol=1e-8)
        u = vecs[:, 0]
    except sla.ArpackNoConvergence as e:
        if e.eigenvectors is not None and e.eigenvectors.shape[1] > 0:
            u = e.eigenvectors[:, 0]
        else:
            u = v0
    if restrict is not None:
        u = restrict.matvec(u)
    Hu = H.matvec(u)
    q = float(u @ Hu / (u @ u))
    return q, "rayleigh", float(np.linalg.norm(Hu) / np.linalg.norm(u))


def hvp_block(problem: Problem, w: torch.Tensor, V: torch.Tensor, block: int = 32) -> torch.Tensor:
    """``∇²L(w) V`` for ``V (p, m)``: forward-over-reverse, vmapped over ``block`` columns.

    Same products and normalization as :meth:`Problem.hvp`, differentiated with respect to the
    parameter tensors (not the flat vector, whose slicing backward costs a ``p``-sized fill
    per tensor and column).
    """
    names = [spec.name for spec in problem.param_specs]
    pdict = {nm: t.detach() for nm, t in problem.param_dict(w.detach()).items()}

    def split(v: torch.Tensor) -> dict[str, torch.Tensor]:
        return {s.name: v[s.offset : s.offset + s.numel].view(s.shape) for s in problem.param_specs}

    out = torch.zeros(problem.p, V.shape[1], dtype=problem.dtype, device=problem.device)
    V = V.to(device=problem.device, dtype=problem.dtype)
    for _, x, y in problem.iter_chunks():

        def loss_sum(
            pd: dict[str, torch.Tensor], x: torch.Tensor = x, y: torch.Tensor = y
        ) -> torch.Tensor:
            out_ = problem.forward_with(pd, x)
            return problem.per_sample_loss_fn(out_.reshape(out_.shape[0], -1), y).sum()

        gfun = torch.func.grad(loss_sum)

        def hv(v: torch.Tensor, gfun: object = gfun) -> torch.Tensor:
            t = torch.func.jvp(gfun, (pdict,), (split(v),))[1]
            return torch.cat([t[nm].reshape(-1) for nm in names])

        for s in range(0, V.shape[1], block):
            out[:, s : s + block] += torch.func.vmap(hv, in_dims=1, out_dims=1)(V[:, s : s + block])
    return problem.reduce_sum(out, problem.n).detach()
