"""The :class:`~lossgeometry.Problem`'s functional views: ``F``, ``L``, ``∇L``, JVP, VJP, HVP.

Part of :mod:`lossgeometry.problem` (split by job). Every view is a function of a flat point
``w`` (default: the model's current parameters), runs over the data in chunks, follows the
Problem's loss normalization, and runs with autocast off (:func:`measurement`). They are
built on the developer API (:mod:`lossgeometry._problem_api`) and :mod:`torch.func`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.func import grad, jvp, vjp

from lossgeometry._attention import with_differentiable_attention
from lossgeometry._precision import full_precision

__all__ = ["FunctionalViews", "measurement"]


def measurement(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a Problem view with autocast off (see :func:`full_precision`)."""

    @functools.wraps(method)
    def view(self: Any, *args: Any, **kwargs: Any) -> Any:
        with full_precision(self.device):
            return method(self, *args, **kwargs)

    return view


class FunctionalViews:
    """The functional views of :class:`~lossgeometry.Problem` (a mixin of it)."""

    # ------------------------------------------------------------------ views
    @measurement
    @torch.no_grad()
    def F(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Model outputs ``F(w)``, shape ``(n, k)`` (or ``(len(indices), k)``)."""
        w = self.check_w(w)
        parts = [(rows, self.forward(w, x)) for rows, x, _ in self.local_chunks(indices)]
        return self.gather_rows(parts, self.sample_count(indices), (self.k,), self.dtype)

    @measurement
    @torch.no_grad()
    def targets(self, indices: Sequence[int] | None = None) -> torch.Tensor:
        """The targets, flattened to ``(n, k)`` for MSE (as stored otherwise)."""
        parts = [(rows, y) for rows, _, y in self.local_chunks(indices)]
        if self.is_data_parallel:
            tail, dtype = self.target_spec()
            Y = self.gather_rows(parts, self.sample_count(indices), tail, dtype)
        else:
            Y = torch.cat([y for _, y in parts])
        return Y.reshape(Y.shape[0], -1) if self.is_mse else Y

    @measurement
    @torch.no_grad()
    def residual(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``r(w) = F(w) − Y``, shape ``(n, k)``; MSE only. ``L = loss_scale · ½‖r‖²``."""
        if not self.is_mse:
            raise ValueError("residual() is defined for loss='mse' only")
        w = self.check_w(w)
        parts = [
            (rows, self.forward(w, x) - y.reshape(y.shape[0], -1))
            for rows, x, y in self.local_chunks(indices)
        ]
        return self.gather_rows(parts, self.sample_count(indices), (self.k,), self.dtype)

    @measurement
    @torch.no_grad()
    def per_sample_losses(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Per-sample losses ``ℓ_i(w)``, shape ``(n,)``; see :meth:`per_sample_loss_fn`."""
        w = self.check_w(w)
        parts = [
            (rows, self.per_sample_loss_fn(self.forward(w, x), y))
            for rows, x, y in self.local_chunks(indices)
        ]
        return self.gather_rows(parts, self.sample_count(indices), (), self.dtype)

    def chunk_loss_sum(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``Σ_{i ∈ chunk} ℓ_i(w)`` on a chunk ``(x, y)``: pure in ``w`` (``torch.func``-safe)."""
        return self.per_sample_loss_fn(self.forward(w, x), y).sum()

    @measurement
    @torch.no_grad()
    def loss(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The loss ``L(w)`` (a 0-d tensor) under the Problem's normalization.

        With ``indices``, the unbiased mini-batch estimate of ``L``: ``(n/b) Σ_{i∈B} ℓ_i``
        for ``"sum"``, ``(1/b) Σ_{i∈B} ℓ_i`` for ``"mean"``.
        """
        w = self.check_w(w)
        total = torch.zeros((), device=self.device, dtype=self.dtype)
        for _, x, y in self.local_chunks(indices):
            total = total + self.chunk_loss_sum(w, x, y)
        return self.reduce_sum(self.all_sum(total), self.sample_count(indices))

    @measurement
    def loss_and_grad(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L(w), ∇L(w))`` in one pass over the data (chunked); normalization as :meth:`loss`."""
        w = self.check_w(w).detach()
        g_and_v = torch.func.grad_and_value(self.chunk_loss_sum)
        total = torch.zeros((), device=self.device, dtype=self.dtype)
        g = torch.zeros_like(w)
        for _, x, y in self.local_chunks(indices):
            gi, li = g_and_v(w, x, y)
            g += gi
            total += li.detach()
        if self.is_data_parallel:  # one collective for both
            both = self.all_sum(torch.cat([total.reshape(1), g]))
            total, g = both[0], both[1:]
        count = self.sample_count(indices)
        return self.reduce_sum(total, count), self.reduce_sum(g, count)

    @measurement
    def grad(
        self, w: torch.Tensor | None = None, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The gradient ``∇L(w) ∈ R^p`` (chunked); normalization as :meth:`loss`."""
        return self.loss_and_grad(w, indices)[1]

    @measurement
    @with_differentiable_attention
    def jvp(
        self, w: torch.Tensor | None, v: torch.Tensor, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``DF(w) v``: the directional derivative of the outputs, shape ``(n, k)``.

        ``v`` has shape ``(p,)``; for ``(p, m)`` the result is ``(n, k, m)``. Forward-mode
        AD, with attention on its math backend (:mod:`lossgeometry._attention`).
        """
        w = self.check_w(w).detach()
        v = self.check_v(v)
        if v.ndim == 2:
            return torch.stack([self.jvp(w, v[:, j], indices) for j in range(v.shape[1])], dim=-1)
        parts = []
        for rows, x, _ in self.local_chunks(indices):
            _, t = jvp(functools.partial(self._forward_swapped, x), (w,), (v,))
            parts.append((rows, t.detach()))
        return self.gather_rows(parts, self.sample_count(indices), (self.k,), self.dtype)

    @measurement
    def vjp(
        self, w: torch.Tensor | None, u: torch.Tensor, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``DF(w)ᵀ u ∈ R^p`` for ``u`` of shape ``(n, k)`` (one row per selected sample)."""
        w = self.check_w(w).detach()
        m = self.sample_count(indices)
        if u.shape[0] != m or u[0].numel() != self.k:
            raise ValueError(f"u must have shape ({m}, {self.k}), got {tuple(u.shape)}")
        u = u.reshape(m, self.k).to(device=self.device, dtype=self.dtype)
        out = torch.zeros_like(w)
        for rows, x, _ in self.local_chunks(indices):
            _, pullback = vjp(functools.partial(self._forward_swapped, x), w)
            out += pullback(u[rows.to(u.device)])[0]
        return self.all_sum(out.detach())

    @measurement
    @with_differentiable_attention
    def hvp(
        self, w: torch.Tensor | None, v: torch.Tensor, indices: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The loss Hessian-vector product ``∇²L(w) v`` (forward-over-reverse, chunked).

        ``v`` of shape ``(p,)`` or ``(p, m)`` (then ``m`` products, vectorized with ``vmap``).
        Normalization as :meth:`loss`. Attention runs on its math backend, which supports
        double backward (:mod:`lossgeometry._attention`).
        """
        w = self.check_w(w).detach()
        v = self.check_v(v)
        gfun = grad(self.chunk_loss_sum)
        out = torch.zeros_like(v)
        for _, x, y in self.local_chunks(indices):

            def hv(vec: torch.Tensor, x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                return jvp(lambda w_: gfun(w_, x, y), (w,), (vec,))[1]

            out += hv(v) if v.ndim == 1 else torch.func.vmap(hv, in_dims=1, out_dims=1)(v)
        return self.reduce_sum(self.all_sum(out.detach()), self.sample_count(indices))
