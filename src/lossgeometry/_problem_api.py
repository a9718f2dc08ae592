"""The :class:`~lossgeometry.Problem`'s developer API: what measurements build on.

Part of :mod:`lossgeometry.problem` (split by job): the parameters of a flat ``w``, the forward
pass on a chunk, the data by chunks or by index, the per-sample loss and its reduction, and
the checks every entry point makes. Documented in docs/design.md ("The Problem's developer
API"); no module outside :mod:`lossgeometry.problem` and its ``_problem_*`` parts uses an
underscore member of a Problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.func import functional_call

from lossgeometry._checks import check_modes
from lossgeometry._precision import autocast_active
from lossgeometry._problem_data import _cast, _LoaderSource, _TensorSource
from lossgeometry._problem_inputs import Inputs, call_args, concat_inputs
from lossgeometry._problem_parallel import not_data_parallel
from lossgeometry._problem_setup import ParamSpec

__all__ = ["DeveloperAPI"]


class DeveloperAPI:
    """The developer API of :class:`~lossgeometry.Problem` (a mixin of it)."""

    _source: _TensorSource | _LoaderSource
    _param_specs: tuple[ParamSpec, ...]

    @property
    def param_specs(self) -> tuple[ParamSpec, ...]:
        """The counted parameters in flat order: name, shape, size and offset in ``w``."""
        return self._param_specs

    @property
    def custom_loss(self) -> Any:
        """The user's per-sample loss callable, or ``None`` for a named loss."""
        return self._custom_loss

    def batch(
        self, indices: torch.Tensor | Sequence[int] | None = None
    ) -> tuple[Inputs, torch.Tensor]:
        """Inputs and targets ``(x, y)`` of the given samples (all samples if ``None``).

        On the Problem's device and dtype; a loader-backed Problem reads them from its
        dataset (for all samples, every batch of the loader). ``x`` has the structure of the
        Problem's inputs (a tensor, or a tuple/dict of tensors).
        """
        if indices is None:
            if self.shard is not None:  # type: ignore[attr-defined]
                raise not_data_parallel("reading every sample", self.world_size)  # type: ignore[attr-defined]
            if isinstance(self._source, _TensorSource):
                return self._source.X, self._source.Y
            xs, ys = zip(*((x, y) for _, x, y in self._source.chunks(self.chunk_size)), strict=True)
            return concat_inputs(xs), torch.cat(ys)
        return self._source.get(self.check_indices(indices))

    def param_dict(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named parameter tensors of a flat ``w``: views, differentiable in ``w``."""
        # one split, not one slice per tensor: the backward of split is a single concatenation,
        # while each slice's backward fills a p-sized zero tensor (p-sized work per tensor and
        # per product, visible in Hessian-vector products of models with many tensors)
        sizes = [s.numel for s in self._param_specs]
        if sum(sizes) != w.shape[-1]:
            raise ValueError(f"w has {w.shape[-1]} entries, the model {sum(sizes)} parameters")
        pieces = torch.split(w, sizes)
        return {s.name: t.view(s.shape) for s, t in zip(self._param_specs, pieces, strict=True)}

    def check_w(self, w: torch.Tensor | None) -> torch.Tensor:
        """A flat point ``w`` checked for shape ``(p,)``, on the Problem's device and dtype.

        ``None`` means the model's current parameters; anything else raises a clear error.
        """
        if w is None:
            return self.params()
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"w must be a torch.Tensor of shape ({self.p},), got {type(w)}")
        if w.shape != (self.p,):
            raise ValueError(
                f"w must have shape ({self.p},) (the flat parameters), got {tuple(w.shape)}"
            )
        if w.dtype != self.dtype or w.device != self.device:
            w = w.to(device=self.device, dtype=self.dtype)
        return w

    def check_v(self, v: torch.Tensor, name: str = "v") -> torch.Tensor:
        """A direction ``(p,)`` or block of directions ``(p, m)`` on the Problem's device/dtype."""
        if v.shape[0] != self.p:
            raise ValueError(
                f"{name} must have shape ({self.p},) or ({self.p}, m), got {tuple(v.shape)}"
            )
        return v.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ functional core
    def forward_with(self, pdict: dict[str, torch.Tensor], x: Inputs) -> torch.Tensor:
        """The model's raw output on a chunk ``x``, counted parameters from ``pdict``.

        ``x`` is called by the one rule (:func:`~lossgeometry.problem.call_args`): a tensor
        as ``model(x)``, a tuple as ``model(*x)``, a dict as ``model(**x)``.
        Frozen parameters and buffers come from the model; the result is pure in ``pdict``.
        Checks the modes (train-mode BatchNorm, active dropout) as the constructor does;
        train-mode normalization layers run on batch statistics with their running statistics
        left untouched. Runs in :attr:`dtype`; refuses to run under an active autocast (wrap
        the measurement in :func:`full_precision`, as the views do).
        """
        if autocast_active(self.device):
            raise RuntimeError(
                "torch.autocast is active: a measurement in half precision would be silently "
                "wrong, so lossgeometry measures in full precision. The Problem's own views and "
                "lg.Monitor switch autocast off; call other measurements outside the autocast "
                "region (or inside lossgeometry.problem.full_precision(problem.device))"
            )
        check_modes(self._norms, self._random, self.allow_batchnorm, self.allow_dropout)
        state = {**self._fixed, **dict(self.model.named_buffers())}
        if self._upcast:
            state = {n: _cast(t, None, self.dtype) for n, t in state.items()}
        for mod, names in self._norm_buffers:
            if mod.training:  # batch statistics: no running statistics to read or update
                state.update(dict.fromkeys(names))
        args, kwargs = call_args(x)
        return functional_call(self.model, {**state, **pdict}, args, kwargs)

    def forward(self, w: torch.Tensor, x: Inputs) -> torch.Tensor:
        """Model outputs at flat parameters ``w`` on a batch ``x``, flattened to ``(b, k)``.

        Pure in ``w`` (safe under ``torch.func`` transforms), so kernels and Jacobians are
        built from it. ``x`` may also be a single unbatched sample inside ``vmap``.
        """
        out = self.forward_with(self.param_dict(w), x)
        return out.reshape(out.shape[0], -1)

    def _forward_swapped(self, x: Inputs, w: torch.Tensor) -> torch.Tensor:
        return self.forward(w, x)

    def per_sample_loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample losses ``ℓ_i`` (shape ``(b,)``) from flattened outputs ``(b, k)``.

        ``ℓ_i = ½‖f_i − y_i‖²`` (MSE, ``"sum"``), ``‖f_i − y_i‖²/k`` (MSE, ``"mean"``),
        ``−log softmax(f_i)[y_i]`` (cross-entropy), ``−f_i[y_i]`` (NLL: ``f`` are
        log-probabilities, classes last; both averaged over extra target positions),
        ``(1/k) Σ_j bce(f_ij, y_ij)`` with ``bce(z, t) = −t log σ(z) − (1 − t) log(1 − σ(z))``
        (BCE with logits: the mean over the sample's ``k`` elements, so ``"mean"`` gives
        ``nn.BCEWithLogitsLoss()``).
        """
        b = out.shape[0]
        if self._custom_loss is not None:
            losses = self._custom_loss(out.reshape(b, *self.output_shape), y)
            if losses.shape != (b,):
                raise ValueError(
                    f"the custom loss must return per-sample losses of shape ({b},), got "
                    f"{tuple(losses.shape)}; do not reduce over the batch"
                )
            return losses
        if self.loss_name == "mse":
            sq = (out - y.reshape(b, -1)).pow(2).sum(dim=1)
            return 0.5 * sq if self.reduction == "sum" else sq / self.k
        if self.loss_name == "bce":
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                out, y.reshape(b, -1).to(out.dtype), reduction="none"
            )
            return bce.mean(dim=1)
        C = self.output_shape[-1]
        logits = out.reshape(-1, C)
        fn = (
            torch.nn.functional.nll_loss
            if self.loss_name == "nll"
            else torch.nn.functional.cross_entropy
        )
        ce = fn(logits, y.reshape(-1), reduction="none")
        return ce.reshape(b, -1).mean(dim=1)

    def reduce_sum(self, total: torch.Tensor, count: int) -> torch.Tensor:
        """Turn a sum of ``ℓ_i`` over ``count`` samples into an unbiased estimate of ``L``."""
        if self.reduction == "mean":
            return total / count
        return total if count == self.n else total * (self.n / count)

    def iter_chunks(
        self, indices: torch.Tensor | Sequence[int] | None = None, chunk_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, Inputs, torch.Tensor]]:
        """Yield ``(indices, x, y)`` chunks covering the data (or the given sample indices)."""
        if self.shard is not None:  # type: ignore[attr-defined]
            raise not_data_parallel(
                "this measurement (it passes over the data with iter_chunks)",
                self.world_size,  # type: ignore[attr-defined]
            )
        cs = chunk_size or self.chunk_size
        if indices is None:
            yield from self._source.chunks(cs)
            return
        idx = self.check_indices(indices)
        for s in range(0, idx.numel(), cs):
            sub = idx[s : s + cs]
            x, y = self._source.get(sub)
            yield sub, x, y

    def check_indices(self, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Sample indices as a long tensor, checked to lie in ``[0, n)`` and to be non-empty."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() == 0:
            raise ValueError("indices is empty: pass at least one sample index")
        if int(idx.min()) < 0 or int(idx.max()) >= self.n:
            raise ValueError(f"sample indices must lie in [0, {self.n - 1}]")
        src = getattr(self._source, "local_source", self._source)
        return idx.cpu() if isinstance(src, _LoaderSource) else idx.to(self.device)

    def sample_count(self, indices: torch.Tensor | Sequence[int] | None) -> int:
        """How many samples ``indices`` select (``n`` for ``None``)."""
        return self.n if indices is None else len(torch.as_tensor(indices).reshape(-1))
