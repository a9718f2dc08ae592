"""Lanczos tridiagonalizations from several start vectors at once (for SLQ).

:func:`lanczos_tridiag` runs plain Lanczos (no restart) from the columns of ``V0``; their
products are vectorized as one block per step (this is not block Lanczos: the recurrences are
independent). The tridiagonal matrices feed stochastic Lanczos quadrature
(:mod:`lossgeometry.linalg.slq`).
"""

from __future__ import annotations

import dataclasses

import torch

from lossgeometry._progress import progress_bar
from lossgeometry.operators.base import square_operator


@dataclasses.dataclass
class Tridiagonal:
    """Lanczos tridiagonalizations ``Q_lᵀ A Q_l = T_l`` from ``b`` start vectors.

    Attributes:
        alpha: diagonals, shape ``(b, m)``.
        beta: off-diagonals, shape ``(b, m - 1)``.
        steps: ``(b,)`` number of valid steps per start vector (fewer than ``m`` after an
            early breakdown ``β ≈ 0``: the Krylov space was invariant; entries beyond are 0).
        matvecs: products used (``b · m``).
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    steps: torch.Tensor
    matvecs: int

    def matrices(self) -> list[torch.Tensor]:
        """Return the tridiagonal matrices ``T_l`` (float64, trimmed to their valid size)."""
        out = []
        for l in range(self.alpha.shape[0]):
            s = int(self.steps[l])
            a = self.alpha[l, :s].double()
            b = self.beta[l, : s - 1].double()
            out.append(torch.diag(a) + torch.diag(b, 1) + torch.diag(b, -1))
        return out


def lanczos_tridiag(
    A: object,
    V0: torch.Tensor,
    steps: int,
    *,
    reorthogonalize: bool = True,
    progress: bool | None = None,
) -> Tridiagonal:
    """Run ``steps`` Lanczos steps from each column of ``V0`` at once (vectorized products).

    The ``b`` recurrences are independent (this is not block Lanczos); their products are
    computed together by one product ``A Q`` per step, which batches the work. With
    ``reorthogonalize`` every new vector is orthogonalized (twice) against all previous ones
    of its own recurrence, so the Ritz values carry no spurious copies ("ghosts"); memory is
    ``b · steps · p`` numbers.

    Args:
        A: the symmetric ``p × p`` operator (see :func:`lanczos_extremes`).
        V0: start vectors ``(p, b)`` (normalized here; their dtype is the basis dtype).
        steps: Lanczos steps ``m`` (the tridiagonal matrices are ``m × m``).
        reorthogonalize: full reorthogonalization (recommended).
        progress: a progress bar over steps.

    Returns:
        A :class:`Tridiagonal`.
    """
    A = square_operator(A, "lanczos_tridiag")
    if V0.ndim != 2 or V0.shape[0] != A.shape[0]:
        raise ValueError(f"V0 must have shape ({A.shape[0]}, b), got {tuple(V0.shape)}")
    p, b = V0.shape
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    steps = min(steps, p)
    q = V0 / V0.norm(dim=0, keepdim=True)
    # basis of each recurrence as rows of a (b, steps, p) tensor: contiguous batched GEMVs
    Q = torch.zeros(b, steps, p, dtype=q.dtype, device=q.device) if reorthogonalize else None
    if Q is not None:
        Q[:, 0] = q.T
    q_prev = torch.zeros_like(q)
    alpha = torch.zeros(b, steps, dtype=torch.float64)
    beta = torch.zeros(b, max(steps - 1, 0), dtype=torch.float64)
    done = torch.zeros(b, dtype=torch.bool)
    nsteps = torch.full((b,), steps, dtype=torch.long)
    b_prev = torch.zeros(b, dtype=q.dtype, device=q.device)
    matvecs = 0
    scale = torch.zeros(b, dtype=torch.float64)
    for j in progress_bar(range(steps), progress, desc="lanczos", unit="step"):
        w = A.matmat_torch(q).to(q)
        matvecs += b
        a = (q * w).sum(dim=0)
        w = w - a * q - b_prev * q_prev
        if Q is not None:
            B = Q[:, : j + 1]  # (b, j+1, p)
            wt = w.T.unsqueeze(2)  # (b, p, 1)
            for _ in range(2):
                h = torch.bmm(B, wt)  # (b, j+1, 1)
                wt = wt - torch.bmm(B.transpose(1, 2), h)
            w = wt.squeeze(2).T
        acpu = a.double().cpu()
        alpha[:, j] = torch.where(done, torch.zeros_like(acpu), acpu)
        scale = torch.maximum(scale, acpu.abs())
        if j == steps - 1:
            break
        bn = w.norm(dim=0)
        bcpu = bn.double().cpu()
        if j > 0:
            scale = torch.maximum(scale, beta[:, j - 1])
        newly = (~done) & ((bcpu <= 1e-10 * torch.clamp(scale, min=1e-300)) | (bcpu == 0))
        nsteps[newly] = j + 1
        done = done | newly
        beta[:, j] = torch.where(done, torch.zeros_like(bcpu), bcpu)
        safe = torch.where(bn > 0, bn, torch.ones_like(bn))
        q_prev, q = q, w / safe
        q = torch.where(done.to(q.device)[None, :], torch.zeros_like(q), q)
        b_prev = torch.where(done.to(bn.device), torch.zeros_like(bn), bn)
        if Q is not None:
            Q[:, j + 1] = q.T
        if bool(done.all()):
            break
    return Tridiagonal(alpha=alpha, beta=beta, steps=nsteps, matvecs=matvecs)
