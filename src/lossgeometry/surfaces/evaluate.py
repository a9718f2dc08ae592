"""The loss (and accuracy) at many points at once: vmapped over parameters, or one by one.

:func:`evaluate_points` takes a block of flat points ``W (m, p)`` and returns ``L(W_j)`` for
every row, with the Problem's normalization (the sum of the per-sample losses over the data,
reduced by ``problem.reduce_sum``), and optionally the accuracy
``(1/n) Σ_i [argmax f(W_j; x_i) = y_i]`` (cross-entropy problems; a sequence model's
positions are averaged per sample first, like its loss).

``evaluation="vmap"`` evaluates all ``m`` points in one forward pass per data chunk
(``torch.func.vmap`` over the parameters of ``functional_call``); ``"chunks"`` runs one
forward pass per point and chunk; ``"auto"`` tries vmap and falls back to chunks when the
model cannot be vmapped (data-dependent control flow, ``.item()``, in-place updates of
inputs). Both run on the data in the Problem's chunks, so memory is bounded by
``m × chunk_size`` samples (vmap) or ``chunk_size`` samples (chunks). On a data-parallel
Problem each rank evaluates its own samples and the sums are added over the ranks.
"""

from __future__ import annotations

from typing import Literal

import torch

from lossgeometry.problem import Problem, full_precision

__all__ = ["Evaluation", "evaluate_points"]

Evaluation = Literal["auto", "vmap", "chunks"]
"""How many grid points share a forward pass: all (``"vmap"``), one (``"chunks"``), or vmap
with an automatic fall back to chunks (``"auto"``)."""


def _correct(problem: Problem, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample accuracy of flattened outputs ``(b, k)`` (positions averaged)."""
    b = out.shape[0]
    C = problem.output_shape[-1]
    pred = out.reshape(b, -1, C).argmax(dim=-1)
    return (pred == y.reshape(b, -1)).to(out.dtype).mean(dim=1)


def _vmapped(
    problem: Problem, W: torch.Tensor, accuracy: bool, chunk_size: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    loss = torch.zeros(W.shape[0], dtype=problem.dtype, device=problem.device)
    acc = torch.zeros_like(loss) if accuracy else None
    for _, x, y in problem.local_chunks(chunk_size=chunk_size):

        def one(wi: torch.Tensor, x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
            out = problem.forward(wi, x)
            parts = [problem.per_sample_loss_fn(out, y).sum()]
            if accuracy:
                parts.append(_correct(problem, out, y).sum())
            return torch.stack(parts)

        res = torch.func.vmap(one)(W)
        loss += res[:, 0]
        if acc is not None:
            acc += res[:, 1]
    return loss, acc


def _one_by_one(
    problem: Problem, W: torch.Tensor, accuracy: bool, chunk_size: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    loss = torch.zeros(W.shape[0], dtype=problem.dtype, device=problem.device)
    acc = torch.zeros_like(loss) if accuracy else None
    for j in range(W.shape[0]):
        for _, x, y in problem.local_chunks(chunk_size=chunk_size):
            out = problem.forward(W[j], x)
            loss[j] += problem.per_sample_loss_fn(out, y).sum()
            if acc is not None:
                acc[j] += _correct(problem, out, y).sum()
    return loss, acc


def evaluate_points(
    problem: Problem,
    w: torch.Tensor,
    *,
    accuracy: bool = False,
    evaluation: Evaluation = "auto",
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """``L(w_j)`` (and the accuracy) for every row of a block of points ``w (m, p)``.

    Over the full data; one point ``(p,)`` is a block of one.

    Returns ``(loss (m,), accuracy (m,) or None, evaluation used: "vmap" or "chunks")``.

    Raises:
        ValueError: ``accuracy`` on a problem that is not a (named) cross-entropy one, or an
            unknown ``evaluation``.
    """
    if evaluation not in ("auto", "vmap", "chunks"):
        raise ValueError(f"evaluation must be 'auto', 'vmap' or 'chunks', got {evaluation!r}")
    if accuracy and (problem.loss_name != "cross_entropy" or problem.custom_loss is not None):
        raise ValueError("accuracy is defined for cross-entropy problems (class targets) only")
    W = w.reshape(1, -1) if w.ndim == 1 else w
    if W.ndim != 2 or W.shape[1] != problem.p:
        raise ValueError(
            f"w must have shape (m, {problem.p}) or ({problem.p},), got {tuple(w.shape)}"
        )
    W = W.to(device=problem.device, dtype=problem.dtype)
    used = "chunks" if evaluation == "chunks" else "vmap"
    with full_precision(problem.device), torch.no_grad():
        if used == "vmap":
            try:
                loss, acc = _vmapped(problem, W, accuracy, chunk_size)
            except (RuntimeError, NotImplementedError, ValueError):
                if evaluation == "vmap":
                    raise
                used = "chunks"
        if used == "chunks":
            loss, acc = _one_by_one(problem, W, accuracy, chunk_size)
    if problem.is_data_parallel:  # each rank's samples, summed over the ranks (one collective)
        both = problem.all_sum(torch.stack([loss, acc if acc is not None else loss]))
        loss, acc = both[0], (both[1] if acc is not None else None)
    n = problem.n
    loss = problem.reduce_sum(loss, n)
    if acc is not None:
        acc = acc / n
    return loss, acc, used
